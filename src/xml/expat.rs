//! The expat-style source: borrowed [`XmlEvent`]s with adjacent character
//! data coalesced, as the seed's `expat_parse` with `buffer_text = True`;
//! and [`expat_parse_wanted`], the same for a target that says which text
//! it reads ([`TextWanted`]).

use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::xml::chunk::{drive_chunk, ChunkEnd, ChunkSpec};
use crate::xml::event::{Tag, XmlEvent};
use crate::xml::input::XmlInput;
use crate::xml::parse::{drive, Handler};
use std::marker::PhantomData;
use std::path::Path;

/// Character data gathered before it is sent as one event: the seed's
/// `parser.buffer_size = 65536`.
const TEXT_BUFFER: usize = 64 * 1024;

/// Parses `input` and pushes its events into `target` (the seed's
/// `expat_parse(f, target)`).
///
/// Start and end tags borrow their names from the input. Adjacent
/// character data (text, CDATA sections, entity and character references,
/// and text on either side of a comment or processing instruction) is
/// gathered into one buffer and sent as one `Text` event, as expat does
/// with `buffer_text`; like expat, a run longer than 64 KiB is sent in
/// pieces. Whitespace outside the root element is not character data and
/// is not sent. A target that reads only some of the text can say so
/// ([`TextWanted`]) and be parsed with [`expat_parse_wanted`], which does
/// not gather the rest.
///
/// The source contract: `Flow::Stop` from the target ends the parse
/// quietly (the target is closed); at the end of input the target is
/// closed; on malformed input the target is closed first, so everything it
/// accepted is written out, and then the error is returned.
///
/// # Errors
///
/// Malformed XML, as [`ErrorKind::Xml`](crate::ErrorKind::Xml) with line,
/// column and byte offset (and the input's path, if it has one); a read
/// error; or any error of the target, returned at once.
///
/// # Examples
///
/// The seed's coexpat pipeline:
///
/// ```
/// use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, XmlInput};
///
/// let doc = br#"<?xml version="1.0"?>
/// <buses>
///   <bus><id>1485</id><route>22</route><direction>North Bound</direction>
///        <latitude>41.88</latitude><longitude>-87.62</longitude></bus>
///   <bus><id>7574</id><route>22</route><direction>South Bound</direction>
///        <latitude>41.92</latitude><longitude>-87.63</longitude></bus>
/// </buses>"#;
/// let mut out = Vec::new();
/// expat_parse(
///     XmlInput::from_bytes(doc),
///     records("bus",
///     filter_on_field("route", "22",
///     filter_on_field("direction", "North Bound",
///     bus_locations(&mut out)))),
/// )?;
/// assert_eq!(out, b"22,1485,\"North Bound\",41.88,-87.62\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn expat_parse<S>(input: XmlInput<'_>, target: S) -> Result<()>
where
    S: for<'a> Stage<XmlEvent<'a>>,
{
    drive(input, &mut Expat::<S, AllText>::new(target))
}

/// What a stage of [`XmlEvent`]s tells [`expat_parse_wanted`] (and
/// [`ParallelParse::run_wanted`](crate::xml::ParallelParse::run_wanted)):
/// whether it reads the character data that follows the tag it was just
/// sent.
///
/// A stage that keeps only some elements' text (a record builder that
/// wants two short fields of a page, not its long body) answers false
/// where the text is of no use to it, and the source then neither gathers
/// nor sends that text: on a document of long texts nobody asked for, this
/// saves a copy of most of its bytes.
pub trait TextWanted {
    /// True if the stage reads the character data from the tag it was
    /// just sent (a start or an end tag) up to the next tag. Asked after
    /// every start and end tag; the answer holds until the next one. Also
    /// asked once before the first event.
    fn text_wanted(&self) -> bool;
}

impl<S: TextWanted + ?Sized> TextWanted for &mut S {
    #[inline(always)]
    fn text_wanted(&self) -> bool {
        (**self).text_wanted()
    }
}

