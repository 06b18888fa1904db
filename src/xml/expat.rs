//! The expat-style source: borrowed [`XmlEvent`]s with adjacent character
//! data coalesced, as the seed's `expat_parse` with `buffer_text = True`.

use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::xml::chunk::{drive_chunk, ChunkEnd, ChunkSpec};
use crate::xml::event::{Tag, XmlEvent};
use crate::xml::input::XmlInput;
use crate::xml::parse::{drive, Handler};
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
/// is not sent.
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
    let mut handler = Expat {
        text: String::new(),
        target,
    };
    drive(input, &mut handler)
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
    let mut handler = Expat {
        text: String::new(),
        target,
    };
    let end = drive_chunk(bytes, spec, &mut handler, path);
    (handler.target, end)
}

struct Expat<S> {
    text: String,
    target: S,
}

impl<S> Expat<S>
where
    S: for<'a> Stage<XmlEvent<'a>>,
{
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

impl<S> Handler for Expat<S>
where
    S: for<'a> Stage<XmlEvent<'a>>,
{
    #[inline(always)]
    fn start(&mut self, tag: &Tag<'_>) -> Result<Flow> {
        if self.send_text()?.is_stop() {
            return Ok(Flow::Stop);
        }
        self.target.send(XmlEvent::Start(tag.clone()))
    }

    #[inline(always)]
    fn text(&mut self, piece: &str, ends: bool) -> Result<Flow> {
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
        self.target.send(XmlEvent::End(name))
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
