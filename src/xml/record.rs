//! [`Record`], the seed's bus dictionary, and the `buses_to_dicts` state
//! machine that fills one.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most bytes one record may gather (names and values together): a
/// document with an endless `<bus>` is an error, not unbounded memory.
pub(crate) const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Named text fields in insertion order: the seed's `busdict`.
///
/// Setting a field that exists replaces its value in place (a Python dict
/// keeps the first position of a key). Values live in one `String`, names
/// in another, and the fields are spans of them, so clearing a record for
/// reuse keeps its memory, and a clone is three allocations whatever the
/// number of fields. A record serializes as a map
/// (a JSON object), so it crosses thread and process bridges as is.
///
/// # Examples
///
/// ```
/// use copipe::xml::Record;
///
/// let mut bus = Record::new();
/// bus.set("id", "7574");
/// bus.set("route", "22");
/// bus.set("id", "1485");
/// assert_eq!(bus.get("id"), Some("1485"));
/// assert_eq!(bus.iter().collect::<Vec<_>>(), [("id", "1485"), ("route", "22")]);
/// assert_eq!(serde_json::to_string(&bus).unwrap(), r#"{"id":"1485","route":"22"}"#);
/// ```
#[derive(Default)]
pub struct Record {
    /// Values (and, while a record is being built, the text gathered
    /// since the last start tag, at the end).
    text: String,
    names: String,
    fields: Vec<Field>,
}

// By hand, for `clone_from`: the derived one allocates a new record and
// drops the old. Reusing the buffers is what lets a thread bridge
// (`threaded_ref`) copy records into its slots without allocating.
impl Clone for Record {
    fn clone(&self) -> Record {
        Record {
            text: self.text.clone(),
            names: self.names.clone(),
            fields: self.fields.clone(),
        }
    }

    fn clone_from(&mut self, source: &Record) {
        self.text.clone_from(&source.text);
        self.names.clone_from(&source.names);
        self.fields.clone_from(&source.fields);
    }
}

#[derive(Clone, Copy, Debug)]
struct Field {
    /// A cheap digest of the name, compared before the bytes.
    key: u32,
    name: (u32, u32),
    value: (u32, u32),
}

/// `a == b` for the short strings element names are: a loop the compiler
/// keeps inline, where `==` calls `memcmp` (a call costs more than the
/// comparison of a name).
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

#[inline]
fn key_of(name: &str) -> u32 {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => ((b.len() as u32) << 16) ^ ((f as u32) << 8) ^ l as u32,
        _ => 0,
    }
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record::default()
    }

    /// The value of field `name`, if set.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        let key = key_of(name);
        self.fields
            .iter()
            .find(|f| f.key == key && same(self.name(f.name), name))
            .map(|f| self.span(f.value))
    }

    /// Sets field `name` to `value`, replacing an existing value in place.
    pub fn set(&mut self, name: &str, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.set_span(name, (start, value.len() as u32));
    }

    /// Sets field `name` to a span of text already in the record.
    #[inline]
    fn set_span(&mut self, name: &str, span: (u32, u32)) {
        let key = key_of(name);
        if let Some(i) = self
            .fields
            .iter()
            .position(|f| f.key == key && same(self.name(f.name), name))
        {
            self.fields[i].value = span;
            return;
        }
        let nstart = self.names.len() as u32;
        self.names.push_str(name);
        self.fields.push(Field {
            key,
            name: (nstart, name.len() as u32),
            value: span,
        });
    }

    /// Removes every field, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.text.clear();
        self.names.clear();
        self.fields.clear();
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as `(name, value)`, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|f| (self.name(f.name), self.span(f.value)))
    }

    /// Bytes of text held (including replaced values).
    pub(crate) fn text_len(&self) -> usize {
        self.text.len() + self.names.len()
    }

    #[inline]
    fn name(&self, (start, len): (u32, u32)) -> &str {
        &self.names[start as usize..(start + len) as usize]
    }

    #[inline]
    fn span(&self, (start, len): (u32, u32)) -> &str {
        &self.text[start as usize..(start + len) as usize]
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Record {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Record {
        let mut r = Record::new();
        for (k, v) in iter {
            r.set(k.as_ref(), v.as_ref());
        }
        r
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                let mut r = Record::new();
                while let Some((k, v)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    r.set(&k, &v);
                }
                Ok(r)
            }
        }
        d.deserialize_map(RecordVisitor)
    }
}

