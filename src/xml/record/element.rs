//! [`ElementBuilder`]: any record-shaped element into a [`Record`] of its
//! attributes and its children's text (what `copipe records` reads).

use super::builder::{Built, Filling};
use super::filter::{Check, Where};
use super::{same, Record, MAX_RECORD_BYTES};
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};
use crate::xml::event::{AttrsIter, Tag, XmlEvent};
use crate::xml::expat::TextWanted;
use crate::Lifecycle;

/// Fills a [`Record`] from each element matching a path, as a state
/// machine over start/text/end.
///
/// The fields of a record are:
///
/// - `@name` for each attribute of the element itself;
/// - `child` for the text of each child element with no element children
///   of its own (a leaf), and `child/grandchild` (the path from the record
///   element, names joined by `/`) for deeper leaves;
/// - `child/@name` for the attributes of any element inside it.
///
/// A field that repeats (two `<link>` children) keeps its first value, as
/// ElementTree's `find` does; the text of elements that have element
/// children (mixed content), and the record element's own text, are not
/// fields. Inside a record every element is a child, even one with the
/// record's name.
///
/// The path is one name (`page`: such elements at any depth), names joined
/// by `/` (`channel/item`: an `item` whose parent is a `channel`), or that
/// with a leading `/` (`/rss/channel/item`: from the root element).
///
/// As [`RecordBuilder`](super::RecordBuilder) does, the builder gathers
/// text at the end of the record's own text buffer, so an end tag stores
/// a value without copying it, and the record and the path buffers are
/// reused: no allocation per record once they have grown.
#[derive(Debug)]
pub(crate) struct ElementBuilder {
    path: String,
    /// The last name of the path: the element that starts a record.
    name: String,
    /// What the open elements outside a record must end with (`/channel`
    /// for `channel/item`), or be (`/rss/channel` for `/rss/channel/item`);
    /// empty for a path of one name, when `outside` is not kept.
    parents: String,
    anchored: bool,
    /// The open elements outside a record, `/rss/channel`, when `parents`
    /// is not empty.
    outside: String,
    outside_lens: Vec<usize>,
    /// Elements open inside the record, the record's own included (0:
    /// outside a record).
    depth: usize,
    /// The path of the open element relative to the record element
    /// (`pos/lat`), and the lengths it had before each push.
    rel: String,
    rel_lens: Vec<usize>,
    /// The scratch buffer where attribute field names are built.
    scratch: String,
    /// The open element has no element child yet.
    leaf: bool,
    /// The fields to gather; empty: all.
    wanted: Vec<String>,
    /// Some wanted field is an attribute (or all are wanted): attributes
    /// are decoded only then.
    attrs_wanted: bool,
    /// Text here is no wanted field's: not gathered. Only a leaf's text
    /// can be a field, so this is set at every end tag, and at a start tag
    /// unless the element may be a wanted leaf.
    skip: bool,
    /// Where the open element's text begins in the record's text.
    frag_start: usize,
    /// The end of the last stored value: text after it is gathered text of
    /// no field, dropped at the next start tag.
    values_end: usize,
    /// Conditions tested as soon as their field is stored: a record one
    /// fails is dropped (see [`ElementRecords::prefilter`]).
    early: Vec<Where>,
    /// The record being read failed an `early` condition: nothing more of
    /// it is gathered, and it is not completed. Its elements after that
    /// only count `depth`: `rel` and `rel_lens` are left as they were.
    rejected: bool,
    fill: Filling,
}

