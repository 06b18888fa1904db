//! The flat form of a [`Record`] that crosses a thread bridge or flat
//! frames: see the `Flat` impl.

use super::{fresh_shape, key_of, Field, Record};

/// Records cross a thread bridge ([`threaded_flat`]) as, in the batch's
/// byte region and text region ([`FlatBuf`]):
///
/// ```text
///              byte region                     text region
/// shape:   00                                  the names of the record
///                                              before (in the batch), or
///          01 <n> <len>                        <names>
///             n x <start> <len>                the count of fields and the
///                                              length of the names buffer
///                                              (u32 LE each), each field's
///                                              name span in the buffer
///                                              (u32 LE each), the buffer
/// values:  <value lengths>                     <values>
///                                              every field's value length,
///                                              the values back to back
/// ```
///
/// (Value lengths are LEB128 varints, one byte below 128.) Feeds repeat the
/// same names in the same order, so most records are a byte and their
/// value lengths, and their values in the text: one copy each on the
/// producer's side, and on the worker's a copy of the values (a `&str`
/// already: no UTF-8 check) into the reused record, whose names and fields
/// stay as they were.
///
/// Decoding checks the lengths against the regions, character boundaries
/// and repeated names, and leaves the place empty on error.
///
/// [`threaded_flat`]: crate::bridge::threaded_flat
/// [`FlatBuf`]: crate::bridge::FlatBuf
impl crate::bridge::Flat for Record {
    type Place = Record;
    type Memo = RecordMemo;

    #[inline]
    fn flatten(&self, memo: &mut Self::Memo, out: &mut crate::bridge::FlatBuf) {
        flat_form::flatten(self, memo, out)
    }

    // Always: it is the whole per-record work of `recvfrom_flat` and of
    // the flat bridge's consumer. Left to the compiler, it stayed a call
    // of its own in `copipe worker buses`, 25 instructions per record more
    // (callgrind, the bridges bench's `--count process-flat`).
    #[inline(always)]
    fn unflatten<'p, 'b: 'p>(
        src: &mut crate::bridge::FlatSrc<'b>,
        place: &'p mut Record,
    ) -> Result<&'p Record, crate::bridge::FlatError> {
        match flat_form::unflatten(src, place) {
            Ok(()) => Ok(place),
            Err(e) => {
                place.clear();
                Err(e)
            }
        }
    }
}

/// What the producer of a flat bridge or flat frames remembers of the
/// records before, within one batch or frame: the names of the last record
/// that wrote them (see [`Record`]'s [`Flat`](crate::bridge::Flat) impl).
#[derive(Debug, Default, Clone)]
pub struct RecordMemo {
    /// Where the shape (after its `01`) of the last record that wrote one
    /// lies in the batch: its range in the byte region, and its names'
    /// range in the text region.
    at: Option<((usize, usize), (usize, usize))>,
    /// The shape id of the last record written (0 if unknown).
    shape: u64,
}

/// The thread bridge's flat form of a record (see the `Flat` impl).
mod flat_form {
    use super::{key_of, Field, Record, RecordMemo};
    use crate::bridge::flat::put_varint;
    use crate::bridge::{FlatBuf, FlatError, FlatSrc};

    const SAME_SHAPE: u8 = 0;
    const NEW_SHAPE: u8 = 1;

    #[inline]
    pub(super) fn flatten(r: &Record, memo: &mut RecordMemo, out: &mut FlatBuf) {
        // A record that kept the names of the one before (a parser's
        // records do while the feed repeats them) says so by its shape id;
        // any other is compared by its bytes.
        let same = match memo.at {
            Some(_) if r.shape != 0 && r.shape == memo.shape => true,
            Some(((s, e), (ts, te))) => same_shape(r, &out.bytes[s..e], &out.text[ts..te]),
            None => false,
        };
        if same {
            out.bytes.push(SAME_SHAPE);
        } else {
            out.bytes.push(NEW_SHAPE);
            let start = (out.bytes.len(), out.text.len());
            write_shape(r, out);
            memo.at = Some(((start.0, out.bytes.len()), (start.1, out.text.len())));
        }
        memo.shape = r.shape;
        // Fields and values are below 4 GiB (spans are u32).
        let (mut tight, mut end, mut wide) = (true, 0u32, 0u32);
        for f in &r.fields {
            wide |= f.value.1;
            tight &= f.value.0 == end;
            end = f.value.0 + f.value.1;
        }
        if wide < 0x80 {
            // The common case: every length is one byte.
            out.bytes.extend(r.fields.iter().map(|f| f.value.1 as u8));
        } else {
            for f in &r.fields {
                put_varint(&mut out.bytes, f.value.1);
            }
        }
        if tight && end as usize == r.text.len() {
            out.text.push_str(&r.text);
        } else {
            for f in &r.fields {
                out.text.push_str(r.span(f.value));
            }
        }
    }

    /// True if `shape` and `names` (as [`write_shape`] wrote them) are
    /// `r`'s: one comparison of the names, and a loop without exits over
    /// the spans.
    #[inline]
    fn same_shape(r: &Record, shape: &[u8], names: &str) -> bool {
        let Some((head, spans)) = shape.split_first_chunk::<8>() else {
            return false;
        };
        if head[..] != counts(r) {
            return false;
        }
        if names != r.names || spans.len() != SPAN_BYTES * r.fields.len() {
            return false;
        }
        let mut same = true;
        for (f, span) in r.fields.iter().zip(spans.chunks_exact(SPAN_BYTES)) {
            same &= span == span_bytes(f.name);
        }
        same
    }