/// The seed's `buses_to_dicts` as a state machine over start/text/end.
///
/// State A looks for a start tag named `tag`; state B gathers: a start tag
/// clears the text fragments, text appends to them, an end tag other than
/// `tag` stores the fragments under its name, and the end of `tag` completes
/// the record and returns to A. Fragments are not cleared at an end tag, as
/// in the seed.
///
/// The gathered text lives at the end of the record's own text buffer, so
/// an end tag stores a value without copying it: the value is the span of
/// text gathered since the last start tag. Values may overlap (`<a><b>x</b>
/// y</a>` gives `b = "x"` and `a = "xy"`, sharing the `x`).
#[derive(Debug)]
pub(crate) struct RecordBuilder {
    tag: String,
    inside: bool,
    /// Where the text gathered since the last start tag begins.
    frag_start: usize,
    /// The end of the last stored value: text after it is only gathered
    /// text, dropped at the next start tag.
    values_end: usize,
    record: Record,
    /// The fields of the last record, whose names are still in the
    /// record's `names`: feeds repeat their fields in the same order, so a
    /// field named as the template's field at the same index reuses that
    /// name instead of searching the record and copying the name again.
    template: Vec<Field>,
    /// A field of the record being built did not follow the template: the
    /// rest are set the general way, and the record's names are rebuilt
    /// from scratch for the next record.
    missed: bool,
}

/// Whether a record was completed.
pub(crate) enum Built {
    No,
    Done,
    TooLarge,
}

impl RecordBuilder {
    pub(crate) fn new(tag: &str) -> RecordBuilder {
        RecordBuilder {
            tag: tag.to_string(),
            inside: false,
            frag_start: 0,
            values_end: 0,
            record: Record::new(),
            template: Vec::new(),
            missed: false,
        }
    }

    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    /// Drops a record in progress (end of stream).
    pub(crate) fn reset(&mut self) {
        self.inside = false;
    }

    #[inline]
    pub(crate) fn start(&mut self, name: &str) {
        if self.inside {
            // `fragments = []`: text gathered since the last start tag and
            // not stored as a value is dropped.
            self.record.text.truncate(self.values_end);
            self.frag_start = self.values_end;
        } else if same(name, &self.tag) {
            self.inside = true;
            self.restart();
            self.frag_start = 0;
            self.values_end = 0;
        }
    }

    /// Empties the record for the next element, keeping the last record's
    /// fields (and their names) as the template.
    fn restart(&mut self) {
        let r = &mut self.record;
        r.text.clear();
        // Names of fields that missed the template were added to `names`;
        // names no field uses any more are dropped before they add up.
        let used: usize = r.fields.iter().map(|f| f.name.1 as usize).sum();
        if r.names.len() > 2 * used + 256 {
            let old = std::mem::take(&mut r.names);
            for f in &mut r.fields {
                let (start, len) = f.name;
                f.name = (r.names.len() as u32, len);
                r.names
                    .push_str(&old[start as usize..(start + len) as usize]);
            }
        }
        std::mem::swap(&mut self.template, &mut r.fields);
        r.fields.clear();
        self.missed = false;
    }

    /// Sets field `name` of the record being built.
    #[inline]
    fn set_field(&mut self, name: &str, value: (u32, u32)) {
        let r = &mut self.record;
        let i = r.fields.len();
        if !self.missed {
            if let Some(t) = self.template.get(i) {
                // While every field so far followed the template, the
                // record's names are the template's first `i`, all
                // different from the template's `i`th: if `name` is that
                // one, it is new to the record.
                if t.key == key_of(name) && same(r.name(t.name), name) {
                    r.fields.push(Field {
                        key: t.key,
                        name: t.name,
                        value,
                    });
                    return;
                }
            }
            self.missed = true;
        }
        r.set_span(name, value);
    }

    #[inline]
    pub(crate) fn text(&mut self, text: &str) -> Built {
        if self.inside {
            if self.record.text_len() + text.len() > MAX_RECORD_BYTES {
                self.inside = false;
                return Built::TooLarge;
            }
            self.record.text.push_str(text);
        }
        Built::No
    }

