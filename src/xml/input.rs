//! [`XmlInput`]: where an XML source reads its document from (bytes in
//! memory, a file read whole, or a reader streamed through a fixed buffer).
//! The parse itself is in `parse.rs`.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Default size of the read buffer of a streaming input.
const READ_BUFFER: usize = 64 * 1024;

/// Default limit on one piece of markup or text read from a stream.
const MAX_EVENT: u64 = 16 * 1024 * 1024;

/// Where an XML source reads its document from.
///
/// - [`XmlInput::from_path`] reads a whole file into memory and parses it
///   in place: the fastest form, and events borrow straight from it. (A
///   memory map would avoid the copy but needs `unsafe`, which this crate
///   forbids.)
/// - [`XmlInput::from_reader`] streams any reader (stdin, a pipe, a large
///   file) through a fixed read buffer: memory stays bounded whatever the
///   document's size. One piece of markup or text may not exceed
///   [`max_event_bytes`](XmlInput::max_event_bytes) (16 MiB by default).
/// - [`XmlInput::from_bytes`] and [`XmlInput::from_vec`] parse bytes
///   already in memory.
///
/// Errors name the input's path (see [`XmlInput::with_path`]), line, column
/// and byte offset. A document in another encoding than UTF-8 (UTF-16, or
/// one its XML declaration names) is decoded to UTF-8; its errors' byte
/// offsets are still offsets in the input, their columns count the UTF-8
/// of the decoded line. A decoded stream also keeps the input bytes of the
/// event in progress, to map offsets back: at most about twice
/// `max_event_bytes` more (for UTF-16), beyond the read buffers.
///
/// # Examples
///
/// ```
/// use copipe::xml::{expat_parse, XmlInput};
/// use copipe::sinks::Count;
///
/// let mut events = Count::new();
/// let input = XmlInput::from_reader(&b"<a><b>x</b></a>"[..]).buffer_capacity(3);
/// expat_parse(input, &mut events)?;
/// assert_eq!(events.count(), 5);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct XmlInput<'i> {
    pub(crate) src: Src<'i>,
    pub(crate) path: Option<PathBuf>,
    pub(crate) capacity: usize,
    pub(crate) max_event: u64,
}

/// The two forms of input.
pub(crate) enum Src<'i> {
    Bytes(Cow<'i, [u8]>),
    Reader(Box<dyn Read + 'i>),
}

impl fmt::Debug for XmlInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = match &self.src {
            Src::Bytes(b) => format!("{} bytes in memory", b.len()),
            Src::Reader(_) => "a reader".to_string(),
        };
        f.debug_struct("XmlInput")
            .field("src", &src)
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("max_event", &self.max_event)
            .finish()
    }
}

impl XmlInput<'static> {
    /// Reads the whole file at `path`; errors will name it.
    ///
    /// # Errors
    ///
    /// The file cannot be read; the error names the path.
    pub fn from_path(path: impl AsRef<Path>) -> Result<XmlInput<'static>> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| Error::from(e).with_path(path))?;
        Ok(XmlInput::from_vec(bytes).with_path(path))
    }

    /// Parses bytes already read into memory.
    pub fn from_vec(bytes: Vec<u8>) -> XmlInput<'static> {
        XmlInput::new(Src::Bytes(Cow::Owned(bytes)))
    }
}

