//! The iterparse-style source: each `<tag>` subtree is built as a small
//! [`Element`], turned into a record (or handed to a closure), then dropped,
//! as the seed's iterbus does with `iterparse` and `elem.remove`.

use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::xml::buses::too_large;
use crate::xml::event::Tag;
use crate::xml::input::XmlInput;
use crate::xml::parse::{drive, Handler};
use crate::xml::record::{Built, Record, RecordBuilder, MAX_RECORD_BYTES};

const NONE: u32 = u32::MAX;

/// A span of [`Tree::text`].
type Span = (u32, u32);

#[derive(Debug, Clone, Copy)]
struct Node {
    name: Span,
    /// Range of [`Tree::attrs`].
    attrs: (u32, u32),
    text: Span,
    tail: Span,
    first_child: u32,
    last_child: u32,
    next: u32,
}

/// One subtree, in flat vectors that are cleared and reused: building the
/// next `<bus>` allocates nothing once the vectors have grown.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    attrs: Vec<(Span, Span)>,
    text: String,
    /// Open nodes while building.
    open: Vec<u32>,
}

impl Tree {
    fn clear(&mut self) {
        self.nodes.clear();
        self.attrs.clear();
        self.text.clear();
        self.open.clear();
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, s.len() as u32)
    }

    fn bytes(&self) -> usize {
        self.text.len() + self.nodes.len() * std::mem::size_of::<Node>()
    }

    fn start(&mut self, tag: &Tag<'_>) {
        let name = self.push_str(tag.name());
        let a0 = self.attrs.len() as u32;
        for (k, v) in tag.attrs().iter() {
            let k = self.push_str(k);
            let v = self.push_str(&v);
            self.attrs.push((k, v));
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            name,
            attrs: (a0, self.attrs.len() as u32),
            text: (0, 0),
            tail: (0, 0),
            first_child: NONE,
            last_child: NONE,
            next: NONE,
        });
        if let Some(&parent) = self.open.last() {
            let p = &mut self.nodes[parent as usize];
            if p.last_child == NONE {
                p.first_child = idx;
            } else {
                let last = p.last_child;
                self.nodes[last as usize].next = idx;
            }
            self.nodes[parent as usize].last_child = idx;
        }
        self.open.push(idx);
    }

    fn text(&mut self, piece: &str) {
        let Some(&cur) = self.open.last() else { return };
        // Text goes to the current element's text until it has a child,
        // then to the last child's tail. Pieces of one span arrive one
        // after another with nothing else appended in between, so a span
        // stays contiguous.
        let at = self.text.len() as u32;
        self.text.push_str(piece);
        let node = &self.nodes[cur as usize];
        let span = if node.last_child == NONE {
            &mut self.nodes[cur as usize].text
        } else {
            let last = node.last_child as usize;
            &mut self.nodes[last].tail
        };
        if span.1 == 0 {
            *span = (at, piece.len() as u32);
        } else {
            span.1 += piece.len() as u32;
        }
    }

    /// Closes the current element; true when the subtree is complete.
    fn end(&mut self) -> bool {
        self.open.pop();
        self.open.is_empty()
    }

    fn span(&self, (s, l): Span) -> &str {
        &self.text[s as usize..(s + l) as usize]
    }
}

/// An element of the subtree being handed out: tag, attributes, text
/// (before the first child), tail (after the element, up to its next
/// sibling) and children, as ElementTree's `Element`.
///
/// # Examples
///
/// ```
/// use copipe::xml::{iterparse_elements, XmlInput};
/// use copipe::Flow;
///
/// let doc = br#"<buses><bus id="1"><route>22</route><run>P675</run></bus></buses>"#;
/// let mut seen = Vec::new();
/// iterparse_elements(XmlInput::from_bytes(doc), "bus", |bus| {
///     let fields: Vec<String> =
///         bus.children().map(|c| format!("{}={}", c.tag(), c.text())).collect();
///     seen.push((bus.get("id").map(str::to_string), fields));
///     Ok(Flow::Continue)
/// })?;
/// assert_eq!(seen, [(Some("1".to_string()), vec!["route=22".to_string(), "run=P675".to_string()])]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Element<'t> {
    tree: &'t Tree,
    idx: u32,
}

impl<'t> Element<'t> {
    fn node(&self) -> &'t Node {
        &self.tree.nodes[self.idx as usize]
    }

    /// The element's name.
    pub fn tag(&self) -> &'t str {
        self.tree.span(self.node().name)
    }

    /// The character data before the first child.
    pub fn text(&self) -> &'t str {
        self.tree.span(self.node().text)
    }

    /// The character data after this element, before its next sibling.
    pub fn tail(&self) -> &'t str {
        self.tree.span(self.node().tail)
    }

    /// The attributes, `(name, value)` in document order.
    pub fn attrs(&self) -> impl Iterator<Item = (&'t str, &'t str)> + 't {
        let tree = self.tree;
        let (a, b) = self.node().attrs;
        tree.attrs[a as usize..b as usize]
            .iter()
            .map(move |&(k, v)| (tree.span(k), tree.span(v)))
    }

    /// The value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&'t str> {
        self.attrs().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The child elements, in order.
    pub fn children(&self) -> impl Iterator<Item = Element<'t>> + 't {
        let tree = self.tree;
        let mut next = self.node().first_child;
        std::iter::from_fn(move || {
            if next == NONE {
                return None;
            }
            let e = Element { tree, idx: next };
            next = tree.nodes[next as usize].next;
            Some(e)
        })
    }
}