    #[inline]
    pub(crate) fn end(&mut self, name: &str) -> Built {
        if !self.inside {
            return Built::No;
        }
        if !same(name, &self.tag) {
            let end = self.record.text.len();
            let span = (self.frag_start as u32, (end - self.frag_start) as u32);
            self.set_field(name, span);
            self.values_end = end;
            if self.record.text_len() > MAX_RECORD_BYTES {
                self.inside = false;
                return Built::TooLarge;
            }
            Built::No
        } else {
            self.inside = false;
            // Trailing gathered text is no value's: keep clones tight.
            self.record.text.truncate(self.values_end);
            Built::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(events: &[(&str, &str)]) -> Vec<Record> {
        let mut b = RecordBuilder::new("bus");
        let mut out = Vec::new();
        for &(kind, v) in events {
            let built = match kind {
                "start" => {
                    b.start(v);
                    Built::No
                }
                "text" => b.text(v),
                _ => b.end(v),
            };
            if let Built::Done = built {
                out.push(b.record().clone());
            }
        }
        out
    }

    #[test]
    fn fragments_are_not_cleared_at_an_end_tag() {
        // <bus><a><b>x</b>y</a></bus>: a = "xy", as in the seed.
        let recs = build(&[
            ("start", "bus"),
            ("start", "a"),
            ("start", "b"),
            ("text", "x"),
            ("end", "b"),
            ("text", "y"),
            ("end", "a"),
            ("end", "bus"),
        ]);
        assert_eq!(recs, [Record::from_iter([("b", "x"), ("a", "xy")])]);
    }

    #[test]
    fn a_nested_bus_ends_the_record_early() {
        let recs = build(&[
            ("start", "bus"),
            ("start", "id"),
            ("text", "1"),
            ("end", "id"),
            ("start", "bus"),
            ("end", "bus"),
            ("start", "route"),
            ("text", "9"),
            ("end", "route"),
            ("end", "bus"),
        ]);
        assert_eq!(recs, [Record::from_iter([("id", "1")])]);
    }

    #[test]
    fn records_that_change_shape_build_like_fresh_ones() {
        // Each record is built after the one before: the template of field
        // names must never change what a record holds, whatever the order,
        // repeats and new names, and `names` must not grow without bound.
        let shapes: [&[&str]; 7] = [
            &["id", "route", "lat"],
            &["id", "route", "lat"],
            &["id", "lat", "route"],
            &["id", "route", "lat", "extra"],
            &["id", "id", "route"],
            &["a"],
            &[],
        ];
        let mut b = RecordBuilder::new("bus");
        for round in 0..200 {
            let shape = shapes[round % shapes.len()];
            let mut want = Record::new();
            b.start("bus");
            for (k, name) in shape.iter().enumerate() {
                let value = format!("{round}-{k}");
                let name = if round % 5 == 0 && k == 0 {
                    format!("n{round}")
                } else {
                    name.to_string()
                };
                b.start(&name);
                b.text(&value);
                assert!(matches!(b.end(&name), Built::No));
                want.set(&name, &value);
            }
            assert!(matches!(b.end("bus"), Built::Done));
            assert_eq!(b.record(), &want, "round {round}");
            assert_eq!(b.record().len(), want.len());
            for (k, v) in want.iter() {
                assert_eq!(b.record().get(k), Some(v));
            }
            assert!(
                b.record().names.len() < 1024,
                "names grew: {}",
                b.record().names.len()
            );
        }
    }

    #[test]
    fn duplicate_fields_keep_their_first_position() {
        let r = Record::from_iter([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(r.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
        assert_eq!(r.get("c"), None);
        assert_eq!(r.get(""), None);
    }

    #[test]
    fn record_serde_roundtrip_keeps_order() {
        let r = Record::from_iter([("z", "1"), ("a", "é\"")]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"z":"1","a":"é\""}"#);
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&r, cfg).unwrap();
        let (back, _): (Record, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn clone_from_reuses_the_buffers() {
        let mut a = Record::new();
        a.set("id", "1485");
        a.set("route", "22");
        let mut slot = a.clone();
        let (text, names, fields) = (
            slot.text.as_ptr(),
            slot.names.as_ptr(),
            slot.fields.as_ptr(),
        );
        let mut b = Record::new();
        b.set("id", "7574");
        b.set("route", "9");
        slot.clone_from(&b);
        assert_eq!(slot, b);
        assert_eq!(slot.text.as_ptr(), text);
        assert_eq!(slot.names.as_ptr(), names);
        assert_eq!(slot.fields.as_ptr(), fields);
    }
}
