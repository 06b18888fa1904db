//! The wire: serde values as length-prefixed bincode frames over any byte
//! stream (the seed's `sendto`/`recvfrom`, with pickle replaced by bincode).
//!
//! A stream is a header, then frames:
//!
//! ```text
//! header:  43 50 57 49 52 45  04 00        "CPWIRE", version 4 (u16 LE)
//! frame:   LL LL LL LL  <LL bytes>         length (u32 LE), then the value
//!          ^ byte_offset of the frame      encoded by bincode 2 (standard
//!                                          config: varints, little endian)
//! or a flat frame (a stream of them, for [`recvfrom_flat`]):
//!          LL LL LL LL  NN NN NN NN  BB BB BB BB  <bytes> <text>
//!                                      length, the count of items and the
//!                                      length of the byte region (u32 LE
//!                                      each), then the items' `Flat` form
//!                                      as a thread bridge batches them:
//!                                      the byte region, then the text
//!                                      region (UTF-8, checked once per
//!                                      frame by the reader)
//! ```
//!
//! The reader checks the header, refuses a length above its maximum frame
//! size before allocating anything for it, and grows its buffer only as
//! bytes actually arrive, so a corrupt or hostile stream costs a clean
//! [`ErrorKind::Decode`] error with the byte offset, never a huge
//! allocation. A clean end of input at a frame boundary is the end of the
//! stream; an end inside a frame is an error. An empty input (not even a
//! header) is an empty stream.
//!
//! bincode is used only in this file.
//!
//! [`ErrorKind::Decode`]: crate::ErrorKind::Decode

use crate::Lifecycle;
use std::fmt;
use std::io::{self, Read, Write};

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::de::DeserializeOwned;
use serde::ser::Impossible;
use serde::Serialize;

use super::flat::{Flat, FlatBuf, FlatSrc};
use crate::error::{Error, ErrorKind, Result};
use crate::stage::{end_source, Flow, SourceEnd, Stage};

/// The first six bytes of every wire stream.
pub const MAGIC: [u8; 6] = *b"CPWIRE";

/// The wire format's version, after [`MAGIC`] as a little-endian `u16`.
///
/// Version 2: a [`Record`](crate::xml::Record) is encoded in its flat
/// binary form (names, values, lengths) instead of as a map. Version 3:
/// streams of flat frames ([`FrameWriter::write_flat`],
/// [`recvfrom_flat`]), which the process bridge sends records in.
/// Version 4: a flat frame carries its items' byte region and text region
/// ([`FlatBuf`](super::FlatBuf)) one after the other, after the length of
/// the byte region.
pub const WIRE_VERSION: u16 = 4;

/// A flat frame is closed once it holds this many items (or
/// [`FLAT_FRAME_BYTES`]): enough that the frame's own cost is spread thin.
const FLAT_FRAME_ITEMS: u32 = 1024;

/// A flat frame is closed once it holds this many bytes: half a
/// [`FrameReader`]'s starting buffer, so that frames of small items fit it
/// and it never grows for them.
const FLAT_FRAME_BYTES: usize = READ_BUFFER / 2;

/// Bytes of a flat frame (after its length) before its items: the item
/// count and the length of the byte region (u32 LE each).
const FLAT_HEAD_LEN: usize = 8;

/// Bytes of the stream header: [`MAGIC`] and [`WIRE_VERSION`].
pub const HEADER_LEN: usize = 8;

/// The largest frame a reader accepts unless told otherwise (16 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

/// Frames gather in a [`FrameWriter`]'s buffer until it holds this much.
const WRITE_AT: usize = 64 * 1024;

/// A [`FrameReader`] starts with a buffer this big and grows it only for a
/// larger frame, as its bytes arrive.
const READ_BUFFER: usize = 64 * 1024;

/// Upper bound on what bincode may allocate while decoding one frame.
/// bincode counts a container's claimed size (`len * size_of::<T>()`)
/// against it before allocating, so a frame claiming a 2^60-byte string is
/// refused instead of attempted. It is above [`DEFAULT_MAX_FRAME`] because a
/// claim can exceed the frame's encoded size (a `Vec<String>` of empty
/// strings claims 24 bytes per one-byte element).
const DECODE_LIMIT: usize = 64 << 20;

type Config = Configuration<LittleEndian, Varint, Limit<DECODE_LIMIT>>;

const CONFIG: Config = bincode::config::standard().with_limit::<DECODE_LIMIT>();

impl From<bincode::error::EncodeError> for Error {
    fn from(e: bincode::error::EncodeError) -> Error {
        match e {
            bincode::error::EncodeError::Io { inner, .. } => Error::from(inner),
            other => Error::new(ErrorKind::Bridge(format!("cannot encode item: {other}"))),
        }
    }
}

/// bincode's writer for our buffer: appends, inlined. (bincode's own
/// `std::io::Write` adapter costs a call and an error check per field.)
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> std::result::Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// bincode's encoding of a lone `u64` (the standard config's varint: one
/// byte up to 250, else a marker 251 / 252 / 253 and the value as a `u16` /
/// `u32` / `u64`, little endian), written straight into the buffer.
///
/// bincode's own `varint_encode_u64` takes the endianness as a run-time
/// argument and is not `#[inline]`: whether the compiler folds it into the
/// caller depends on which codegen unit its copy lands in, which moved by
/// 8 instructions per item between builds with the same source. A value
/// that is not a `u64` returns [`NotDirect`] before anything is written,
/// and [`FrameWriter::write`] encodes it with bincode.
struct Direct<'a>(&'a mut Vec<u8>);

