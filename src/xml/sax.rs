//! The SAX-style source: a [`ContentHandler`] receives owned names,
//! attributes and text, as Python's `xml.sax`; [`EventHandler`] turns its
//! callbacks into sends, as the seed's cosax.

use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::xml::event::{Tag, XmlEvent};
use crate::xml::input::XmlInput;
use crate::xml::parse::{drive, Handler};

/// Receives a document's content as owned values, like Python's
/// `xml.sax.ContentHandler`.
///
/// Each callback returns a [`Flow`]: `Flow::Stop` ends the parse quietly.
/// Character data may arrive in several pieces (a text run, a CDATA
/// section and each reference separately), as SAX allows.
///
/// # Examples
///
/// The seed's minimal SAX example (basicsax), counting instead of
/// printing:
///
/// ```
/// use copipe::xml::{sax_parse, ContentHandler, XmlInput};
/// use copipe::{Flow, Result};
///
/// #[derive(Default)]
/// struct MyHandler { starts: Vec<String>, text: String }
///
/// impl ContentHandler for MyHandler {
///     fn start_element(&mut self, name: String, _attrs: Vec<(String, String)>) -> Result<Flow> {
///         self.starts.push(name);
///         Ok(Flow::Continue)
///     }
///     fn characters(&mut self, text: String) -> Result<Flow> {
///         self.text.push_str(&text);
///         Ok(Flow::Continue)
///     }
///     fn end_element(&mut self, _name: String) -> Result<Flow> {
///         Ok(Flow::Continue)
///     }
/// }
///
/// let mut h = MyHandler::default();
/// sax_parse(XmlInput::from_bytes(b"<bus><id>75&#55;4</id></bus>"), &mut h)?;
/// assert_eq!(h.starts, ["bus", "id"]);
/// assert_eq!(h.text, "7574");
/// # Ok::<(), copipe::Error>(())
/// ```
pub trait ContentHandler {
    /// A start tag: the element's name and its attributes in document
    /// order.
    ///
    /// # Errors
    ///
    /// Any error of the handler; the parse stops and returns it.
    fn start_element(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<Flow>;

    /// A piece of character data.
    ///
    /// # Errors
    ///
    /// Any error of the handler; the parse stops and returns it.
    fn characters(&mut self, text: String) -> Result<Flow>;

    /// An end tag.
    ///
    /// # Errors
    ///
    /// Any error of the handler; the parse stops and returns it.
    fn end_element(&mut self, name: String) -> Result<Flow>;

    /// The end of the parse: at the end of the document, after a
    /// `Flow::Stop`, and before a parse error is returned (so that a handler
    /// that buffers output writes out everything it accepted).
    ///
    /// # Errors
    ///
    /// An error finishing the handler's work.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

impl<H: ContentHandler + ?Sized> ContentHandler for &mut H {
    fn start_element(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<Flow> {
        (**self).start_element(name, attrs)
    }
    fn characters(&mut self, text: String) -> Result<Flow> {
        (**self).characters(text)
    }
    fn end_element(&mut self, name: String) -> Result<Flow> {
        (**self).end_element(name)
    }
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}

/// Parses `input`, calling `handler` for each start tag, piece of
/// character data and end tag (the seed's `xml.sax.parse(f, handler)`).
///
/// The source contract is that of [`expat_parse`](crate::xml::expat_parse):
/// on malformed input, `handler.close()` runs before the error is
/// returned.
///
/// # Errors
///
/// Malformed XML (with line, column and byte offset), a read error, or an
/// error of the handler.
///
/// # Examples
///
/// See [`ContentHandler`] and [`EventHandler`].
pub fn sax_parse<H: ContentHandler>(input: XmlInput<'_>, handler: H) -> Result<()> {
    let mut h = Sax(handler);
    drive(input, &mut h)
}

struct Sax<H>(H);

impl<H: ContentHandler> Handler for Sax<H> {
    #[inline]
    fn start(&mut self, tag: &Tag<'_>) -> Result<Flow> {
        let attrs = if tag.attrs().is_empty() {
            Vec::new()
        } else {
            tag.attrs().to_vec()
        };
        self.0.start_element(tag.name().to_string(), attrs)
    }
    #[inline]
    fn text(&mut self, piece: &str, _ends: bool) -> Result<Flow> {
        self.0.characters(piece.to_string())
    }
    #[inline]
    fn end(&mut self, name: &str) -> Result<Flow> {
        self.0.end_element(name.to_string())
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
}

/// A [`ContentHandler`] that sends each callback on as an [`XmlEvent`]:
/// the seed's cosax `EventHandler`, the bridge from callbacks to
/// coroutines.
///
/// # Examples
///
/// ```
/// use copipe::xml::{records, sax_parse, EventHandler, Record, XmlInput};
/// use copipe::{StageExt, sinks::Collect};
///
/// let doc = b"<buses><bus><id>7574</id><route>22</route></bus></buses>";
/// let mut out = Collect::new();
/// sax_parse(XmlInput::from_bytes(doc), EventHandler::new(records("bus", (&mut out).owned())))?;
/// assert_eq!(out.items(), [Record::from_iter([("id", "7574"), ("route", "22")])]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct EventHandler<S> {
    target: S,
}

impl<S> EventHandler<S> {
    /// A handler sending to `target`.
    pub fn new(target: S) -> EventHandler<S> {
        EventHandler { target }
    }

    /// The target, back.
    pub fn into_inner(self) -> S {
        self.target
    }
}

impl<S> ContentHandler for EventHandler<S>
where
    S: for<'a> Stage<XmlEvent<'a>>,
{
    fn start_element(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<Flow> {
        self.target
            .send(XmlEvent::Start(Tag::with_attrs(&name, &attrs)))
    }
    fn characters(&mut self, text: String) -> Result<Flow> {
        self.target.send(XmlEvent::Text(&text))
    }
    fn end_element(&mut self, name: String) -> Result<Flow> {
        self.target.send(XmlEvent::End(&name))
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// A [`ContentHandler`] that cuts character data as expat (Python's
/// `xml.sax`) reports it, and hands the pieces on to `H`: each newline is
/// a piece of its own, as is each run of text between newlines. So
/// `"\n  "` arrives as `"\n"` and `"  "`, where [`sax_parse`] gives it
/// whole.
///
/// It does not cut where expat cuts a run at the end of a chunk fed to it
/// (`xml.sax.parse` feeds 65,516 bytes at a time): copipe's parser does not see
/// the document in chunks.
///
/// # Examples
///
/// ```
/// use copipe::xml::{sax_parse, ContentHandler, ExpatSplit, XmlInput};
/// use copipe::{Flow, Result};
///
/// #[derive(Default)]
/// struct Texts(Vec<String>);
///
/// impl ContentHandler for Texts {
///     fn start_element(&mut self, _: String, _: Vec<(String, String)>) -> Result<Flow> {
///         Ok(Flow::Continue)
///     }
///     fn characters(&mut self, text: String) -> Result<Flow> {
///         self.0.push(text);
///         Ok(Flow::Continue)
///     }
///     fn end_element(&mut self, _: String) -> Result<Flow> {
///         Ok(Flow::Continue)
///     }
/// }
///
/// let mut h = ExpatSplit::new(Texts::default());
/// sax_parse(XmlInput::from_bytes(b"<a>\n  <b>x\n\ny</b></a>"), &mut h)?;
/// assert_eq!(h.into_inner().0, ["\n", "  ", "x", "\n", "\n", "y"]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct ExpatSplit<H> {
    inner: H,
}

impl<H> ExpatSplit<H> {
    /// Cuts the character data `inner` receives.
    pub fn new(inner: H) -> ExpatSplit<H> {
        ExpatSplit { inner }
    }

    /// The inner handler, back.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H: ContentHandler> ContentHandler for ExpatSplit<H> {
    fn start_element(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<Flow> {
        self.inner.start_element(name, attrs)
    }
    fn characters(&mut self, text: String) -> Result<Flow> {
        // The common cases whole, without copying: no newline, or a lone one.
        if text.len() <= 1 || !text.contains('\n') {
            return self.inner.characters(text);
        }
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let cut = match rest.find('\n') {
                Some(0) => 1,
                Some(i) => i,
                None => rest.len(),
            };
            let (piece, tail) = rest.split_at(cut);
            if self.inner.characters(piece.to_owned())?.is_stop() {
                return Ok(Flow::Stop);
            }
            rest = tail;
        }
        Ok(Flow::Continue)
    }
    fn end_element(&mut self, name: String) -> Result<Flow> {
        self.inner.end_element(name)
    }
    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}
