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

use quick_xml::events::Event;

use crate::error::{Error, Result};
use crate::stage::Flow;
use crate::xml::chunk::{ChunkEnd, Stops};
use crate::xml::dtd::{self, Dtd, Entity};
use crate::xml::event::Tag;
use crate::xml::input::encoding::{self, Decoded};
use crate::xml::input::{Src, XmlInput};
use crate::xml::lexical::{self, Bad};
use crate::xml::pull::doctype::BAD_UTF8 as DOCTYPE_UTF8;
use crate::xml::pull::remapped::{Back, Remapped};
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
    /// False when the handler would drop the character data that follows
    /// at once (no stage reads it): the loop then only checks it, and does
    /// not call `text`.
    #[inline(always)]
    fn wants_text(&self) -> bool {
        true
    }
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
        Src::Bytes(bytes) => match encoding::decode_bytes(&bytes) {
            Ok(Decoded::Utf8) => {
                let mut pull = SlicePull::new(&bytes);
                parse_loop(&mut pull, handler, Doc::default(), Stops::none())
            }
            // Not UTF-8: parsed as decoded to UTF-8, errors mapped back.
            Ok(Decoded::Text(utf8, origin)) => {
                let back = Back::Memory {
                    input: &bytes,
                    origin,
                };
                let mut pull = Remapped::new(SlicePull::new(&utf8), back);
                parse_loop(&mut pull, handler, Doc::default(), Stops::none())
            }
            // A malformed sequence: parsed as a stream of the same bytes.
            Ok(Decoded::Cut(text, origin)) => {
                let back = Back::Memory {
                    input: &bytes,
                    origin,
                };
                stream(text, capacity, u64::MAX, handler, Some(back))
            }
            Err(e) => Err(Fail::Input(e)),
        },
        Src::Reader(reader) => match encoding::wrap_reader(reader) {
            Ok((reader, track)) => {
                let back = track.map(Back::stream);
                stream(reader, capacity, max_event, handler, back)
            }
            Err(e) => Err(Fail::Input(
                match e
                    .get_ref()
                    .and_then(|r| r.downcast_ref::<encoding::Mismatch>())
                {
                    Some(m) => Error::xml(1, 1, 0, m.0.clone()),
                    None => e.into(),
                },
            )),
        },
    };
    finish(outcome, handler, path.as_deref()).map(|_| ())
}