impl ElementBuilder {
    /// A builder of the elements at `path` (see the type's docs).
    pub(crate) fn new(path: &str) -> ElementBuilder {
        let anchored = path.starts_with('/');
        let trimmed = path.trim_start_matches('/');
        let (parents, name) = match trimmed.rsplit_once('/') {
            Some((p, n)) => (format!("/{p}"), n.to_string()),
            None => (String::new(), trimmed.to_string()),
        };
        ElementBuilder {
            path: path.to_string(),
            name,
            anchored: anchored && !parents.is_empty(),
            parents,
            outside: String::new(),
            outside_lens: Vec::new(),
            depth: 0,
            rel: String::new(),
            rel_lens: Vec::new(),
            scratch: String::new(),
            leaf: false,
            wanted: Vec::new(),
            attrs_wanted: true,
            skip: true,
            frag_start: 0,
            values_end: 0,
            early: Vec::new(),
            rejected: false,
            fill: Filling::default(),
        }
    }

    /// Gathers only these fields: the text of other elements is not
    /// copied.
    pub(crate) fn only(&mut self, fields: Vec<String>) {
        self.attrs_wanted = fields.is_empty() || fields.iter().any(|f| f.contains('@'));
        self.wanted = fields;
    }

    /// Drops records failing one of `conds` as soon as its field is
    /// stored.
    pub(crate) fn prefilter(&mut self, conds: Vec<Where>) {
        self.early = conds;
    }

    /// True if the field `name` is wanted.
    #[inline]
    fn wants(&self, name: &str) -> bool {
        // `same`, not `==`: names are short, and this runs at every start
        // tag inside a record, once per wanted field.
        self.wanted.is_empty() || self.wanted.iter().any(|w| same(w, name))
    }

    /// A field was stored as `name` with the text at `span`: drops the
    /// record if an early condition on that field fails.
    #[inline(always)]
    fn test_early(&mut self, name_in_scratch: bool, span: (u32, u32)) {
        if self.early.is_empty() {
            return;
        }
        let name = if name_in_scratch {
            &self.scratch
        } else {
            &self.rel
        };
        if self.early.iter().any(|w| same(w.field(), name)) {
            self.test_early_value(name_in_scratch, span);
        }
    }

    #[inline(never)]
    fn test_early_value(&mut self, name_in_scratch: bool, span: (u32, u32)) {
        let name = if name_in_scratch {
            &self.scratch
        } else {
            &self.rel
        };
        let (start, len) = (span.0 as usize, span.1 as usize);
        let value = &self.fill.record.text[start..start + len];
        let fails = self
            .early
            .iter()
            .any(|w| same(w.field(), name) && w.check_value(Some(value)) == Check::Fail);
        if fails {
            // Nothing more of this record is gathered; its end drops it.
            self.rejected = true;
            self.skip = true;
        }
    }

