//! [`RecordBuilder`], the seed's `buses_to_dicts` state machine, and
//! [`Filling`], the record being filled that it shares with the
//! [`ElementBuilder`](super::element::ElementBuilder) of `copipe records`.

use super::{fresh_shape, key_of, same, Field, Record, MAX_RECORD_BYTES};

/// A record being filled field by field, reusing its buffers and the
/// names of the record before.
///
/// Feeds repeat their fields in the same order, so a field named as the
/// template's field at the same index reuses that name instead of
/// searching the record and copying the name again; a record that followed
/// the template all the way keeps its shape id, which a flat bridge uses
/// to skip the names.
#[derive(Debug, Default)]
pub(crate) struct Filling {
    pub(crate) record: Record,
    /// The fields of the last record, whose names are still in the
    /// record's `names`.
    template: Vec<Field>,
    /// The shape id of the template's record: 0 unless that record was
    /// completed and its names were not moved since.
    template_shape: u64,
    /// A field of the record being built did not follow the template: the
    /// rest are set the general way, and the record's names are rebuilt
    /// from scratch for the next record.
    missed: bool,
    /// The record being built was dropped while it still followed the
    /// template: the next record keeps the template (see `abandon`).
    keep_template: bool,
}

impl Filling {
    /// Empties the record for the next element, keeping the last record's
    /// fields (and their names) as the template.
    pub(crate) fn restart(&mut self) {
        let r = &mut self.record;
        r.text.clear();
        if std::mem::take(&mut self.keep_template) {
            // The dropped record's fields were the template's first ones,
            // named by the template's names: the template still holds.
            r.fields.clear();
            r.shape = 0;
            self.missed = false;
            return;
        }
        // Names of fields that missed the template were added to `names`;
        // names no field uses any more are dropped before they add up.
        let used: usize = r.fields.iter().map(|f| f.name.1 as usize).sum();
        // The record's shape is set when it is completed (`finish`), so
        // this is 0 for a record that was dropped half built.
        self.template_shape = r.shape;
        r.shape = 0;
        if r.names.len() > 2 * used + 256 {
            self.template_shape = 0;
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

    /// Sets field `name` of the record being built to a span of its text.
    /// A name set already is replaced (the seed's dict), or with
    /// `first_wins` kept, and then false is returned.
    // Inlined: called once per field, and a call's register saves cost
    // more than the template comparison itself.
    #[inline(always)]
    pub(crate) fn set_field(&mut self, name: &str, value: (u32, u32), first_wins: bool) -> bool {
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
                    return true;
                }
            }
            self.missed = true;
        }
        if first_wins && r.get(name).is_some() {
            return false;
        }
        r.set_span(name, value);
        true
    }

    /// Drops the record being built (it will not be completed): when it
    /// followed the template so far, the next record is compared with the
    /// same template (the last completed record's fields) rather than with
    /// this one's first fields.
    #[inline]
    pub(crate) fn abandon(&mut self) {
        self.keep_template = !self.missed;
    }

    /// Completes the record: drops text after `values_end` (gathered, no
    /// value's, so clones stay tight) and gives the record its shape id.
    #[inline]
    pub(crate) fn finish(&mut self, values_end: usize) {
        self.record.text.truncate(values_end);
        // Every field followed the template, and there are as many: the
        // names and their spans are the template record's.
        let same = !self.missed
            && self.record.fields.len() == self.template.len()
            && self.template_shape != 0;
        self.record.shape = if same {
            self.template_shape
        } else {
            fresh_shape()
        };
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
    fill: Filling,
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
            fill: Filling::default(),
        }
    }

    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    pub(crate) fn record(&self) -> &Record {
        &self.fill.record
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
            self.fill.record.text.truncate(self.values_end);
            self.frag_start = self.values_end;
        } else if same(name, &self.tag) {
            self.inside = true;
            self.fill.restart();
            self.frag_start = 0;
            self.values_end = 0;
        }
    }

    #[inline]
    pub(crate) fn text(&mut self, text: &str) -> Built {
        if self.inside {
            if self.fill.record.text_len() + text.len() > MAX_RECORD_BYTES {
                self.inside = false;
                return Built::TooLarge;
            }
            self.fill.record.text.push_str(text);
        }
        Built::No
    }

    #[inline]
    pub(crate) fn end(&mut self, name: &str) -> Built {
        if !self.inside {
            return Built::No;
        }
        if !same(name, &self.tag) {
            let end = self.fill.record.text.len();
            let span = (self.frag_start as u32, (end - self.frag_start) as u32);
            self.fill.set_field(name, span, false);
            self.values_end = end;
            if self.fill.record.text_len() > MAX_RECORD_BYTES {
                self.inside = false;
                return Built::TooLarge;
            }
            Built::No
        } else {
            self.inside = false;
            self.fill.finish(self.values_end);
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

    /// Field names of records that change shape: repeats, reorders, an
    /// extra name, a repeated name, one, none.
    const SHAPES: [&[&str]; 7] = [
        &["id", "route", "lat"],
        &["id", "route", "lat"],
        &["id", "lat", "route"],
        &["id", "route", "lat", "extra"],
        &["id", "id", "route"],
        &["a"],
        &[],
    ];

    /// `shape`'s names for record `round`; every fifth record renames its
    /// first field, so it misses the builder's template.
    fn field_names(shape: &[&str], round: usize) -> Vec<String> {
        shape
            .iter()
            .enumerate()
            .map(|(k, name)| {
                if round.is_multiple_of(5) && k == 0 {
                    format!("n{round}")
                } else {
                    name.to_string()
                }
            })
            .collect()
    }

    #[test]
    fn records_that_change_shape_build_like_fresh_ones() {
        // Each record is built after the one before: the template of field
        // names must never change what a record holds, whatever the order,
        // repeats and new names, and `names` must not grow without bound.
        let shapes = SHAPES;
        let mut b = RecordBuilder::new("bus");
        for round in 0..200 {
            let shape = shapes[round % shapes.len()];
            let mut want = Record::new();
            b.start("bus");
            for (k, name) in field_names(shape, round).iter().enumerate() {
                let value = format!("{round}-{k}");
                b.start(name);
                b.text(&value);
                assert!(matches!(b.end(name), Built::No));
                want.set(name, &value);
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
    fn records_with_the_same_shape_id_have_the_same_names() {
        // What a flat bridge relies on to write a record's names once: a
        // shape id the builder gives again means the very same names
        // buffer and name spans. Through names that miss the template,
        // names compacted after many misses, and records dropped half built
        // (too large), whose fields become the next record's template.
        let shapes = SHAPES;
        let huge = "x".repeat(MAX_RECORD_BYTES);
        let mut b = RecordBuilder::new("bus");
        let mut seen = std::collections::HashMap::new();
        let (mut done, mut dropped, mut last_dropped) = (0, 0, None);
        for round in 0..300 {
            // Each shape three times in a row. After a dropped record the
            // next has the same fields, so it follows the dropped one's
            // template all the way.
            let shape = shapes[(done / 3) % shapes.len()];
            b.start("bus");
            for name in field_names(shape, round) {
                b.start(&name);
                b.text("v");
                assert!(matches!(b.end(&name), Built::No));
            }
            // The first record of every fifth group (a new shape) is
            // dropped once, before the group's own records.
            if done % 15 == 0 && last_dropped != Some(done) {
                last_dropped = Some(done);
                assert!(matches!(b.text(&huge), Built::TooLarge));
                dropped += 1;
                continue;
            }
            assert!(matches!(b.end("bus"), Built::Done));
            done += 1;
            let r = b.record();
            assert_ne!(r.shape, 0, "a built record has a shape");
            let names = (
                r.names.clone(),
                r.fields.iter().map(|f| f.name).collect::<Vec<_>>(),
            );
            let first = seen.entry(r.shape).or_insert_with(|| names.clone());
            assert_eq!(*first, names, "round {round}: shape {} reused", r.shape);
        }
        assert!(dropped > 5);
        assert!(
            seen.len() < done * 2 / 3,
            "records that repeat the names keep the id: {} ids for {done} records",
            seen.len()
        );
        // Any change to the names forgets the id; values do not.
        b.start("bus");
        b.start("id");
        b.text("7");
        assert!(matches!(b.end("id"), Built::No));
        assert!(matches!(b.end("bus"), Built::Done));
        let mut r = b.record().clone();
        let id = r.shape;
        assert_ne!(id, 0);
        r.set("id", "other value");
        assert_eq!(r.shape, id);
        r.set("new name", "v");
        assert_eq!(r.shape, 0);
    }

    #[test]
    fn records_built_on_a_template_cross_the_wire_intact() {
        // A built record's names may lie anywhere in its `names` (kept from
        // an earlier record's template): the flat wire form must carry the
        // fields, and decoding in place must give them back, whatever the
        // record decoded into held before.
        use crate::bridge::{FrameReader, FrameWriter};
        let shapes: [&[&str]; 5] = [
            &["id", "route", "lat"],
            &["route", "id"],
            &["id", "route", "lat", "extra"],
            &["lat"],
            &["id", "route", "lat"],
        ];
        let mut b = RecordBuilder::new("bus");
        let mut frames = FrameWriter::new(Vec::new());
        let mut want = Vec::new();
        for round in 0..40 {
            b.start("bus");
            for (k, name) in shapes[round % shapes.len()].iter().enumerate() {
                b.start(name);
                b.text(&format!("{round}-{k}"));
                let _ = b.end(name);
            }
            assert!(matches!(b.end("bus"), Built::Done));
            frames.write(b.record()).unwrap();
            want.push(b.record().clone());
        }
        let bytes = frames.into_inner().unwrap();
        // Into one reused record (the worker's way), and into a record
        // that a builder laid out (names from a template).
        let mut reused = Record::new();
        let mut laid_out = b.record().clone();
        for place in [&mut reused, &mut laid_out] {
            let mut reader = FrameReader::new(&bytes[..]);
            for (i, w) in want.iter().enumerate() {
                assert!(reader.read_into(place).unwrap(), "frame {i}");
                assert_eq!(&*place, w, "frame {i}");
                for (k, v) in w.iter() {
                    assert_eq!(place.get(k), Some(v), "frame {i}");
                }
            }
            assert!(!reader.read_into(place).unwrap());
        }
    }
}