/// What [`Direct`] returns for anything but a `u64`.
#[derive(Debug)]
struct NotDirect;

impl fmt::Display for NotDirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a u64")
    }
}

impl std::error::Error for NotDirect {}

impl serde::ser::Error for NotDirect {
    fn custom<T: fmt::Display>(_: T) -> NotDirect {
        NotDirect
    }
}

/// Bytes of bincode's varint form of `v` (up to 9), and how many.
#[inline(always)]
fn bincode_varint_u64(v: u64) -> ([u8; 9], usize) {
    let mut b = [0u8; 9];
    if v <= 250 {
        b[0] = v as u8;
        (b, 1)
    } else if v <= u16::MAX as u64 {
        b[0] = 251;
        b[1..3].copy_from_slice(&(v as u16).to_le_bytes());
        (b, 3)
    } else if v <= u32::MAX as u64 {
        b[0] = 252;
        b[1..5].copy_from_slice(&(v as u32).to_le_bytes());
        (b, 5)
    } else {
        b[0] = 253;
        b[1..9].copy_from_slice(&v.to_le_bytes());
        (b, 9)
    }
}

/// [`Direct`]'s methods for everything but `u64`: nothing written.
macro_rules! not_direct {
    ($($name:ident($($arg:ty),*);)*) => {$(
        #[inline(always)]
        fn $name(self, $(_: $arg),*) -> std::result::Result<(), NotDirect> {
            Err(NotDirect)
        }
    )*};
}

impl serde::Serializer for Direct<'_> {
    type Ok = ();
    type Error = NotDirect;
    type SerializeSeq = Impossible<(), NotDirect>;
    type SerializeTuple = Impossible<(), NotDirect>;
    type SerializeTupleStruct = Impossible<(), NotDirect>;
    type SerializeTupleVariant = Impossible<(), NotDirect>;
    type SerializeMap = Impossible<(), NotDirect>;
    type SerializeStruct = Impossible<(), NotDirect>;
    type SerializeStructVariant = Impossible<(), NotDirect>;

    #[inline(always)]
    fn serialize_u64(self, v: u64) -> std::result::Result<(), NotDirect> {
        if v <= 250 {
            self.0.push(v as u8);
        } else {
            let (b, n) = bincode_varint_u64(v);
            self.0.extend_from_slice(&b[..n]);
        }
        Ok(())
    }

    /// As bincode's serializer: a type that asks encodes its compact form.
    #[inline(always)]
    fn is_human_readable(&self) -> bool {
        false
    }

    not_direct! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    #[inline(always)]
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> std::result::Result<(), NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<(), NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<(), NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<Self::SerializeSeq, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_tuple(self, _: usize) -> std::result::Result<Self::SerializeTuple, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleStruct, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleVariant, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_map(self, _: Option<usize>) -> std::result::Result<Self::SerializeMap, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStruct, NotDirect> {
        Err(NotDirect)
    }

    #[inline(always)]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStructVariant, NotDirect> {
        Err(NotDirect)
    }
}

/// A seed that decodes into an existing value.
struct InPlace<'p, T>(&'p mut T);

impl<'de, T: serde::Deserialize<'de>> serde::de::DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        T::deserialize_in_place(d, self.0)
    }
}

/// The error for a frame with bytes after its value.
fn leftover(byte_offset: u64, len: usize, used: usize) -> Error {
    Error::decode(
        byte_offset,
        format!(
            "{} bytes left over after the value in a {len}-byte frame \
             (is the sender sending another type?)",
            len - used
        ),
    )
}

/// A decode error of the frame at `byte_offset`.
fn decode_error(byte_offset: u64, e: bincode::error::DecodeError) -> Error {
    let why = match e {
        bincode::error::DecodeError::UnexpectedEnd { .. } => {
            "frame ends before the value does (is the sender sending another type?)".to_string()
        }
        bincode::error::DecodeError::LimitExceeded => {
            format!("frame claims a value over the decode limit of {DECODE_LIMIT} bytes")
        }
        other => format!("frame does not decode: {other}"),
    };
    Error::decode(byte_offset, why)
}

/// Writes values as frames, buffered: the header and the frames gather in
/// a buffer that is written out when it holds 64 KiB, on
/// [`flush`](FrameWriter::flush), and by [`into_inner`](FrameWriter::into_inner).
///
/// # Examples
///
/// ```
/// use copipe::bridge::{FrameReader, FrameWriter};
///
/// let mut w = FrameWriter::new(Vec::new());
/// w.write(&("22", 41.98_f64))?;
/// let bytes = w.into_inner()?;
/// let mut r = FrameReader::new(&bytes[..]);
/// assert_eq!(r.read::<(String, f64)>()?, Some(("22".to_string(), 41.98)));
/// assert_eq!(r.read::<(String, f64)>()?, None);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    max_frame: u32,
    frames: u64,
    /// The flat frame being filled, if any: its items so far, which are
    /// in `flat`.
    open: Option<u32>,
    /// The open flat frame's items (byte and text regions), copied to
    /// `buf` when the frame is closed.
    flat: FlatBuf,
}

