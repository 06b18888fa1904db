//! [`Flat`]: items that cross a thread bridge as bytes in one buffer per
//! batch (see [`threaded_flat`](super::threaded_flat)).
//!
//! A thread bridge in [`ByRef`](super::ByRef) mode copies each borrowed
//! item into an owned slot: for a [`Record`](crate::xml::Record) that is
//! three buffers (values, names, fields) written by the producer's core and
//! read by the worker's. A [`Flattened`](super::Flattened) bridge instead
//! appends each item to one [`FlatBuf`] per batch, in a compact form the
//! item's type chooses: a byte region for markers, lengths and bytes, and a
//! text region (a `String`) for text, which the worker reads back as `&str`
//! with no UTF-8 check (a record writes its names only
//! when they differ from the record before it in the batch), and the
//! worker rebuilds each item into one reused place (or lends it straight
//! out of the buffer, for `[u8]`).
//!
//! The bytes never leave the process and are read back by the same
//! type's [`Flat::unflatten`]; still, decoding checks what it reads
//! (lengths against what is left, character boundaries in the text), so
//! bad bytes are a [`FlatError`], never a panic or a huge allocation.
//! (Flat frames on the wire carry the same two regions; their reader
//! checks the text region is UTF-8 once per frame.)

use std::fmt;

/// A type whose values cross a thread bridge flattened into bytes: the
/// producer appends each item to the batch's [`FlatBuf`]
/// ([`flatten`](Flat::flatten)), and the worker reads the items back in
/// order ([`unflatten`](Flat::unflatten)) and lends each to its target.
///
/// Implemented for [`Record`](crate::xml::Record), `str` and `[u8]`.
///
/// Every batch starts with a fresh [`Memo`](Flat::Memo) on the producer's
/// side, so an item may refer to the items before it *in its batch* (a
/// record to the names of the one before): batches are decoded one after
/// the other into the same [`Place`](Flat::Place), but a batch may be
/// dropped whole under a drop [`Policy`](super::Policy).
///
/// # Examples
///
/// A type of its own: a pair of numbers and a label, rebuilt into a
/// reused place and lent by reference. Numbers go in the byte region,
/// text in the text region.
///
/// ```
/// use copipe::bridge::{Flat, FlatBuf, FlatError, FlatSrc, ThreadBridgeBuilder};
/// use copipe::{from_fn, Flow, Stage};
///
/// #[derive(Default)]
/// struct Point { x: i32, y: i32, label: String }
///
/// impl Flat for Point {
///     type Place = Point;
///     type Memo = ();
///     fn flatten(&self, _: &mut (), out: &mut FlatBuf) {
///         out.bytes_mut().extend_from_slice(&self.x.to_le_bytes());
///         out.bytes_mut().extend_from_slice(&self.y.to_le_bytes());
///         let len = u32::try_from(self.label.len()).expect("label under 4 GiB");
///         out.bytes_mut().extend_from_slice(&len.to_le_bytes());
///         out.text_mut().push_str(&self.label);
///     }
///     fn unflatten<'p, 'b: 'p>(
///         src: &mut FlatSrc<'b>,
///         place: &'p mut Point,
///     ) -> Result<&'p Point, FlatError> {
///         let mut u32_at = |src: &mut FlatSrc<'b>| -> Result<u32, FlatError> {
///             let b = src.take_bytes(4)?;
///             Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
///         };
///         place.x = u32_at(src)? as i32;
///         place.y = u32_at(src)? as i32;
///         let len = u32_at(src)? as usize;
///         // A `&str` straight from the text region: no UTF-8 check.
///         let label = src.take_str(len)?;
///         place.label.clear();
///         place.label.push_str(label);
///         Ok(place)
///     }
/// }
///
/// let mut sum = 0i64;
/// let mut bridge = ThreadBridgeBuilder::new().spawn_flat::<Point, _>(from_fn(move |p: &Point| {
///     assert!(p.label.starts_with('p'));
///     sum += i64::from(p.x * p.y);
///     Ok(Flow::Continue)
/// }))?;
/// for i in 0..100 {
///     bridge.send(&Point { x: i, y: 2, label: format!("p{i}") })?;
/// }
/// bridge.close()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub trait Flat {
    /// What the worker decodes each item into and lends it from, reused
    /// from item to item (`Record` for records; `()` when items are lent
    /// straight out of the batch's bytes).
    type Place: Default + Send + 'static;

    /// What the producer remembers between the items of one batch (for a
    /// record: where the names of the record before it are). Reset to its
    /// default at the start of every batch.
    type Memo: Default + Send + 'static;

    /// Appends this item to `out`, the batch's buffer (which holds the
    /// batch's earlier items before it): bytes to its byte region, text to
    /// its text region.
    fn flatten(&self, memo: &mut Self::Memo, out: &mut FlatBuf);

    /// Reads one item from the front of `src`'s regions, advancing them,
    /// and returns it, rebuilt in `place` or borrowed from `src`. Items are
    /// read in the order they were flattened, each batch from its start,
    /// into the same `place`.
    ///
    /// # Errors
    ///
    /// A [`FlatError`] if the regions are not what `flatten` writes.
    fn unflatten<'p, 'b: 'p>(
        src: &mut FlatSrc<'b>,
        place: &'p mut Self::Place,
    ) -> Result<&'p Self, FlatError>;
}

