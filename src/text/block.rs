//! [`Block`]: several whole lines handed on in one piece, and
//! [`SplitLines`], which turns blocks back into lines.

use crate::Lifecycle;
use memchr::memchr;

use crate::error::Result;
use crate::stage::{Flow, Stage};

/// A chunk of whole lines from a line source, borrowed from its buffer.
///
/// Every line in a block ends with `\n`, except that the very last block of
/// an input that does not end with a newline ends with that final line,
/// without one. A block is never empty.
///
/// Sources hand blocks on so that a stage like [`Grep`](super::Grep) can
/// search a whole chunk at once (as ripgrep does) and widen a hit to its
/// line; stages that work per line sit behind [`SplitLines`]. A block is
/// also `AsRef<[u8]>`, so a [`Printer`](crate::sinks::Printer) prints it
/// as it is.
///
/// # Examples
///
/// ```
/// use copipe::text::Block;
///
/// let block = Block::new(b"a\nbb\nccc", 100);
/// let lines: Vec<&[u8]> = block.lines().collect();
/// assert_eq!(lines, [&b"a\n"[..], b"bb\n", b"ccc"]);
/// assert_eq!(block.byte_offset(), 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    bytes: &'a [u8],
    byte_offset: u64,
    file: usize,
}

impl<'a> Block<'a> {
    /// A block of `bytes` that starts at `byte_offset` in its input.
    pub fn new(bytes: &'a [u8], byte_offset: u64) -> Block<'a> {
        Block {
            bytes,
            byte_offset,
            file: 0,
        }
    }

    /// The same block, tagged as coming from file number `file` of a
    /// source that reads several files (0 for the first or only one).
    pub fn with_file(self, file: usize) -> Block<'a> {
        Block { file, ..self }
    }

    /// The lines, terminators included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Byte offset of the block's first byte, counted from the start of the
    /// input (after a truncation, from the start of the new content).
    pub fn byte_offset(&self) -> u64 {
        self.byte_offset
    }

    /// Index of the file this block comes from, for sources that read
    /// several files ([`Follow`](super::Follow)).
    pub fn file(&self) -> usize {
        self.file
    }

    /// The lines of the block, each with its terminator.
    pub fn lines(&self) -> BlockLines<'a> {
        BlockLines { rest: self.bytes }
    }
}

impl AsRef<[u8]> for Block<'_> {
    fn as_ref(&self) -> &[u8] {
        self.bytes
    }
}

/// Iterator over the lines of a [`Block`]. Made by [`Block::lines`].
#[derive(Debug, Clone)]
pub struct BlockLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BlockLines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = memchr(b'\n', self.rest).map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(line)
    }
}

/// Turns [`Block`]s into lines for a per-line stage.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{Stage, StageExt, sinks::Collect};
/// use copipe::text::{Block, SplitLines};
///
/// let mut out = Collect::new();
/// let mut split = SplitLines::new((&mut out).owned());
/// split.send(Block::new(b"one\ntwo\n", 0))?;
/// split.close()?;
/// assert_eq!(out.items(), &[b"one\n".to_vec(), b"two\n".to_vec()]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SplitLines<S> {
    target: S,
}

impl<S> SplitLines<S> {
    /// An adapter sending each line of each block to `target`.
    pub fn new(target: S) -> SplitLines<S> {
        SplitLines { target }
    }

    /// The target.
    pub fn get_ref(&self) -> &S {
        &self.target
    }

    /// The target, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.target
    }

    /// The target, consuming the adapter.
    pub fn into_inner(self) -> S {
        self.target
    }
}

impl<'a, S: Stage<&'a [u8]>> Stage<Block<'a>> for SplitLines<S> {
    #[inline]
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        for line in block.lines() {
            if self.target.send(line)?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

impl<S: Lifecycle> Lifecycle for SplitLines<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// A line stage made from a closure, for borrowed lines of any lifetime.
/// Made by [`line_fn`].
pub struct LineFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for LineFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineFn").finish_non_exhaustive()
    }
}

/// Makes a stage that calls `f` on each line, for the line sources.
///
/// Like [`from_fn`](crate::from_fn), but the closure's argument is known
/// to be a line borrowed for any lifetime, so it needs no annotation
/// (`line_fn(|line| ..)`), as the lines of [`Lines`](super::Lines) and
/// [`Follow`](super::Follow) require. `flush` and `close` do nothing.
///
/// # Examples
///
/// ```
/// use copipe::Flow;
/// use copipe::text::{line_fn, Lines};
///
/// let mut longest = 0;
/// Lines::new(&b"a\nbbb\ncc"[..]).run(line_fn(|line: &[u8]| {
///     longest = longest.max(line.len());
///     Ok(Flow::Continue)
/// }))?;
/// assert_eq!(longest, 4);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn line_fn<F>(f: F) -> LineFn<F>
where
    F: FnMut(&[u8]) -> Result<Flow>,
{
    LineFn { f }
}

impl<'a, F> Stage<&'a [u8]> for LineFn<F>
where
    F: FnMut(&[u8]) -> Result<Flow>,
{
    #[inline]
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        (self.f)(line)
    }
}

impl<F> Lifecycle for LineFn<F>
where
    F: FnMut(&[u8]) -> Result<Flow>,
{
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::StageExt;

    #[test]
    fn split_lines_stops_mid_block() {
        let mut out = crate::sinks::Collect::new();
        let mut split = SplitLines::new((&mut out).with_owned().with_take(2));
        assert_eq!(split.send(Block::new(b"a\nb\nc\n", 0)).unwrap(), Flow::Stop);
        assert_eq!(out.items().len(), 2);
    }

    #[test]
    fn lines_of_empty_block_is_empty() {
        assert_eq!(Block::new(b"", 0).lines().count(), 0);
        assert_eq!(Block::new(b"\n\n", 0).lines().count(), 2);
    }
}