    /// The path as given.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The name of the record elements (the path's last name).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn record(&self) -> &Record {
        &self.fill.record
    }

    /// Drops a record in progress (end of stream).
    pub(crate) fn reset(&mut self) {
        self.depth = 0;
        self.skip = true;
        self.rejected = false;
        self.outside.clear();
        self.outside_lens.clear();
    }

    fn at_path(&self) -> bool {
        if self.parents.is_empty() {
            true
        } else if self.anchored {
            self.outside == self.parents
        } else {
            self.outside.ends_with(&self.parents)
        }
    }

    // The builder's three steps are inlined into the parse loop (a call's
    // register saves cost as much as a step), all but the steps taken once
    // per record or outside records.
    #[inline(always)]
    pub(crate) fn start(&mut self, tag: &Tag<'_>) -> Built {
        if self.depth == 0 {
            self.start_outside(tag);
            return Built::No;
        }
        self.start_inside(tag)
    }

    /// A start tag outside any record: a record's, or one of its
    /// ancestors'.
    #[inline(never)]
    fn start_outside(&mut self, tag: &Tag<'_>) {
        let name = tag.name();
        if same(name, &self.name) && self.at_path() {
            self.depth = 1;
            self.fill.restart();
            self.rel.clear();
            self.rel_lens.clear();
            self.values_end = 0;
            self.leaf = true;
            self.rejected = false;
            // The record element's own text is no field.
            self.skip = true;
            self.attrs(tag);
            self.frag_start = self.values_end;
        } else if !self.parents.is_empty() {
            self.outside_lens.push(self.outside.len());
            self.outside.push('/');
            self.outside.push_str(name);
        }
    }

    /// A start tag inside a record.
    #[inline(always)]
    fn start_inside(&mut self, tag: &Tag<'_>) -> Built {
        let name = tag.name();
        self.depth += 1;
        if self.rejected {
            // A dropped record's elements are only counted (`skip` stays
            // set; `rel` is rebuilt at the next record).
            return Built::No;
        }
        // Text the parent gathered so far is no field's.
        self.fill.record.text.truncate(self.values_end);
        self.rel_lens.push(self.rel.len());
        if !self.rel.is_empty() {
            self.rel.push('/');
        }
        self.rel.push_str(name);
        self.leaf = true;
        self.skip = !self.wants(&self.rel);
        self.attrs(tag);
        self.frag_start = self.values_end;
        self.check_size()
    }

    /// Stores the attributes of the element just opened as `@name` (or
    /// `rel/@name`) fields.
    #[inline(always)]
    fn attrs(&mut self, tag: &Tag<'_>) {
        // Most elements have none: no call then.
        if self.attrs_wanted && !tag.attrs().is_empty() {
            self.attrs_from(tag.attrs().iter());
        }
    }

    /// [`attrs`](Self::attrs) for an element that has some.
    fn attrs_from(&mut self, attrs: AttrsIter<'_>) {
        for (k, v) in attrs {
            if self.rejected {
                return;
            }
            self.scratch.clear();
            if !self.rel.is_empty() {
                self.scratch.push_str(&self.rel);
                self.scratch.push('/');
            }
            self.scratch.push('@');
            self.scratch.push_str(k);
            if !self.wants(&self.scratch) {
                continue;
            }
            let text = &mut self.fill.record.text;
            let start = text.len();
            text.push_str(&v);
            // Spans are u32: `check_size` keeps the text far below 4 GiB.
            let span = (start as u32, v.len() as u32);
            if self.fill.set_field(&self.scratch, span, true) {
                self.values_end = self.fill.record.text.len();
                self.test_early(true, span);
            } else {
                self.fill.record.text.truncate(start);
            }
        }
    }

    fn check_size(&mut self) -> Built {
        if self.fill.record.text_len() > MAX_RECORD_BYTES {
            self.depth = 0;
            self.skip = true;
            return Built::TooLarge;
        }
        Built::No
    }

    #[inline(always)]
    pub(crate) fn text(&mut self, text: &str) -> Built {
        if !self.skip {
            if self.fill.record.text_len() + text.len() > MAX_RECORD_BYTES {
                self.depth = 0;
                self.skip = true;
                return Built::TooLarge;
            }
            self.fill.record.text.push_str(text);
        }
        Built::No
    }

    #[inline(always)]
    pub(crate) fn end(&mut self) -> Built {
        match self.depth {
            0 | 1 => self.end_outer(),
            _ if self.rejected => {
                self.depth -= 1;
                Built::No
            }
            _ => {
                if self.leaf && !self.skip {
                    let end = self.fill.record.text.len();
                    let span = (self.frag_start as u32, (end - self.frag_start) as u32);
                    if self.fill.set_field(&self.rel, span, true) {
                        self.values_end = end;
                        self.test_early(false, span);
                    }
                }
                // The parent has an element child now: its text is no
                // field.
                self.leaf = false;
                self.skip = true;
                if let Some(len) = self.rel_lens.pop() {
                    self.rel.truncate(len);
                }
                self.depth -= 1;
                Built::No
            }
        }
    }

    /// The end of a record, or of an element outside records.
    #[inline(never)]
    fn end_outer(&mut self) -> Built {
        if self.depth == 1 {
            self.depth = 0;
            self.skip = true;
            if self.rejected {
                self.rejected = false;
                self.fill.abandon();
                return Built::No;
            }
            self.fill.finish(self.values_end);
            return Built::Done;
        }
        if let Some(len) = self.outside_lens.pop() {
            self.outside.truncate(len);
        }
        Built::No
    }
}