impl<W: Write> FrameWriter<W> {
    /// A writer that starts the stream with the header.
    pub fn new(out: W) -> FrameWriter<W> {
        let mut buf = Vec::with_capacity(WRITE_AT + 1024);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&WIRE_VERSION.to_le_bytes());
        FrameWriter {
            out,
            buf,
            max_frame: DEFAULT_MAX_FRAME,
            frames: 0,
            open: None,
            flat: FlatBuf::new(),
        }
    }

    /// Refuses to write a frame larger than `max` bytes (default
    /// [`DEFAULT_MAX_FRAME`]): set it to the reader's maximum.
    pub fn with_max_frame(mut self, max: u32) -> FrameWriter<W> {
        self.max_frame = max;
        self
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Encodes `value` as one frame into the buffer, and writes the buffer
    /// out if it is full.
    ///
    /// # Errors
    ///
    /// A value serde cannot encode in bincode (nothing is written for it),
    /// a frame over the maximum size, or an I/O error writing the buffer.
    #[inline]
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        // The test here, the call only when a flat frame is open (it is
        // not inlined: a call per item otherwise).
        if self.open.is_some() {
            self.close_flat()?;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        // A `u64` is encoded here, as bincode would (see `Direct`);
        // anything else by bincode.
        if value.serialize(Direct(&mut self.buf)).is_err() {
            self.buf.truncate(start + 4);
            if let Err(e) =
                bincode::serde::encode_into_writer(value, VecWriter(&mut self.buf), CONFIG)
            {
                self.buf.truncate(start);
                return Err(e.into());
            }
        }
        let len = self.buf.len() - start - 4;
        if len > self.max_frame as usize {
            self.buf.truncate(start);
            return Err(Error::new(ErrorKind::Bridge(format!(
                "an item encodes to {len} bytes, over the maximum frame size of {} bytes",
                self.max_frame
            ))));
        }
        // `len <= max_frame <= u32::MAX`, checked just above.
        self.buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.frames += 1;
        if self.buf.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffer out and flushes the writer.
    ///
    /// # Errors
    ///
    /// An I/O error from the writer (`BrokenPipe` if the reader went away).
    pub fn flush(&mut self) -> Result<()> {
        self.close_flat()?;
        self.write_out()?;
        self.out.flush()?;
        Ok(())
    }

    /// Appends `item`'s [`Flat`] form to the open flat frame (opening one,
    /// and resetting `memo`, if none is open), and closes the frame once it
    /// holds enough items or bytes; writes the buffer out if it is full.
    /// `flush`, [`write`](FrameWriter::write) and `into_inner` close an
    /// open flat frame first. Read the frames back with [`recvfrom_flat`].
    ///
    /// `memo` is the producer's memory between items of one frame
    /// ([`Flat::Memo`]): keep it with the writer and pass the same one
    /// every time.
    ///
    /// # Errors
    ///
    /// An item whose flat form is over the maximum frame size (the items
    /// before it are kept, in a frame of their own), or an I/O error
    /// writing the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::bridge::{recvfrom_flat, FrameWriter};
    /// use copipe::{sinks::Collect, StageExt};
    ///
    /// let mut w = FrameWriter::new(Vec::new());
    /// let mut memo = ();
    /// for line in ["GET /a", "GET /b"] {
    ///     w.write_flat::<str>(line, &mut memo)?;
    /// }
    /// let bytes = w.into_inner()?;
    /// let mut out = Collect::<String>::new();
    /// recvfrom_flat::<str, _, _>(&bytes[..], (&mut out).with_map(|s: &str| s.to_string()))?;
    /// assert_eq!(out.items(), ["GET /a", "GET /b"]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    #[inline]
    pub fn write_flat<B: Flat + ?Sized>(&mut self, item: &B, memo: &mut B::Memo) -> Result<()> {
        let count = match self.open {
            Some(count) => count,
            None => {
                self.flat.clear();
                // Room for a frame of small items in either region, so
                // the regions grow (once) only for large items.
                self.flat.bytes.reserve(FLAT_FRAME_BYTES);
                self.flat.text.reserve(FLAT_FRAME_BYTES);
                *memo = B::Memo::default();
                0
            }
        };
        let mark = (self.flat.bytes.len(), self.flat.text.len());
        item.flatten(memo, &mut self.flat);
        let len = FLAT_HEAD_LEN + self.flat.len();
        if len > self.max_frame as usize {
            let item_len = self.flat.len() - mark.0 - mark.1;
            // Without this item, the frame (if it has items) stands.
            self.flat.truncate(mark.0, mark.1);
            self.open = (count > 0).then_some(count);
            self.close_flat()?;
            return Err(Error::new(ErrorKind::Bridge(format!(
                "an item flattens to {item_len} bytes, over the maximum frame size of {} bytes",
                self.max_frame
            ))));
        }
        self.open = Some(count + 1);
        if count + 1 >= FLAT_FRAME_ITEMS || len >= FLAT_FRAME_BYTES {
            self.close_flat()?;
            if self.buf.len() >= WRITE_AT {
                self.write_out()?;
            }
        }
        Ok(())
    }

    /// Closes the open flat frame, if any: writes its length, count, the
    /// length of its byte region and both regions to the buffer.
    fn close_flat(&mut self) -> Result<()> {
        let Some(count) = self.open.take() else {
            return Ok(());
        };
        // Below the maximum frame size (checked at every item).
        let len = (FLAT_HEAD_LEN + self.flat.len()) as u32;
        let bytes_len = self.flat.bytes.len() as u32;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&count.to_le_bytes());
        self.buf.extend_from_slice(&bytes_len.to_le_bytes());
        self.buf.extend_from_slice(&self.flat.bytes);
        self.buf.extend_from_slice(self.flat.text.as_bytes());
        self.flat.clear();
        self.frames += 1;
        Ok(())
    }

    /// Bytes encoded but not yet written out (an open flat frame's too).
    pub fn buffered(&self) -> usize {
        let open = match self.open {
            Some(_) => 4 + FLAT_HEAD_LEN + self.flat.len(),
            None => 0,
        };
        self.buf.len() + open
    }
    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    ///
    /// As [`flush`](FrameWriter::flush).
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// Writes the buffer out without flushing the writer. On error the
    /// buffer is discarded: the stream is broken anyway.
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = self.out.write_all(&self.buf);
        self.buf.clear();
        res.map_err(Error::from)
    }
}