impl<S: TextWanted + ?Sized> TextWanted for Box<S> {
    #[inline(always)]
    fn text_wanted(&self) -> bool {
        (**self).text_wanted()
    }
}

/// [`expat_parse`] for a target that says which character data it reads
/// ([`TextWanted`]): the text it does not want is checked as always (a
/// malformed document is the same error at the same position) but neither
/// gathered nor sent. Everything else is as [`expat_parse`]: the same
/// start and end events, and the wanted text coalesced the same way.
///
/// # Errors
///
/// As [`expat_parse`].
///
/// # Examples
///
/// [`element_records`](crate::xml::element_records) with
/// [`only`](crate::xml::ElementRecords::only) wants the text of the
/// fields named, and nothing else:
///
/// ```
/// use copipe::xml::{element_records, expat_parse_wanted, Record, XmlInput};
/// use copipe::{StageExt, sinks::Collect};
///
/// let doc = b"<r><page><title>T</title><id>1</id><text>long &amp; never read</text></page></r>";
/// let mut out = Collect::new();
/// let stage = element_records("page", (&mut out).with_owned()).only(["title", "id"]);
/// expat_parse_wanted(XmlInput::from_bytes(doc), stage)?;
/// assert_eq!(out.items(), [Record::from_iter([("title", "T"), ("id", "1")])]);
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// A stage of its own says where it wants text; here, only inside
/// `<title>`:
///
/// ```
/// use copipe::xml::{expat_parse_wanted, TextWanted, XmlEvent, XmlInput};
/// use copipe::{Flow, Lifecycle, Stage};
///
/// #[derive(Default)]
/// struct Titles { inside: bool, texts: Vec<String> }
///
/// impl Stage<XmlEvent<'_>> for Titles {
///     fn send(&mut self, ev: XmlEvent<'_>) -> copipe::Result<Flow> {
///         match ev {
///             XmlEvent::Start(tag) => self.inside = tag.name() == "title",
///             XmlEvent::Text(t) => self.texts.push(t.to_string()),
///             XmlEvent::End(_) => self.inside = false,
///             _ => {}
///         }
///         Ok(Flow::Continue)
///     }
/// }
/// impl Lifecycle for Titles {
///     fn flush(&mut self) -> copipe::Result<()> { Ok(()) }
///     fn close(&mut self) -> copipe::Result<()> { Ok(()) }
/// }
/// impl TextWanted for Titles {
///     fn text_wanted(&self) -> bool { self.inside }
/// }
///
/// let mut titles = Titles::default();
/// let doc = b"<r>x<title>A &amp; B</title>y<p>z</p></r>";
/// expat_parse_wanted(XmlInput::from_bytes(doc), &mut titles)?;
/// assert_eq!(titles.texts, ["A & B"]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn expat_parse_wanted<S>(input: XmlInput<'_>, target: S) -> Result<()>
where
    S: for<'a> Stage<XmlEvent<'a>> + TextWanted,
{
    drive(input, &mut Expat::<S, AskTarget>::new(target))
}

/// [`expat_parse`] over part of a document in memory, for the parallel
/// parser: returns the target (closed, unless a stage failed) and how the
/// parse ended.
pub(crate) fn expat_chunk<S>(
    bytes: &[u8],
    spec: ChunkSpec<'_>,
    target: S,
    path: Option<&Path>,
) -> (S, Result<ChunkEnd>)
where
    S: for<'a> Stage<XmlEvent<'a>>,
{
    let mut handler = Expat::<S, AllText>::new(target);
    let end = drive_chunk(bytes, spec, &mut handler, path);
    (handler.target, end)
}

/// [`expat_parse_wanted`] over part of a document in memory, as
/// [`expat_chunk`].
pub(crate) fn expat_chunk_wanted<S>(
    bytes: &[u8],
    spec: ChunkSpec<'_>,
    target: S,
    path: Option<&Path>,
) -> (S, Result<ChunkEnd>)
where
    S: for<'a> Stage<XmlEvent<'a>> + TextWanted,
{
    let mut handler = Expat::<S, AskTarget>::new(target);
    let end = drive_chunk(bytes, spec, &mut handler, path);
    (handler.target, end)
}