/// Bytes that are not an item's flat form; the worker of a thread bridge
/// turns it into an [`ErrorKind::Decode`](crate::ErrorKind::Decode) with
/// the byte offset in the batch's byte region (the wire: in the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatError(&'static str);

impl FlatError {
    /// An error saying what is wrong with the bytes.
    pub const fn new(message: &'static str) -> FlatError {
        FlatError(message)
    }

    /// What is wrong with the bytes.
    pub fn message(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for FlatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for FlatError {}

/// A batch's flat form as [`Flat::flatten`] appends to it: a byte region
/// (markers, lengths, spans, byte strings) and beside it a text region
/// (a `String`, so valid UTF-8 by construction: strings go there with
/// `push_str`). A reader gets the text back as `&str` without a UTF-8
/// check ([`FlatSrc`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatBuf {
    pub(crate) bytes: Vec<u8>,
    pub(crate) text: String,
}

impl FlatBuf {
    /// An empty buffer (allocates nothing).
    pub const fn new() -> FlatBuf {
        FlatBuf {
            bytes: Vec::new(),
            text: String::new(),
        }
    }

    /// An empty buffer with room for `bytes` bytes in its byte region and
    /// `text` in its text region.
    pub fn with_capacity(bytes: usize, text: usize) -> FlatBuf {
        FlatBuf {
            bytes: Vec::with_capacity(bytes),
            text: String::with_capacity(text),
        }
    }

    /// The byte region.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text region.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The byte region, to append to.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// The text region, to append to.
    pub fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }

    /// Bytes in both regions together.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.text.len()
    }

    /// Bytes both regions can hold without allocating, together.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity() + self.text.capacity()
    }

    /// True if both regions are empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.text.is_empty()
    }

    /// Empties both regions, keeping their memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.text.clear();
    }

    /// Shortens the regions to `bytes` and `text` bytes (a point
    /// [`len`](FlatBuf::len)'s parts gave earlier; see
    /// [`String::truncate`] for the text).
    ///
    /// # Panics
    ///
    /// If `text` is not on a character boundary of the text region.
    pub fn truncate(&mut self, bytes: usize, text: usize) {
        self.bytes.truncate(bytes);
        self.text.truncate(text);
    }

    /// A reader of the items in this buffer, from the start.
    pub fn src(&self) -> FlatSrc<'_> {
        FlatSrc::new(&self.bytes, &self.text)
    }
}

/// What [`Flat::unflatten`] reads from: what is left of a batch's byte
/// region and of its text region (see [`FlatBuf`]). Every `take` checks
/// its length against what is left, so bad lengths are a [`FlatError`],
/// never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatSrc<'b> {
    bytes: &'b [u8],
    text: &'b str,
}

impl<'b> FlatSrc<'b> {
    /// A reader of `bytes` and `text`, as a [`FlatBuf`]'s regions.
    pub const fn new(bytes: &'b [u8], text: &'b str) -> FlatSrc<'b> {
        FlatSrc { bytes, text }
    }

    /// What is left of the byte region.
    pub fn bytes(&self) -> &'b [u8] {
        self.bytes
    }

    /// What is left of the text region.
    pub fn text(&self) -> &'b str {
        self.text
    }

    /// True if both regions are used up.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.text.is_empty()
    }

    /// Takes `n` bytes from the front of the byte region.
    ///
    /// # Errors
    ///
    /// If fewer than `n` bytes are left.
    #[inline(always)]
    pub fn take_bytes(&mut self, n: usize) -> Result<&'b [u8], FlatError> {
        take_bytes(&mut self.bytes, n)
    }

    /// Takes the first byte of the byte region.
    ///
    /// # Errors
    ///
    /// If the byte region is used up.
    #[inline(always)]
    pub fn take_byte(&mut self) -> Result<u8, FlatError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or(FlatError::new("length runs past the end of the batch"))?;
        self.bytes = rest;
        Ok(b)
    }

    /// Takes a LEB128 varint (`u32`) from the front of the byte region.
    ///
    /// # Errors
    ///
    /// If the byte region ends inside it, or it is over 32 bits.
    #[inline(always)]
    pub fn take_varint(&mut self) -> Result<u32, FlatError> {
        take_varint(&mut self.bytes)
    }

    /// Takes `n` bytes of text from the front of the text region, with no
    /// UTF-8 check (the region is a `str` already).
    ///
    /// # Errors
    ///
    /// If fewer than `n` bytes are left, or byte `n` is inside a
    /// character.
    #[inline(always)]
    pub fn take_str(&mut self, n: usize) -> Result<&'b str, FlatError> {
        let Some(head) = self.text.get(..n) else {
            return Err(if n > self.text.len() {
                FlatError::new("length runs past the end of the batch's text")
            } else {
                FlatError::new("length splits a character")
            });
        };
        self.text = &self.text[n..];
        Ok(head)
    }
}

