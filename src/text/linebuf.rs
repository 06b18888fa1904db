//! The buffer both line sources split lines in.
//!
//! Bytes are read into one buffer; after each read the complete lines are
//! handed on as one [`Block`] and the partial line at the end is moved to
//! the front, to be completed by the next read:
//!
//! ```text
//! buf: [ line\n line\n li | (free) ]
//!        ^^^^^^^^^^^^^      - sent as one Block
//!                     ^^    - partial: moved to buf[0..2], held
//! ```
//!
//! The buffer grows only while one line does not fit, up to the source's
//! maximum line length; a longer line is an error naming its byte offset.

use std::io::{self, Read};

use memchr::{memchr_iter, memrchr};

use super::block::Block;
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};

/// Bounded line buffer. Holds at most one partial line between reads.
#[derive(Debug)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
    /// `buf[..end]` holds data not yet sent (a partial line after `emit`).
    end: usize,
    /// `buf[..scanned]` is known to hold no newline.
    scanned: usize,
    /// Byte offset of `buf[0]` in the input.
    offset: u64,
    /// Lines still to drop before sending (`-n +N`).
    skip: u64,
    max_line: usize,
    chunk: usize,
    file: usize,
    /// Skip a line longer than `max_line` (and note it) instead of failing.
    skip_long: bool,
    /// Dropping the rest of a long line, up to and including its `\n`.
    discarding: bool,
    /// Byte offset of a long line skipped and not yet reported.
    long_line: Option<u64>,
    /// The last read filled less than the free space: a pipe or terminal
    /// had nothing more to give at that moment.
    short_read: bool,
}

impl LineBuf {
    pub(crate) fn new(chunk: usize, max_line: usize) -> LineBuf {
        let max_line = max_line.max(1);
        // A buffer larger than the maximum line would let longer complete
        // lines through; the limit must not depend on how reads fall.
        let chunk = chunk.min(max_line);
        LineBuf {
            buf: vec![0; chunk],
            end: 0,
            scanned: 0,
            offset: 0,
            skip: 0,
            max_line,
            chunk,
            file: 0,
            skip_long: false,
            discarding: false,
            long_line: None,
            short_read: false,
        }
    }

    /// Skips a line longer than the maximum instead of failing: the line is
    /// dropped up to and including its `\n`, every line after it is still
    /// read, and [`LineBuf::take_long_line`] reports its byte offset once.
    pub(crate) fn set_skip_long_lines(&mut self, yes: bool) {
        self.skip_long = yes;
    }

    /// The byte offset of a line skipped for its length since the last
    /// call, if any (see [`LineBuf::set_skip_long_lines`]).
    pub(crate) fn take_long_line(&mut self) -> Option<u64> {
        self.long_line.take()
    }

    /// The longest line accepted, terminator included.
    pub(crate) fn max_line(&self) -> usize {
        self.max_line
    }

    /// True when the last read returned less than it could have: on a pipe
    /// or a terminal, the next read would probably wait, so a streaming
    /// source flushes its target then.
    pub(crate) fn was_short_read(&self) -> bool {
        self.short_read
    }

    pub(crate) fn set_file(&mut self, file: usize) {
        self.file = file;
    }

    pub(crate) fn set_skip(&mut self, lines: u64) {
        self.skip = lines;
    }

    /// Starts over at `offset` of a (new or truncated) input, dropping any
    /// held bytes. Call [`LineBuf::finish`] first to keep them.
    pub(crate) fn reset(&mut self, offset: u64) {
        self.end = 0;
        self.scanned = 0;
        self.offset = offset;
        if self.buf.len() > 4 * self.chunk {
            // A long line grew the buffer; give the memory back.
            self.buf = vec![0; self.chunk];
        }
    }

