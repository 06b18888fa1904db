//! [`XmlInput`] and the parse loop the three source styles share.
//!
//! The loop reads quick-xml events, checks what quick-xml leaves to its
//! caller (UTF-8, references, attributes, one root element, elements still
//! open at the end), and hands names, attributes and pieces of character
//! data to a private `Handler`: the expat-style, SAX-style and
//! iterparse-style sources are three handlers.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, Result};
use crate::stage::Flow;
use crate::xml::event::{decode_attr, AttrProblem, Tag};

/// Default size of the read buffer of a streaming input.
const READ_BUFFER: usize = 64 * 1024;

/// Default limit on one piece of markup or text read from a stream.
const MAX_EVENT: u64 = 16 * 1024 * 1024;

/// The deepest nesting of elements accepted: the stack of open elements is
/// bounded whatever the input.
const MAX_DEPTH: usize = 4096;

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
/// and byte offset.
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
    src: Src<'i>,
    path: Option<PathBuf>,
    capacity: usize,
    max_event: u64,
}

enum Src<'i> {
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

/// What the three source styles do with the checked pieces of a document.
pub(crate) trait Handler {
    /// A start tag (also sent for an empty element, followed by `end`).
    fn start(&mut self, tag: &Tag<'_>) -> Result<Flow>;
    /// One piece of character data: a text run, a CDATA section, or one
    /// resolved reference. `ends` is true when the parser can see that no
    /// character data follows at once (the next markup is a tag or the end
    /// of input), so a coalescing handler may send without copying.
    fn text(&mut self, piece: &str, ends: bool) -> Result<Flow>;
    /// An end tag.
    fn end(&mut self, name: &str) -> Result<Flow>;
    /// True when the handler holds nothing between events (no character
    /// data gathered and not yet sent), so that a fresh handler could take
    /// over from here: the parallel parser only splits a document where
    /// this holds.
    fn at_rest(&self) -> bool {
        true
    }
    /// The end of the stream (also before a parse error is returned, so
    /// that everything already accepted is written out).
    fn close(&mut self) -> Result<()>;
}

/// Parses `input`, feeding `handler`, under the source contract: a stage
/// error returns at once; bad input closes the handler first and then
/// returns the error; end of input and `Flow::Stop` close it.
pub(crate) fn drive<H: Handler>(input: XmlInput<'_>, handler: &mut H) -> Result<()> {
    let XmlInput {
        src,
        path,
        capacity,
        max_event,
    } = input;
    let outcome = match src {
        Src::Bytes(bytes) => {
            let mut pull = SlicePull::new(&bytes);
            parse_loop(&mut pull, handler, Doc::default(), Stops::none())
        }
        Src::Reader(reader) => {
            let mut pull = StreamPull::new(reader, capacity, max_event);
            let doc = Doc {
                keep_names: true,
                ..Doc::default()
            };
            parse_loop(&mut pull, handler, doc, Stops::none())
        }
    };
    finish(outcome, handler, path.as_deref()).map(|_| ())
}

/// How a parse of part of a document ended (see [`drive_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkEnd {
    /// End of input, or a stage asked to stop.
    Done,
    /// Reached this stop offset between two events, in the root element's
    /// content, with the handler at rest: a fresh parser started here
    /// gives the same events from here on.
    Boundary(u64),
    /// Passed its stop without being at rest there (speculative parses
    /// only give up there).
    Invalid,
}

/// One part of a document held in memory, for the parallel parser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSpec<'s> {
    /// Where parsing starts: 0, or the `<` of a start tag that is a child
    /// of the root element.
    pub(crate) start: u64,
    /// The byte offset of the root element's `<`, when `start` is past it:
    /// the parser then starts inside the root element, as if it had read
    /// everything before `start`.
    pub(crate) root: Option<u64>,
    /// The offsets where the parse may end (ascending, after `start`):
    /// it ends at the first one it reaches between events in the root's
    /// content with the handler at rest.
    pub(crate) stops: &'s [u64],
    /// Give up ([`ChunkEnd::Invalid`]) at the first stop passed without
    /// being at rest there, instead of going on to the next.
    pub(crate) give_up: bool,
    /// The end of the part of the input this parse is expected to cover:
    /// UTF-8 and line ends are checked up to here once, up front.
    pub(crate) expect_end: u64,
}