/// Turns each element at a path into a [`Record`] of its attributes and
/// its children's text, and pushes `&Record`. Made by [`element_records`].
#[derive(Debug)]
pub struct ElementRecords<S> {
    builder: ElementBuilder,
    target: S,
}

/// Turns each element at `path` into a [`Record`] and pushes `&Record`
/// (what `copipe records --element PATH` runs).
///
/// The fields are `@name` for the element's attributes, the text of its
/// leaf children by their path from the element (`rt`, `pos/lat`), and
/// `child/@name` for the attributes of elements inside it. A repeated
/// field keeps its first value; text of elements with element children is
/// not a field. `path` is one name (at any depth), `parent/name`, or
/// `/root/.../name` from the root. One record buffer is reused, so the
/// stage does not allocate per record; a record still open at `close` is
/// dropped.
///
/// # Errors
///
/// A record larger than 16 MiB is an error.
///
/// # Examples
///
/// ```
/// use copipe::xml::{element_records, expat_parse, Record, XmlInput};
/// use copipe::{StageExt, sinks::Collect};
///
/// let doc = br#"<r><vehicle vid="1485"><rt>22</rt><pos><lat>41.9</lat></pos></vehicle></r>"#;
/// let mut out = Collect::new();
/// expat_parse(XmlInput::from_bytes(doc), element_records("vehicle", (&mut out).owned()))?;
/// assert_eq!(
///     out.items(),
///     [Record::from_iter([("@vid", "1485"), ("rt", "22"), ("pos/lat", "41.9")])]
/// );
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn element_records<S>(path: &str, target: S) -> ElementRecords<S>
where
    S: for<'a> Stage<&'a Record>,
{
    ElementRecords {
        builder: ElementBuilder::new(path),
        target,
    }
}