/// What to do with each finished subtree.
trait OnElement {
    fn element(&mut self, tree: &Tree) -> Result<Flow>;
    fn close(&mut self) -> Result<()>;
}

struct IterParse<O> {
    tag: String,
    tree: Tree,
    building: bool,
    on: O,
}

impl<O: OnElement> Handler for IterParse<O> {
    #[inline]
    fn start(&mut self, tag: &Tag<'_>) -> Result<Flow> {
        if !self.building {
            if tag.name() != self.tag {
                return Ok(Flow::Continue);
            }
            self.building = true;
            self.tree.clear();
        }
        self.tree.start(tag);
        self.check()
    }

    #[inline]
    fn text(&mut self, piece: &str, _ends: bool) -> Result<Flow> {
        if self.building {
            self.tree.text(piece);
            return self.check();
        }
        Ok(Flow::Continue)
    }

    #[inline]
    fn end(&mut self, _name: &str) -> Result<Flow> {
        if self.building && self.tree.end() {
            self.building = false;
            let flow = self.on.element(&self.tree);
            // `elem.remove()`: the subtree is dropped (its memory is kept
            // for the next one).
            self.tree.clear();
            return flow;
        }
        Ok(Flow::Continue)
    }

    fn close(&mut self) -> Result<()> {
        self.building = false;
        self.tree.clear();
        self.on.close()
    }
}

impl<O> IterParse<O> {
    #[inline]
    fn check(&self) -> Result<Flow> {
        if self.tree.bytes() > MAX_RECORD_BYTES {
            return Err(too_large(&self.tag));
        }
        Ok(Flow::Continue)
    }
}

/// Turns each subtree into records with `buses_to_dicts` semantics, by
/// walking it in document order.
struct ToRecords<S> {
    builder: RecordBuilder,
    walk: Vec<(u32, bool)>,
    target: S,
}

impl<S> OnElement for ToRecords<S>
where
    S: for<'a> Stage<&'a Record>,
{
    fn element(&mut self, tree: &Tree) -> Result<Flow> {
        // An explicit stack rather than recursion: a deeply nested document
        // cannot overflow the thread's stack.
        self.walk.clear();
        self.walk.push((0, false));
        while let Some((idx, entered)) = self.walk.pop() {
            let node = &tree.nodes[idx as usize];
            let built = if !entered {
                self.builder.start(tree.span(node.name));
                self.walk.push((idx, true));
                // Children go on the stack last first, so the first child
                // is walked first.
                let base = self.walk.len();
                let mut c = node.first_child;
                while c != NONE {
                    self.walk.push((c, false));
                    c = tree.nodes[c as usize].next;
                }
                self.walk[base..].reverse();
                self.builder.text(tree.span(node.text))
            } else {
                match self.builder.end(tree.span(node.name)) {
                    Built::No => {
                        if idx == 0 {
                            Built::No
                        } else {
                            self.builder.text(tree.span(node.tail))
                        }
                    }
                    other => other,
                }
            };
            match built {
                Built::No => {}
                Built::Done => {
                    if self.target.send(self.builder.record())?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                }
                Built::TooLarge => return Err(too_large(self.builder.tag())),
            }
        }
        Ok(Flow::Continue)
    }

    fn close(&mut self) -> Result<()> {
        self.builder.reset();
        self.target.close()
    }
}

/// Parses `input`, builds each `<tag>` element as a small [`Element`],
/// turns it into a [`Record`] and pushes `&Record` into `target`; then the
/// element is dropped. Records are exactly those of
/// [`records`](crate::xml::records) (the seed's `buses_to_dicts`), so the
/// stages after it see no difference.
///
/// # Errors
///
/// Malformed XML (with line, column and byte offset), a read error, an
/// element larger than 16 MiB, or an error of the target.
///
/// # Examples
///
/// ```
/// use copipe::xml::{iterparse, Record, XmlInput};
/// use copipe::{StageExt, sinks::Collect};
///
/// let doc = b"<buses><bus><id>7574</id><route>22</route></bus></buses>";
/// let mut out = Collect::new();
/// iterparse(XmlInput::from_bytes(doc), "bus", (&mut out).owned())?;
/// assert_eq!(out.items(), [Record::from_iter([("id", "7574"), ("route", "22")])]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn iterparse<S>(input: XmlInput<'_>, tag: &str, target: S) -> Result<()>
where
    S: for<'a> Stage<&'a Record>,
{
    let mut h = IterParse {
        tag: tag.to_string(),
        tree: Tree::default(),
        building: false,
        on: ToRecords {
            builder: RecordBuilder::new(tag),
            walk: Vec::new(),
            target,
        },
    };
    drive(input, &mut h)
}

struct Closure<F>(F);

impl<F> OnElement for Closure<F>
where
    F: FnMut(Element<'_>) -> Result<Flow>,
{
    fn element(&mut self, tree: &Tree) -> Result<Flow> {
        (self.0)(Element { tree, idx: 0 })
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Parses `input` and calls `f` with each `<tag>` element, built as a
/// small [`Element`] and dropped after the call: the seed's
/// `for event, elem in iterparse(...)` loop.
///
/// # Errors
///
/// Malformed XML (with line, column and byte offset), a read error, an
/// element larger than 16 MiB, or an error returned by `f`.
///
/// # Examples
///
/// See [`Element`].
pub fn iterparse_elements<F>(input: XmlInput<'_>, tag: &str, f: F) -> Result<()>
where
    F: FnMut(Element<'_>) -> Result<Flow>,
{
    let mut h = IterParse {
        tag: tag.to_string(),
        tree: Tree::default(),
        building: false,
        on: Closure(f),
    };
    drive(input, &mut h)
}