    /// Bytes of a name's span in a shape: start and length, `u32` LE each.
    const SPAN_BYTES: usize = 8;

    /// The head of `r`'s shape: the count of fields and the length of the
    /// names buffer, `u32` LE each (fixed, so comparing them is one load).
    #[inline(always)]
    fn counts(r: &Record) -> [u8; 8] {
        // Below 4 GiB: fields and `names` (spans into it are u32).
        span_bytes((r.fields.len() as u32, r.names.len() as u32))
    }

    #[inline(always)]
    fn span_bytes((start, len): (u32, u32)) -> [u8; SPAN_BYTES] {
        let mut b = [0u8; SPAN_BYTES];
        b[..4].copy_from_slice(&start.to_le_bytes());
        b[4..].copy_from_slice(&len.to_le_bytes());
        b
    }

    /// Writes `r`'s shape: the field count and every field's name span in
    /// the record's `names` buffer to the byte region, and the buffer as
    /// it is (names kept from a template lie anywhere in it, so it is
    /// compared in one piece) to the text region.
    #[cold]
    fn write_shape(r: &Record, out: &mut FlatBuf) {
        out.bytes.extend_from_slice(&counts(r));
        for f in &r.fields {
            out.bytes.extend_from_slice(&span_bytes(f.name));
        }
        out.text.push_str(&r.names);
    }

    #[inline(always)]
    pub(super) fn unflatten(src: &mut FlatSrc<'_>, r: &mut Record) -> Result<(), FlatError> {
        let marker = src
            .take_byte()
            .map_err(|_| FlatError::new("record cut short"))?;
        match marker {
            SAME_SHAPE => {}
            NEW_SHAPE => shape(src, r)?,
            _ => return Err(FlatError::new("record: bad shape marker")),
        }
        let Record {
            text,
            names: _,
            fields,
            shape: _,
        } = r;
        let mut v = 0usize;
        let bytes = src.bytes();
        let short = bytes
            .get(..fields.len())
            .filter(|lens| lens.iter().fold(0, |a, &l| a | l) < 0x80);
        if let Some(lens) = short {
            // The common case: every length is one byte.
            for (f, &vl) in fields.iter_mut().zip(lens) {
                f.value = (v as u32, vl as u32);
                v += vl as usize;
            }
            src.take_bytes(lens.len())?;
        } else {
            for f in fields.iter_mut() {
                let vl = src.take_varint()?;
                // `v` is checked against the text below before it is used.
                f.value = (v as u32, vl);
                v += vl as usize;
            }
        }
        if v > src.text().len() {
            return Err(FlatError::new("length runs past the end of the batch"));
        }
        if v > u32::MAX as usize {
            return Err(FlatError::new("record values over 4 GiB"));
        }
        // Text already: no UTF-8 check, only where the values end.
        let values = src
            .take_str(v)
            .map_err(|_| FlatError::new("record value lengths split a character"))?;
        text.clear();
        text.push_str(values);
        // Each value starts where the one before ends: ends suffice.
        if !fields
            .iter()
            .all(|f| text.is_char_boundary((f.value.0 + f.value.1) as usize))
        {
            return Err(FlatError::new("record value lengths split a character"));
        }
        Ok(())
    }

    /// Reads a new shape (names) into the record's names and fields.
    #[cold]
    fn shape(src: &mut FlatSrc<'_>, r: &mut Record) -> Result<(), FlatError> {
        let head = src.take_bytes(8)?;
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let names_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // Checked against the bytes before anything is reserved for it.
        let spans = n
            .checked_mul(SPAN_BYTES)
            .and_then(|len| src.bytes().get(..len))
            .ok_or(FlatError::new("record field count runs past the batch"))?;
        src.take_bytes(spans.len())?;
        let names = src.take_str(names_len).map_err(|e| {
            if names_len > src.text().len() {
                e
            } else {
                FlatError::new("record names length splits a character")
            }
        })?;
        r.names.clear();
        r.names.push_str(names);
        r.fields.clear();
        r.shape = 0;
        r.fields.reserve(n);
        for span in spans.chunks_exact(SPAN_BYTES) {
            let start = u32::from_le_bytes([span[0], span[1], span[2], span[3]]);
            let len = u32::from_le_bytes([span[4], span[5], span[6], span[7]]);
            r.fields.push(Field {
                key: 0,
                name: (start, len),
                value: (0, 0),
            });
        }
        // Names seen so far: a search of the fields before for a few, a
        // set for many (a new shape is rare: once per batch at most).
        let mut seen = (n > 32).then(|| std::collections::HashSet::with_capacity(n));
        for i in 0..n {
            let (start, len) = r.fields[i].name;
            let Some(name) = (start as usize)
                .checked_add(len as usize)
                .and_then(|end| r.names.get(start as usize..end))
            else {
                return Err(FlatError::new(
                    "record name spans run past the names or split a character",
                ));
            };
            let key = key_of(name);
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name),
                None => r.fields[..i]
                    .iter()
                    .any(|g| g.key == key && r.name(g.name) == name),
            };
            if repeated {
                return Err(FlatError::new("record repeats a name"));
            }
            r.fields[i].key = key;
        }
        r.shape = super::fresh_shape();
        Ok(())
    }
}