impl<'i> XmlInput<'i> {
    fn new(src: Src<'i>) -> XmlInput<'i> {
        XmlInput {
            src,
            path: None,
            capacity: READ_BUFFER,
            max_event: MAX_EVENT,
        }
    }

    /// Parses borrowed bytes.
    pub fn from_bytes(bytes: &'i [u8]) -> XmlInput<'i> {
        XmlInput::new(Src::Bytes(Cow::Borrowed(bytes)))
    }

    /// Streams a reader with bounded memory.
    pub fn from_reader(reader: impl Read + 'i) -> XmlInput<'i> {
        XmlInput::new(Src::Reader(Box::new(reader)))
    }

    /// Names the input in error messages (`FILE:LINE:COL ...`).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> XmlInput<'i> {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// The size of a streaming input's read buffer (64 KiB by default; at
    /// least 1). Tests use tiny buffers so that events straddle reads.
    pub fn buffer_capacity(mut self, bytes: usize) -> XmlInput<'i> {
        self.capacity = bytes.max(1);
        self
    }

    /// The most bytes one piece of markup or text may take in a streaming
    /// input (16 MiB by default); a longer one is an error, not unbounded
    /// memory.
    pub fn max_event_bytes(mut self, bytes: u64) -> XmlInput<'i> {
        self.max_event = bytes.max(1);
        self
    }

    /// The path errors will name, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Encodings other than UTF-8: found from the byte order mark or the XML
/// declaration, and decoded to UTF-8 before parsing.
///
/// - UTF-16 (little or big endian), with a byte order mark or (XML 1.0
///   appendix F) starting `<?` without one;
/// - any ASCII-compatible encoding that `encoding_rs` knows, named in the
///   XML declaration: ISO-8859-1 (read as windows-1252, as the WHATWG
///   Encoding Standard and browsers do), windows-125x, ISO-8859-x, KOI8,
///   Shift_JIS, EUC-JP, GBK, Big5, ...
///
/// UTF-8 is read as it is (no copy, no pass). An encoding name
/// `encoding_rs` does not know is refused by the parser ("unsupported
/// encoding"). A UTF-16 document whose XML declaration names another
/// encoding, or one in ASCII that says it is UTF-16, is refused at 1:1.
///
/// Positions in a decoded document:
///
/// - the byte offset (in every error's position, and in a message that
///   names another offset, such as where an unclosed element opened) is
///   the offset in the input, as it is for UTF-8: a byte order mark
///   counts, a character counts its bytes in the input's encoding (one in
///   ISO-8859-1, two or four in UTF-16, one to four in Shift_JIS or
///   GB18030). It is where the character sequence that decodes to the
///   offending character begins;
/// - the line is the same in any encoding;
/// - the column counts the UTF-8 bytes of the line as decoded, up to the
///   offending character, plus one: the column the same document would
///   have if it were converted to UTF-8 (`iconv`), so that a column means
///   the same whatever the encoding (for UTF-8, columns count bytes).
///
/// In memory, the mapping back to the input is computed only when an
/// error is built, by re-decoding the input before the error (`locate`).
/// A stream keeps the input read since a point where the decoder was at
/// rest, at or before the event in progress (`Track`; the decoding reader
/// notes such points as it decodes, so moving it needs no second decode);
/// the parse moves that point forward once more than 64 KiB are kept,
/// mapping then the starts of the elements still open that it passes (an
/// unclosed element's message names its start), so memory stays bounded. A UTF-8
/// document is not concerned: its parse is compiled apart and does no
/// work for this (see `pull/remapped.rs`).
///
/// A byte sequence that is not valid in the encoding is an error, as in
/// expat: an unpaired surrogate or an odd last byte in UTF-16, a byte that
/// the encoding leaves unmapped (in the WHATWG tables `encoding_rs`
/// follows: e.g. 0xAE in ISO-8859-7, 0xAA in windows-1253, 0xA5 in
/// ISO-8859-3; windows-1252, which ISO-8859-1 is read as, maps all 256
/// bytes), a bad multi-byte sequence (Shift_JIS, GBK, ...), or a byte over
/// 0x7F in a document that says it is US-ASCII (which `encoding_rs` would
/// read as windows-1252; a US-ASCII document is otherwise read as it is,
/// as UTF-8).
/// The decoded text stops before the bad bytes, and the parse reads it as
/// a document that ends there: events before the bad bytes are delivered,
/// character data up to them included (the SAX-style source gets it, as
/// expat's does; the expat-style one drops a run cut short by any error),
/// and an error in the text before them is reported as usual. Where the
/// parse would see the end of input, or an event cut short by it, the
/// error is `Malformed`: its byte offset is the bad bytes' offset in the
/// input (counting a byte order mark), its line and column where the
/// decoded text stops, and its message names the bad bytes, e.g.
/// `doc.xml:1:6 (byte offset 12): malformed UTF-16LE: bytes 00 DC are not
/// a character`. Every path gives the same result:
/// memory (the text decoded up to the bad bytes is parsed as a stream, the
/// same code a stream of the document runs), streams with any read size,
/// and the parallel parse (which parses a document with a malformed
/// sequence sequentially, and maps the errors of its chunks of any other
/// decoded document back to the input).
pub(crate) mod encoding {
    use std::cell::RefCell;
    use std::io::{self, Read};
    use std::rc::Rc;

    use encoding_rs::{DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

    use crate::error::{Error, ErrorKind, Result};

    /// How much of the input's start is read to find the encoding.
    const SNIFF: usize = 1024;

    /// The encoding to decode `head` (the input's first bytes, up to
    /// [`SNIFF`] of them, or all of a shorter input) from, if it is not
    /// UTF-8, and the length of the byte order mark to skip; an error if
    /// the XML declaration names an encoding the bytes cannot be in.
    pub(crate) fn sniff(
        head: &[u8],
    ) -> std::result::Result<Option<(&'static Encoding, usize)>, String> {
        match head {
            [0xFF, 0xFE, ..] => return Ok(Some((UTF_16LE, 2))),
            [0xFE, 0xFF, ..] => return Ok(Some((UTF_16BE, 2))),
            [0x3C, 0, 0x3F, 0, ..] => return Ok(Some((UTF_16LE, 0))),
            [0, 0x3C, 0, 0x3F, ..] => return Ok(Some((UTF_16BE, 0))),
            _ => {}
        }
        let bom = head.starts_with(crate::xml::pull::BOM);
        let decl = if bom { &head[3..] } else { head };
        let Some(label) = declared(decl) else {
            return Ok(None);
        };
        let Some(enc) = Encoding::for_label(label) else {
            // Refused by the parser, at the declaration.
            return Ok(None);
        };
        let text = String::from_utf8_lossy(label);
        if enc == UTF_8 || enc.name() == "replacement" {
            Ok(None)
        } else if !enc.is_ascii_compatible() {
            Err(format!(
                "the XML declaration says encoding `{text}`, but the document does not start as {} does (with a byte order mark or `<?xml` in it)",
                enc.name()
            ))
        } else if bom {
            Err(format!(
                "the XML declaration says encoding `{text}`, but the document starts with a UTF-8 byte order mark"
            ))
        } else {
            Ok(Some((enc, 0)))
        }
    }

    /// The encoding name in an XML declaration at the start of `head`.
    pub(crate) fn declared(head: &[u8]) -> Option<&[u8]> {
        let decl = head.strip_prefix(b"<?xml")?;
        let end = memchr::memmem::find(decl, b"?>")?;
        let decl = &decl[..end];
        let at = memchr::memmem::find(decl, b"encoding")?;
        let rest = &decl[at + 8..];
        let rest = rest
            .trim_ascii_start()
            .strip_prefix(b"=")?
            .trim_ascii_start();
        let q = *rest.first()?;
        if q != b'"' && q != b'\'' {
            return None;
        }
        let len = memchr::memchr(q, &rest[1..])?;
        Some(&rest[1..1 + len])
    }

    /// Whether an XML declaration may name `label`: an encoding copipe
    /// reads (the input layer has checked that it fits the bytes).
    pub(crate) fn supported(label: &str) -> bool {
        matches!(
            label.to_ascii_lowercase().as_str(),
            "utf-8" | "utf8" | "us-ascii" | "ascii" | "utf-16" | "utf-16le" | "utf-16be"
        ) || Encoding::for_label(label.as_bytes())
            .is_some_and(|e| e.is_ascii_compatible() && e.name() != "replacement")
    }

    /// The error for an XML declaration naming an unsupported `label`.
    #[cold]
    pub(crate) fn unsupported(label: &str) -> String {
        format!(
            "unsupported encoding `{label}`: copipe reads UTF-8, UTF-16 and the encodings of the WHATWG Encoding Standard (convert the file with iconv)"
        )
    }

    /// Whether the XML declaration at the start of `head` says US-ASCII.
    /// `encoding_rs` (after the WHATWG standard) reads such a document as
    /// windows-1252; copipe, as expat and libxml2 do, takes a byte over
    /// 0x7F in it for a malformed sequence.
    fn says_ascii(head: &[u8]) -> bool {
        declared(head).is_some_and(|label| {
            let label = label.trim_ascii();
            [&b"us-ascii"[..], b"ascii", b"ansi_x3.4-1968"]
                .iter()
                .any(|a| label.eq_ignore_ascii_case(a))
        })
    }

    /// What [`decode_bytes`] found.
    pub(crate) enum Decoded {
        /// The bytes are UTF-8: parse them as they are.
        Utf8,
        /// The bytes decoded to UTF-8.
        Text(Vec<u8>, Origin),
        /// The bytes hold a malformed sequence: the text decoded before it,
        /// to be parsed as a stream that ends in the error (as a stream of
        /// the same bytes would be).
        Cut(Box<dyn Read + Send>, Origin),
    }

    /// Where a decoded document's text came from: what maps an offset in
    /// the text back to the input in memory.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Origin {
        /// The encoding decoded from; `None` when the text is the input's
        /// own bytes (a US-ASCII document cut at a byte over 0x7F).
        enc: Option<&'static Encoding>,
        /// The length of the byte order mark before the decoded bytes.
        bom: usize,
        /// The length of the decoded text, and the input offset where the
        /// text stops (the input's end, or the malformed sequence's start).
        end: (u64, u64),
    }

    impl Origin {
        /// The input offset (in `input`, the whole document) of the
        /// character sequence that decodes to offset `n` of the text.
        #[cold]
        pub(crate) fn input_offset(&self, input: &[u8], n: u64) -> u64 {
            let Some(enc) = self.enc else {
                return n;
            };
            if n >= self.end.0 {
                return self.end.1;
            }
            let src = input.get(self.bom..).unwrap_or_default();
            self.bom as u64 + locate(enc, src, n).0 as u64
        }

        /// `e`, an error of the parse of the decoded text of `input`, with
        /// its offsets mapped back to the input: the parallel parse's
        /// chunks are parsed by the UTF-8 code, which knows nothing of
        /// `input`. Besides the position, the one offset a message names
        /// is where an unclosed element opened (`parse.rs`).
        #[cold]
        pub(crate) fn remap(&self, input: &[u8], e: Error) -> Error {
            let path = e.path().map(std::path::Path::to_path_buf);
            let e = match e.into_kind() {
                ErrorKind::Xml {
                    line,
                    column,
                    byte_offset,
                    mut message,
                } => {
                    const OPENED: &str = "` (opened at byte offset ";
                    if message.starts_with("unexpected end of input: element `<") {
                        if let Some(at) = message.find(OPENED) {
                            let from = at + OPENED.len();
                            let len = message[from..]
                                .find(|c: char| !c.is_ascii_digit())
                                .unwrap_or(message.len() - from);
                            if let Ok(n) = message[from..from + len].parse::<u64>() {
                                let mapped = self.input_offset(input, n).to_string();
                                message.replace_range(from..from + len, &mapped);
                            }
                        }
                    }
                    let offset = self.input_offset(input, byte_offset);
                    Error::xml(line, column, offset, message)
                }
                other => Error::new(other),
            };
            match path {
                Some(p) => e.with_path(p),
                None => e,
            }
        }
    }

    /// Where the character sequence that decodes to byte `n` of the text
    /// begins, in `src` (input that starts where the decoder is at rest: no
    /// bytes of a sequence pending): its offset in `src`, and the offset in
    /// the text of its first character (`n`, unless `n` falls inside the
    /// UTF-8 of a character, or on the second of two characters a sequence
    /// decodes to, as some Big5 ones do). When `n` lies past what `src`
    /// decodes to, the end of the decoded text.
    ///
    /// Exact for every encoding read here (UTF-16 and the ASCII-compatible
    /// ones; ISO-2022-JP, whose decoder keeps a mode between characters,
    /// is refused): their decoders hold nothing between character
    /// sequences but the bytes of one begun, so a fresh decoder at a rest
    /// point reads on as the first one did. Far from `n` the input is
    /// decoded in blocks (output stopped short of `n`); the last bytes one
    /// at a time, so that the first byte of each sequence is seen.
    #[cold]
    pub(crate) fn locate(enc: &'static Encoding, src: &[u8], n: u64) -> (usize, u64) {
        // More than the UTF-8 one sequence decodes to (4 bytes; 4 for the
        // Big5 pairs of characters too).
        const SLACK: u64 = 8;
        let mut dec = enc.new_decoder_without_bom_handling();
        let mut buf = [0u8; 4096];
        let (mut r, mut w) = (0usize, 0u64);
        while n.saturating_sub(w) > 2 * SLACK && r < src.len() {
            let room = ((n - w - SLACK) as usize).min(buf.len());
            let (result, read, written) =
                dec.decode_to_utf8_without_replacement(&src[r..], &mut buf[..room], false);
            if let DecoderResult::Malformed(bad, extra) = result {
                // The text stops before `n`.
                let start = (r + read).saturating_sub(usize::from(bad) + usize::from(extra));
                return (start, w + written as u64);
            }
            r += read;
            w += written as u64;
            if read == 0 && written == 0 {
                break;
            }
        }
        // The last point known to be at rest. After the blocks, the
        // decoder may hold bytes of a sequence begun; the first sequence
        // completed then ends well before `n` (the slack).
        let mut rest = (r == 0).then_some((0usize, 0u64));
        let mut one = [0u8; 16];
        loop {
            if let Some((rr, rw)) = rest {
                if rw >= n {
                    return (rr, rw);
                }
            }
            if r >= src.len() {
                return rest.unwrap_or((r, w));
            }
            let (result, read, written) =
                dec.decode_to_utf8_without_replacement(&src[r..r + 1], &mut one, false);
            if let DecoderResult::Malformed(bad, extra) = result {
                let start = (r + read).saturating_sub(usize::from(bad) + usize::from(extra));
                return (start, w);
            }
            r += read;
            if written > 0 {
                if w + written as u64 > n {
                    return rest.unwrap_or((r - read, w));
                }
                w += written as u64;
                rest = Some((r, w));
            } else if read == 0 {
                // No progress (not expected): stop where we are.
                return rest.unwrap_or((r, w));
            }
        }
    }

    /// A decoded stream's way back to input offsets: a point where the
    /// decoder was at rest (its offset in the decoded text and in the
    /// input) and the input bytes read since. The decoding reader appends
    /// what it reads, and notes later rest points (one every 4 KiB or so
    /// of input); the parse moves the point forward to the last of those
    /// before the event in progress (after mapping the starts of the open
    /// elements it passes, which an unclosed element's message may name),
    /// so the bytes kept are those of the events in progress:
    /// at most about `max_event_bytes` of decoded text's worth (twice as
    /// many for UTF-16) beyond the read buffers.
    #[derive(Debug)]
    pub(crate) struct Track {
        enc: &'static Encoding,
        /// The rest point: decoded offset and input offset.
        out: u64,
        inp: u64,
        /// The input from `inp` on.
        window: Vec<u8>,
        /// Later rest points the decoding reader found, ascending, at
        /// least [`REST_GAP`] input bytes apart.
        rests: std::collections::VecDeque<(u64, u64)>,
    }

    /// The fewest input bytes between two rest points a track keeps (a
    /// few in unit tests, so that their short texts get some).
    #[cfg(not(test))]
    const REST_GAP: u64 = 4096;
    #[cfg(test)]
    const REST_GAP: u64 = 3;

    /// A [`Track`] shared by the decoding reader and the parse.
    pub(crate) type Tracked = Rc<RefCell<Track>>;

    impl Track {
        /// A track of input decoded from `enc`, from input offset `inp`
        /// (after a byte order mark) on.
        pub(crate) fn new(enc: &'static Encoding, inp: u64) -> Track {
            Track {
                enc,
                out: 0,
                inp,
                window: Vec::new(),
                rests: std::collections::VecDeque::new(),
            }
        }

        /// Notes that the decoder was at rest at decoded offset `out`,
        /// input offset `inp` (ahead of the points known).
        #[inline]
        pub(crate) fn rest_at(&mut self, out: u64, inp: u64) {
            let last = self.rests.back().map_or(self.inp, |r| r.1);
            if inp >= last + REST_GAP {
                self.rests.push_back((out, inp));
            }
        }

        /// The last rest point at or before decoded offset `n`.
        fn rest_before(&self, n: u64) -> (u64, u64) {
            let later = self.rests.partition_point(|r| r.0 <= n);
            match later {
                0 => (self.out, self.inp),
                i => self.rests[i - 1],
            }
        }

        /// Keeps `bytes`, the input read next.
        #[inline]
        pub(crate) fn push(&mut self, bytes: &[u8]) {
            self.window.extend_from_slice(bytes);
        }

        /// The input offset of decoded offset `n` (at or after the rest
        /// point; an earlier one is not kept, and maps to the rest point).
        #[cold]
        pub(crate) fn map(&self, n: u64) -> u64 {
            if n <= self.out {
                return self.inp;
            }
            let (out, inp) = self.rest_before(n);
            let from = (inp - self.inp) as usize;
            let window = self.window.get(from..).unwrap_or_default();
            inp + locate(self.enc, window, n - out).0 as u64
        }

        /// Returns the input offset of `n` (at or after the rest point),
        /// and moves the rest point forward to the last one known at or
        /// before `n`, dropping the input before it.
        #[cold]
        pub(crate) fn advance(&mut self, n: u64) -> u64 {
            let at = self.map(n);
            let (out, inp) = self.rest_before(n);
            while self.rests.front().is_some_and(|r| r.0 <= n) {
                self.rests.pop_front();
            }
            let drop = ((inp - self.inp) as usize).min(self.window.len());
            self.window.drain(..drop);
            self.out = out;
            self.inp = inp;
            at
        }

        /// How many input bytes are kept.
        #[inline]
        pub(crate) fn kept(&self) -> usize {
            self.window.len()
        }
    }

    /// `bytes` decoded to UTF-8, if they are in another encoding.
    pub(crate) fn decode_bytes(bytes: &[u8]) -> Result<Decoded> {
        let h = head_of(bytes);
        let found = sniff(h).map_err(|m| Error::xml(1, 1, 0, m))?;
        let Some((enc, bom)) = found else {
            return Ok(Decoded::Utf8);
        };
        if enc == WINDOWS_1252 && says_ascii(h) {
            // ASCII is UTF-8: read as it is, up to a byte that is not.
            return Ok(match bytes.is_ascii() {
                true => Decoded::Utf8,
                false => {
                    let at = bytes.iter().position(|b| !b.is_ascii()).unwrap_or(0);
                    let origin = Origin {
                        enc: None,
                        bom: 0,
                        end: (at as u64, at as u64),
                    };
                    let cut = Cut {
                        text: bytes[..at].to_vec(),
                        pos: 0,
                        err: Malformed::ascii(at as u64, bytes[at]),
                    };
                    Decoded::Cut(Box::new(cut), origin)
                }
            });
        }
        let mut dec = enc.new_decoder_without_bom_handling();
        let src = &bytes[bom..];
        let mut out = String::with_capacity(
            dec.max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len().saturating_mul(3)),
        );
        let (result, read) = dec.decode_to_string_without_replacement(src, &mut out, true);
        // The declaration is checked in the first SNIFF bytes of input,
        // as a stream does.
        let mut head = String::new();
        let mut first = enc.new_decoder_without_bom_handling();
        let raw_head = &h[bom.min(h.len())..];
        head.reserve(
            first
                .max_utf8_buffer_length(raw_head.len())
                .unwrap_or(4 * SNIFF),
        );
        let _ = first.decode_to_string(raw_head, &mut head, false);
        check_decoded(head.as_bytes(), enc).map_err(|m| Error::xml(1, 1, 0, m))?;
        match result {
            DecoderResult::Malformed(bad, extra) => {
                let end = read - usize::from(extra);
                let start = end - usize::from(bad);
                let err = Malformed {
                    at: out.len() as u64,
                    input: (bom + start) as u64,
                    bytes: src[start..end].to_vec(),
                    encoding: enc.name(),
                };
                let origin = Origin {
                    enc: Some(enc),
                    bom,
                    end: (err.at, err.input),
                };
                let cut = Cut {
                    text: out.into_bytes(),
                    pos: 0,
                    err,
                };
                Ok(Decoded::Cut(Box::new(cut), origin))
            }
            // The output had room for all the input can decode to.
            DecoderResult::InputEmpty | DecoderResult::OutputFull => {
                let origin = Origin {
                    enc: Some(enc),
                    bom,
                    end: (out.len() as u64, bytes.len() as u64),
                };
                Ok(Decoded::Text(out.into_bytes(), origin))
            }
        }
    }

    /// A byte sequence not valid in the document's encoding: the error a
    /// decoding reader returns where its text stops (see the module's
    /// docs).
    #[derive(Debug, Clone)]
    pub(crate) struct Malformed {
        /// Offset in the decoded UTF-8 text where it stops.
        pub(crate) at: u64,
        /// Offset of the bad bytes in the input: the error's byte offset.
        pub(crate) input: u64,
        bytes: Vec<u8>,
        encoding: &'static str,
    }

    impl Malformed {
        /// `byte`, over 0x7F, at `at` in a US-ASCII document.
        fn ascii(at: u64, byte: u8) -> Malformed {
            Malformed {
                at,
                input: at,
                bytes: vec![byte],
                encoding: "US-ASCII",
            }
        }

        /// The error message (without the position).
        #[cold]
        pub(crate) fn message(&self) -> String {
            let hex: Vec<String> = self.bytes.iter().map(|b| format!("{b:02X}")).collect();
            let (noun, verb) = if self.bytes.len() == 1 {
                ("byte", "is")
            } else {
                ("bytes", "are")
            };
            format!(
                "malformed {}: {noun} {} {verb} not a character",
                self.encoding,
                hex.join(" "),
            )
        }

        fn to_io(&self) -> io::Error {
            io::Error::new(io::ErrorKind::InvalidData, self.clone())
        }
    }

    impl std::fmt::Display for Malformed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.message())
        }
    }

    impl std::error::Error for Malformed {}

    /// Decoded text that ends in a [`Malformed`] error.
    struct Cut {
        text: Vec<u8>,
        pos: usize,
        err: Malformed,
    }

    impl Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.text.len() && !buf.is_empty() {
                return Err(self.err.to_io());
            }
            let n = (self.text.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.text[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Checks the XML declaration at the start of `head`, decoded from
    /// `enc`: a UTF-16 document may only say it is UTF-16.
    fn check_decoded(head: &[u8], enc: &'static Encoding) -> std::result::Result<(), String> {
        if enc != UTF_16LE && enc != UTF_16BE {
            return Ok(());
        }
        match declared(head) {
            Some(label) if !matches!(Encoding::for_label(label), Some(e) if e == UTF_16LE || e == UTF_16BE) => {
                Err(format!(
                    "the XML declaration says encoding `{}`, but the document is in {}",
                    String::from_utf8_lossy(label),
                    enc.name()
                ))
            }
            _ => Ok(()),
        }
    }

    /// An encoding that does not fit the bytes, found by a stream: turned
    /// into an XML error at 1:1 by the parser.
    #[derive(Debug)]
    pub(crate) struct Mismatch(pub(crate) String);

    impl std::fmt::Display for Mismatch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Mismatch {}

    /// Whether `head`, the input's first bytes, is all the sniffing
    /// needs (the same rule for memory and streams).
    fn head_done(head: &[u8]) -> bool {
        let body = head.strip_prefix(crate::xml::pull::BOM).unwrap_or(head);
        let little = matches!(body, [0xFF, 0xFE, ..] | [0x3C, 0, ..]);
        let big = matches!(body, [0xFE, 0xFF, ..] | [0, 0x3C, ..]);
        if little || big {
            // Up to `?>` in UTF-16, or a start with no declaration.
            let (decl, end): (&[u8], &[u8]) = if little {
                (b"<\0?\0", b"?\0>\0")
            } else {
                (b"\0<\0?", b"\0?\0>")
            };
            let text = body
                .strip_prefix(&[0xFF, 0xFE])
                .or(body.strip_prefix(&[0xFE, 0xFF]))
                .unwrap_or(body);
            (text.len() >= 4 && !text.starts_with(decl))
                || memchr::memmem::find(text, end).is_some()
        } else {
            body.len() >= 4
                && (!body.starts_with(b"<?xm") || memchr::memmem::find(body, b"?>").is_some())
        }
    }

    /// The input's first bytes, as a stream reads them to sniff.
    fn head_of(bytes: &[u8]) -> &[u8] {
        let max = bytes.len().min(SNIFF);
        let n = (0..=max).find(|&n| head_done(&bytes[..n])).unwrap_or(max);
        &bytes[..n]
    }

    /// A reader of the input's start, then the rest.
    struct Chain<'r> {
        head: Vec<u8>,
        pos: usize,
        inner: Box<dyn Read + 'r>,
    }

    impl Read for Chain<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos < self.head.len() {
                let n = (self.head.len() - self.pos).min(buf.len());
                buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.inner.read(buf)
        }
    }

    /// Reads the start of `inner` to find its encoding: the reader to
    /// parse (decoding to UTF-8 if needed, through fixed buffers) and,
    /// when it decodes, the [`Track`] that maps its offsets back to the
    /// input.
    pub(crate) fn wrap_reader<'r>(
        mut inner: Box<dyn Read + 'r>,
    ) -> io::Result<(Box<dyn Read + 'r>, Option<Tracked>)> {
        let mut head = Vec::new();
        let mut chunk = [0u8; 64];
        // Read no further than needed: 4 bytes, then up to the end of an
        // XML declaration.
        while head.len() < SNIFF {
            if head_done(&head) {
                break;
            }
            let want = if head.len() < 4 { 4 - head.len() } else { 1 };
            let n = match inner.read(&mut chunk[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let mismatch = |m| io::Error::new(io::ErrorKind::InvalidData, Mismatch(m));
        let found = sniff(&head).map_err(mismatch)?;
        if let Some((enc, bom)) = found {
            let mut text = String::new();
            let mut dec = enc.new_decoder_without_bom_handling();
            text.reserve(dec.max_utf8_buffer_length(head.len()).unwrap_or(4 * SNIFF));
            let _ = dec.decode_to_string(&head[bom..], &mut text, false);
            check_decoded(text.as_bytes(), enc).map_err(mismatch)?;
        }
        let head_start = head[..head.len().min(SNIFF)].to_vec();
        let chain: Box<dyn Read + 'r> = Box::new(Chain {
            head,
            pos: 0,
            inner,
        });
        Ok(match found {
            None => (chain, None),
            Some((enc, _)) if enc == WINDOWS_1252 && says_ascii(&head_start) => {
                let reader = AsciiOnly {
                    inner: chain,
                    total: 0,
                    failed: None,
                };
                (Box::new(reader), None)
            }
            Some((enc, bom)) => {
                let track = Rc::new(RefCell::new(Track::new(enc, bom as u64)));
                let reader = Decoding {
                    track: Rc::clone(&track),
                    inner: chain,
                    dec: enc.new_decoder_without_bom_handling(),
                    encoding: enc.name(),
                    skip: bom,
                    input: vec![0; 8 * 1024].into_boxed_slice(),
                    in_pos: 0,
                    in_end: 0,
                    eof: false,
                    done: false,
                    out: vec![0; 3 * 8 * 1024 + 16].into_boxed_slice(),
                    out_pos: 0,
                    out_end: 0,
                    in_total: 0,
                    out_total: 0,
                    tail: Vec::new(),
                    failed: None,
                };
                (Box::new(reader), Some(track))
            }
        })
    }

    /// A reader of a US-ASCII document: the bytes as they are, up to one
    /// over 0x7F, then the error (a [`Malformed`] in an `io::Error`).
    struct AsciiOnly<'r> {
        inner: Box<dyn Read + 'r>,
        /// Bytes passed on so far.
        total: u64,
        failed: Option<Malformed>,
    }

    impl Read for AsciiOnly<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some(m) = &self.failed {
                return Err(m.to_io());
            }
            let n = loop {
                match self.inner.read(buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            let read = &buf[..n];
            if read.is_ascii() {
                self.total += n as u64;
                return Ok(n);
            }
            let at = read.iter().position(|b| !b.is_ascii()).unwrap_or(0);
            let m = Malformed::ascii(self.total + at as u64, read[at]);
            self.total += at as u64;
            if at == 0 {
                return Err(m.to_io());
            }
            self.failed = Some(m);
            Ok(at)
        }
    }

    /// A reader decoding its input to UTF-8 through fixed buffers; at a
    /// malformed sequence it returns the text before it, then the error
    /// (a [`Malformed`] in an `io::Error`) from then on.
    struct Decoding<'r> {
        inner: Box<dyn Read + 'r>,
        /// Where the input read is kept for mapping offsets back.
        track: Tracked,
        dec: encoding_rs::Decoder,
        encoding: &'static str,
        /// Bytes of byte order mark still to skip.
        skip: usize,
        input: Box<[u8]>,
        in_pos: usize,
        in_end: usize,
        eof: bool,
        /// The decoder has been told the input ended, and has flushed.
        done: bool,
        out: Box<[u8]>,
        out_pos: usize,
        out_end: usize,
        /// Input bytes taken so far (a byte order mark included).
        in_total: u64,
        /// UTF-8 bytes written so far.
        out_total: u64,
        /// The last few bytes given to the decoder before this buffer: a
        /// malformed sequence may begin in an earlier one.
        tail: Vec<u8>,
        /// The malformed sequence met, once its text is out.
        failed: Option<Malformed>,
    }

    /// More than the longest malformed sequence `encoding_rs` reports.
    const TAIL: usize = 16;

    impl Decoding<'_> {
        /// Records the malformed sequence the decoder just reported.
        #[cold]
        fn malformed(&mut self, src: &[u8], read: usize, bad: u8, extra: u8, written: usize) {
            // The sequence and the `extra` bytes after it may have begun
            // in earlier buffers.
            let mut seen = std::mem::take(&mut self.tail);
            seen.extend_from_slice(&src[..read]);
            let end = seen.len().saturating_sub(usize::from(extra));
            let bytes = seen[end.saturating_sub(usize::from(bad))..end].to_vec();
            let end = self.in_total + read as u64 - u64::from(extra);
            self.failed = Some(Malformed {
                at: self.out_total + written as u64,
                input: end - u64::from(bad),
                bytes,
                encoding: self.encoding,
            });
        }
    }

    /// The bytes at the end of each buffer that the decoder is given one
    /// at a time: more than the longest sequence, so that one ends there.
    const BYTEWISE: usize = 8;

    impl Decoding<'_> {
        /// Decodes `input[from..to]` into `out`. Before the end of the
        /// input, the last few bytes are given one at a time: a call that
        /// writes has just ended a sequence, and the decoder holds nothing
        /// there, a point the track keeps (so that moving it forward needs
        /// no second decode).
        fn decode(&mut self, from: usize, to: usize) -> (DecoderResult, usize, usize) {
            let src = &self.input[from..to];
            if self.eof {
                return self
                    .dec
                    .decode_to_utf8_without_replacement(src, &mut self.out, true);
            }
            let split = src.len().saturating_sub(BYTEWISE);
            let (mut result, mut read, mut written) =
                self.dec
                    .decode_to_utf8_without_replacement(&src[..split], &mut self.out, false);
            let mut rest = None;
            while result == DecoderResult::InputEmpty && read < src.len() {
                let (r, n, w) = self.dec.decode_to_utf8_without_replacement(
                    &src[read..read + 1],
                    &mut self.out[written..],
                    false,
                );
                let at_rest = w > 0 && r == DecoderResult::InputEmpty;
                result = r;
                read += n;
                written += w;
                if at_rest {
                    rest = Some((read, written));
                }
            }
            if let Some((r, w)) = rest {
                let at = (self.out_total + w as u64, self.in_total + r as u64);
                self.track.borrow_mut().rest_at(at.0, at.1);
            }
            (result, read, written)
        }
    }

    impl Read for Decoding<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while self.out_pos == self.out_end {
                if let Some(m) = &self.failed {
                    return Err(m.to_io());
                }
                if self.in_pos == self.in_end && !self.eof {
                    self.in_pos = 0;
                    self.in_end = 0;
                    let n = loop {
                        match self.inner.read(&mut self.input) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    };
                    self.in_end = n;
                    self.eof = n == 0;
                    let skip = self.skip.min(n);
                    self.in_pos = skip;
                    self.skip -= skip;
                    self.in_total += skip as u64;
                    self.track.borrow_mut().push(&self.input[skip..n]);
                }
                if self.done {
                    return Ok(0);
                }
                let (from, to) = (self.in_pos, self.in_end);
                let (result, read, written) = self.decode(from, to);
                if let DecoderResult::Malformed(bad, extra) = result {
                    let src = &self.input[from..to];
                    let src: Vec<u8> = src.to_vec();
                    self.malformed(&src, read, bad, extra, written);
                } else {
                    let taken = &self.input[from..from + read];
                    if taken.len() >= TAIL {
                        self.tail.clear();
                        self.tail.extend_from_slice(&taken[taken.len() - TAIL..]);
                    } else {
                        self.tail.extend_from_slice(taken);
                        let over = self.tail.len().saturating_sub(TAIL);
                        self.tail.drain(..over);
                    }
                }
                self.in_pos += read;
                self.in_total += read as u64;
                self.out_pos = 0;
                self.out_end = written;
                self.out_total += written as u64;
                if result == DecoderResult::InputEmpty && self.eof {
                    self.done = true;
                }
            }
            let n = (self.out_end - self.out_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
            self.out_pos += n;
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encoding::*;
    use encoding_rs::Encoding;
    use std::io::Read;

    /// `pieces` (the input bytes of one character sequence, and what they
    /// decode to) as the input, and for every offset of the decoded text
    /// (and its end) the input offset of the sequence it falls in.
    fn table(pieces: &[(Vec<u8>, String)]) -> (Vec<u8>, String, Vec<u64>) {
        let (mut input, mut text, mut want) = (Vec::new(), String::new(), Vec::new());
        for (bytes, s) in pieces {
            want.extend(std::iter::repeat_n(input.len() as u64, s.len()));
            input.extend_from_slice(bytes);
            text.push_str(s);
        }
        want.push(input.len() as u64);
        (input, text, want)
    }

    /// Each character of `text` encoded alone (by `encoding_rs`'s encoder,
    /// or by hand for UTF-16): the pieces of [`table`].
    fn pieces(enc: &'static Encoding, text: &str) -> Vec<(Vec<u8>, String)> {
        text.chars()
            .map(|c| {
                let s = c.to_string();
                let bytes: Vec<u8> = match enc.name() {
                    "UTF-16LE" => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
                    "UTF-16BE" => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
                    _ => {
                        let (b, _, bad) = enc.encode(&s);
                        assert!(!bad, "{c} not in {}", enc.name());
                        b.into_owned()
                    }
                };
                (bytes, s)
            })
            .collect()
    }

    /// `locate` and a stream's `Track` find, for every offset of the
    /// decoded text, the input offset of the sequence it falls in, as
    /// the encoder placed it; the text is long enough for the block
    /// phase, and its characters take 1 to 4 bytes in the input.
    #[test]
    fn decoded_offsets_map_back_exactly() {
        let jp = "<r a='\u{65E5}\u{672C}'>\u{FF76}x\u{3042}\n\u{8A9E}&amp;</r>";
        let cases: Vec<(&str, String)> = vec![
            (
                "UTF-16LE",
                format!("<r>\u{e9}\u{1F600}a\n\u{10FFFF}\u{20AC}z{}", "x".repeat(40)),
            ),
            (
                "UTF-16BE",
                format!("\u{1F600}\u{1F600}ab{}\u{1D11E}", "\u{e9}".repeat(30)),
            ),
            (
                "windows-1252",
                format!("<r>\u{e9}\u{20AC}\u{FF}{}\u{2030}", "ab".repeat(30)),
            ),
            (
                "ISO-8859-7",
                format!("<r>\u{3B1}\u{3B2}{}", "\u{3B3}x".repeat(30)),
            ),
            ("Shift_JIS", jp.repeat(6)),
            ("EUC-JP", jp.repeat(6)),
            (
                "gb18030",
                format!(
                    "<r>\u{4E2D}\u{1F600}\u{e9}{}",
                    "\u{6587}a\u{10000}".repeat(20)
                ),
            ),
            (
                "EUC-KR",
                format!("<r>\u{D55C}\u{AE00}{}", "a\u{AC00}".repeat(30)),
            ),
        ];
        for (label, text) in cases {
            let enc = Encoding::for_label(label.as_bytes()).unwrap();
            check(enc, &pieces(enc, &text));
        }
        // Big5: one sequence decodes to two characters (U+00CA U+0304); an
        // offset on the second maps to the sequence.
        let big5 = Encoding::for_label(b"big5").unwrap();
        let mut p = pieces(big5, &"<r>\u{4E2D}a".repeat(8));
        p.insert(5, (vec![0x88, 0x62], "\u{CA}\u{304}".to_string()));
        p.extend(pieces(big5, &"\u{6587}b".repeat(10)));
        check(big5, &p);
    }

    fn check(enc: &'static Encoding, pieces: &[(Vec<u8>, String)]) {
        let (input, text, want) = table(pieces);
        let (decoded, bad) = enc.decode_without_bom_handling(&input);
        assert!(!bad, "{}", enc.name());
        assert_eq!(decoded, text, "{}", enc.name());
        for n in 0..=text.len() as u64 {
            let (at, out) = locate(enc, &input, n);
            assert_eq!(at as u64, want[n as usize], "{} offset {n}", enc.name());
            assert!(
                out <= n && text.is_char_boundary(out as usize),
                "{}",
                enc.name()
            );
        }
        // A stream's track, moved forward now and then: the same; with
        // rest points where the decoder is at rest (the starts of pieces,
        // every so often, as the decoding reader notes them).
        for step in [1, 5, 17] {
            let mut t = Track::new(enc, 0);
            t.push(&input);
            let mut out = 0;
            for (bytes, s) in pieces {
                out += s.len() as u64;
                if out % (3 + step) == 0 {
                    t.rest_at(out, want[out as usize]);
                }
                let _ = bytes;
            }
            for n in 0..=text.len() as u64 {
                assert_eq!(t.map(n), want[n as usize], "{} track at {n}", enc.name());
                if n % step == 0 {
                    assert_eq!(t.advance(n), want[n as usize], "{} advance {n}", enc.name());
                }
            }
        }
    }

    #[test]
    fn a_stream_checks_the_declaration_of_utf16() {
        let text = "<?xml version='1.0' encoding='ISO-8859-1'?><r/>";
        let mut doc = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            doc.extend_from_slice(&u.to_le_bytes());
        }
        let r = wrap_reader(Box::new(&doc[..]));
        assert!(r.is_err());
        let text = "<?xml version='1.0' encoding='UTF-16'?><r/>";
        let doc: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let (mut r, _) = wrap_reader(Box::new(&doc[..])).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, text);
    }
}