/// Parses part of `bytes` as [`ChunkSpec`] says, feeding `handler` under
/// the same contract as [`drive`]. From a boundary the parse is the exact
/// continuation of a parse from the start: the same events, the same
/// errors with the same positions.
pub(crate) fn drive_chunk<H: Handler>(
    bytes: &[u8],
    spec: ChunkSpec<'_>,
    handler: &mut H,
    path: Option<&Path>,
) -> Result<ChunkEnd> {
    let outcome = match spec.root {
        None => {
            let mut pull = SlicePull::range(bytes, spec.start, spec.expect_end);
            parse_loop(&mut pull, handler, Doc::default(), Stops::new(&spec))
        }
        Some(root) => match SlicePull::inside_root(bytes, root, spec.start, spec.expect_end) {
            Some(mut pull) => {
                let doc = Doc {
                    keep_names: false,
                    seen_root: true,
                    open: vec![(root, 0)],
                    names: Vec::new(),
                };
                parse_loop(&mut pull, handler, doc, Stops::new(&spec))
            }
            // Not a start tag at `root`: the caller's guess was wrong.
            None => Ok(ChunkEnd::Invalid),
        },
    };
    finish(outcome, handler, path)
}

/// Closes the handler as the source contract says and adds the path to an
/// error.
fn finish<H: Handler>(
    outcome: Result<ChunkEnd, Fail>,
    handler: &mut H,
    path: Option<&Path>,
) -> Result<ChunkEnd> {
    let result = match outcome {
        Ok(end) => handler.close().map(|()| end),
        Err(Fail::Stage(e)) => Err(e),
        Err(Fail::Input(e)) => {
            // Bad input: what was accepted so far is still written out. An
            // error while closing matters less than the input's own.
            let _ = handler.close();
            Err(e)
        }
    };
    match (result, path) {
        (Err(e), Some(p)) => Err(e.with_path(p)),
        (r, _) => r,
    }
}

/// Where a parse may end early: the stop offsets of a [`ChunkSpec`].
struct Stops<'s> {
    at: &'s [u64],
    give_up: bool,
    /// The next stop (`u64::MAX` when there is none), kept apart so that
    /// the loop tests one number per event.
    next: u64,
}

impl<'s> Stops<'s> {
    fn none() -> Stops<'static> {
        Stops {
            at: &[],
            give_up: false,
            next: u64::MAX,
        }
    }

    fn new(spec: &ChunkSpec<'s>) -> Stops<'s> {
        Stops {
            at: spec.stops,
            give_up: spec.give_up,
            next: spec.stops.first().copied().unwrap_or(u64::MAX),
        }
    }

    /// The parse is at `pos`, at or past the next stop, not at rest there:
    /// move on to the first stop after `pos`.
    fn pass(&mut self, pos: u64) {
        let i = self.at.partition_point(|&s| s <= pos);
        self.at = &self.at[i..];
        self.next = self.at.first().copied().unwrap_or(u64::MAX);
    }
}

/// Why the parse loop stopped early.
enum Fail {
    /// The input is bad (or could not be read).
    Input(Error),
    /// A stage failed.
    Stage(Error),
}

/// A problem found while an event still borrows the reader: turned into
/// an [`Error`] with its line and column once the borrow has ended.
enum Problem {
    /// Bad input at a byte offset (boxed: errors are rare, and a small
    /// `Result` keeps the hot path in registers).
    At(Box<(u64, String)>),
    /// Input ends with elements still open: (offset of the innermost
    /// one's `<`, end of input, its name if kept).
    Unclosed(Box<(u64, u64, Option<String>)>),
    Stage(Error),
}

#[cold]
fn problem_at(offset: u64, msg: String) -> Problem {
    Problem::At(Box::new((offset, msg)))
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        Problem::Stage(e)
    }
}

/// One step of the loop.
enum Step {
    Continue,
    Stop,
    Eof,
}

/// The state the loop checks well-formedness with.
#[derive(Default)]
struct Doc {
    /// Keep the names of open elements (a stream cannot look back at
    /// them; bytes in memory can, so there the names are not copied).
    keep_names: bool,
    seen_root: bool,
    /// Open elements: (byte offset of `<`, end of the name in `names`).
    open: Vec<(u64, usize)>,
    names: Vec<u8>,
}