/// Reads frames from a byte stream, checking the header, the maximum frame
/// size and truncation. Positions in errors are byte offsets from the
/// start of the stream.
///
/// # Examples
///
/// A length prefix over the maximum is refused before anything is
/// allocated for it:
///
/// ```
/// use copipe::{ErrorKind, bridge::{FrameReader, MAGIC, WIRE_VERSION}};
///
/// let mut bytes = MAGIC.to_vec();
/// bytes.extend_from_slice(&WIRE_VERSION.to_le_bytes());
/// bytes.extend_from_slice(&u32::MAX.to_le_bytes()); // a 4 GiB frame?
/// let err = FrameReader::new(&bytes[..]).read::<u64>().unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::Decode { byte_offset: 8, .. }));
/// ```
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Byte offset in the stream of `buf[start]`.
    offset: u64,
    max_frame: u32,
    header_read: bool,
    eof: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader of the stream `inner`, which must start with the header.
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            max_frame: DEFAULT_MAX_FRAME,
            header_read: false,
            eof: false,
        }
    }

    /// Refuses frames larger than `max` bytes (default [`DEFAULT_MAX_FRAME`]).
    pub fn with_max_frame(mut self, max: u32) -> FrameReader<R> {
        self.max_frame = max;
        self
    }

    /// Byte offset of the next unread byte (after the last frame returned).
    pub fn byte_offset(&self) -> u64 {
        self.offset
    }

    /// True if the next frame is wholly in the buffer, so the next
    /// [`next_frame`](FrameReader::next_frame) will not read (and so will
    /// not wait for input).
    pub fn has_buffered_frame(&self) -> bool {
        if !self.header_read {
            return false;
        }
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 4 {
            return false;
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
        len <= self.max_frame && avail.len() - 4 >= len as usize
    }

    /// The next frame's bytes, or `None` at a clean end of the stream, with
    /// the frame's byte offset.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Decode`] for a bad header, a length over the maximum, a
    /// stream that ends inside a frame; an I/O error from the reader.
    pub fn next_frame(&mut self) -> Result<Option<(u64, &[u8])>> {
        if !self.header_read {
            if !self.fill(HEADER_LEN)? {
                let have = self.end - self.start;
                if have == 0 {
                    return Ok(None); // an empty stream
                }
                return Err(Error::decode(
                    0,
                    format!("stream ends inside the {HEADER_LEN}-byte header (after {have} bytes)"),
                ));
            }
            self.check_header()?;
            self.header_read = true;
            self.consume(HEADER_LEN);
        }
        // <len: u32 LE><len bytes>
        //  ^ frame_offset
        let frame_offset = self.offset;
        if !self.fill(4)? {
            let have = self.end - self.start;
            if have == 0 {
                return Ok(None); // a clean end at a frame boundary
            }
            return Err(Error::decode(
                frame_offset,
                format!("stream ends inside a frame's length prefix ({have} of 4 bytes)"),
            ));
        }
        let p = &self.buf[self.start..self.start + 4];
        let len = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        if len > self.max_frame {
            return Err(Error::decode(
                frame_offset,
                format!(
                    "frame length {len} is over the maximum of {} bytes (corrupt stream?)",
                    self.max_frame
                ),
            ));
        }
        let total = 4 + len as usize;
        if !self.fill(total)? {
            let have = self.end - self.start - 4;
            return Err(Error::decode(
                frame_offset,
                format!("stream ends inside a frame ({have} of {len} bytes)"),
            ));
        }
        let body = self.start + 4..self.start + total;
        self.consume(total);
        Ok(Some((frame_offset, &self.buf[body])))
    }

    /// The next value, or `None` at a clean end of the stream.
    ///
    /// # Errors
    ///
    /// As [`next_frame`](FrameReader::next_frame), and
    /// [`ErrorKind::Decode`] (with the frame's byte offset) for a frame that
    /// does not decode as a `T` or has bytes left over after it.
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        let Some((offset, frame)) = self.next_frame()? else {
            return Ok(None);
        };
        let (value, used) = bincode::serde::decode_from_slice::<T, _>(frame, CONFIG)
            .map_err(|e| decode_error(offset, e))?;
        if used != frame.len() {
            return Err(leftover(offset, frame.len(), used));
        }
        Ok(Some(value))
    }

    /// Decodes the next value into `place`, reusing its memory where `T`
    /// supports that (serde's `Deserialize::deserialize_in_place`; types
    /// that do not override it are decoded anew and assigned). Returns
    /// false at a clean end of the stream.
    ///
    /// # Errors
    ///
    /// As [`read`](FrameReader::read). After an error `place` may hold a
    /// partly decoded value.
    pub fn read_into<T: DeserializeOwned>(&mut self, place: &mut T) -> Result<bool> {
        let Some((offset, frame)) = self.next_frame()? else {
            return Ok(false);
        };
        let (_, used) = bincode::serde::seed_decode_from_slice(InPlace(place), frame, CONFIG)
            .map_err(|e| decode_error(offset, e))?;
        if used != frame.len() {
            return Err(leftover(offset, frame.len(), used));
        }
        Ok(true)
    }

    fn check_header(&self) -> Result<()> {
        let h = &self.buf[self.start..self.start + HEADER_LEN];
        if h[..6] != MAGIC {
            return Err(Error::decode(
                0,
                "not a copipe wire stream (bad magic bytes; expected `CPWIRE`)",
            ));
        }
        let version = u16::from_le_bytes([h[6], h[7]]);
        if version != WIRE_VERSION {
            return Err(Error::decode(
                6,
                format!(
                    "wire version {version}, but this copipe reads version {WIRE_VERSION} \
                     (run the same copipe on both ends)"
                ),
            ));
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads until at least `need` unread bytes are buffered. Returns false
    /// at the end of input with fewer. The buffer grows only as bytes
    /// arrive (doubling), so a large claimed length costs nothing until
    /// its bytes are actually sent.
    fn fill(&mut self, need: usize) -> Result<bool> {
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 && self.buf.len() - self.start < need {
                // Move the unread bytes to the front to make room.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grown = (self.buf.len() * 2).clamp(READ_BUFFER, need.max(READ_BUFFER));
                self.buf.resize(grown, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

/// The stage that writes each item as a frame: the seed's `sendto(f)`.
/// Made by [`sendto`].
///
/// Frames are buffered; `flush` and `close` write them out and flush the
/// writer. The writer is closed when the stage is dropped.
#[derive(Debug)]
pub struct SendTo<W: Write> {
    frames: FrameWriter<W>,
}

/// A stage that encodes each item (any `serde::Serialize`) as a frame onto
/// `writer`: a pipe, a socket, a file. Read them back with [`recvfrom`].
///
/// # Examples
///
/// ```
/// use copipe::{recvfrom, sendto, Stage, sinks::Collect};
///
/// let mut wire = sendto(Vec::new());
/// for route in ["22", "9", "22"] {
///     wire.send(route)?;
/// }
/// wire.close()?;
/// let bytes = wire.into_inner()?;
///
/// let mut out = Collect::<String>::new();
/// recvfrom(&bytes[..], &mut out)?;
/// assert_eq!(out.items(), ["22", "9", "22"]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn sendto<W: Write>(writer: W) -> SendTo<W> {
    SendTo {
        frames: FrameWriter::new(writer),
    }
}

impl<W: Write> SendTo<W> {
    /// Writes the buffered frames out and flushes the writer (also the
    /// [`Lifecycle::flush`] of every item type).
    ///
    /// # Errors
    ///
    /// An I/O error from the writer.
    pub fn flush(&mut self) -> Result<()> {
        self.frames.flush()
    }

    /// Ends the stream: as [`flush`](SendTo::flush) (also the
    /// [`Lifecycle::close`] of every item type).
    ///
    /// # Errors
    ///
    /// An I/O error from the writer.
    pub fn close(&mut self) -> Result<()> {
        self.frames.flush()
    }

    /// Items sent so far.
    pub fn frames(&self) -> u64 {
        self.frames.frames()
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    ///
    /// An I/O error writing the buffered frames.
    pub fn into_inner(self) -> Result<W> {
        self.frames.into_inner()
    }
}

impl<T: Serialize, W: Write> Stage<T> for SendTo<W> {
    /// Encodes the item into the buffer; writes the buffer when full.
    ///
    /// # Errors
    ///
    /// An item that does not encode, or an I/O error (`BrokenPipe` when the
    /// reader has gone).
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        self.frames.write(&item)?;
        Ok(Flow::Continue)
    }
}

impl<W: Write> Lifecycle for SendTo<W> {
    fn flush(&mut self) -> Result<()> {
        self.frames.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.frames.flush()
    }
}

/// Reads frames from `reader`, decodes each as a `T` and sends it to
/// `target`, until the end of the stream (then closes `target`) or a
/// `Stop` (then closes `target`): the seed's `recvfrom(f, target)`.
///
/// Before each read that may wait for input, the target is flushed if
/// items were sent since the last flush, so a live stream is not held in a
/// buffer downstream.
///
/// # Errors
///
/// A bad stream ([`ErrorKind::Decode`] with the byte offset) or an I/O
/// error: `target` is closed first, so everything decoded before the bad
/// frame is output, and then the error is returned. An error from `target`
/// is returned as it is (without closing it).
///
/// # Examples
///
/// A truncated stream: the complete frames are delivered, then the error.
///
/// ```
/// use copipe::{recvfrom, sendto, ErrorKind, Stage, sinks::Collect};
///
/// let mut wire = sendto(Vec::new());
/// wire.send(1u32)?;
/// wire.send(2u32)?;
/// let mut bytes = wire.into_inner()?;
/// bytes.pop(); // cut the last frame short
///
/// let mut out = Collect::<u32>::new();
/// let err = recvfrom(&bytes[..], &mut out).unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::Decode { .. }));
/// assert_eq!(out.items(), [1]);
/// assert!(out.is_closed());
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn recvfrom<T, R, S>(reader: R, mut target: S) -> Result<()>
where
    T: DeserializeOwned,
    R: Read,
    S: Stage<T>,
{
    let mut frames = FrameReader::new(reader);
    // Every pass through the loop that reads sends an item first, so "sent
    // since the last flush" is "sent anything yet".
    let mut sent = false;
    let end = loop {
        if sent && !frames.has_buffered_frame() {
            if let Some(end) = SourceEnd::after_flush(target.flush()) {
                break end;
            }
        }
        match frames.read::<T>() {
            Ok(Some(item)) => {
                sent = true;
                if let Some(end) = SourceEnd::after_send(target.send(item)) {
                    break end;
                }
            }
            Ok(None) => break SourceEnd::Done,
            Err(e) => break SourceEnd::Input(e),
        }
    };
    end_source(&mut target, end)
}

/// [`recvfrom`] for a target of borrowed items: decodes each frame into
/// one reused `T` and sends `&T`, so the same stages that sit behind
/// [`threaded_ref`](super::threaded_ref) or right after a source of `&T`
/// (such as `records`, which pushes `&Record`) run unchanged behind the
/// wire.
///
/// # Errors
///
/// As [`recvfrom`].
///
/// # Examples
///
/// ```
/// use copipe::{bridge::recvfrom_ref, sendto, sinks::Printer, Stage};
///
/// let mut wire = sendto(Vec::new());
/// wire.send("a")?;
/// wire.send("bc")?;
/// let bytes = wire.into_inner()?;
///
/// let mut out = Vec::new();
/// recvfrom_ref::<String, _, _>(&bytes[..], Printer::new(&mut out))?;
/// assert_eq!(out, b"a\nbc\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn recvfrom_ref<T, R, S>(reader: R, mut target: S) -> Result<()>
where
    T: DeserializeOwned + Default,
    R: Read,
    S: for<'a> Stage<&'a T>,
{
    let mut frames = FrameReader::new(reader);
    // One value, decoded into again and again: a type that overrides
    // `deserialize_in_place` (such as `Record`) reuses its memory, so the
    // steady state allocates nothing.
    let mut slot = T::default();
    let mut sent = false;
    let end = loop {
        if sent && !frames.has_buffered_frame() {
            if let Some(end) = SourceEnd::after_flush(target.flush()) {
                break end;
            }
        }
        match frames.read_into(&mut slot) {
            Ok(true) => {
                sent = true;
                if let Some(end) = SourceEnd::after_send(target.send(&slot)) {
                    break end;
                }
            }
            Ok(false) => break SourceEnd::Done,
            Err(e) => break SourceEnd::Input(e),
        }
    };
    end_source(&mut target, end)
}

/// Reads flat frames (written by [`FrameWriter::write_flat`], as the
/// process bridge of [`subprocess_flat`](super::subprocess_flat) sends
/// them) from `reader`, rebuilds each item into one reused
/// [`Flat::Place`] (or lends it from the frame) and sends `&B` to
/// `target`; closes `target` at the end of the stream. The flat
/// counterpart of [`recvfrom_ref`], and the faster one for records: a
/// frame carries a record's names only when they change.
///
/// # Errors
///
/// As [`recvfrom`]; a flat frame whose text region is not UTF-8, whose
/// items do not decode, or with bytes left over after its items, is
/// [`ErrorKind::Decode`] with the byte offset in the stream where decoding
/// failed (for items, the offset reached in the frame's byte region).
pub fn recvfrom_flat<B, R, S>(reader: R, mut target: S) -> Result<()>
where
    B: Flat + ?Sized,
    R: Read,
    S: for<'a> Stage<&'a B>,
{
    let mut frames = FrameReader::new(reader);
    let mut place = B::Place::default();
    let mut sent = false;
    let end = 'frames: loop {
        if sent && !frames.has_buffered_frame() {
            if let Some(end) = SourceEnd::after_flush(target.flush()) {
                break end;
            }
        }
        let (offset, frame) = match frames.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break SourceEnd::Done,
            Err(e) => break SourceEnd::Input(e),
        };
        let Some((head, rest)) = frame.split_first_chunk::<FLAT_HEAD_LEN>() else {
            break SourceEnd::Input(Error::decode(
                offset,
                format!(
                    "flat frame of {} bytes has no item count and byte region length",
                    frame.len()
                ),
            ));
        };
        let count = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let bytes_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // Where the byte region starts in the stream.
        let start = offset + 4 + FLAT_HEAD_LEN as u64;
        let Some((bytes, text)) = rest.split_at_checked(bytes_len) else {
            break SourceEnd::Input(Error::decode(
                offset + 8,
                format!(
                    "flat frame's byte region of {bytes_len} bytes runs past the frame's {} bytes",
                    frame.len()
                ),
            ));
        };
        // The frame comes from another process: its text is checked once.
        let text = match std::str::from_utf8(text) {
            Ok(text) => text,
            Err(e) => {
                break SourceEnd::Input(Error::decode(
                    start + (bytes_len + e.valid_up_to()) as u64,
                    "flat frame: text region is not UTF-8".to_string(),
                ))
            }
        };
        let mut src = FlatSrc::new(bytes, text);
        // Errors are placed in the byte region.
        let at = |src: &FlatSrc<'_>| start + (bytes.len() - src.bytes().len()) as u64;
        for _ in 0..count {
            match B::unflatten(&mut src, &mut place) {
                Ok(item) => {
                    sent = true;
                    if let Some(end) = SourceEnd::after_send(target.send(item)) {
                        break 'frames end;
                    }
                }
                Err(e) => {
                    break 'frames SourceEnd::Input(Error::decode(
                        at(&src),
                        format!("flat frame: {e}"),
                    ));
                }
            }
        }
        if !src.is_empty() {
            break SourceEnd::Input(Error::decode(
                at(&src),
                format!(
                    "{} bytes left over after the {count} items of a flat frame",
                    src.bytes().len() + src.text().len()
                ),
            ));
        }
    };
    end_source(&mut target, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::testutil::Chunked;

    fn stream(values: &[u64]) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new());
        for v in values {
            w.write(v).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn decode_offset(e: &Error) -> u64 {
        match e.kind() {
            ErrorKind::Decode { byte_offset, .. } => *byte_offset,
            other => panic!("not a decode error: {other:?}"),
        }
    }

    #[test]
    fn values_survive_one_byte_reads() {
        let bytes = stream(&[0, 1, 300, u64::MAX]);
        let mut r = FrameReader::new(Chunked(&bytes, 1));
        let mut got = Vec::new();
        while let Some(v) = r.read::<u64>().unwrap() {
            got.push(v);
        }
        assert_eq!(got, [0, 1, 300, u64::MAX]);
        assert_eq!(r.byte_offset(), bytes.len() as u64);
    }

    #[test]
    fn empty_input_is_an_empty_stream_but_a_short_header_is_not() {
        assert_eq!(FrameReader::new(&b""[..]).read::<u64>().unwrap(), None);
        let e = FrameReader::new(&b"CPWI"[..]).read::<u64>().unwrap_err();
        assert_eq!(decode_offset(&e), 0);
        assert!(e.to_string().contains("header"), "{e}");
    }

    #[test]
    fn bad_magic_and_version_are_refused() {
        let e = FrameReader::new(&b"GIF89a\x01\x00"[..])
            .read::<u64>()
            .unwrap_err();
        assert!(e.to_string().contains("not a copipe wire stream"), "{e}");
        let e = FrameReader::new(&b"CPWIRE\x01\x00"[..])
            .read::<u64>()
            .unwrap_err();
        assert_eq!(decode_offset(&e), 6);
        assert!(e.to_string().contains("version 1"), "{e}");
    }

    #[test]
    fn truncation_anywhere_in_a_frame_is_an_error_at_that_frame() {
        let bytes = stream(&[7, 1 << 40]);
        // header (8) + frame 0 (4 + 1) = 13: frame 1 starts at byte 13.
        for cut in 14..bytes.len() {
            let mut r = FrameReader::new(&bytes[..cut]);
            assert_eq!(r.read::<u64>().unwrap(), Some(7));
            let e = r.read::<u64>().unwrap_err();
            assert_eq!(decode_offset(&e), 13, "cut at {cut}");
        }
        let mut r = FrameReader::new(&bytes[..13]);
        assert_eq!(r.read::<u64>().unwrap(), Some(7));
        assert_eq!(r.read::<u64>().unwrap(), None);
    }

    #[test]
    fn a_large_claimed_length_allocates_only_what_arrives() {
        let mut bytes = stream(&[]);
        bytes.extend_from_slice(&(DEFAULT_MAX_FRAME).to_le_bytes());
        bytes.extend_from_slice(&[0; 10]);
        let mut r = FrameReader::new(&bytes[..]);
        let e = r.read::<u64>().unwrap_err();
        assert_eq!(decode_offset(&e), 8);
        assert!(r.buf.len() <= READ_BUFFER, "buffer grew to {}", r.buf.len());
    }

    #[test]
    fn a_string_claiming_huge_length_inside_a_frame_is_refused() {
        // A frame whose body is a varint length of u64::MAX / 2 for a
        // String, followed by nothing: bincode must refuse, not allocate.
        let mut bytes = stream(&[]);
        let body = [0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        let e = FrameReader::new(&bytes[..]).read::<String>().unwrap_err();
        assert_eq!(decode_offset(&e), 8);
    }

    #[test]
    fn leftover_bytes_mean_the_wrong_type() {
        let mut w = FrameWriter::new(Vec::new());
        w.write(&(1u64, 2u64)).unwrap();
        let bytes = w.into_inner().unwrap();
        let e = FrameReader::new(&bytes[..]).read::<u64>().unwrap_err();
        assert!(e.to_string().contains("left over"), "{e}");
    }

    #[test]
    fn an_oversize_item_is_refused_by_the_writer_and_the_stream_stays_good() {
        let mut w = FrameWriter::new(Vec::new()).with_max_frame(8);
        assert!(w.write("a string longer than eight bytes").is_err());
        w.write("short").unwrap();
        let bytes = w.into_inner().unwrap();
        let mut out = Collect::<String>::new();
        recvfrom(&bytes[..], &mut out).unwrap();
        assert_eq!(out.items(), ["short"]);
    }

    #[test]
    fn recvfrom_stops_when_the_target_stops() {
        use crate::stage::StageExt;
        let bytes = stream(&[1, 2, 3, 4]);
        let mut out = Collect::new();
        recvfrom::<u64, _, _>(&bytes[..], (&mut out).with_take(2)).unwrap();
        assert_eq!(out.items(), [1, 2]);
    }

    #[test]
    fn read_into_reuses_the_value() {
        let mut w = FrameWriter::new(Vec::new());
        w.write(&vec![1u8, 2, 3]).unwrap();
        w.write(&vec![4u8]).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = FrameReader::new(&bytes[..]);
        let mut v: Vec<u8> = Vec::with_capacity(64);
        let ptr = v.as_ptr();
        assert!(r.read_into(&mut v).unwrap());
        assert_eq!(v, [1, 2, 3]);
        assert!(r.read_into(&mut v).unwrap());
        assert_eq!(v, [4]);
        assert_eq!(v.as_ptr(), ptr, "decoded into the same buffer");
        assert!(!r.read_into(&mut v).unwrap());
    }

    /// The frame `FrameWriter::write` makes of `v`, and bincode's own
    /// encoding of it: equal, for the `u64`s written directly and for
    /// everything else.
    fn same_as_bincode<T: Serialize + ?Sized + std::fmt::Debug>(v: &T) {
        let mut w = FrameWriter::new(Vec::new());
        w.write(v).unwrap();
        let bytes = w.into_inner().unwrap();
        let want = bincode::serde::encode_to_vec(v, CONFIG).unwrap();
        assert_eq!(&bytes[HEADER_LEN + 4..], &want[..], "{v:?}");
        assert_eq!(
            bytes[HEADER_LEN..HEADER_LEN + 4],
            (want.len() as u32).to_le_bytes()
        );
    }

    #[test]
    fn a_u64_frame_is_bincodes_encoding_and_decodes() {
        let mut values = vec![0u64, 1, 249, 250, 251, 252, 255, 256, 65_535, 65_536];
        values.extend([u32::MAX as u64 - 1, u32::MAX as u64, u32::MAX as u64 + 1]);
        values.extend([u64::MAX - 1, u64::MAX]);
        // And a spread of every size (an LCG, shifted by a varying amount).
        let mut x = 1u64;
        for _ in 0..500 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            values.push(x >> (x % 64));
        }
        for &v in &values {
            same_as_bincode(&v);
        }
        let bytes = stream(&values);
        let mut r = FrameReader::new(&bytes[..]);
        for &v in &values {
            assert_eq!(r.read::<u64>().unwrap(), Some(v));
        }
        assert_eq!(r.read::<u64>().unwrap(), None);
    }

    #[test]
    fn values_other_than_a_u64_are_encoded_by_bincode() {
        #[derive(Debug, Serialize)]
        struct Wrap(u64);
        #[derive(Debug, Serialize)]
        struct Pair {
            a: u64,
            b: String,
        }
        #[derive(Debug, Serialize)]
        enum E {
            A(u64),
        }
        same_as_bincode(&Some(300u64));
        same_as_bincode(&None::<u64>);
        same_as_bincode(&Wrap(70_000));
        same_as_bincode(&E::A(70_000));
        same_as_bincode(&Pair {
            a: 1 << 40,
            b: "x".into(),
        });
        same_as_bincode(&(300u64, 2u64));
        same_as_bincode(&vec![1u64, 1000]);
        same_as_bincode(&300u32);
        same_as_bincode(&300u16);
        same_as_bincode(&300usize);
        same_as_bincode(&-300i64);
        same_as_bincode(&7u8);
        same_as_bincode(&u128::MAX);
        same_as_bincode("text");
        same_as_bincode(&true);
        same_as_bincode(&1.5f64);
    }
}
