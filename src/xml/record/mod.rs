//! [`Record`], the seed's bus dictionary, and what fills, filters and
//! prints one.
//!
//! - `mod.rs`: [`Record`] and its serde form (a map)
//! - `builder.rs`: the seed's `buses_to_dicts` state machine, and the
//!   record being filled that both builders share
//! - `element.rs`: [`element_records`], any record-shaped element
//! - `flat.rs`: the flat form records cross bridges in
//! - `filter.rs`: [`Where`], [`filter_where`], [`field_matches`]
//! - `output.rs`: [`record_writer`] (CSV, TSV, JSON lines), [`FieldTally`]

use std::fmt;

mod builder;
mod element;
mod filter;
mod flat;
mod output;

pub(crate) use builder::{Built, RecordBuilder};
pub use element::{element_records, ElementRecords};
pub use filter::{field_matches, filter_where, Check, FieldMatches, FilterWhere, Where};
pub use flat::RecordMemo;
pub use output::{record_writer, FieldTally, RecordFormat, RecordWriter};

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
    /// Who the names are: two records with the same nonzero `shape` have
    /// the same `names` buffer and the same name spans (so the same field
    /// names, in the same order). 0 is unknown. Every change to the names
    /// resets it; a parser gives each new set of names a fresh one (from
    /// [`fresh_shape`]) and keeps it while records repeat their names,
    /// which lets a flat bridge tell "the same names as the record before"
    /// by one comparison instead of comparing the names.
    shape: u64,
}

/// A shape no record has had yet in this process.
fn fresh_shape() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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
            shape: self.shape,
        }
    }

    fn clone_from(&mut self, source: &Record) {
        self.text.clone_from(&source.text);
        self.names.clone_from(&source.names);
        self.fields.clone_from(&source.fields);
        self.shape = source.shape;
    }
}

#[derive(Clone, Copy, Debug)]
struct Field {
    /// A cheap digest of the name, compared before the bytes.
    key: u32,
    name: (u32, u32),
    value: (u32, u32),
}

/// `a == b` for the short strings element names are: compares the
/// compiler keeps inline, where `==` calls `memcmp` (a call costs more than
/// the comparison of a name).
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Field and element names are short: two overlapping word compares
    // cover 4 to 16 bytes without a call or a loop.
    let w8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or([0; 4]));
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
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
        self.shape = 0;
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
        self.shape = 0;
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

// Serde: a map (`{"id":"1485","route":"22"}`) in every format. Records
// cross bridges in their flat form (see `flat.rs`); the serde form is for
// JSON and for the wire's general frames (the seed's busproc example).
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
        let mut r = Record::new();
        Record::deserialize_in_place(d, &mut r)?;
        Ok(r)
    }

    /// Decodes into `place`, reusing its buffers: once they have grown to
    /// the size of the records that come, decoding allocates nothing (the
    /// names and values are copied from the deserializer's `&str`s; a
    /// name waits in a buffer kept per thread).
    fn deserialize_in_place<D: Deserializer<'de>>(
        d: D,
        place: &mut Record,
    ) -> Result<(), D::Error> {
        place.clear();
        d.deserialize_map(MapVisitor(place))
    }
}

thread_local! {
    /// The name of the field being decoded (see `deserialize_in_place`).
    static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Sets every entry of a map into the record.
struct MapVisitor<'r>(&'r mut Record);

impl<'de> Visitor<'de> for MapVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        NAME.with(|name| {
            let mut name = name.borrow_mut();
            while map.next_key_seed(Str(Slot::Name(&mut name)))?.is_some() {
                map.next_value_seed(Str(Slot::Value(self.0, &name)))?;
            }
            Ok(())
        })
    }
}

/// Where a decoded string goes.
enum Slot<'a> {
    /// Into the name buffer.
    Name(&'a mut String),
    /// Into the record, as the value of the field named.
    Value(&'a mut Record, &'a str),
}

/// A string decoded into a [`Slot`] without an owned copy of its own.
struct Str<'a>(Slot<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for Str<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Str<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            Slot::Name(n) => {
                n.clear();
                n.push_str(v);
            }
            Slot::Value(r, name) => r.set(name, v),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `same` is `==`, at every length around its word sizes.
        #[test]
        fn same_is_equality(a in "[ab]{0,20}", flip in 0usize..24) {
            let mut b = a.clone().into_bytes();
            if let Some(c) = b.get_mut(flip) {
                *c = if *c == b'a' { b'b' } else { b'a' };
            }
            let b = String::from_utf8(b).unwrap_or_default();
            proptest::prop_assert_eq!(same(&a, &b), a == b);
            proptest::prop_assert!(same(&a, &a));
            let longer = format!("{a}a");
            proptest::prop_assert!(!same(&a, &longer));
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