fn parse_loop<P: Pull, H: Handler>(
    pull: &mut P,
    h: &mut H,
    mut doc: Doc,
    mut stops: Stops<'_>,
) -> Result<ChunkEnd, Fail> {
    loop {
        let start = pull.position();
        if start >= stops.next {
            // At rest in the root element's content: the element stack is
            // the root alone (so quick-xml's stack of open names is too),
            // and nothing is half-read.
            if start == stops.next && doc.open.len() == 1 && h.at_rest() {
                return Ok(ChunkEnd::Boundary(start));
            }
            if stops.give_up {
                return Ok(ChunkEnd::Invalid);
            }
            stops.pass(start);
        }
        pull.settle(start);
        let step = match pull.next() {
            Ok((ev, ctx)) => handle(ev, ctx, start, &mut doc, h),
            Err(e) => return Err(Fail::Input(pull.convert(e))),
        };
        match step {
            Ok(Step::Continue) => {}
            Ok(Step::Stop) | Ok(Step::Eof) => return Ok(ChunkEnd::Done),
            Err(Problem::Stage(e)) => return Err(Fail::Stage(e)),
            Err(Problem::At(b)) => {
                let (offset, msg) = *b;
                return Err(Fail::Input(pull.error_at(offset, msg)));
            }
            Err(Problem::Unclosed(b)) => {
                let (open, eof, name) = *b;
                let name = name.or_else(|| pull.name_at(open)).unwrap_or_default();
                let msg = format!(
                    "unexpected end of input: element `<{name}>` (opened at byte offset {open}) is not closed"
                );
                return Err(Fail::Input(pull.error_at(eof, msg)));
            }
        }
    }
}

#[inline]
fn flow(f: Flow) -> Step {
    match f {
        Flow::Continue => Step::Continue,
        Flow::Stop => Step::Stop,
    }
}

#[inline(always)]
fn handle<'x, H: Handler>(
    ev: Event<'x>,
    ctx: Ctx<'x>,
    start: u64,
    doc: &mut Doc,
    h: &mut H,
) -> Result<Step, Problem> {
    match ev {
        Event::Start(e) => {
            let content = start_tag(&e, ctx, start, doc)?;
            let name = &content[..e.name().as_ref().len()];
            if doc.keep_names {
                doc.open.push((start, doc.names.len() + name.len()));
                doc.names.extend_from_slice(name.as_bytes());
            } else {
                doc.open.push((start, 0));
            }
            Ok(flow(h.start(&Tag::raw(name, content))?))
        }
        Event::Empty(e) => {
            let content = start_tag(&e, ctx, start, doc)?;
            let name = &content[..e.name().as_ref().len()];
            if h.start(&Tag::raw(name, content))?.is_stop() {
                return Ok(Step::Stop);
            }
            Ok(flow(h.end(name)?))
        }
        Event::End(e) => {
            // quick-xml has checked that the name matches its start tag,
            // whose name was checked to be UTF-8.
            let name = ctx
                .str(e.name().0)
                .map_err(|_| problem_at(start, "invalid UTF-8 in an end tag".into()))?;
            doc.open.pop();
            if doc.keep_names {
                let begin = doc.open.last().map_or(0, |&(_, e)| e);
                doc.names.truncate(begin);
            }
            Ok(flow(h.end(name)?))
        }
        Event::Text(e) => {
            if doc.open.is_empty() {
                outside_root(&e, start, doc)?;
                return Ok(Step::Continue);
            }
            let text = decode_text(&e, ctx, start)?;
            Ok(flow(h.text(&text, ctx.text_ends)?))
        }
        Event::CData(e) => {
            if doc.open.is_empty() {
                return Err(outside_root_error(start, doc, "a CDATA section"));
            }
            // <![CDATA[...]]>
            //          ^ content starts 9 bytes after `<`
            let text = decode_text(&e, ctx, start + 9)?;
            Ok(flow(h.text(&text, ctx.text_ends)?))
        }
        Event::GeneralRef(e) => {
            if doc.open.is_empty() {
                return Err(outside_root_error(start, doc, "a reference"));
            }
            let mut utf8 = [0u8; 4];
            let text = resolve_ref(&e, start, &mut utf8)?;
            Ok(flow(h.text(text, ctx.text_ends)?))
        }
        Event::Decl(e) => {
            if let Some(Ok(enc)) = e.encoding() {
                let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                    return Err(problem_at(
                        start,
                        format!("unsupported encoding `{enc}`: copipe reads UTF-8 (convert the file with iconv)"),
                    ));
                }
            }
            Ok(Step::Continue)
        }
        Event::Comment(_) | Event::PI(_) | Event::DocType(_) => Ok(Step::Continue),
        Event::Eof => {
            if let Some(&(open, end)) = doc.open.last() {
                let name = doc.keep_names.then(|| {
                    let begin = doc.open.len().checked_sub(2).map_or(0, |i| doc.open[i].1);
                    String::from_utf8_lossy(&doc.names[begin..end]).into_owned()
                });
                Err(Problem::Unclosed(Box::new((open, start, name))))
            } else if !doc.seen_root {
                Err(problem_at(start, "no element found".into()))
            } else {
                Ok(Step::Eof)
            }
        }
    }
}