impl<S> ElementRecords<S> {
    /// Gathers only the fields named (the columns printed and the fields
    /// filtered on): the text of other elements is not copied into the
    /// record, and under [`expat_parse_wanted`](crate::xml::expat_parse_wanted)
    /// or [`ParallelParse::run_wanted`](crate::xml::ParallelParse::run_wanted)
    /// (see [`TextWanted`]) the source does not gather it either, which on
    /// a document of long texts no one asked for (a dump's article bodies)
    /// saves copying most of its bytes. An empty list gathers every field.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::xml::{element_records, expat_parse, Record, XmlInput};
    /// use copipe::{StageExt, sinks::Collect};
    ///
    /// let doc = b"<r><page><title>T</title><id>1</id><text>long...</text></page></r>";
    /// let mut out = Collect::new();
    /// let stage = element_records("page", (&mut out).owned()).only(["title", "id"]);
    /// expat_parse(XmlInput::from_bytes(doc), stage)?;
    /// assert_eq!(out.items(), [Record::from_iter([("title", "T"), ("id", "1")])]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn only<I, F>(mut self, fields: I) -> ElementRecords<S>
    where
        I: IntoIterator<Item = F>,
        F: Into<String>,
    {
        self.builder
            .only(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Tests `conds` on each record as its fields are read, and drops a
    /// record as soon as one fails ([`Check::Fail`]): the rest of it is
    /// neither gathered nor sent on (nor held to the 16 MiB limit), and
    /// under [`expat_parse_wanted`](crate::xml::expat_parse_wanted) its
    /// text is not even decoded. A record lacking the field, or whose value
    /// is not a number for a numeric comparison, is sent on as before.
    ///
    /// This only saves work: a record that passes is sent as without it, so
    /// the same conditions must still be tested after (by
    /// [`filter_where`](crate::xml::filter_where) stages, which also count
    /// values that are not numbers). Put only conditions whose filters come
    /// first in the chain, before any numeric one's (or it): a record
    /// dropped here never reaches a filter before it that would have
    /// counted a value that is not a number.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::xml::{element_records, expat_parse, filter_where, Record, Where, XmlInput};
    /// use copipe::{StageExt, sinks::Collect};
    ///
    /// let doc = b"<r><bus><id>1</id><rt>22</rt></bus><bus><id>2</id><rt>8</rt></bus></r>";
    /// let rt22: Where = "rt=22".parse()?;
    /// let mut out = Collect::new();
    /// let chain = filter_where(rt22.clone(), (&mut out).with_owned());
    /// expat_parse(XmlInput::from_bytes(doc), element_records("bus", chain).prefilter([rt22]))?;
    /// assert_eq!(out.items(), [Record::from_iter([("id", "1"), ("rt", "22")])]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn prefilter<I>(mut self, conds: I) -> ElementRecords<S>
    where
        I: IntoIterator<Item = Where>,
    {
        self.builder.prefilter(conds.into_iter().collect());
        self
    }

    /// The stage records are pushed into.
    pub fn get_ref(&self) -> &S {
        &self.target
    }
}

impl<'e, S> Stage<XmlEvent<'e>> for ElementRecords<S>
where
    S: for<'a> Stage<&'a Record>,
{
    #[inline(always)]
    fn send(&mut self, event: XmlEvent<'e>) -> Result<Flow> {
        let built = match event {
            XmlEvent::Start(tag) => self.builder.start(&tag),
            XmlEvent::Text(text) => self.builder.text(text),
            XmlEvent::End(_) => self.builder.end(),
        };
        match built {
            Built::No => Ok(Flow::Continue),
            Built::Done => self.target.send(self.builder.record()),
            Built::TooLarge => Err(Error::usage(format!(
                "a <{}> element holds more than {} MiB of text: is `{}` the record element?",
                self.builder.name(),
                MAX_RECORD_BYTES >> 20,
                self.builder.path()
            ))),
        }
    }
}

/// Wants the text of the leaf children whose fields are gathered (all, or
/// those named in [`only`](ElementRecords::only)), and no other: with
/// [`expat_parse_wanted`](crate::xml::expat_parse_wanted) the rest of
/// the document's text is checked but not copied.
impl<S> TextWanted for ElementRecords<S> {
    #[inline(always)]
    fn text_wanted(&self) -> bool {
        !self.builder.skip
    }
}

impl<S: Lifecycle> Lifecycle for ElementRecords<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.builder.reset();
        self.target.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{expat_parse, XmlInput};

    /// Records of `doc` at `path`, as `name=value` lists.
    fn fields(doc: &str, path: &str) -> Vec<Vec<String>> {
        struct Probe(ElementBuilder, Vec<Vec<String>>);
        impl Stage<XmlEvent<'_>> for Probe {
            fn send(&mut self, ev: XmlEvent<'_>) -> crate::Result<Flow> {
                let built = match ev {
                    XmlEvent::Start(t) => self.0.start(&t),
                    XmlEvent::Text(t) => self.0.text(t),
                    XmlEvent::End(_) => self.0.end(),
                };
                if let Built::Done = built {
                    let r = self.0.record();
                    self.1
                        .push(r.iter().map(|(k, v)| format!("{k}={v}")).collect());
                }
                Ok(Flow::Continue)
            }
        }
        impl Lifecycle for Probe {
            fn flush(&mut self) -> crate::Result<()> {
                Ok(())
            }
            fn close(&mut self) -> crate::Result<()> {
                Ok(())
            }
        }
        let mut p = Probe(ElementBuilder::new(path), Vec::new());
        expat_parse(XmlInput::from_bytes(doc.as_bytes()), &mut p).unwrap();
        p.1
    }

    #[test]
    fn attributes_children_and_nested_paths() {
        let doc = r#"<r><v id="7" kind="x"><rt>22</rt> <pos src="gps"><lat>41.9</lat><lon>-87.6</lon></pos><e/></v></r>"#;
        assert_eq!(
            fields(doc, "v"),
            [[
                "@id=7",
                "@kind=x",
                "rt=22",
                "pos/@src=gps",
                "pos/lat=41.9",
                "pos/lon=-87.6",
                "e="
            ]]
        );
    }

