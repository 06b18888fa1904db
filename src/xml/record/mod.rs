//! [`Record`], the seed's bus dictionary, and the `buses_to_dicts` state
//! machine that fills one.

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

// Serde: a map (`{"id":"1485","route":"22"}`) for human-readable formats
// such as JSON, and a flat form for binary ones such as the wire's
// bincode, which the process bridge decodes per record (see `flat` below).
impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return serde_flat::serialize(self, s);
        }
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
    /// process bridge's worker decodes every record into one).
    fn deserialize_in_place<D: Deserializer<'de>>(
        d: D,
        place: &mut Record,
    ) -> Result<(), D::Error> {
        if !d.is_human_readable() {
            // The record's names and fields are kept until the names
            // arrive (see `flat`).
            let res = d.deserialize_tuple(2, serde_flat::FlatVisitor(place));
            if res.is_err() {
                // Whatever was decoded is dropped: the spans of a half
                // decoded record may not fit its text.
                place.clear();
            }
            return res;
        }
        place.clear();
        struct MapVisitor<'r>(&'r mut Record);
        impl<'de> Visitor<'de> for MapVisitor<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some((k, v)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    self.0.set(&k, &v);
                }
                Ok(())
            }
        }
        d.deserialize_map(MapVisitor(place))
    }
}

/// The flat (binary) serde form of a [`Record`]: a 2-tuple
///
/// ```text
/// ( values: str,   "148522"            every value, in field order
///   bytes:         07                  the names' length,
///                  "idroute"           every name, in field order (UTF-8),
///                  02 04 05 02 )       per field: name length, value length
/// ```
///
/// (The lengths are LEB128 varints, one byte below 128.) Two elements, not
/// three, because each costs bincode a length to decode.
///
/// A map costs a string header, a UTF-8 check and a call per name and per
/// value; this form costs two, whatever the number of fields, and decodes
/// into a reused record by copying the values and walking the lengths. A
/// record with the same names as the one it overwrites (every bus record
/// of a feed) keeps its names and fields and only sets the value spans.
///
/// The names are the record's own `names` buffer and the values its
/// `text` when each lies in it back to back in field order, as a decoded
/// record or a fresh `records` record has them; otherwise (a value
/// replaced, values sharing text, names kept from an earlier record's
/// template) they are written field by field.
///
/// Decoding checks that the lengths add up exactly to the names and values,
/// that every span ends on a character boundary and that no name repeats,
/// so a corrupt frame is a decode error, never a record that would panic
/// later.
mod serde_flat {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::Serializer;

    use super::{key_of, Field, Record};

    /// Names and lengths of up to this many bytes are encoded on the stack
    /// (a bus record takes about 120).
    const STACK_BYTES: usize = 384;

    /// Most bytes of a LEB128 `u32`.
    const MAX_VARINT: usize = 5;

    pub(super) fn serialize<S: Serializer>(r: &Record, s: S) -> Result<S::Ok, S::Error> {
        // The second element: the names' length, the names, the lengths.
        let (mut names_len, mut names_end, mut names_tight) = (0usize, 0u32, true);
        for f in &r.fields {
            names_tight &= f.name.0 == names_end;
            names_end = f.name.0 + f.name.1;
            names_len += f.name.1 as usize;
        }
        names_tight &= names_end as usize == r.names.len();
        let need = 2 * MAX_VARINT + names_len + r.fields.len() * 2 * MAX_VARINT;
        let mut stack = [0u8; STACK_BYTES];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if need <= STACK_BYTES {
            &mut stack
        } else {
            heap.resize(need, 0);
            &mut heap
        };
        // `names` is below 4 GiB: spans into it are u32.
        let mut used = put_varint(buf, names_len as u32);
        if names_tight {
            buf[used..used + names_len].copy_from_slice(r.names.as_bytes());
            used += names_len;
        } else {
            for f in &r.fields {
                let name = r.name(f.name).as_bytes();
                buf[used..used + name.len()].copy_from_slice(name);
                used += name.len();
            }
        }
        let mut tight = true;
        let mut end = 0u32;
        for f in &r.fields {
            let (nl, vl) = (f.name.1, f.value.1);
            if (nl | vl) < 0x80 {
                // The common case: both lengths fit one byte.
                buf[used] = nl as u8;
                buf[used + 1] = vl as u8;
                used += 2;
            } else {
                used += put_varint(&mut buf[used..], nl);
                used += put_varint(&mut buf[used..], vl);
            }
            tight &= f.value.0 == end;
            end = f.value.0 + vl;
        }
        tight &= end as usize == r.text.len();
        let gathered;
        let values: &str = if tight {
            &r.text
        } else {
            gathered = r.fields.iter().map(|f| r.span(f.value)).collect::<String>();
            &gathered
        };
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(values)?;
        t.serialize_element(&Bytes(&buf[..used]))?;
        t.end()
    }