/// Checks a start tag (name and attributes are UTF-8, attributes are
/// well-formed, only one root element) and returns its content, the text
/// between `<` and `>` (or `/>`).
#[inline]
fn start_tag<'e, 'x: 'e>(
    e: &'e quick_xml::events::BytesStart<'x>,
    ctx: Ctx<'x>,
    start: u64,
    doc: &mut Doc,
) -> Result<&'e str, Problem> {
    // <bus attr="v">
    //  ^ content starts 1 byte after `<`
    let content = ctx.str(e).map_err(|err| {
        problem_at(
            start + 1 + err.valid_up_to() as u64,
            "invalid UTF-8 in a tag (copipe reads UTF-8)".into(),
        )
    })?;
    if doc.open.len() >= MAX_DEPTH {
        return Err(problem_at(
            start,
            format!("elements nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if doc.open.is_empty() {
        if doc.seen_root {
            return Err(problem_at(
                start,
                "junk after document element: a second root element".into(),
            ));
        }
        doc.seen_root = true;
    }
    let name_len = e.name().as_ref().len();
    if content.len() > name_len {
        check_attrs(content, name_len, start)?;
    }
    Ok(content)
}

/// Checks every attribute once, so that [`Attrs`](crate::xml::Attrs) can
/// decode them later without failing.
#[cold]
fn check_attrs(content: &str, name_len: usize, start: u64) -> Result<(), Problem> {
    for attr in Attributes::new(content, name_len) {
        let attr = attr.map_err(|e| {
            use quick_xml::events::attributes::AttrError as A;
            let pos = match &e {
                A::ExpectedEq(p)
                | A::ExpectedValue(p)
                | A::UnquotedValue(p)
                | A::ExpectedQuote(p, _)
                | A::Duplicated(p, _) => *p,
            };
            problem_at(start + 1 + pos as u64, format!("bad attribute: {e}"))
        })?;
        decode_attr(attr).map_err(|p| {
            let msg = match p {
                AttrProblem::Utf8 => "invalid UTF-8 in an attribute".to_string(),
                AttrProblem::Escape(m) => format!("bad reference in an attribute value: {m}"),
            };
            problem_at(start, msg)
        })?;
    }
    Ok(())
}

/// Character data outside the root element: whitespace is allowed and
/// dropped (as expat does); anything else is an error.
fn outside_root(raw: &[u8], start: u64, doc: &Doc) -> Result<(), Problem> {
    match raw
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        None => Ok(()),
        Some(i) => Err(outside_root_error(start + i as u64, doc, "text")),
    }
}

fn outside_root_error(at: u64, doc: &Doc, what: &str) -> Problem {
    let msg = if doc.seen_root {
        format!("junk after document element: {what} after the root element")
    } else {
        format!("{what} before the root element")
    };
    problem_at(at, msg)
}

/// Decodes a run of text or CDATA starting at byte offset `at`: checks
/// UTF-8 and normalises line ends (`\r\n` and `\r` become `\n`, XML 1.0
/// section 2.11), allocating only when there is a `\r`.
#[inline(always)]
fn decode_text<'e, 'x: 'e>(raw: &'e [u8], ctx: Ctx<'x>, at: u64) -> Result<Cow<'e, str>, Problem> {
    let text = ctx.str(raw).map_err(|err| {
        problem_at(
            at + err.valid_up_to() as u64,
            "invalid UTF-8 in text (copipe reads UTF-8)".into(),
        )
    })?;
    if !ctx.may_have_cr || memchr::memchr(b'\r', raw).is_none() {
        return Ok(Cow::Borrowed(text));
    }
    Ok(Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n")))
}

/// Resolves `&name;` or `&#N;` starting at byte offset `at`.
fn resolve_ref<'b>(
    e: &'b quick_xml::events::BytesRef<'_>,
    at: u64,
    utf8: &'b mut [u8; 4],
) -> Result<&'b str, Problem> {
    let name = std::str::from_utf8(e)
        .map_err(|_| problem_at(at, "invalid UTF-8 in a reference".into()))?;
    if e.is_char_ref() {
        let bad = || problem_at(at, format!("reference to invalid character `&{name};`"));
        match e.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c.encode_utf8(utf8)),
            _ => Err(bad()),
        }
    } else {
        quick_xml::escape::resolve_predefined_entity(name)
            .ok_or_else(|| problem_at(at, format!("undefined entity `&{name};`")))
    }
}

