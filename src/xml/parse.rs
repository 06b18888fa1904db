//! The parse loop the three source styles share, and its well-formedness
//! checks.
//!
//! The loop reads quick-xml events, checks what quick-xml leaves to its
//! caller (UTF-8, references, attributes, one root element, elements still
//! open at the end), and hands names, attributes and pieces of character
//! data to a private `Handler`: the expat-style, SAX-style and
//! iterparse-style sources are three handlers.

use std::borrow::Cow;
use std::path::Path;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::Event;

use crate::error::{Error, Result};
use crate::stage::Flow;
use crate::xml::chunk::{ChunkEnd, Stops};
use crate::xml::event::{decode_attr, AttrProblem, Tag};
use crate::xml::input::{Src, XmlInput};
use crate::xml::pull::slice::SlicePull;
use crate::xml::pull::stream::StreamPull;
use crate::xml::pull::{Ctx, Pull};

/// The deepest nesting of elements accepted: the stack of open elements is
/// bounded whatever the input.
const MAX_DEPTH: usize = 4096;

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

/// Closes the handler as the source contract says and adds the path to an
/// error.
pub(crate) fn finish<H: Handler>(
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

/// Why the parse loop stopped early.
pub(crate) enum Fail {
    /// The input is bad (or could not be read).
    Input(Error),
    /// A stage failed.
    Stage(Error),
}

/// A problem found while an event still borrows the reader: turned into
/// an [`Error`] with its line and column once the borrow has ended.
pub(crate) enum Problem {
    /// Bad input at a byte offset (boxed: errors are rare, and a small
    /// `Result` keeps the hot path in registers).
    At(Box<(u64, String)>),
    /// Input ends with elements still open: (offset of the innermost
    /// one's `<`, end of input, its name if kept).
    Unclosed(Box<(u64, u64, Option<String>)>),
    Stage(Error),
}

#[cold]
pub(crate) fn problem_at(offset: u64, msg: String) -> Problem {
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
pub(crate) struct Doc {
    /// Keep the names of open elements (a stream cannot look back at
    /// them; bytes in memory can, so there the names are not copied).
    pub(crate) keep_names: bool,
    pub(crate) seen_root: bool,
    /// Open elements: (byte offset of `<`, end of the name in `names`).
    pub(crate) open: Vec<(u64, usize)>,
    pub(crate) names: Vec<u8>,
}

pub(crate) fn parse_loop<P: Pull, H: Handler>(
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
