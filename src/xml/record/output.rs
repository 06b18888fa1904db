//! [`RecordWriter`]: records as CSV, TSV or JSON lines, and the
//! [`FieldTally`] behind `copipe records`' one warning.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use super::Record;
use crate::error::{Error, Result};
use crate::sinks::Printer;
use crate::stage::{Flow, Stage};
use crate::Lifecycle;

/// How a [`RecordWriter`] prints records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordFormat {
    /// Comma-separated values as RFC 4180 quotes them: a value holding a
    /// comma, a double quote, CR or LF is put in double quotes, its
    /// quotes doubled. Lines end with LF.
    Csv,
    /// Tab-separated values: a tab, LF, CR or backslash in a value is
    /// written `\t`, `\n`, `\r`, `\\`.
    Tsv,
    /// One JSON object per line, fields in order, values as strings.
    Json,
}

/// What records lacked and which values were not numbers, added up over
/// the stages of a pipeline (or the chunks of a parallel parse), for one
/// warning at the end.
///
/// # Examples
///
/// ```
/// use copipe::xml::FieldTally;
///
/// let mut t = FieldTally::default();
/// t.add_missing(&["lat".to_string()], &[2], 2);
/// t.add_not_numbers("dly", 3);
/// assert_eq!(
///     t.warning().unwrap(),
///     "2 records lacked a printed field, printed empty (lat: 2); \
///      3 values were not numbers in a numeric --where, which failed (dly: 3)"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTally {
    missing: Vec<(String, u64)>,
    records_missing: u64,
    not_numbers: Vec<(String, u64)>,
}

fn bump(list: &mut Vec<(String, u64)>, name: &str, n: u64) {
    if n == 0 {
        return;
    }
    match list.iter_mut().find(|(k, _)| k == name) {
        Some((_, c)) => *c += n,
        None => list.push((name.to_string(), n)),
    }
}

impl FieldTally {
    /// Adds `counts[i]` records that lacked `fields[i]`, and `records`
    /// records that lacked at least one field.
    pub fn add_missing(&mut self, fields: &[String], counts: &[u64], records: u64) {
        for (f, &n) in fields.iter().zip(counts) {
            bump(&mut self.missing, f, n);
        }
        self.records_missing += records;
    }

    /// Adds `n` values of `field` that were not numbers.
    pub fn add_not_numbers(&mut self, field: &str, n: u64) {
        bump(&mut self.not_numbers, field, n);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &FieldTally) {
        for (f, n) in &other.missing {
            bump(&mut self.missing, f, *n);
        }
        self.records_missing += other.records_missing;
        for (f, n) in &other.not_numbers {
            bump(&mut self.not_numbers, f, *n);
        }
    }

    /// Records that lacked at least one printed field.
    pub fn records_missing(&self) -> u64 {
        self.records_missing
    }