/// The characters XML 1.0 allows (section 2.2).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// How the loop gets events, positions and line numbers from either input
/// form.
trait Pull {
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

    fn error_at(&self, offset: u64, msg: String) -> Error {
        let (line, col) = self.line_col(offset);
        Error::xml(line, col, offset, msg)
    }

    fn convert(&self, e: quick_xml::Error) -> Error {
        match e {
            quick_xml::Error::Io(io) => {
                if let Some(limit) = io.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
                    let at = limit.settled;
                    return self.error_at(
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
            other => self.error_at(self.error_position(), other.to_string()),
        }
    }
}

/// Line and column of `offset` in `bytes` (both 1-based; columns count
/// bytes).
fn line_col_in(bytes: &[u8], offset: u64) -> (u64, u64) {
    let upto = &bytes[..(offset as usize).min(bytes.len())];
    let lines = memchr::memchr_iter(b'\n', upto).count() as u64;
    let col = match memchr::memrchr(b'\n', upto) {
        Some(i) => upto.len() - i,
        None => upto.len() + 1,
    };
    (lines + 1, col as u64)
}

/// The length of the UTF-8 byte order mark at the start of `input`, if
/// reading starts there.
pub(crate) fn bom_len(input: &[u8], start: u64) -> u64 {
    if start == 0 && input.starts_with(BOM) {
        3
    } else {
        0
    }
}

/// Events borrowed from bytes in memory: the whole input, or a part of
/// it for the parallel parser.
struct SlicePull<'i> {
    /// The whole input (positions and line numbers count from its start).
    input: &'i [u8],
    /// The reader reads a suffix of `input`; `base` turns its positions
    /// into offsets in `input`.
    reader: Reader<&'i [u8]>,
    base: u64,
    /// The checked part of the input, when it is valid UTF-8 (checked once,
    /// up front).
    doc: Option<&'i str>,
    /// The end of the checked part: events past it are checked one by one.
    checked_end: u64,
    /// False when the checked part holds no `\r`.
    may_have_cr: bool,
}

impl<'i> SlicePull<'i> {
    fn new(input: &'i [u8]) -> SlicePull<'i> {
        SlicePull::range(input, 0, input.len() as u64)
    }

    /// Reads from `start`, which is 0 or the `<` of some markup; checks
    /// `start..end` up front.
    fn range(input: &'i [u8], start: u64, end: u64) -> SlicePull<'i> {
        let mut reader = Reader::from_reader(input.get(start as usize..).unwrap_or_default());
        reader.config_mut().check_comments = true;
        // quick-xml skips a byte order mark without counting it: count it
        // here, so that positions are offsets in the input.
        let base = start + bom_len(input, start);
        SlicePull::checked(input, reader, base, start, end)
    }

    /// Reads from `start` as if the reader had read everything from the
    /// document's start to there, and `start` is in the content of the
    /// root element whose `<` is at `root`. None if there is no start tag
    /// at `root`.
    fn inside_root(input: &'i [u8], root: u64, start: u64, end: u64) -> Option<SlicePull<'i>> {
        let mut reader = Reader::from_reader(input.get(root as usize..)?);
        reader.config_mut().check_comments = true;
        // Read the root's start tag, so that quick-xml's stack of open
        // names holds it (it checks end tags against that stack), then
        // move the reader on to `start`:
        //
        // <buses>...........<bus>
        // ^root  ^after     ^start
        //  reader positions count from `root`, so base = start - after.
        match reader.read_event() {
            Ok(Event::Start(_)) => {}
            _ => return None,
        }
        let after = reader.buffer_position();
        if root + after > start {
            return None;
        }
        *reader.get_mut() = input.get(start as usize..)?;
        Some(SlicePull::checked(input, reader, start - after, start, end))
    }

    fn checked(
        input: &'i [u8],
        reader: Reader<&'i [u8]>,
        base: u64,
        start: u64,
        end: u64,
    ) -> SlicePull<'i> {
        let end = end.min(input.len() as u64).max(start);
        let part = &input[start as usize..end as usize];
        SlicePull {
            input,
            reader,
            base,
            doc: std::str::from_utf8(part).ok(),
            checked_end: end,
            may_have_cr: memchr::memchr(b'\r', part).is_some(),
        }
    }
}

/// What the parse loop may assume about one event.
#[derive(Clone, Copy)]
struct Ctx<'x> {
    /// The whole input as a `str`, when it is known to be valid UTF-8: the
    /// event's bytes are then a slice of it and need no second check.
    doc: Option<&'x str>,
    /// False when the input is known to hold no `\r`.
    may_have_cr: bool,
    /// After character data: the next markup is certainly not character
    /// data (it is a tag, or the end of input).
    text_ends: bool,
}

impl<'x> Ctx<'x> {
    /// `bytes` as a `str`. If `bytes` lies inside a document already known
    /// to be UTF-8, this is the same memory sliced out of that `str` (a
    /// bounds and boundary check, no scan); otherwise it is checked.
    #[inline]
    fn str<'b>(&self, bytes: &'b [u8]) -> Result<&'b str, std::str::Utf8Error>
    where
        'x: 'b,
    {
        if let Some(doc) = self.doc {
            // Addresses only, no pointer is dereferenced: where `bytes`
            // starts relative to the document.
            let off = (bytes.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
            if off <= doc.len() && bytes.len() <= doc.len() - off {
                if let Some(s) = doc.get(off..off + bytes.len()) {
                    return Ok(s);
                }
            }
        }
        std::str::from_utf8(bytes)
    }
}

impl Pull for SlicePull<'_> {
    fn name_at(&self, offset: u64) -> Option<String> {
        // <bus attr="v">
        //  ^^^ the name runs from after `<` to a space, `/` or `>`
        let rest = self.input.get(offset as usize + 1..)?;
        let end = rest
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
            .unwrap_or(rest.len());
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    #[inline]
    fn position(&self) -> u64 {
        self.base + self.reader.buffer_position()
    }
    #[inline]
    fn settle(&mut self, _at: u64) {}
    // Always inlined: the event and context are returned in registers
    // rather than through memory, a good part of the per-event cost.
    #[inline(always)]
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)> {
        let ev = self.reader.read_event()?;
        let p = self.base + self.reader.buffer_position();
        let text_ends = match ev {
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                // The reader stopped at the `<` of the next markup, at a
                // `&`, or at the end. `<!` may be a CDATA section or a
                // comment and `<?` a processing instruction, after which
                // character data may go on.
                let p = p as usize;
                match self.input.get(p) {
                    None => true,
                    Some(b'<') => !matches!(self.input.get(p + 1), Some(b'!' | b'?')),
                    Some(_) => false,
                }
            }
            _ => false,
        };
        // An event that ends past the checked part may hold a `\r` (its
        // UTF-8 is checked by `Ctx::str`, which sees it is not inside
        // `doc`).
        let ctx = Ctx {
            doc: self.doc,
            may_have_cr: self.may_have_cr || p > self.checked_end,
            text_ends,
        };
        Ok((ev, ctx))
    }
    fn line_col(&self, offset: u64) -> (u64, u64) {
        line_col_in(self.input, offset)
    }
    fn error_position(&self) -> u64 {
        self.base + self.reader.error_position()
    }
}

