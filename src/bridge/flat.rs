//! [`Flat`]: items that cross a thread bridge as bytes in one buffer per
//! batch (see [`threaded_flat`](super::threaded_flat)).
//!
//! A thread bridge in [`ByRef`](super::ByRef) mode copies each borrowed
//! item into an owned slot: for a [`Record`](crate::xml::Record) that is
//! three buffers (values, names, fields) written by the producer's core and
//! read by the worker's. A [`Flattened`](super::Flattened) bridge instead
//! appends each item's bytes to one contiguous buffer per batch, in a
//! compact form the item's type chooses (a record writes its names only
//! when they differ from the record before it in the batch), and the
//! worker rebuilds each item into one reused place (or lends it straight
//! out of the buffer, for `[u8]`).
//!
//! The bytes never leave the process and are read back by the same
//! type's [`Flat::unflatten`]; still, decoding checks what it reads, so bad
//! bytes are a [`FlatError`], never a panic or a huge allocation.

use std::fmt;

/// A type whose values cross a thread bridge flattened into bytes: the
/// producer appends each item to the batch's byte buffer
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
/// A type of its own: a pair of numbers, lent by reference.
///
/// ```
/// use copipe::bridge::{Flat, FlatError, ThreadBridgeBuilder};
/// use copipe::{from_fn, Flow, Stage};
///
/// #[derive(Default)]
/// struct Point { x: i32, y: i32 }
///
/// impl Flat for Point {
///     type Place = Point;
///     type Memo = ();
///     fn flatten(&self, _: &mut (), out: &mut Vec<u8>) {
///         out.extend_from_slice(&self.x.to_le_bytes());
///         out.extend_from_slice(&self.y.to_le_bytes());
///     }
///     fn unflatten<'p, 'b: 'p>(
///         bytes: &mut &'b [u8],
///         place: &'p mut Point,
///     ) -> Result<&'p Point, FlatError> {
///         let mut i32_at = |bytes: &mut &[u8]| -> Result<i32, FlatError> {
///             let (head, rest) = bytes.split_first_chunk::<4>().ok_or(FlatError::new("point cut short"))?;
///             *bytes = rest;
///             Ok(i32::from_le_bytes(*head))
///         };
///         place.x = i32_at(bytes)?;
///         place.y = i32_at(bytes)?;
///         Ok(place)
///     }
/// }
///
/// let mut sum = 0i64;
/// let mut bridge = ThreadBridgeBuilder::new().spawn_flat::<Point, _>(from_fn(move |p: &Point| {
///     sum += i64::from(p.x * p.y);
///     Ok(Flow::Continue)
/// }))?;
/// for i in 0..100 {
///     bridge.send(&Point { x: i, y: 2 })?;
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

    /// Appends this item's bytes to `out`, the batch's buffer (which holds
    /// the batch's earlier items before them).
    fn flatten(&self, memo: &mut Self::Memo, out: &mut Vec<u8>);

    /// Reads one item from the front of `bytes`, advancing it, and returns
    /// it, rebuilt in `place` or borrowed from `bytes`. Items are read in
    /// the order they were flattened, each batch from its start, into the
    /// same `place`.
    ///
    /// # Errors
    ///
    /// A [`FlatError`] if the bytes are not what `flatten` writes.
    fn unflatten<'p, 'b: 'p>(
        bytes: &mut &'b [u8],
        place: &'p mut Self::Place,
    ) -> Result<&'p Self, FlatError>;
}

/// Bytes that are not an item's flat form; the worker of a thread bridge
/// turns it into an [`ErrorKind::Decode`](crate::ErrorKind::Decode) with
/// the byte offset in the batch.
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

/// Byte strings: a length, then the bytes; lent straight out of the
/// batch's buffer (no copy on the worker's side).
impl Flat for [u8] {
    type Place = ();
    type Memo = ();

    /// # Panics
    ///
    /// For a byte string of 4 GiB or more.
    #[inline]
    fn flatten(&self, _: &mut (), out: &mut Vec<u8>) {
        put_varint(out, u32::try_from(self.len()).expect("item over 4 GiB"));
        out.extend_from_slice(self);
    }

    #[inline]
    fn unflatten<'p, 'b: 'p>(bytes: &mut &'b [u8], _: &'p mut ()) -> Result<&'p [u8], FlatError> {
        let n = take_varint(bytes)? as usize;
        take_bytes(bytes, n)
    }
}

/// Strings: a length, then the bytes; lent straight out of the batch's
/// buffer after a UTF-8 check.
impl Flat for str {
    type Place = ();
    type Memo = ();

    #[inline]
    fn flatten(&self, memo: &mut (), out: &mut Vec<u8>) {
        self.as_bytes().flatten(memo, out)
    }

    #[inline]
    fn unflatten<'p, 'b: 'p>(bytes: &mut &'b [u8], _: &'p mut ()) -> Result<&'p str, FlatError> {
        let n = take_varint(bytes)? as usize;
        let raw = take_bytes(bytes, n)?;
        std::str::from_utf8(raw).map_err(|_| FlatError::new("string is not UTF-8"))
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
        let mut out = Vec::new();
        let items = ["", "route 22", "é", &"x".repeat(300)];
        for s in items {
            s.flatten(&mut (), &mut out);
        }
        let mut bytes = &out[..];
        for s in items {
            assert_eq!(str::unflatten(&mut bytes, &mut ()), Ok(s));
        }
        assert!(bytes.is_empty());
        let mut cut = &out[..out.len() - 1];
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
        let mut not_utf8 = &[2u8, 0xc3, 0x28][..];
        assert!(str::unflatten(&mut not_utf8, &mut ()).is_err());
    }
}