    /// Bytes serialized as bytes (serde serializes a plain `&[u8]` as a
    /// sequence of numbers).
    struct Bytes<'a>(&'a [u8]);

    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// Writes `v` as a LEB128 varint at the start of `out` (which has room
    /// for [`MAX_VARINT`] bytes) and returns its length.
    #[inline(never)]
    fn put_varint(out: &mut [u8], mut v: u32) -> usize {
        let mut i = 0;
        while v >= 0x80 {
            out[i] = (v as u8) | 0x80;
            v >>= 7;
            i += 1;
        }
        out[i] = v as u8;
        i + 1
    }

    /// Reads a LEB128 `u32` from the front of `bytes`, advancing it.
    #[inline(always)]
    fn take_varint(bytes: &mut &[u8]) -> Option<u32> {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        if b < 0x80 {
            return Some(b as u32);
        }
        take_varint_long(bytes, b)
    }

    /// The rest of a varint of two bytes or more, `first` read already.
    #[inline(never)]
    fn take_varint_long(bytes: &mut &[u8], first: u8) -> Option<u32> {
        let mut v = (first & 0x7f) as u32;
        for i in 1..MAX_VARINT {
            let (&b, rest) = bytes.split_first()?;
            *bytes = rest;
            let bits = (b & 0x7f) as u32;
            // The fifth byte may carry only the top 4 bits of a u32.
            if i == MAX_VARINT - 1 && (b & 0x80 != 0 || bits > 0x0f) {
                return None;
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Decodes the tuple into a cleared record.
    pub(super) struct FlatVisitor<'r>(pub(super) &'r mut Record);

    impl<'de> Visitor<'de> for FlatVisitor<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a record (values, then names and lengths)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let r = self.0;
            let expected = &"a record (values, then names and lengths)";
            r.text.clear();
            if seq.next_element_seed(Append(&mut r.text))?.is_none() {
                return Err(de::Error::invalid_length(0, expected));
            }
            if seq.next_element_seed(Lens(r))?.is_none() {
                return Err(de::Error::invalid_length(1, expected));
            }
            Ok(())
        }
    }

    /// Appends a string to a buffer, borrowed or not.
    struct Append<'s>(&'s mut String);

    impl<'de> DeserializeSeed<'de> for Append<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Append<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            if v.len() > u32::MAX as usize {
                return Err(E::custom("record text over 4 GiB"));
            }
            self.0.push_str(v);
            Ok(())
        }
    }

    /// The fast path, when the names are those of the record's fields
    /// already: if the lengths give the same names, only the value spans
    /// are set, and true is returned. False for anything else (names split
    /// otherwise, or any bad length), with value spans possibly changed:
    /// the caller rebuilds the fields.
    #[inline]
    fn same_names(fields: &mut [Field], text: &str, mut lens: &[u8]) -> bool {
        if lens.len() == 2 * fields.len() {
            // Every length may fit one byte: then they come in pairs.
            // (Names must also lie back to back, as the decoder lays them:
            // a record built otherwise goes the long way.)
            let (mut n, mut v) = (0usize, 0usize);
            let mut ok = true;
            for (f, pair) in fields.iter_mut().zip(lens.chunks_exact(2)) {
                let (nl, vl) = (pair[0], pair[1]);
                let v_end = v + vl as usize;
                ok &= (nl | vl) < 0x80
                    && nl as u32 == f.name.1
                    && f.name.0 as usize == n
                    && v_end <= text.len();
                if !ok {
                    break;
                }
                f.value = (v as u32, vl as u32);
                v = v_end;
                n += nl as usize;
            }
            // Boundaries last, in a loop of their own (no exits above).
            if ok && v == text.len() {
                return fields
                    .iter()
                    .all(|f| text.is_char_boundary((f.value.0 + f.value.1) as usize));
            }
        }
        let (mut n, mut v) = (0usize, 0usize);
        for f in fields.iter_mut() {
            let (Some(nl), Some(vl)) = (take_varint(&mut lens), take_varint(&mut lens)) else {
                return false;
            };
            let v_end = v + vl as usize;
            // `is_char_boundary` is false past the end too.
            if nl != f.name.1 || f.name.0 as usize != n || !text.is_char_boundary(v_end) {
                return false;
            }
            // Below 4 GiB: the text is (checked by `Append`).
            f.value = (v as u32, vl);
            v = v_end;
            n += nl as usize;
        }
        lens.is_empty() && v == text.len()
    }

    /// Reads the lengths and builds the fields over the names and values
    /// already in the record.
    /// Reads the names and the lengths, and sets the fields over the
    /// names and the values (already in the record's text). The record's
    /// names and fields are those of the record it overwrites, until here.
    struct Lens<'r>(&'r mut Record);

    impl<'de> DeserializeSeed<'de> for Lens<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_bytes(self)
        }
    }

    impl Visitor<'_> for Lens<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a record's names and the lengths of its names and values")
        }

        fn visit_bytes<E: de::Error>(self, mut lens: &[u8]) -> Result<(), E> {
            // Split borrows, so the loop keeps them in registers.
            let Record {
                text,
                names,
                fields,
                shape,
            } = self.0;
            // <names' length> <names> <lengths>
            let new_names = take_varint(&mut lens)
                .and_then(|n| lens.get(..n as usize))
                .ok_or_else(|| E::custom("record names: bad length"))?;
            lens = &lens[new_names.len()..];
            // The same names as the record's (every bus record of a feed)
            // cost a comparison, no UTF-8 check, and usually keep the fields.
            if new_names == names.as_bytes() {
                if same_names(fields, text, lens) {
                    return Ok(());
                }
                // Names split differently, or a bad length: start afresh
                // (and say what is wrong, if something is).
                *shape = 0;
            } else {
                *shape = 0;
                let Ok(new_names) = std::str::from_utf8(new_names) else {
                    return Err(E::custom("record names are not UTF-8"));
                };
                names.clear();
                Append(names).visit_str(new_names)?;
            }
            fields.clear();
            let (names, text) = (names.as_str(), text.as_str());
            // Each field takes at least two bytes of lengths.
            fields.reserve(lens.len() / 2);
            // `n` and `v` only grow up to the lengths of the strings, which
            // are below 4 GiB (checked by `Append`).
            let (mut n, mut v) = (0usize, 0usize);
            // A 64-bit filter of the keys of the names seen so far.
            let mut seen = 0u64;
            while !lens.is_empty() {
                let (Some(nl), Some(vl)) = (take_varint(&mut lens), take_varint(&mut lens)) else {
                    return Err(E::custom("record lengths: bad varint"));
                };
                let (n_end, v_end) = (n + nl as usize, v + vl as usize);
                // `is_char_boundary` is false past the end too.
                if !names.is_char_boundary(n_end) || !text.is_char_boundary(v_end) {
                    return Err(if n_end > names.len() || v_end > text.len() {
                        E::custom("record lengths run past the names or values")
                    } else {
                        E::custom("record lengths split a character")
                    });
                }
                let name = &names[n..n_end];
                let key = key_of(name);
                // A name is new unless its bit in `seen` is set already: only
                // then are the fields searched (rarely, for distinct names).
                let bit = 1u64 << (key.wrapping_mul(0x9e37_79b1) >> 26);
                if seen & bit != 0
                    && fields.iter().any(|f| {
                        f.key == key
                            && &names[f.name.0 as usize..(f.name.0 + f.name.1) as usize] == name
                    })
                {
                    return Err(E::custom(format_args!("record repeats the name `{name}`")));
                }
                seen |= bit;
                fields.push(Field {
                    key,
                    name: (n as u32, nl),
                    value: (v as u32, vl),
                });
                (n, v) = (n_end, v_end);
            }
            if n != names.len() || v != text.len() {
                return Err(E::custom(
                    "record names or values longer than their lengths",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