/// Events read through a fixed buffer from a stream.
struct StreamPull<'r> {
    reader: Reader<CountingReader<'r>>,
    buf: Vec<u8>,
    /// The length of the byte order mark taken off the stream (0 or 3):
    /// quick-xml's positions start after it, ours at the stream's start.
    base: u64,
}

impl<'r> StreamPull<'r> {
    fn new(inner: Box<dyn Read + 'r>, capacity: usize, max_event: u64) -> StreamPull<'r> {
        let (inner, base) = Unmarked::new(inner);
        let mut counting = CountingReader::new(Box::new(inner), capacity, max_event);
        counting.chunk_start = base;
        counting.settled = base;
        let mut reader = Reader::from_reader(counting);
        reader.config_mut().check_comments = true;
        StreamPull {
            reader,
            buf: Vec::new(),
            base,
        }
    }
}

/// A UTF-8 byte order mark.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// A stream with its byte order mark, if any, taken off before quick-xml
/// sees it. quick-xml skips a mark without counting it in its positions,
/// and one split across reads (a read buffer under 3 bytes) it does not
/// recognise at all; taking it off here gives every buffer size the
/// in-memory parse's events and positions.
struct Unmarked<'r> {
    /// The first bytes of the stream, read to look for the mark, and
    /// replayed unless they are one.
    head: [u8; 3],
    pos: usize,
    len: usize,
    /// An error met while reading the head, returned after the head.
    err: Option<io::Error>,
    inner: Box<dyn Read + 'r>,
}

