//! [`XmlEvent`], the item every XML source pushes, with its [`Tag`] and
//! [`Attrs`].

use crate::Lifecycle;
use std::borrow::Cow;
use std::fmt;

/// One XML event, as the seed's `('start', (name, attrs))`, `('text', text)`
/// and `('end', name)` tuples.
///
/// Events borrow: names and attributes from the input (or the SAX
/// adapter's owned strings), text from the source's coalescing buffer. They
/// are valid for the duration of one `send`; a stage that keeps one copies
/// what it needs.
///
/// `Display` prints the seed's tuple form, which is what the cosax example
/// prints.
///
/// # Examples
///
/// ```
/// use copipe::xml::{event_fn, expat_parse, XmlInput};
/// use copipe::Flow;
///
/// let mut seen = Vec::new();
/// let doc = "<bus><id>7574</id></bus>";
/// expat_parse(
///     XmlInput::from_bytes(doc.as_bytes()),
///     event_fn(|ev| {
///         seen.push(ev.to_string());
///         Ok(Flow::Continue)
///     }),
/// )?;
/// assert_eq!(
///     seen,
///     [
///         "('start', ('bus', {}))",
///         "('start', ('id', {}))",
///         "('text', '7574')",
///         "('end', 'id')",
///         "('end', 'bus')",
///     ]
/// );
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum XmlEvent<'a> {
    /// A start tag (an empty element `<a/>` is a start followed by an end).
    Start(Tag<'a>),
    /// Character data: text, CDATA sections and resolved references.
    Text(&'a str),
    /// An end tag, with the element's name.
    End(&'a str),
}

impl fmt::Display for XmlEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlEvent::Start(tag) => {
                write!(f, "('start', ({}, {{", PyStr(tag.name()))?;
                for (i, (k, v)) in tag.attrs().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", PyStr(k), PyStr(&v))?;
                }
                f.write_str("}))")
            }
            XmlEvent::Text(t) => write!(f, "('text', {})", PyStr(t)),
            XmlEvent::End(n) => write!(f, "('end', {})", PyStr(n)),
        }
    }
}

/// Prints a string the way Python's `repr` does for simple strings.
struct PyStr<'s>(&'s str);

impl fmt::Display for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            match c {
                '\'' => f.write_str("\\'")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("'")
    }
}

/// A start tag: the element's name and its attributes.
///
/// # Examples
///
/// ```
/// use copipe::xml::Tag;
///
/// let attrs = [("rt".to_string(), "22".to_string())];
/// let tag = Tag::with_attrs("buses", &attrs);
/// assert_eq!(tag.name(), "buses");
/// assert_eq!(tag.attrs().get("rt").as_deref(), Some("22"));
/// ```
#[derive(Debug, Clone)]
pub struct Tag<'a> {
    name: &'a str,
    attrs: Attrs<'a>,
}

impl<'a> Tag<'a> {
    /// A tag with no attributes.
    pub fn new(name: &'a str) -> Tag<'a> {
        Tag {
            name,
            attrs: Attrs(AttrsRepr::Empty),
        }
    }

    /// A tag whose attributes are owned `(name, value)` pairs (the SAX
    /// adapter's form).
    pub fn with_attrs(name: &'a str, attrs: &'a [(String, String)]) -> Tag<'a> {
        Tag {
            name,
            attrs: Attrs(AttrsRepr::List(attrs)),
        }
    }

    /// A tag whose attributes are still the raw bytes of the markup; the
    /// parser has already checked them.
    pub(crate) fn raw(name: &'a str, content: &'a str) -> Tag<'a> {
        let attrs = if content.len() > name.len() {
            Attrs(AttrsRepr::Raw {
                content,
                name_len: name.len(),
            })
        } else {
            Attrs(AttrsRepr::Empty)
        };
        Tag { name, attrs }
    }

    /// The element's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The element's attributes.
    pub fn attrs(&self) -> &Attrs<'a> {
        &self.attrs
    }
}

impl PartialEq for Tag<'_> {
    fn eq(&self, other: &Tag<'_>) -> bool {
        self.name == other.name && self.attrs.iter().eq(other.attrs.iter())
    }
}

/// The attributes of a start tag, decoded on demand: values have their
/// references resolved and whitespace normalised as XML requires.
#[derive(Debug, Clone)]
pub struct Attrs<'a>(AttrsRepr<'a>);