    /// The one-line warning, if anything was counted.
    pub fn warning(&self) -> Option<String> {
        let list = |l: &[(String, u64)]| {
            l.iter()
                .map(|(f, n)| format!("{f}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if self.records_missing > 0 {
            parts.push(format!(
                "{} record{} lacked a printed field, printed empty ({})",
                self.records_missing,
                if self.records_missing == 1 { "" } else { "s" },
                list(&self.missing)
            ));
        }
        let nn: u64 = self.not_numbers.iter().map(|(_, n)| n).sum();
        if nn > 0 {
            parts.push(format!(
                "{nn} {} in a numeric --where, which failed ({})",
                if nn == 1 {
                    "value was not a number"
                } else {
                    "values were not numbers"
                },
                list(&self.not_numbers)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Prints records as CSV, TSV or JSON lines. Made by [`record_writer`].
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    printer: Printer<W>,
    format: RecordFormat,
    /// The columns: given, or the first record's field names.
    fields: Option<Vec<String>>,
    /// Print only the given fields (JSON); false: every field.
    chosen: bool,
    header: bool,
    missing: Vec<u64>,
    records_missing: u64,
    warn: bool,
    tally: Option<Arc<Mutex<FieldTally>>>,
}

/// Prints each record on a line of its own in `format`.
///
/// Columns are the fields given with [`fields`](RecordWriter::fields), or
/// else (CSV, TSV) the first record's field names; JSON without chosen
/// fields prints every field of each record. CSV and TSV start with a
/// header line of the column names unless [`no_header`](RecordWriter::no_header).
/// A record that lacks a column prints it empty; such records are
/// counted, and `close` writes one warning to stderr (unless
/// [`count_into`](RecordWriter::count_into)).
///
/// # Errors
///
/// Writing the output fails (other than a closed pipe).
///
/// # Examples
///
/// ```
/// use copipe::xml::{record_writer, Record, RecordFormat};
/// use copipe::{Lifecycle, Stage};
///
/// let mut out = Vec::new();
/// let mut csv = record_writer(RecordFormat::Csv, &mut out).fields(["rt", "des"]);
/// csv.send(&Record::from_iter([("rt", "22"), ("des", "Howard, \"North\"")]))?;
/// csv.close()?;
/// drop(csv);
/// assert_eq!(String::from_utf8(out).unwrap(), "rt,des\n22,\"Howard, \"\"North\"\"\"\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn record_writer<W: Write>(format: RecordFormat, out: W) -> RecordWriter<W> {
    RecordWriter {
        printer: Printer::new(out),
        format,
        fields: None,
        chosen: false,
        header: true,
        missing: Vec::new(),
        records_missing: 0,
        warn: true,
        tally: None,
    }
}

impl<W: Write> RecordWriter<W> {
    /// Prints these fields, in this order.
    pub fn fields<I, S>(mut self, fields: I) -> RecordWriter<W>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let f: Vec<String> = fields.into_iter().map(Into::into).collect();
        self.missing = vec![0; f.len()];
        self.fields = Some(f);
        self.chosen = true;
        self
    }

    /// No header line (CSV, TSV).
    pub fn no_header(mut self) -> RecordWriter<W> {
        self.header = false;
        self
    }

    /// No warning on stderr at `close`: the counts are added to `tally`,
    /// so that the caller can add up several stages and warn once.
    pub fn count_into(mut self, tally: Arc<Mutex<FieldTally>>) -> RecordWriter<W> {
        self.warn = false;
        self.tally = Some(tally);
        self
    }

    /// Records that lacked at least one printed field, so far.
    pub fn records_missing(&self) -> u64 {
        self.records_missing
    }

    fn tally(&self) -> FieldTally {
        let mut t = FieldTally::default();
        if let Some(f) = &self.fields {
            t.add_missing(f, &self.missing, self.records_missing);
        }
        t
    }

    /// The header line (CSV, TSV), once, when the columns are known.
    fn write_header(&mut self) {
        self.header = false;
        let Some(fields) = &self.fields else { return };
        if self.format == RecordFormat::Json {
            return;
        }
        let buf = self.printer.buffer();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(sep(self.format));
            }
            put(buf, self.format, f);
        }
        buf.push(b'\n');
    }
}

fn sep(format: RecordFormat) -> u8 {
    if format == RecordFormat::Tsv {
        b'\t'
    } else {
        b','
    }
}

/// Writes one value as `format` quotes it.
#[inline]
fn put(buf: &mut Vec<u8>, format: RecordFormat, v: &str) {
    let b = v.as_bytes();
    match format {
        RecordFormat::Csv => {
            if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
                buf.push(b'"');
                for &c in b {
                    if c == b'"' {
                        buf.push(b'"');
                    }
                    buf.push(c);
                }
                buf.push(b'"');
            } else {
                buf.extend_from_slice(b);
            }
        }
        RecordFormat::Tsv => {
            if b.iter()
                .any(|&c| matches!(c, b'\t' | b'\n' | b'\r' | b'\\'))
            {
                for &c in b {
                    match c {
                        b'\t' => buf.extend_from_slice(b"\\t"),
                        b'\n' => buf.extend_from_slice(b"\\n"),
                        b'\r' => buf.extend_from_slice(b"\\r"),
                        b'\\' => buf.extend_from_slice(b"\\\\"),
                        c => buf.push(c),
                    }
                }
            } else {
                buf.extend_from_slice(b);
            }
        }
        RecordFormat::Json => {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *buf, v);
        }
    }
}

impl<'r, W: Write> Stage<&'r Record> for RecordWriter<W> {
    #[inline]
    fn send(&mut self, record: &'r Record) -> Result<Flow> {
        if self.fields.is_none() && self.format != RecordFormat::Json {
            // The first record names the columns.
            let f: Vec<String> = record.iter().map(|(k, _)| k.to_string()).collect();
            self.missing = vec![0; f.len()];
            self.fields = Some(f);
        }
        if self.header {
            self.write_header();
        }
        let format = self.format;
        let buf = self.printer.buffer();
        let mut lacking = false;
        match (&self.fields, format) {
            (Some(fields), RecordFormat::Json) if self.chosen => {
                buf.push(b'{');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    put(buf, format, f);
                    buf.push(b':');
                    let v = record.get(f).unwrap_or_else(|| {
                        self.missing[i] += 1;
                        lacking = true;
                        ""
                    });
                    put(buf, format, v);
                }
                buf.extend_from_slice(b"}\n");
            }
            (_, RecordFormat::Json) => {
                serde_json::to_writer(&mut *buf, record)
                    .map_err(|e| Error::from(std::io::Error::other(e)))?;
                buf.push(b'\n');
            }
            (Some(fields), _) => {
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        buf.push(sep(format));
                    }
                    match record.get(f) {
                        Some(v) => put(buf, format, v),
                        None => {
                            self.missing[i] += 1;
                            lacking = true;
                        }
                    }
                }
                buf.push(b'\n');
            }
            (None, _) => unreachable!("columns are set above for CSV and TSV"),
        }
        if lacking {
            self.records_missing += 1;
        }
        self.printer.commit()
    }
}

impl<W: Write> Lifecycle for RecordWriter<W> {
    fn flush(&mut self) -> Result<()> {
        self.printer.flush()
    }
    fn close(&mut self) -> Result<()> {
        if self.header && self.chosen {
            // No record came: the header alone, for chosen columns.
            self.write_header();
        }
        let res = self.printer.close();
        let t = self.tally();
        if let Some(tally) = self.tally.take() {
            tally.lock().unwrap_or_else(PoisonError::into_inner).add(&t);
        } else if self.warn {
            self.warn = false;
            if let Some(w) = t.warning() {
                eprintln!("copipe: warning: {w}");
            }
        }
        res
    }
}