impl<'r> Unmarked<'r> {
    /// Reads up to three bytes of `inner`: the reader, and the length of
    /// the mark taken off (0 or 3).
    fn new(mut inner: Box<dyn Read + 'r>) -> (Unmarked<'r>, u64) {
        let mut head = [0u8; 3];
        let (mut len, mut err) = (0, None);
        while len < head.len() {
            match inner.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let mark = if head == *BOM { BOM.len() } else { 0 };
        let reader = Unmarked {
            head,
            pos: mark,
            len,
            err,
            inner,
        };
        (reader, mark as u64)
    }
}

impl Read for Unmarked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.inner.read(buf)
    }
}

impl Pull for StreamPull<'_> {
    #[inline]
    fn position(&self) -> u64 {
        self.base + self.reader.buffer_position()
    }
    #[inline]
    fn settle(&mut self, at: u64) {
        self.reader.get_mut().settled = at;
    }
    #[inline]
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)> {
        self.buf.clear();
        let base = self.base;
        let ev = self.reader.read_event_into(&mut self.buf)?;
        let text_ends = match ev {
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                // After character data the reader has either consumed the
                // `<` of the next markup (one byte past its position) or
                // stopped before a `&`. Look at the byte after the `<` if
                // it is already buffered; when it is not, assume more
                // character data may follow (the text is then copied).
                let r = self.reader.get_ref();
                let consumed = r.chunk_start + r.pos as u64;
                consumed == base + self.reader.buffer_position() + 1
                    && r.pos < r.end
                    && !matches!(r.buf[r.pos], b'!' | b'?')
            }
            _ => false,
        };
        let ctx = Ctx {
            doc: None,
            may_have_cr: true,
            text_ends,
        };
        Ok((ev, ctx))
    }
    fn line_col(&self, offset: u64) -> (u64, u64) {
        self.reader.get_ref().line_col(offset)
    }
    fn error_position(&self) -> u64 {
        self.base + self.reader.error_position()
    }
}

/// The error a [`CountingReader`] returns when one event grows past the
/// limit.
#[derive(Debug)]
struct TooLarge {
    settled: u64,
    max: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event longer than {} bytes", self.max)
    }
}

impl std::error::Error for TooLarge {}

/// A buffered reader that keeps line numbers without rescanning: when a
/// chunk is dropped, its newlines before the settled position are counted
/// into a total, and those after it (the event in progress) are remembered
/// one by one until they settle. So any error position at or after the
/// settled position has an exact line and column, and the per-event cost
/// is one store (`settled`).
struct CountingReader<'r> {
    inner: Box<dyn Read + 'r>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Byte offset of `buf[0]`.
    chunk_start: u64,
    /// Everything before this offset belongs to finished events.
    settled: u64,
    /// Newlines counted in dropped chunks (all before `pending`'s).
    lines_before: u64,
    /// Offset of the last newline counted in `lines_before`.
    last_nl: Option<u64>,
    /// Offsets of newlines in dropped chunks at or after the settled
    /// position of their time, ascending.
    pending: Vec<u64>,
    max_event: u64,
}