/// Most bytes of a LEB128 `u32`.
const MAX_VARINT: usize = 5;

/// Appends `v` as a LEB128 varint (one byte below 128).
#[inline(always)]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u32) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        put_varint_long(out, v);
    }
}

#[inline(never)]
fn put_varint_long(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 `u32` from the front of `bytes`, advancing it.
#[inline(always)]
pub(crate) fn take_varint(bytes: &mut &[u8]) -> Result<u32, FlatError> {
    match bytes.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *bytes = rest;
            Ok(b as u32)
        }
        _ => take_varint_long(bytes),
    }
}

#[inline(never)]
fn take_varint_long(bytes: &mut &[u8]) -> Result<u32, FlatError> {
    const BAD: FlatError = FlatError::new("bad length (varint)");
    let mut v = 0u32;
    for i in 0..MAX_VARINT {
        let (&b, rest) = bytes.split_first().ok_or(BAD)?;
        *bytes = rest;
        let bits = (b & 0x7f) as u32;
        // The fifth byte may carry only the top 4 bits of a u32.
        if i == MAX_VARINT - 1 && (b & 0x80 != 0 || bits > 0x0f) {
            return Err(BAD);
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(BAD)
}

/// Takes `n` bytes from the front of `bytes`.
#[inline(always)]
pub(crate) fn take_bytes<'b>(bytes: &mut &'b [u8], n: usize) -> Result<&'b [u8], FlatError> {
    if n > bytes.len() {
        return Err(FlatError::new("length runs past the end of the batch"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// Writes an item's length to the byte region, as a varint.
///
/// # Panics
///
/// For a length of 4 GiB or more.
#[inline]
fn put_len(out: &mut FlatBuf, len: usize) {
    put_varint(&mut out.bytes, u32::try_from(len).expect("item over 4 GiB"));
}

/// Byte strings: a length, then the bytes, in the byte region; lent
/// straight out of the batch (no copy on the worker's side).
impl Flat for [u8] {
    type Place = ();
    type Memo = ();

    /// # Panics
    ///
    /// For a byte string of 4 GiB or more.
    #[inline]
    fn flatten(&self, _: &mut (), out: &mut FlatBuf) {
        put_len(out, self.len());
        out.bytes.extend_from_slice(self);
    }

    #[inline]
    fn unflatten<'p, 'b: 'p>(src: &mut FlatSrc<'b>, _: &'p mut ()) -> Result<&'p [u8], FlatError> {
        let n = src.take_varint()? as usize;
        src.take_bytes(n)
    }
}

/// Strings: a length in the byte region, the string in the text region;
/// lent straight out of the batch's text, with no UTF-8 check.
impl Flat for str {
    type Place = ();
    type Memo = ();

    /// # Panics
    ///
    /// For a string of 4 GiB or more.
    #[inline]
    fn flatten(&self, _: &mut (), out: &mut FlatBuf) {
        put_len(out, self.len());
        out.text.push_str(self);
    }

    #[inline]
    fn unflatten<'p, 'b: 'p>(src: &mut FlatSrc<'b>, _: &'p mut ()) -> Result<&'p str, FlatError> {
        let n = src.take_varint()? as usize;
        src.take_str(n)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_bad_ones_are_errors() {
        let mut out = Vec::new();
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX - 1, u32::MAX];
        for v in values {
            put_varint(&mut out, v);
        }
        let mut bytes = &out[..];
        for v in values {
            assert_eq!(take_varint(&mut bytes), Ok(v));
        }
        assert!(bytes.is_empty());
        for bad in [
            &[][..],
            &[0x80],
            &[0xff, 0xff, 0xff, 0xff, 0x1f],
            &[0xff; 6],
        ] {
            let mut b = bad;
            assert!(take_varint(&mut b).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strings_and_bytes_round_trip_and_cut_ones_are_errors() {
        let mut out = FlatBuf::new();
        let items = ["", "route 22", "é", &"x".repeat(300)];
        for s in items {
            s.flatten(&mut (), &mut out);
        }
        let mut src = out.src();
        for s in items {
            assert_eq!(str::unflatten(&mut src, &mut ()), Ok(s));
        }
        assert!(src.is_empty());
        let mut bytes = FlatBuf::new();
        for s in items {
            s.as_bytes().flatten(&mut (), &mut bytes);
        }
        assert!(bytes.text().is_empty());
        let mut cut = FlatSrc::new(&bytes.bytes()[..bytes.bytes().len() - 1], "");
        let mut n = 0;
        while !cut.is_empty() {
            match <[u8]>::unflatten(&mut cut, &mut ()) {
                Ok(_) => n += 1,
                Err(e) => {
                    assert_eq!(e.message(), "length runs past the end of the batch");
                    break;
                }
            }
        }
        assert_eq!(n, items.len() - 1);
        // A length that splits a character is an error, not a panic.
        let mut split = FlatSrc::new(&[1], "é");
        assert_eq!(
            str::unflatten(&mut split, &mut ()).unwrap_err().message(),
            "length splits a character"
        );
        let mut short = FlatSrc::new(&[3], "é");
        assert!(str::unflatten(&mut short, &mut ()).is_err());
    }
}