/// The parse of a stream (decoded to UTF-8; `back` maps its offsets back
/// to the input when it was decoded).
fn stream<H: Handler>(
    reader: Box<dyn std::io::Read + '_>,
    capacity: usize,
    max_event: u64,
    handler: &mut H,
    back: Option<Back<'_>>,
) -> Result<ChunkEnd, Fail> {
    let pull = StreamPull::new(reader, capacity, max_event);
    let doc = Doc {
        keep_names: true,
        ..Doc::default()
    };
    match back {
        None => parse_loop(&mut { pull }, handler, doc, Stops::none()),
        Some(back) => parse_loop(&mut Remapped::new(pull, back), handler, doc, Stops::none()),
    }
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
#[derive(PartialEq)]
enum Step {
    Continue,
    Stop,
    Eof,
    /// A DOCTYPE's content, as quick-xml gives it (checked and parsed
    /// once the event's end is known).
    Doctype(Box<[u8]>),
}

/// The state the loop checks well-formedness with.
#[derive(Default)]
pub(crate) struct Doc {
    /// Keep the names of open elements (a stream cannot look back at
    /// them; bytes in memory can, so there the names are not copied).
    pub(crate) keep_names: bool,
    pub(crate) seen_root: bool,
    /// A DOCTYPE was read (there may be one, before the root).
    pub(crate) seen_doctype: bool,
    /// Some event was read (an XML declaration may only come first).
    pub(crate) seen_any: bool,
    /// Open elements: (byte offset of `<`, end of the name in `names`).
    pub(crate) open: Vec<(u64, usize)>,
    pub(crate) names: Vec<u8>,
    /// What the DOCTYPE declared, if there was one.
    pub(crate) dtd: Option<Box<Dtd>>,
    /// The XML declaration says `standalone="yes"`.
    pub(crate) standalone: bool,
    /// Element names already checked against `Name`.
    pub(crate) known_names: lexical::NameCache,
    /// The attributes of the start tag just read, when a value refers to
    /// an entity of the DTD: resolved and normalised by the parser, since
    /// [`Attrs`](crate::xml::Attrs) cannot see the DTD.
    pub(crate) resolved: Option<Vec<(String, String)>>,
}

/// Sends a start tag whose attributes the parser resolved (see
/// [`Doc::resolved`]).
#[cold]
fn start_resolved<H: Handler>(name: &str, doc: &mut Doc, h: &mut H) -> Result<Step, Problem> {
    let attrs = doc.resolved.take().unwrap_or_default();
    Ok(flow(h.start(&Tag::with_attrs(name, &attrs))?))
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
            // At rest: the element stack is the one the chunk after the
            // stop starts in (the root alone, or the records' ancestors;
            // so quick-xml's stack of open names is too), and nothing is
            // half-read.
            if start == stops.next && stops.open_is(&doc.open) && h.at_rest() {
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
            Ok(Step::Doctype(content)) => {
                let content = match pull.doctype_read(start, content) {
                    Ok(c) => c,
                    Err(e) => return Err(Fail::Input(pull.convert(e))),
                };
                match doctype(pull, start, content) {
                    Ok(d) => doc.dtd = Some(Box::new(d)),
                    Err((offset, msg)) => return Err(Fail::Input(pull.error_at(offset, msg))),
                }
            }
            Err(Problem::Stage(e)) => return Err(Fail::Stage(e)),
            Err(Problem::At(b)) => {
                let (offset, msg) = *b;
                return Err(Fail::Input(pull.error_at(offset, msg)));
            }
            Err(Problem::Unclosed(b)) => {
                let (open, eof, name) = *b;
                let name = name.or_else(|| pull.name_at(open)).unwrap_or_default();
                let msg = format!(
                    "unexpected end of input: element `<{name}>` (opened at byte offset {}) is not closed",
                    pull.input_offset(open)
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
            let (name, content) = start_tag(&e, ctx, start, doc)?;
            if doc.keep_names {
                doc.open.push((start, doc.names.len() + name.len()));
                doc.names.extend_from_slice(name.as_bytes());
            } else {
                doc.open.push((start, 0));
            }
            if doc.resolved.is_some() {
                return start_resolved(name, doc, h);
            }
            Ok(flow(h.start(&Tag::raw(name, content))?))
        }
        Event::Empty(e) => {
            let (name, content) = start_tag(&e, ctx, start, doc)?;
            if doc.resolved.is_some() {
                if start_resolved(name, doc, h)? == Step::Stop {
                    return Ok(Step::Stop);
                }
            } else if h.start(&Tag::raw(name, content))?.is_stop() {
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
                doc.seen_any = true;
                return Ok(Step::Continue);
            }
            if !h.wants_text() {
                return unread_text(&e, ctx, start).map(|()| Step::Continue);
            }
            let text = checked_str(ctx, &e, start, "text")?;
            no_cdata_end(&e, ctx, start)?;
            if ctx.may_have_cr && memchr::memchr(b'\r', &e).is_some() {
                return text_with_cr(text, ctx.text_ends, h);
            }
            Ok(flow(h.text(text, ctx.text_ends)?))
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
            let text = match predefined(&e) {
                Some(text) => text,
                None => match resolve_ref(&e, start, &mut utf8) {
                    Ok(text) => text,
                    Err(p) => return expand(&e, start, doc, h, p),
                },
            };
            Ok(flow(h.text(text, ctx.text_ends)?))
        }
        Event::Decl(e) => {
            if doc.seen_any {
                return Err(problem_at(
                    start,
                    "an XML declaration is allowed only at the very start of the document".into(),
                ));
            }
            doc.seen_any = true;
            // <?xml version="1.0"?>
            //  ^^^^^ the content starts 2 bytes after `<`, the
            //        pseudo-attributes 3 bytes into it
            let raw: &[u8] = &e;
            let s = checked_str(ctx, raw, start + 2, "an XML declaration")?;
            lexical::check_declaration(&s[3..], false).map_err(|b| bad_at(start + 5, b))?;
            doc.standalone = dtd::is_standalone(s);
            if let Some(Ok(enc)) = e.encoding() {
                let label = String::from_utf8_lossy(&enc);
                if !encoding::supported(&label) {
                    return Err(problem_at(start, encoding::unsupported(&label)));
                }
            }
            Ok(Step::Continue)
        }
        Event::Comment(e) => {
            doc.seen_any = true;
            // <!--...-->
            //     ^ content starts 4 bytes after `<`
            checked_str(ctx, &e, start + 4, "a comment")?;
            if e.last() == Some(&b'-') {
                // <!-- a --->: the `--` before `->` is in the comment.
                return Err(problem_at(
                    start + 4 + e.len() as u64 - 1,
                    "`--` is not allowed in a comment".into(),
                ));
            }
            Ok(Step::Continue)
        }
        Event::PI(e) => {
            doc.seen_any = true;
            // <?target data?>
            //  ^ content starts 2 bytes after `<`
            let s = checked_str(ctx, &e, start + 2, "a processing instruction")?;
            let target = &s[..e.target().len()];
            lexical::check_name(target, "processing instruction target")
                .map_err(|b| bad_at(start + 2, b))?;
            if target.eq_ignore_ascii_case("xml") {
                let msg = if target == "xml" {
                    "an XML declaration is allowed only at the very start of the document".into()
                } else {
                    format!("processing instruction target `{target}` is reserved")
                };
                return Err(problem_at(start, msg));
            }
            Ok(Step::Continue)
        }
        Event::DocType(e) => {
            if doc.seen_root {
                return Err(problem_at(
                    start,
                    "a DOCTYPE is allowed only before the root element".into(),
                ));
            }
            if doc.seen_doctype {
                return Err(problem_at(start, "a second DOCTYPE".into()));
            }
            doc.seen_doctype = true;
            doc.seen_any = true;
            let _ = ctx;
            let raw: &[u8] = &e;
            Ok(Step::Doctype(raw.into()))
        }
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

/// Checks and parses a DOCTYPE whose `<` is at `start`: `content` is
/// what follows `<!DOCTYPE` and its spaces, up to the closing `>` where
/// the reader now is.
#[cold]
fn doctype<P: Pull>(pull: &P, start: u64, mut content: Box<[u8]>) -> Result<Dtd, (u64, String)> {
    // <!DOCTYPE r [...]>
    //           ^ base, the content ending just before the final `>`
    let base = pull.position() - 1 - content.len() as u64;
    pull.restore(base, &mut content);
    // UTF-8 first: the memory form may find it while reading the event.
    let s = std::str::from_utf8(&content)
        .map_err(|e| (base + e.valid_up_to() as u64, DOCTYPE_UTF8.to_string()))?;
    if !pull.doctype_keyword_ok(start) {
        return Err((start + 2, "the keyword is `DOCTYPE`, in capitals".into()));
    }
    lexical::check_chars(&content).map_err(|(i, m)| (base + i as u64, m))?;
    // The name is the content's first word.
    let n = s
        .bytes()
        .position(|b| lexical::is_space(b) || b == b'[')
        .unwrap_or(s.len());
    lexical::check_name(&s[..n], "the DOCTYPE's root element")
        .map_err(|_| (start, format!("bad DOCTYPE name `{}`", &s[..n])))?;
    dtd::parse(s, base)
}

/// Checks a start tag (its name, its attributes, only one root element)
/// and returns its name and its content, the text between `<` and `>`
/// (or `/>`).
#[inline(always)]
fn start_tag<'e, 'x: 'e>(
    e: &'e quick_xml::events::BytesStart<'x>,
    ctx: Ctx<'x>,
    start: u64,
    doc: &mut Doc,
) -> Result<(&'e str, &'e str), Problem> {
    // <bus attr="v">
    //  ^ content starts 1 byte after `<`
    let content = checked_str(ctx, e, start + 1, "a tag")?;
    if doc.open.len() >= MAX_DEPTH {
        return Err(problem_at(
            start,
            format!("elements nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    doc.seen_any = true;
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
    let name = &content[..name_len];
    doc.known_names
        .check(name, "element")
        .map_err(|b| bad_at(start + 1, b))?;
    if content.len() > name_len {
        check_attrs(content, name_len, start, doc)?;
    }
    Ok((name, content))
}

/// Checks the attribute list once (syntax, uniqueness, the references in
/// values), so that [`Attrs`](crate::xml::Attrs) can decode them later
/// without failing. When a value refers to an entity of the DTD, the
/// attributes are resolved here instead, into [`Doc::resolved`].
#[cold]
fn check_attrs(content: &str, name_len: usize, start: u64, doc: &mut Doc) -> Result<(), Problem> {
    let has_dtd = doc.dtd.is_some();
    let mut uses_dtd = false;
    lexical::check_attr_list(content, name_len, |a| {
        let value = &content[a.value.0..a.value.1];
        uses_dtd |= check_value_refs(value, has_dtd).map_err(|(i, m)| (a.value.0 + i, m))?;
        Ok(())
    })
    .map_err(|b| bad_at(start + 1, b))?;
    if uses_dtd {
        if let Some(dtd) = doc.dtd.as_deref_mut() {
            let list = resolve_attrs(content, name_len, start + 1, dtd, doc.standalone)
                .map_err(|b| bad_at(start + 1, b))?;
            doc.resolved = Some(list);
        }
    }
    Ok(())
}

/// Checks every reference in an attribute value: `&` starts a reference
/// that ends with `;`, to a legal character, a predefined entity or (when
/// there is a DTD) a name. True if some reference is to an entity of the
/// DTD (checked when it is resolved).
fn check_value_refs(value: &str, has_dtd: bool) -> Result<bool, Bad> {
    let mut uses_dtd = false;
    for amp in memchr::memchr_iter(b'&', value.as_bytes()) {
        let rest = &value[amp + 1..];
        let Some(semi) = memchr::memchr(b';', rest.as_bytes()) else {
            return Err((
                amp,
                "`&` must start a reference ending with `;` (write `&amp;`)".into(),
            ));
        };
        let body = &rest[..semi];
        if let Err(m) = ref_target(body) {
            if !has_dtd || body.starts_with('#') || lexical::check_name(body, "entity").is_err() {
                return Err((amp, m));
            }
            uses_dtd = true;
        }
    }
    Ok(uses_dtd)
}

/// Resolves and normalises every attribute of a tag (`content` starts at
/// byte offset `base`), with the entities of `dtd`. Cold: only a tag
/// whose values refer to the DTD comes here, so the checked tags pay no
/// allocation for it.
#[cold]
fn resolve_attrs(
    content: &str,
    name_len: usize,
    base: u64,
    dtd: &mut Dtd,
    standalone: bool,
) -> Result<Vec<(String, String)>, Bad> {
    // The values' spans, found again (the list is already checked).
    let mut spans = Vec::new();
    lexical::check_attr_list(content, name_len, |a| {
        spans.push(a.value);
        Ok(())
    })?;
    let spans = &spans[..];
    let keys = quick_xml::events::attributes::Attributes::new(content, name_len);
    let mut list = Vec::with_capacity(spans.len());
    for (attr, &(from, to)) in keys.zip(spans) {
        let key = attr
            .ok()
            .and_then(|a| std::str::from_utf8(a.key.0).ok().map(str::to_string))
            .unwrap_or_default();
        let mut value = String::with_capacity(to - from);
        let mut v = ValueCtx {
            dtd,
            standalone,
            at: base + from as u64,
            out: &mut value,
        };
        v.append(&content[from..to], None)
            .map_err(|(i, m)| (from + i, m))?;
        list.push((key, value));
    }
    Ok(list)
}

/// Attribute-value normalisation (XML 1.0 section 3.3.3, for CDATA
/// attributes): white space characters become spaces (`\r\n` one space),
/// character references their character, entity references their
/// replacement text, normalised in turn.
struct ValueCtx<'d> {
    dtd: &'d mut Dtd,
    standalone: bool,
    /// Byte offset of the value (for the amplification bound).
    at: u64,
    out: &'d mut String,
}

impl ValueCtx<'_> {
    /// Appends `text`, the value itself (`entity` None) or the replacement
    /// text of `entity`; an error at a byte index of `text`.
    fn append(&mut self, text: &str, entity: Option<&str>) -> Result<(), Bad> {
        let b = text.as_bytes();
        let (mut i, mut run) = (0, 0);
        while i < b.len() {
            match b[i] {
                b'\t' | b'\n' | b'\r' => {
                    self.out.push_str(&text[run..i]);
                    self.out.push(' ');
                    // In the value itself a CR LF pair is one line end;
                    // in replacement text each character counts (its line
                    // ends were normalised when it was declared).
                    let pair = entity.is_none() && b[i] == b'\r' && b.get(i + 1) == Some(&b'\n');
                    i += if pair { 2 } else { 1 };
                    run = i;
                }
                b'<' => {
                    let name = entity.unwrap_or_default();
                    return Err((
                        i,
                        format!("entity `&{name};` holds a `<`, which is not allowed in an attribute value"),
                    ));
                }
                b'&' => {
                    self.out.push_str(&text[run..i]);
                    let Some(semi) = memchr::memchr(b';', &b[i + 1..]) else {
                        return Err((
                            i,
                            "`&` must start a reference ending with `;` (write `&amp;`)".into(),
                        ));
                    };
                    let body = &text[i + 1..i + 1 + semi];
                    match ref_target(body) {
                        Ok(RefTarget::Char(c)) => self.out.push(c),
                        Ok(RefTarget::Text(t)) => self.out.push_str(t),
                        Err(m) => self.entity(body, m).map_err(|m| (i, m))?,
                    }
                    i += semi + 2;
                    run = i;
                }
                _ => i += 1,
            }
        }
        self.out.push_str(&text[run..]);
        Ok(())
    }

    /// Appends the replacement text of `&name;`; `undefined` is the
    /// error if it is not declared (and may not be skipped).
    fn entity(&mut self, name: &str, undefined: String) -> Result<(), String> {
        if name.starts_with('#') || lexical::check_name(name, "entity").is_err() {
            return Err(undefined);
        }
        let text = match self.dtd.entities.get(name) {
            // As expat without an external-entity handler: skipped.
            None if self.dtd.may_skip && !self.standalone => return Ok(()),
            None => return Err(undefined),
            Some(Entity::External) => {
                return Err(format!(
                    "reference to external entity `&{name};` in an attribute value"
                ))
            }
            Some(Entity::Unparsed) => {
                return Err(format!("reference to unparsed entity `&{name};`"))
            }
            Some(Entity::Internal(text)) => text.clone(),
        };
        if self.dtd.stack.iter().any(|s| s == name) {
            return Err(format!("recursive reference to entity `&{name};`"));
        }
        if self.dtd.stack.len() >= dtd::MAX_DEPTH {
            return Err(format!(
                "entity references nested deeper than {} levels",
                dtd::MAX_DEPTH
            ));
        }
        self.dtd.count(text.len(), self.at)?;
        self.dtd.stack.push(name.to_string());
        let outcome = self.append(&text, Some(name));
        self.dtd.stack.pop();
        outcome.map_err(|(_, m)| {
            if m.starts_with("in the replacement text") || m.starts_with("entity") {
                m
            } else {
                format!("in the replacement text of entity `&{name};`: {m}")
            }
        })
    }
}

/// What `&body;` refers to: a character (checked to be a `Char`) or a
/// predefined entity's text.
fn ref_target(body: &str) -> Result<RefTarget<'_>, String> {
    if let Some(num) = body.strip_prefix('#') {
        return dtd::char_ref(num)
            .map(RefTarget::Char)
            .ok_or_else(|| format!("reference to invalid character `&{body};`"));
    }
    if let Err((_, m)) = lexical::check_name(body, "entity reference") {
        return Err(m);
    }
    quick_xml::escape::resolve_predefined_entity(body)
        .map(RefTarget::Text)
        .ok_or_else(|| format!("undefined entity `&{body};`"))
}

/// What a reference stands for.
enum RefTarget<'a> {
    Char(char),
    Text(&'a str),
}

/// `raw` as a `str` of `Char`s, starting at byte offset `at`; `what` says
/// where in a message.
#[inline(always)]
fn checked_str<'e, 'x: 'e>(
    ctx: Ctx<'x>,
    raw: &'e [u8],
    at: u64,
    what: &str,
) -> Result<&'e str, Problem> {
    let s = ctx.str(raw).map_err(|err| {
        problem_at(
            at + err.valid_up_to() as u64,
            format!("invalid UTF-8 in {what} (copipe reads UTF-8)"),
        )
    })?;
    if !ctx.chars_ok {
        lexical::check_chars(raw).map_err(|b| bad_at(at, b))?;
    }
    Ok(s)
}

/// A [`Bad`] found in bytes that start at byte offset `base`.
#[cold]
fn bad_at(base: u64, (i, msg): Bad) -> Problem {
    problem_at(base + i as u64, msg)
}

/// `]]>` may not appear in character data (XML 1.0 [14]). Text rarely
/// holds a `>` at all, so a plain loop (no call) looks for one first.
#[inline(always)]
fn no_cdata_end(raw: &[u8], ctx: Ctx<'_>, start: u64) -> Result<(), Problem> {
    if ctx.no_cdata_close || !raw.contains(&b'>') {
        return Ok(());
    }
    cdata_end_in_text(raw, start)
}

#[cold]
fn cdata_end_in_text(raw: &[u8], start: u64) -> Result<(), Problem> {
    for gt in memchr::memchr_iter(b'>', raw) {
        if gt >= 2 && &raw[gt - 2..gt] == b"]]" {
            return Err(problem_at(
                start + gt as u64 - 2,
                "`]]>` is not allowed in character data".into(),
            ));
        }
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

/// `text` with XML's end-of-line handling (§2.11): `\r\n` and a lone `\r`
/// become `\n`.
pub(crate) fn normalise_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Character data holding a `\r`: sent with its line ends normalised (as
/// [`decode_text`] does), out of the hot path (no `Cow` to drop per text).
#[cold]
fn text_with_cr<H: Handler>(text: &str, ends: bool, h: &mut H) -> Result<Step, Problem> {
    Ok(flow(h.text(&normalise_line_ends(text), ends)?))
}

/// Decodes a run of text or CDATA starting at byte offset `at`: checks
/// UTF-8 and normalises line ends (`\r\n` and `\r` become `\n`, XML 1.0
/// section 2.11), allocating only when there is a `\r`.
#[inline(always)]
fn decode_text<'e, 'x: 'e>(raw: &'e [u8], ctx: Ctx<'x>, at: u64) -> Result<Cow<'e, str>, Problem> {
    let text = checked_str(ctx, raw, at, "text")?;
    if !ctx.may_have_cr || memchr::memchr(b'\r', raw).is_none() {
        return Ok(Cow::Borrowed(text));
    }
    Ok(Cow::Owned(normalise_line_ends(text)))
}

/// Checks text no handler reads as [`decode_text`] and [`no_cdata_end`]
/// do, without making a `str` of it: bytes of the document in memory that
/// were checked up front (UTF-8 and `Char`) need nothing more, since text
/// begins and ends next to ASCII markup, on character boundaries.
#[inline(always)]
fn unread_text(raw: &[u8], ctx: Ctx<'_>, start: u64) -> Result<(), Problem> {
    if !(ctx.chars_ok && ctx.doc.is_some()) {
        checked_str(ctx, raw, start, "text")?;
    }
    no_cdata_end(raw, ctx, start)
}

/// The text of a reference to one of the five predefined entities, matched
/// on its bytes: the common references need no UTF-8, `Name` or table
/// look-up (what [`resolve_ref`] would give for them).
#[inline(always)]
fn predefined(name: &[u8]) -> Option<&'static str> {
    match name {
        b"lt" => Some("<"),
        b"gt" => Some(">"),
        b"amp" => Some("&"),
        b"quot" => Some("\""),
        b"apos" => Some("'"),
        _ => None,
    }
}

/// Resolves `&name;` or `&#N;` starting at byte offset `at`.
fn resolve_ref<'b>(
    e: &'b quick_xml::events::BytesRef<'_>,
    at: u64,
    utf8: &'b mut [u8; 4],
) -> Result<&'b str, Problem> {
    let name = std::str::from_utf8(e)
        .map_err(|_| problem_at(at, "invalid UTF-8 in a reference".into()))?;
    match ref_target(name) {
        Ok(RefTarget::Char(c)) => Ok(c.encode_utf8(utf8)),
        Ok(RefTarget::Text(t)) => Ok(t),
        Err(m) => Err(problem_at(at, m)),
    }
}

/// The characters XML 1.0 allows (section 2.2).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Expands a reference to a general entity declared in the DOCTYPE (the
/// reference `e` at byte offset `at`; `undefined` is the error to return
/// if it is not declared and may not be skipped).
#[cold]
fn expand<H: Handler>(
    e: &[u8],
    at: u64,
    doc: &mut Doc,
    h: &mut H,
    undefined: Problem,
) -> Result<Step, Problem> {
    let Ok(name) = std::str::from_utf8(e) else {
        return Err(undefined);
    };
    let Some(dtd) = doc.dtd.as_deref_mut() else {
        return Err(undefined);
    };
    let text = match dtd.entities.get(name) {
        None if dtd.may_skip && !doc.standalone => return Ok(Step::Continue),
        None => return Err(undefined),
        // As expat without an external-entity handler: skipped.
        Some(Entity::External) => return Ok(Step::Continue),
        Some(Entity::Unparsed) => {
            return Err(problem_at(
                at,
                format!("reference to unparsed entity `&{name};`"),
            ))
        }
        Some(Entity::Internal(text)) => text.clone(),
    };
    if dtd.stack.iter().any(|s| s == name) {
        return Err(problem_at(
            at,
            format!("recursive reference to entity `&{name};`"),
        ));
    }
    if dtd.stack.len() >= dtd::MAX_DEPTH {
        return Err(problem_at(
            at,
            format!(
                "entity references nested deeper than {} levels",
                dtd::MAX_DEPTH
            ),
        ));
    }
    dtd.count(text.len(), at).map_err(|m| problem_at(at, m))?;
    if !text.contains(['<', '&']) {
        return Ok(flow(h.text(&text, false)?));
    }
    dtd.stack.push(name.to_string());
    let mut sub = Doc {
        seen_root: true,
        seen_doctype: true,
        seen_any: true,
        open: vec![(at, 0)],
        dtd: doc.dtd.take(),
        standalone: doc.standalone,
        ..Doc::default()
    };
    let outcome = balanced(&text, at, &mut sub, h);
    doc.dtd = sub.dtd.take();
    if let Some(d) = doc.dtd.as_deref_mut() {
        d.stack.pop();
    }
    outcome.map_err(|p| match p {
        Problem::At(b) if !b.1.contains("entity") || b.0 != at => problem_at(
            at,
            format!("in the replacement text of entity `&{name};`: {}", b.1),
        ),
        other => other,
    })
}

/// Parses an entity's replacement text as balanced content (XML 1.0
/// section 4.3.2): every element it opens, it closes.
fn balanced<H: Handler>(text: &str, at: u64, sub: &mut Doc, h: &mut H) -> Result<Step, Problem> {
    let mut pull = SlicePull::new(text.as_bytes());
    loop {
        let start = pull.position();
        let (ev, mut ctx) = pull.next().map_err(|e| problem_at(at, e.to_string()))?;
        if matches!(ev, Event::DocType(_)) {
            // The DOCTYPE's own errors first, as `next` found them before
            // `doctype_read` took them over; then the one `handle` gives.
            pull.doctype_read(start, Box::default())
                .map_err(|e| problem_at(at, e.to_string()))?;
            let ev = Event::DocType(quick_xml::events::BytesText::new(""));
            let ctx = Ctx {
                doc: None,
                may_have_cr: true,
                chars_ok: false,
                no_cdata_close: false,
                text_ends: false,
            };
            match handle(ev, ctx, at, sub, h)? {
                Step::Continue => continue,
                Step::Doctype(_) => return Err(problem_at(at, "a DOCTYPE".into())),
                other => return Ok(other),
            }
        }
        // Character data may follow the reference.
        ctx.text_ends = false;
        if matches!(ev, Event::Eof) {
            if sub.open.len() != 1 {
                return Err(problem_at(at, "an element is not closed".into()));
            }
            return Ok(Step::Continue);
        }
        match handle(ev, ctx, at, sub, h)? {
            Step::Continue => {}
            Step::Doctype(_) => return Err(problem_at(at, "a DOCTYPE".into())),
            other => return Ok(other),
        }
    }
}