/// Whether the handler asks its target which text it wants.
trait Ask<S> {
    /// False: every text is wanted, and `wanted` is never read.
    const ASKS: bool;
    fn wanted(target: &S) -> bool;
}

/// [`expat_parse`]'s targets want all text.
struct AllText;

impl<S> Ask<S> for AllText {
    const ASKS: bool = false;
    #[inline(always)]
    fn wanted(_: &S) -> bool {
        true
    }
}

/// [`expat_parse_wanted`]'s targets say.
struct AskTarget;

impl<S: TextWanted> Ask<S> for AskTarget {
    const ASKS: bool = true;
    #[inline(always)]
    fn wanted(target: &S) -> bool {
        target.text_wanted()
    }
}

struct Expat<S, A> {
    text: String,
    target: S,
    /// The target wants the character data from here to the next tag
    /// (only kept when `A` asks).
    wanted: bool,
    ask: PhantomData<A>,
}

impl<S, A> Expat<S, A>
where
    S: for<'a> Stage<XmlEvent<'a>>,
    A: Ask<S>,
{
    fn new(target: S) -> Expat<S, A> {
        Expat {
            text: String::new(),
            wanted: A::wanted(&target),
            target,
            ask: PhantomData,
        }
    }

    #[inline]
    fn send_text(&mut self) -> Result<Flow> {
        if self.text.is_empty() {
            return Ok(Flow::Continue);
        }
        let flow = self.target.send(XmlEvent::Text(&self.text));
        self.text.clear();
        flow
    }
}