    /// Reads once from `r` into the free part of the buffer; `Ok(0)` at end
    /// of input.
    ///
    /// # Errors
    ///
    /// A read error, or a line longer than the maximum (an `InvalidData`
    /// I/O error naming the line's byte offset).
    pub(crate) fn read_from<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<usize> {
        if self.end >= self.max_line {
            if !self.skip_long {
                return Err(self.too_long());
            }
            // Too long: note it, drop what is held, drop the rest of the
            // line as it comes.
            self.long_line = Some(self.offset);
            self.discarding = true;
            self.drop_front(self.end);
        }
        if self.end == self.buf.len() {
            self.grow();
        }
        loop {
            let free = self.buf.len() - self.end;
            match r.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.short_read = n < free;
                    self.end += n;
                    if self.discarding {
                        self.discard_to_newline();
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Drops `buf[..n]`: its bytes are counted as read and never sent.
    fn drop_front(&mut self, n: usize) {
        self.buf.copy_within(n..self.end, 0);
        self.end -= n;
        self.scanned = 0;
        self.offset += n as u64;
    }

    /// While a long line is being dropped: drops up to and including its
    /// `\n`, or everything held if the newline has not come yet.
    fn discard_to_newline(&mut self) {
        match memchr::memchr(b'\n', &self.buf[..self.end]) {
            Some(i) => {
                self.discarding = false;
                self.drop_front(i + 1);
            }
            None => self.drop_front(self.end),
        }
    }

    /// The held partial line has reached the maximum line length.
    fn too_long(&self) -> Error {
        too_long(self.offset, self.max_line)
    }

    /// Makes room for a partial line that fills the buffer (it is shorter
    /// than the maximum, or `read_from` would have refused it).
    fn grow(&mut self) {
        let len = (self.buf.len() * 2).min(self.max_line).max(self.end + 1);
        self.buf.resize(len, 0);
    }

    /// Sends the complete lines held as one block and keeps the partial
    /// line at the end.
    ///
    /// # Errors
    ///
    /// The target's error.
    #[inline]
    pub(crate) fn emit<S>(&mut self, target: &mut S) -> Result<Flow>
    where
        S: for<'b> Stage<Block<'b>> + ?Sized,
    {
        let Some(i) = memrchr(b'\n', &self.buf[self.scanned..self.end]) else {
            self.scanned = self.end;
            return Ok(Flow::Continue);
        };
        let complete = self.scanned + i + 1;
        let flow = self.send_range(complete, target)?;
        self.buf.copy_within(complete..self.end, 0);
        self.end -= complete;
        self.scanned = self.end;
        self.offset += complete as u64;
        if self.buf.len() > 4 * self.chunk && self.end < self.chunk {
            // A long line grew the buffer and has gone out: give the
            // memory back.
            self.buf.truncate(self.chunk);
            self.buf.shrink_to_fit();
        }
        Ok(flow)
    }

    /// Sends the partial line held, if any, as a final line without a
    /// newline (end of input, truncation, a rotated file given up).
    ///
    /// # Errors
    ///
    /// The target's error.
    pub(crate) fn finish<S>(&mut self, target: &mut S) -> Result<Flow>
    where
        S: for<'b> Stage<Block<'b>> + ?Sized,
    {
        if self.discarding {
            // The input ended inside a long line: nothing of it is sent.
            self.discarding = false;
            self.drop_front(self.end);
        }
        if self.end == 0 {
            return Ok(Flow::Continue);
        }
        let end = self.end;
        let flow = self.send_range(end, target)?;
        self.offset += end as u64;
        self.end = 0;
        self.scanned = 0;
        Ok(flow)
    }

    /// Sends `buf[..end]` (whole lines, or a final partial line) after
    /// dropping the lines still to skip.
    fn send_range<S>(&mut self, end: usize, target: &mut S) -> Result<Flow>
    where
        S: for<'b> Stage<Block<'b>> + ?Sized,
    {
        let start = skip_lines(&self.buf[..end], &mut self.skip);
        if start == end {
            return Ok(Flow::Continue);
        }
        let block =
            Block::new(&self.buf[start..end], self.offset + start as u64).with_file(self.file);
        target.send(block)
    }
}

/// The error for a line at byte `offset` whose bytes before its `\n` (or
/// the end of input) reach `max`: it is longer than `max` with its
/// terminator.
pub(crate) fn too_long(offset: u64, max: usize) -> Error {
    Error::from(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "line at byte offset {offset} is longer than {max} bytes \
             (the maximum line length)"
        ),
    ))
}

/// Drops up to `*skip` lines from the front of `data` (whole lines, or a
/// final line without a newline, which counts as a line), counting them
/// off `*skip`; returns where the rest starts.
#[inline]
pub(crate) fn skip_lines(data: &[u8], skip: &mut u64) -> usize {
    let mut start = 0;
    if *skip > 0 {
        let mut newlines = memchr_iter(b'\n', data);
        while *skip > 0 {
            match newlines.next() {
                Some(nl) => {
                    start = nl + 1;
                    *skip -= 1;
                }
                None => {
                    if data.last() != Some(&b'\n') {
                        *skip -= 1;
                    }
                    start = data.len();
                    break;
                }
            }
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::stage::StageExt;
    use crate::testutil::Chunked;
    use crate::text::SplitLines;

    /// Reads `input` through `reader_chunks`-byte reads and returns the lines.
    fn lines_of(input: &[u8], chunk: usize, max: usize, skip: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = Collect::new();
        let mut split = SplitLines::new((&mut out).with_owned());
        let mut lb = LineBuf::new(chunk, max);
        lb.set_skip(skip);
        let mut r = Chunked(input, 3);
        while lb.read_from(&mut r)? > 0 {
            let _ = lb.emit(&mut split)?;
        }
        let _ = lb.finish(&mut split)?;
        Ok(out.into_items())
    }

    #[test]
    fn splits_across_tiny_reads_and_keeps_final_partial_line() {
        let got = lines_of(b"ab\n\ncdefg\nh", 4, 100, 0).unwrap();
        assert_eq!(got, [&b"ab\n"[..], b"\n", b"cdefg\n", b"h"]);
    }

    #[test]
    fn skips_lines_including_a_final_partial_one() {
        let got = lines_of(b"a\nb\nc", 4, 100, 2).unwrap();
        assert_eq!(got, [b"c"]);
        assert!(lines_of(b"a\nb\nc", 4, 100, 3).unwrap().is_empty());
    }

    #[test]
    fn line_longer_than_max_is_an_error_naming_its_offset() {
        let err = lines_of(b"ok\n0123456789abcdef\n", 4, 8, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line at byte offset 3 is longer than 8 bytes (the maximum line length)"
        );
    }

    #[test]
    fn buffer_shrinks_back_after_a_long_line() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nshort\n");
        let mut lb = LineBuf::new(4, 1000);
        let mut out = Collect::new();
        let mut split = SplitLines::new((&mut out).with_owned());
        let mut r = &input[..];
        while lb.read_from(&mut r).unwrap() > 0 {
            let _ = lb.emit(&mut split).unwrap();
        }
        assert!(lb.buf.len() <= 4, "{}", lb.buf.len());
        assert_eq!(out.items().len(), 2);
    }

    #[test]
    fn long_line_is_skipped_once_and_the_rest_still_read() {
        for read in 1..12 {
            let input = b"ok\n0123456789abcdef\nnext\nxxxxxxxxxxxxxxxxxxxx";
            let mut out = Collect::new();
            let mut split = SplitLines::new((&mut out).with_owned());
            let mut lb = LineBuf::new(4, 8);
            lb.set_skip_long_lines(true);
            let mut r = Chunked(input, read);
            let mut long = Vec::new();
            while lb.read_from(&mut r).unwrap() > 0 {
                long.extend(lb.take_long_line());
                let _ = lb.emit(&mut split).unwrap();
            }
            long.extend(lb.take_long_line());
            let _ = lb.finish(&mut split).unwrap();
            assert_eq!(out.into_items(), [&b"ok\n"[..], b"next\n"], "read {read}");
            assert_eq!(long, [3, 25], "read {read}");
        }
    }

    #[test]
    fn line_of_exactly_max_bytes_passes() {
        let got = lines_of(b"1234567\nx\n", 4, 8, 0).unwrap();
        assert_eq!(got, [&b"1234567\n"[..], b"x\n"]);
    }
}