#[derive(Debug, Clone)]
enum AttrsRepr<'a> {
    Empty,
    Raw { content: &'a str, name_len: usize },
    List(&'a [(String, String)]),
}

impl<'a> Attrs<'a> {
    /// True when the tag has no attributes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            AttrsRepr::Empty => true,
            AttrsRepr::List(l) => l.is_empty(),
            AttrsRepr::Raw { .. } => self.iter().next().is_none(),
        }
    }

    /// The attributes in document order, as `(name, value)`.
    pub fn iter(&self) -> AttrsIter<'a> {
        AttrsIter(match &self.0 {
            AttrsRepr::Empty => IterRepr::Empty,
            AttrsRepr::Raw { content, name_len } => IterRepr::Raw(
                quick_xml::events::attributes::Attributes::new(content, *name_len),
            ),
            AttrsRepr::List(l) => IterRepr::List(l.iter()),
        })
    }

    /// The value of the attribute `name`, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Owned copies of all attributes.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect()
    }
}

/// Iterator over [`Attrs`].
#[derive(Debug)]
pub struct AttrsIter<'a>(IterRepr<'a>);

#[derive(Debug)]
enum IterRepr<'a> {
    Empty,
    Raw(quick_xml::events::attributes::Attributes<'a>),
    List(std::slice::Iter<'a, (String, String)>),
}

impl<'a> Iterator for AttrsIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Empty => None,
            IterRepr::List(it) => it
                .next()
                .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))),
            // The parser checked every attribute before it sent the tag
            // (see `check_attrs`), so a failure here cannot happen; ending
            // the iteration is the safe answer if it ever did.
            IterRepr::Raw(it) => {
                let attr = it.next()?.ok()?;
                decode_attr(attr).ok()
            }
        }
    }
}

/// Decodes one raw attribute into `(name, value)`: UTF-8 name, value with
/// whitespace normalised (XML 1.0 section 3.3.3) and references resolved.
pub(crate) fn decode_attr(
    attr: quick_xml::events::attributes::Attribute<'_>,
) -> Result<(&str, Cow<'_, str>), AttrProblem> {
    let quick_xml::events::attributes::Attribute { key, value } = attr;
    let key = std::str::from_utf8(key.0).map_err(|_| AttrProblem::Utf8)?;
    let value = match value {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| AttrProblem::Utf8)?,
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|_| AttrProblem::Utf8)?,
    };
    // Literal tabs, newlines and carriage returns become spaces (a CR LF
    // pair becomes one space); references are resolved afterwards, so a
    // `&#10;` stays a newline.
    let value = if value.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
        Cow::Owned(value.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
    } else {
        value
    };
    let value = if value.contains('&') {
        match quick_xml::escape::unescape(&value) {
            Ok(v) => Cow::Owned(v.into_owned()),
            Err(_) => return Err(AttrProblem::Escape),
        }
    } else {
        value
    };
    Ok((key, value))
}

/// Why an attribute was refused.
#[derive(Debug)]
pub(crate) enum AttrProblem {
    Utf8,
    Escape,
}

/// A stage that calls `f` with each event: the seed's
/// `@coroutine def printer(): while True: event = (yield); print(event)`.
///
/// Like [`from_fn`](crate::from_fn), but the closure's argument is known
/// to be an event borrowed for any lifetime, so it needs no annotation
/// (`event_fn(|ev| ..)`): events borrow for the length of one `send`.
///
/// # Examples
///
/// ```
/// use copipe::xml::{event_fn, expat_parse, XmlInput};
/// use copipe::Flow;
///
/// let mut names = Vec::new();
/// expat_parse(
///     XmlInput::from_bytes(b"<bus><id>7574</id></bus>"),
///     event_fn(|ev| {
///         names.push(ev.to_string());
///         Ok(Flow::Continue)
///     }),
/// )?;
/// assert_eq!(names[2], "('text', '7574')");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn event_fn<F>(f: F) -> EventFn<F>
where
    F: FnMut(&XmlEvent<'_>) -> crate::Result<crate::Flow>,
{
    EventFn { f }
}

/// A stage calling a closure with each event. Made by [`event_fn`].
pub struct EventFn<F> {
    f: F,
}

impl<F> fmt::Debug for EventFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFn").finish_non_exhaustive()
    }
}

impl<'a, F> crate::Stage<XmlEvent<'a>> for EventFn<F>
where
    F: FnMut(&XmlEvent<'_>) -> crate::Result<crate::Flow>,
{
    #[inline]
    fn send(&mut self, event: XmlEvent<'a>) -> crate::Result<crate::Flow> {
        (self.f)(&event)
    }
}

impl<F> Lifecycle for EventFn<F>
where
    F: FnMut(&XmlEvent<'_>) -> crate::Result<crate::Flow>,
{
    fn flush(&mut self) -> crate::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> crate::Result<()> {
        Ok(())
    }
}