impl<S, A> Handler for Expat<S, A>
where
    S: for<'a> Stage<XmlEvent<'a>>,
    A: Ask<S>,
{
    #[inline(always)]
    fn start(&mut self, tag: &Tag<'_>) -> Result<Flow> {
        if self.send_text()?.is_stop() {
            return Ok(Flow::Stop);
        }
        let flow = self.target.send(XmlEvent::Start(tag.clone()));
        if A::ASKS {
            self.wanted = A::wanted(&self.target);
        }
        flow
    }

    #[inline(always)]
    fn text(&mut self, piece: &str, ends: bool) -> Result<Flow> {
        if A::ASKS && !self.wanted {
            // Checked by the parser; the target does not read it.
            return Ok(Flow::Continue);
        }
        if ends && self.text.is_empty() {
            // The whole run is this one piece: send it as it is, uncopied.
            return self.target.send(XmlEvent::Text(piece));
        }
        if !self.text.is_empty()
            && self.text.len() + piece.len() > TEXT_BUFFER
            && self.send_text()?.is_stop()
        {
            return Ok(Flow::Stop);
        }
        self.text.push_str(piece);
        if ends {
            return self.send_text();
        }
        Ok(Flow::Continue)
    }

    #[inline(always)]
    fn end(&mut self, name: &str) -> Result<Flow> {
        if self.send_text()?.is_stop() {
            return Ok(Flow::Stop);
        }
        let flow = self.target.send(XmlEvent::End(name));
        if A::ASKS {
            self.wanted = A::wanted(&self.target);
        }
        flow
    }

    #[inline(always)]
    fn wants_text(&self) -> bool {
        !A::ASKS || self.wanted
    }

    fn at_rest(&self) -> bool {
        self.text.is_empty()
    }

    fn close(&mut self) -> Result<()> {
        // Character data is only gathered inside the root element, so at a
        // clean end nothing is left; after an error, the partial run is
        // dropped rather than sent.
        self.text.clear();
        self.target.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lifecycle;

    /// Records events as text, and wants text only inside elements whose
    /// name starts with `w` (not in their children).
    #[derive(Default)]
    struct Picky {
        seen: Vec<String>,
        wanted: bool,
    }

    impl Stage<XmlEvent<'_>> for Picky {
        fn send(&mut self, ev: XmlEvent<'_>) -> Result<Flow> {
            self.wanted = matches!(&ev, XmlEvent::Start(t) if t.name().starts_with('w'));
            self.seen.push(ev.to_string());
            Ok(Flow::Continue)
        }
    }

    impl Lifecycle for Picky {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            self.seen.push("close".into());
            Ok(())
        }
    }

    impl TextWanted for Picky {
        fn text_wanted(&self) -> bool {
            self.wanted
        }
    }

    /// `doc` through `expat_parse` with the unwanted text taken out by
    /// hand, and through `expat_parse_wanted`: the events and the outcome.
    /// From bytes in memory, and streamed through a small buffer (where
    /// the text is checked as it is read).
    fn both(doc: &str) -> [(Vec<String>, String); 2] {
        let [a, b] = both_from(doc, XmlInput::from_bytes);
        let [c, d] = both_from(doc, |d| XmlInput::from_reader(d).buffer_capacity(64));
        assert_eq!(a, c, "bytes and stream differ: {doc:.80}");
        assert_eq!(b, d, "bytes and stream differ: {doc:.80}");
        [a, b]
    }

    fn both_from<'d>(
        doc: &'d str,
        input: impl Fn(&'d [u8]) -> XmlInput<'d>,
    ) -> [(Vec<String>, String); 2] {
        let mut all = Picky::default();
        let r = expat_parse(input(doc.as_bytes()), &mut all);
        let mut kept = Vec::new();
        let mut wanted = false;
        for ev in all.seen {
            if !ev.starts_with("('text'") || wanted {
                kept.push(ev.clone());
            }
            if !ev.starts_with("('text'") {
                wanted = ev.starts_with("('start', ('w");
            }
        }
        let by_hand = (kept, format!("{r:?}"));
        let mut picky = Picky::default();
        let r = expat_parse_wanted(input(doc.as_bytes()), &mut picky);
        [by_hand, (picky.seen, format!("{r:?}"))]
    }

    #[test]
    fn unwanted_text_is_dropped_and_wanted_text_is_as_before() {
        for doc in [
            "<r>a<w>b &amp; c<![CDATA[d]]>e<!-- x -->f&#65;</w>g<x>h</x><w/><wq>i<x>j</x>k</wq></r>",
            "<r>\n  <w>one</w>\n  <v>two &lt; three</v>\n</r>\n",
            &format!("<r><w>{}</w><v>{}</v></r>", "x".repeat(70_000), "y&amp;".repeat(20_000)),
        ] {
            let [by_hand, wanted] = both(doc);
            assert_eq!(by_hand, wanted, "{doc:.80}");
        }
    }

    #[test]
    fn unwanted_text_with_bad_utf8_is_an_error_at_the_same_place() {
        let doc = b"<r><w>ok</w><v>a \xff b</v></r>";
        let mut all = Picky::default();
        let a = expat_parse(XmlInput::from_bytes(doc), &mut all).unwrap_err();
        let mut picky = Picky::default();
        let b = expat_parse_wanted(XmlInput::from_bytes(doc), &mut picky).unwrap_err();
        assert_eq!(a.to_string(), b.to_string());
    }

    #[test]
    fn unwanted_text_is_still_checked() {
        // The same errors, at the same places, inside text nobody wants.
        for doc in [
            "<r><v>a &bogus; b</v></r>",
            "<r><v>a ]]> b</v></r>",
            "<r><v>a \u{1} b</v></r>",
            "<r><v>a & b</v></r>",
            "<r><v>a &#0; b</v></r>",
            "<r><v>a</r>",
        ] {
            let [by_hand, wanted] = both(doc);
            assert!(wanted.1.starts_with("Err"), "{doc}: {}", wanted.1);
            assert_eq!(by_hand, wanted, "{doc}");
        }
    }
}