impl<'r> CountingReader<'r> {
    fn new(inner: Box<dyn Read + 'r>, capacity: usize, max_event: u64) -> CountingReader<'r> {
        CountingReader {
            inner,
            buf: vec![0; capacity].into_boxed_slice(),
            pos: 0,
            end: 0,
            chunk_start: 0,
            settled: 0,
            lines_before: 0,
            last_nl: None,
            pending: Vec::new(),
            max_event,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        let settled = self.settled;
        let settled_pending = self.pending.partition_point(|&nl| nl < settled);
        if settled_pending > 0 {
            self.lines_before += settled_pending as u64;
            self.last_nl = Some(self.pending[settled_pending - 1]);
            self.pending.drain(..settled_pending);
        }
        let chunk = &self.buf[..self.end];
        let split = (settled.saturating_sub(self.chunk_start) as usize).min(chunk.len());
        let (done, open) = chunk.split_at(split);
        self.lines_before += memchr::memchr_iter(b'\n', done).count() as u64;
        if let Some(i) = memchr::memrchr(b'\n', done) {
            self.last_nl = Some(self.chunk_start + i as u64);
        }
        let open_start = self.chunk_start + split as u64;
        self.pending
            .extend(memchr::memchr_iter(b'\n', open).map(|i| open_start + i as u64));
        self.chunk_start += self.end as u64;
        self.pos = 0;
        self.end = 0;
        if self.chunk_start - settled.min(self.chunk_start) > self.max_event {
            return Err(io::Error::other(TooLarge {
                settled,
                max: self.max_event,
            }));
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn line_col(&self, offset: u64) -> (u64, u64) {
        let mut lines = self.lines_before;
        let mut last = self.last_nl;
        for &nl in self.pending.iter().take_while(|&&nl| nl < offset) {
            lines += 1;
            last = Some(nl);
        }
        if offset > self.chunk_start {
            let upto = ((offset - self.chunk_start) as usize).min(self.end);
            let part = &self.buf[..upto];
            lines += memchr::memchr_iter(b'\n', part).count() as u64;
            if let Some(i) = memchr::memrchr(b'\n', part) {
                last = Some(self.chunk_start + i as u64);
            }
        }
        let col = offset - last.map_or(0, |l| l + 1) + 1;
        (lines + 1, col)
    }
}

impl Read for CountingReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for CountingReader<'_> {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.end {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.end])
    }
    #[inline]
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
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

    #[test]
    fn counting_reader_agrees_with_a_rescan_at_every_offset() {
        let text = b"a\nbc\n\nd\nefgh\ni\n\njk";
        for cap in 1..6 {
            for settle_at in 0..text.len() as u64 {
                let mut r = CountingReader::new(Box::new(&text[..]), cap, 1 << 20);
                let mut total = 0;
                // Read everything, settling at `settle_at` once it is reached.
                loop {
                    if total as u64 >= settle_at {
                        r.settled = settle_at;
                    }
                    let n = r.fill_buf().unwrap().len();
                    if n == 0 {
                        break;
                    }
                    r.consume(n.min(2));
                    total += n.min(2);
                    // Check each offset still in reach (>= settled).
                    for off in r.settled..=(r.chunk_start + r.end as u64) {
                        assert_eq!(
                            r.line_col(off),
                            line_col_in(text, off),
                            "cap {cap} settle {settle_at} offset {off}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn counting_reader_refuses_an_endless_event() {
        let text = [b'x'; 100];
        let mut r = CountingReader::new(Box::new(&text[..]), 8, 20);
        let mut err = None;
        for _ in 0..100 {
            match r.fill_buf() {
                Ok(b) => {
                    let n = b.len();
                    r.consume(n)
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.expect("the limit must trip");
        assert!(err.get_ref().unwrap().downcast_ref::<TooLarge>().is_some());
    }
}
