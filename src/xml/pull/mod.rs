//! How the parse loop reads events: the [`Pull`] trait and its two
//! implementations.
//!
//! - `slice.rs`: `SlicePull`, events borrowed from bytes in memory (the
//!   whole input, or a part of it for the parallel parse)
//! - `stream.rs`: `StreamPull`, events read through a fixed buffer from a
//!   stream, with the byte-order-mark stripping and line-counting readers
//! - `remapped.rs`: `Remapped`, either of them over a document decoded to
//!   UTF-8, with error offsets mapped back to the input

pub(crate) mod doctype;
pub(crate) mod remapped;
pub(crate) mod slice;
pub(crate) mod stream;

use std::io;
use std::sync::Arc;

use quick_xml::events::Event;

use crate::error::Error;
use crate::xml::pull::stream::TooLarge;

/// A UTF-8 byte order mark.
pub(crate) const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What the parse loop may assume about one event.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'x> {
    /// The whole input as a `str`, when it is known to be valid UTF-8: the
    /// event's bytes are then a slice of it and need no second check.
    pub(crate) doc: Option<&'x str>,
    /// False when the input is known to hold no `\r`.
    pub(crate) may_have_cr: bool,
    /// True when the event is known to hold only `Char`s (checked up
    /// front with the rest of the input in memory).
    pub(crate) chars_ok: bool,
    /// True when the event is known to hold no `]]>` (the input in memory
    /// holds none between the event's start and end).
    pub(crate) no_cdata_close: bool,
    /// After character data: the next markup is certainly not character
    /// data (it is a tag, or the end of input).
    pub(crate) text_ends: bool,
}

impl<'x> Ctx<'x> {
    /// `bytes` as a `str`. If `bytes` lies inside a document already known
    /// to be UTF-8, this is the same memory sliced out of that `str` (a
    /// bounds and boundary check, no scan); otherwise it is checked.
    #[inline]
    pub(crate) fn str<'b>(&self, bytes: &'b [u8]) -> Result<&'b str, std::str::Utf8Error>
    where
        'x: 'b,
    {
        if let Some(doc) = self.doc {
            // Addresses only, no pointer is dereferenced: where `bytes`
            // starts relative to the document.
            // If `bytes` lies outside the document, `off` is past its end
            // or the range wraps around (start after end): `get` refuses
            // both.
            let off = (bytes.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
            if let Some(s) = doc.get(off..off.wrapping_add(bytes.len())) {
                return Ok(s);
            }
        }
        std::str::from_utf8(bytes)
    }
}

/// How the loop gets events, positions and line numbers from either input
/// form.
pub(crate) trait Pull {
    /// The name of the element whose `<` is at `offset`, if the input is
    /// still at hand.
    fn name_at(&self, _offset: u64) -> Option<String> {
        None
    }
    /// Byte offset just after the last event.
    fn position(&self) -> u64;
    /// Everything before `at` belongs to finished events.
    fn settle(&mut self, at: u64);
    /// The next event, with what the parse loop may assume about it.
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)>;
    /// 1-based line and column of `offset` (at or after the settled
    /// position).
    fn line_col(&self, offset: u64) -> (u64, u64);
    /// The reader's error position, for quick-xml's own errors.
    fn error_position(&self) -> u64;

    /// The offset in the input of `offset` (an offset in the text parsed):
    /// the same, unless the input was decoded to UTF-8 (see `remapped.rs`).
    fn input_offset(&self, offset: u64) -> u64 {
        offset
    }

    fn error_at(&self, offset: u64, msg: String) -> Error {
        let (line, col) = self.line_col(offset);
        Error::xml(line, col, offset, msg)
    }

    /// quick-xml's error `e` as ours.
    fn convert(&self, e: quick_xml::Error) -> Error {
        convert(self, e)
    }

    /// Puts back the bytes of a DOCTYPE's content (`bytes`, from offset
    /// `at`) that the input hid from quick-xml (see the `doctype` module).
    fn restore(&self, _at: u64, _bytes: &mut [u8]) {}

    /// The content of the DOCTYPE event just read (`content`, the event at
    /// `start`), as XML reads it: the memory form re-reads the prolog's
    /// DOCTYPE past the `>` quick-xml stopped at (see the `doctype`
    /// module), the stream form already hid those from quick-xml. Called
    /// by the parse loop, so that `next` passes events through untouched.
    fn doctype_read(&mut self, _start: u64, content: Box<[u8]>) -> quick_xml::Result<Box<[u8]>> {
        Ok(content)
    }

    /// Whether the DOCTYPE whose `<` is at `lt` is spelled `<!DOCTYPE`
    /// (quick-xml takes any case).
    fn doctype_keyword_ok(&self, lt: u64) -> bool;
}

/// [`Pull::convert`]'s default.
pub(crate) fn convert<P: Pull + ?Sized>(pull: &P, e: quick_xml::Error) -> Error {
    {
        match e {
            quick_xml::Error::Io(io) => {
                if let Some(limit) = io.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
                    let at = limit.settled;
                    return pull.error_at(
                        at,
                        format!(
                            "a piece of markup or text is longer than {} bytes (the limit of a streaming input)",
                            limit.max
                        ),
                    );
                }
                let io = Arc::try_unwrap(io)
                    .unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()));
                Error::from(io)
            }
            other => pull.error_at(pull.error_position(), other.to_string()),
        }
    }
}

/// Line and column of `offset` in `bytes` (both 1-based; columns count
/// bytes).
pub(crate) fn line_col_in(bytes: &[u8], offset: u64) -> (u64, u64) {
    let upto = &bytes[..(offset as usize).min(bytes.len())];
    let lines = memchr::memchr_iter(b'\n', upto).count() as u64;
    let col = match memchr::memrchr(b'\n', upto) {
        Some(i) => upto.len() - i,
        None => upto.len() + 1,
    };
    (lines + 1, col as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col_in(b"ab\ncd", 0), (1, 1));
        assert_eq!(line_col_in(b"ab\ncd", 2), (1, 3));
        assert_eq!(line_col_in(b"ab\ncd", 3), (2, 1));
        assert_eq!(line_col_in(b"ab\ncd", 5), (2, 3));
    }
}
