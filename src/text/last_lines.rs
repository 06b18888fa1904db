//! [`LastLines`]: the last N lines of an input that cannot seek back.

use std::collections::VecDeque;

use crate::error::Result;
use crate::stage::{Flow, Lifecycle, Stage};

/// Keeps the last `keep` lines it is sent, with their byte offsets, and
/// counts every line: `tail -n N` on a pipe, a FIFO or a `/proc` file,
/// which are read forward to their end with a ring of N lines (memory
/// stays bounded by N lines).
///
/// Offsets count from 0 at the first line sent (or from
/// [`starting_at`](LastLines::starting_at)); each line's buffer is reused
/// once the ring is full, so a long input allocates N buffers, not one per
/// line.
///
/// # Examples
///
/// ```
/// use copipe::text::{LastLines, Lines};
///
/// let mut last = LastLines::new(2);
/// Lines::new(&b"a\nbb\nc\nd"[..]).run(&mut last)?;
/// assert_eq!(last.count(), 4);
/// let kept: Vec<(u64, &[u8])> = last.lines().collect();
/// assert_eq!(kept, [(5, &b"c\n"[..]), (7, &b"d"[..])]);
/// assert_eq!(last.first_line_number(), Some(3));
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LastLines {
    keep: usize,
    lines: VecDeque<(u64, Vec<u8>)>,
    offset: u64,
    count: u64,
}

impl LastLines {
    /// Keeps the last `keep` lines (none with 0: then it only counts).
    pub fn new(keep: usize) -> LastLines {
        LastLines {
            keep,
            ..LastLines::default()
        }
    }

    /// Counts offsets from `offset` (where the first line sent starts).
    pub fn starting_at(mut self, offset: u64) -> LastLines {
        self.offset = offset;
        self
    }

    /// The lines kept, oldest first, each with its byte offset (its
    /// terminator included, as sent).
    pub fn lines(&self) -> impl ExactSizeIterator<Item = (u64, &[u8])> + '_ {
        self.lines.iter().map(|(o, l)| (*o, l.as_slice()))
    }

    /// How many lines were sent.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The 1-based number of the first line kept, `None` when none is.
    pub fn first_line_number(&self) -> Option<u64> {
        (!self.lines.is_empty()).then(|| self.count - self.lines.len() as u64 + 1)
    }
}

impl<'a> Stage<&'a [u8]> for LastLines {
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        let offset = self.offset;
        self.offset += line.len() as u64;
        self.count += 1;
        if self.keep == 0 {
            return Ok(Flow::Continue);
        }
        let (_, mut buf) = if self.lines.len() == self.keep {
            self.lines.pop_front().unwrap_or_default()
        } else {
            (0, Vec::new())
        };
        buf.clear();
        buf.extend_from_slice(line);
        self.lines.push_back((offset, buf));
        Ok(Flow::Continue)
    }
}

impl Lifecycle for LastLines {
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

    #[test]
    fn keeps_the_last_n_and_counts_all() {
        let mut last = LastLines::new(3).starting_at(10);
        for l in [&b"a\n"[..], b"bb\n", b"c\n", b"dd\n", b"e"] {
            let _ = last.send(l).unwrap();
        }
        assert_eq!(last.count(), 5);
        assert_eq!(
            last.lines().collect::<Vec<_>>(),
            [(15, &b"c\n"[..]), (17, b"dd\n"), (20, b"e")]
        );
        assert_eq!(last.first_line_number(), Some(3));
        let mut none = LastLines::new(0);
        let _ = none.send(&b"x\n"[..]).unwrap();
        assert_eq!((none.count(), none.lines().len()), (1, 0));
        assert_eq!(none.first_line_number(), None);
    }
}