    #[test]
    fn only_wanted_fields_are_gathered() {
        let doc = r#"<r><v id="7" k="x"><a>1</a><b>2</b><p q="3"><c>4</c></p></v></r>"#;
        let mut b = ElementBuilder::new("v");
        b.only(vec!["@k".into(), "b".into(), "p/c".into()]);
        struct Probe(ElementBuilder, Vec<String>);
        impl Stage<XmlEvent<'_>> for Probe {
            fn send(&mut self, ev: XmlEvent<'_>) -> crate::Result<Flow> {
                let built = match ev {
                    XmlEvent::Start(t) => self.0.start(&t),
                    XmlEvent::Text(t) => self.0.text(t),
                    XmlEvent::End(_) => self.0.end(),
                };
                if let Built::Done = built {
                    let r = self.0.record();
                    self.1.extend(r.iter().map(|(k, v)| format!("{k}={v}")));
                    self.1.push(format!("text={}", r.text));
                }
                Ok(Flow::Continue)
            }
        }
        impl Lifecycle for Probe {
            fn flush(&mut self) -> crate::Result<()> {
                Ok(())
            }
            fn close(&mut self) -> crate::Result<()> {
                Ok(())
            }
        }
        let mut p = Probe(b, Vec::new());
        expat_parse(XmlInput::from_bytes(doc.as_bytes()), &mut p).unwrap();
        assert_eq!(p.1, ["@k=x", "b=2", "p/c=4", "text=x24"]);
    }

    #[test]
    fn a_repeated_field_keeps_its_first_value() {
        let doc = "<r><i><a>1</a><b>2</b><a>3</a></i><i><a>4</a></i></r>";
        assert_eq!(fields(doc, "i"), [vec!["a=1", "b=2"], vec!["a=4"]]);
    }

    #[test]
    fn paths_match_parents_and_the_root() {
        let doc = "<r><c><i><a>1</a></i></c><d><i><a>2</a></i><c><i><a>3</a></i></c></d></r>";
        assert_eq!(fields(doc, "i").len(), 3);
        assert_eq!(fields(doc, "c/i"), [["a=1"], ["a=3"]]);
        assert_eq!(fields(doc, "/r/c/i"), [["a=1"]]);
        assert_eq!(fields(doc, "d/i"), [["a=2"]]);
    }

    #[test]
    fn a_nested_element_of_the_same_name_is_a_child() {
        let doc = "<r><i><a>1</a><i><a>2</a></i></i></r>";
        assert_eq!(fields(doc, "i"), [["a=1", "i/a=2"]]);
    }

    #[test]
    fn the_source_that_skips_unwanted_text_gives_the_same_records() {
        use crate::sinks::Collect;
        use crate::xml::expat_parse_wanted;
        use crate::StageExt;
        let docs = [
            r#"<r><v id="7" kind="x"><rt>22</rt> <pos src="gps"><lat>41.9</lat><lon>-87.6</lon></pos><e/>tail</v></r>"#,
            "<r><page><title>A &amp; B</title><id>1</id><rev><id>9</id><text>long &lt;ref&gt; text</text></rev></page>\n<page><id>2</id><title>C<!-- c -->D</title></page></r>",
            "<r><i><a>1</a><b>2</b><a>3</a></i><i><a>4</a><i><a>5</a></i></i></r>",
        ];
        let onlys: [&[&str]; 5] = [
            &[],
            &["title", "id"],
            &["@id", "pos/lat"],
            &["a", "i/a"],
            &["rev/text"],
        ];
        for doc in docs {
            for path in ["v", "page", "i", "rev"] {
                for only in onlys {
                    let mut a = Collect::new();
                    let stage =
                        element_records(path, (&mut a).with_owned()).only(only.iter().copied());
                    expat_parse(XmlInput::from_bytes(doc.as_bytes()), stage).unwrap();
                    let mut b = Collect::new();
                    let stage =
                        element_records(path, (&mut b).with_owned()).only(only.iter().copied());
                    expat_parse_wanted(XmlInput::from_bytes(doc.as_bytes()), stage).unwrap();
                    assert_eq!(a.items(), b.items(), "{doc} {path} {only:?}");
                }
            }
        }
    }

    /// Records sent by `element_records("i", ...)` on `doc` through
    /// `filter_where` stages for `conds`, prefiltered on `early` (field
    /// lists and shape ids).
    fn filtered(doc: &str, conds: &[&str], early: &[&str]) -> Vec<(Vec<String>, u64)> {
        struct Keep(Vec<(Vec<String>, u64)>);
        impl Stage<&Record> for Keep {
            fn send(&mut self, r: &Record) -> crate::Result<Flow> {
                let f = r.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.0.push((f, r.shape));
                Ok(Flow::Continue)
            }
        }
        impl Lifecycle for Keep {
            fn flush(&mut self) -> crate::Result<()> {
                Ok(())
            }
            fn close(&mut self) -> crate::Result<()> {
                Ok(())
            }
        }
        let mut out = Keep(Vec::new());
        let mut chain: Box<dyn for<'a> Stage<&'a Record> + '_> = Box::new(&mut out);
        for c in conds.iter().rev() {
            chain = Box::new(crate::xml::filter_where(c.parse().unwrap(), chain));
        }
        let stage = element_records("i", chain).prefilter(early.iter().map(|c| c.parse().unwrap()));
        expat_parse(XmlInput::from_bytes(doc.as_bytes()), stage).unwrap();
        out.0
    }

    proptest::proptest! {
        /// Dropping records early changes nothing the filters after would
        /// not have: the same records pass, and a shape id still stands
        /// for one list of names.
        #[test]
        fn prefilter_sends_what_the_filters_pass(
            recs in proptest::collection::vec(
                proptest::collection::vec((0usize..5, 0usize..4), 0..6), 0..12),
            conds in proptest::collection::vec(0usize..6, 1..3),
        ) {
            const NAMES: [&str; 5] = ["a", "b", "c", "p/a", "@k"];
            const VALUES: [&str; 4] = ["1", "2", "x", ""];
            const CONDS: [&str; 6] = ["a=1", "b!=2", "c~^x", "a<2", "p/a>=1", "k=1"];
            let mut doc = String::from("<r>");
            for rec in &recs {
                let attr = rec.iter().find(|(n, _)| *n == 4).map(|&(_, v)| VALUES[v]);
                match attr {
                    Some(v) => doc.push_str(&format!("<i k=\"{v}\">")),
                    None => doc.push_str("<i>"),
                }
                for &(n, v) in rec {
                    match NAMES[n] {
                        "p/a" => doc.push_str(&format!("<p><a>{}</a></p>", VALUES[v])),
                        "@k" => {}
                        name => doc.push_str(&format!("<{name}>{}</{name}>", VALUES[v])),
                    }
                }
                doc.push_str("</i>");
            }
            doc.push_str("</r>");
            let conds: Vec<&str> = conds.iter().map(|&c| CONDS[c]).collect();
            let plain = filtered(&doc, &conds, &[]);
            for n in 1..=conds.len() {
                let early = filtered(&doc, &conds, &conds[..n]);
                let fields = |v: &[(Vec<String>, u64)]| v.iter().map(|r| r.0.clone()).collect::<Vec<_>>();
                proptest::prop_assert_eq!(fields(&early), fields(&plain), "{} {:?}", doc, conds);
                let mut names = std::collections::HashMap::new();
                for (f, shape) in &early {
                    let keys: Vec<&str> = f.iter().map(|kv| kv.split('=').next().unwrap_or("")).collect();
                    if *shape != 0 {
                        let seen = names.entry(*shape).or_insert_with(|| keys.clone());
                        proptest::prop_assert_eq!(&*seen, &keys, "{}", doc);
                    }
                }
            }
        }
    }
}
