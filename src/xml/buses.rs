//! The bus stages: [`records`] (the seed's `buses_to_dicts`),
//! [`filter_on_field`], [`bus_locations`] and [`json_lines`].
//!
//! They are the same whichever source feeds them: `records` takes
//! [`XmlEvent`]s from the expat-style or SAX-style source, and the
//! iterparse-style source pushes [`Record`]s straight into the stages after
//! it. Every stage after `records` is generic over
//! `for<'a> Stage<&'a Record>`, so a bridge can sit between `records` and
//! the filters.

use crate::Lifecycle;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::sinks::Printer;
use crate::stage::{Flow, Stage};
use crate::xml::event::XmlEvent;
use crate::xml::record::{Built, Record, RecordBuilder, MAX_RECORD_BYTES};

/// Turns the events of each `<tag>` element into a [`Record`] and pushes
/// `&Record` (the seed's `buses_to_dicts`). Made by [`records`].
#[derive(Debug)]
pub struct Records<S> {
    builder: RecordBuilder,
    target: S,
}

/// Turns each `<tag>` element into a [`Record`] of its inner elements'
/// text, exactly as the seed's `buses_to_dicts`: inside a `<tag>`, a start
/// tag clears the gathered text, text is gathered, and each end tag stores
/// the text gathered since the last start tag under the element's name; the
/// end of `<tag>` pushes the record. One record buffer is reused, so the
/// stage does not allocate per record. A record still open at `close` is
/// dropped, never pushed half-built.
///
/// # Errors
///
/// A record larger than 16 MiB (an endless `<tag>` element) is an error.
///
/// # Examples
///
/// ```
/// use copipe::xml::{expat_parse, records, Record, XmlInput};
/// use copipe::{StageExt, sinks::Collect};
///
/// let doc = br#"<buses><bus><id>7574</id><route>22</route></bus></buses>"#;
/// let mut out = Collect::new();
/// expat_parse(XmlInput::from_bytes(doc), records("bus", (&mut out).owned()))?;
/// assert_eq!(out.items(), [Record::from_iter([("id", "7574"), ("route", "22")])]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn records<S>(tag: &str, target: S) -> Records<S>
where
    S: for<'a> Stage<&'a Record>,
{
    Records {
        builder: RecordBuilder::new(tag),
        target,
    }
}

impl<S> Records<S> {
    /// The stage records are pushed into.
    pub fn get_ref(&self) -> &S {
        &self.target
    }
}

pub(crate) fn too_large(tag: &str) -> Error {
    Error::usage(format!(
        "a <{tag}> element holds more than {} MiB of text: this does not look like a bus feed",
        MAX_RECORD_BYTES >> 20
    ))
}

impl<'e, S> Stage<XmlEvent<'e>> for Records<S>
where
    S: for<'a> Stage<&'a Record>,
{
    #[inline(always)]
    fn send(&mut self, event: XmlEvent<'e>) -> Result<Flow> {
        let built = match event {
            XmlEvent::Start(tag) => {
                self.builder.start(tag.name());
                return Ok(Flow::Continue);
            }
            XmlEvent::Text(text) => self.builder.text(text),
            XmlEvent::End(name) => self.builder.end(name),
        };
        match built {
            Built::No => Ok(Flow::Continue),
            Built::Done => self.target.send(self.builder.record()),
            Built::TooLarge => Err(too_large(self.builder.tag())),
        }
    }
}

impl<S> Lifecycle for Records<S>
where
    S: Lifecycle,
{
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.builder.reset();
        self.target.close()
    }
}

/// Passes on the records whose field `name` equals `value`. Made by
/// [`filter_on_field`].
#[derive(Debug, Clone)]
pub struct FilterOnField<S> {
    name: String,
    value: String,
    target: S,
}

/// The seed's `filter_on_field(fieldname, value, target)`: passes on the
/// records with `record[name] == value`; a record without the field is
/// dropped (`d.get(fieldname) == value`).
///
/// # Examples
///
/// ```
/// use copipe::xml::{filter_on_field, Record};
/// use copipe::{Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// let mut route22 = filter_on_field("route", "22", (&mut out).owned());
/// route22.send(&Record::from_iter([("route", "22")]))?;
/// route22.send(&Record::from_iter([("route", "9")]))?;
/// route22.send(&Record::from_iter([("id", "1")]))?;
/// assert_eq!(out.items().len(), 1);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn filter_on_field<S>(name: &str, value: &str, target: S) -> FilterOnField<S> {
    FilterOnField {
        name: name.to_string(),
        value: value.to_string(),
        target,
    }
}

impl<'r, S: Stage<&'r Record>> Stage<&'r Record> for FilterOnField<S> {
    #[inline]
    fn send(&mut self, record: &'r Record) -> Result<Flow> {
        if record.get(&self.name) == Some(self.value.as_str()) {
            self.target.send(record)
        } else {
            Ok(Flow::Continue)
        }
    }
}

impl<S: Lifecycle> Lifecycle for FilterOnField<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// The fields [`bus_locations`] prints, in order.
pub const BUS_LOCATION_FIELDS: [&str; 5] = ["route", "id", "direction", "latitude", "longitude"];

/// The fields [`vehicle_locations`] prints, in order: those of today's CTA
/// Bus Tracker `getvehicles` response that stand for
/// [`BUS_LOCATION_FIELDS`] (`des`, the destination, in the place of the
/// direction, which the API does not give).
pub const VEHICLE_LOCATION_FIELDS: [&str; 5] = ["rt", "vid", "des", "lat", "lon"];

/// Prints `route,id,"direction",latitude,longitude` for each record. Made
/// by [`bus_locations`].
#[derive(Debug)]
pub struct BusLocations<W: Write> {
    printer: Printer<W>,
    fields: &'static [&'static str; 5],
    missing: MissingFields,
    warn: bool,
    warned: bool,
    tally: Option<Arc<Mutex<MissingFields>>>,
}

/// How many records lacked fields [`bus_locations`] prints, and which:
/// what its warning says. Totals of several stages add up with
/// [`add`](MissingFields::add).
///
/// # Examples
///
/// ```
/// use copipe::xml::{bus_locations, MissingFields, Record};
/// use copipe::Stage;
///
/// let mut total = MissingFields::default();
/// for part in [[("id", "1")], [("route", "9")]] {
///     let mut show = bus_locations(Vec::new()).quiet();
///     show.send(&Record::from_iter(part))?;
///     total.add(&show.missing_fields());
/// }
/// assert_eq!(total.records(), 2);
/// assert_eq!(
///     total.warning().unwrap(),
///     "2 records lacked a printed field, printed empty (route: 1, id: 1, direction: 2, latitude: 2, longitude: 2)"
/// );
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingFields {
    fields: &'static [&'static str; 5],
    per_field: [u64; 5],
    records: u64,
}

impl Default for MissingFields {
    /// No record counted, for the fields of [`bus_locations`].
    fn default() -> MissingFields {
        MissingFields::of(&BUS_LOCATION_FIELDS)
    }
}

impl MissingFields {
    fn of(fields: &'static [&'static str; 5]) -> MissingFields {
        MissingFields {
            fields,
            per_field: [0; 5],
            records: 0,
        }
    }

    /// Records that lacked at least one printed field.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Adds `other`'s counts to these (the counts of the same fields,
    /// whose names these keep).
    pub fn add(&mut self, other: &MissingFields) {
        self.fields = other.fields;
        for (a, b) in self.per_field.iter_mut().zip(other.per_field) {
            *a += b;
        }
        self.records += other.records;
    }

    /// The warning [`BusLocations`] prints at `close`, if any record
    /// lacked a field.
    pub fn warning(&self) -> Option<String> {
        if self.records == 0 {
            return None;
        }
        let detail: Vec<String> = self
            .fields
            .iter()
            .zip(self.per_field)
            .filter(|&(_, n)| n > 0)
            .map(|(f, n)| format!("{f}: {n}"))
            .collect();
        Some(format!(
            "{} record{} lacked a printed field, printed empty ({})",
            self.records,
            if self.records == 1 { "" } else { "s" },
            detail.join(", ")
        ))
    }
}

/// The seed's `bus_locations`: prints one line per record,
/// `route,id,"direction",latitude,longitude`, e.g.
/// `22,1485,"North Bound",41.880481123924255,-87.62948191165924`, through a
/// buffered [`Printer`] (a closed pipe stops the pipeline quietly).
///
/// A record that lacks one of these fields prints it empty; such records
/// are counted, and `close` writes one warning about them to stderr
/// (unless [`quiet`](BusLocations::quiet) or
/// [`count_into`](BusLocations::count_into)).
///
/// # Errors
///
/// Writing the output fails (other than a closed pipe).
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::xml::{bus_locations, Record};
/// use copipe::Stage;
///
/// let bus = Record::from_iter([
///     ("id", "1485"), ("route", "22"), ("direction", "North Bound"),
///     ("latitude", "41.880481123924255"), ("longitude", "-87.62948191165924"),
/// ]);
/// let mut out = Vec::new();
/// let mut show = bus_locations(&mut out).quiet();
/// show.send(&bus)?;
/// show.send(&Record::from_iter([("id", "7")]))?;
/// show.close()?;
/// assert_eq!(show.records_missing_fields(), 1);
/// drop(show);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "22,1485,\"North Bound\",41.880481123924255,-87.62948191165924\n,7,\"\",,\n"
/// );
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn bus_locations<W: Write>(out: W) -> BusLocations<W> {
    locations(&BUS_LOCATION_FIELDS, out)
}

/// [`bus_locations`] for the vehicles of today's CTA Bus Tracker
/// (`getvehicles`): prints `rt,vid,"des",lat,lon` (see
/// [`VEHICLE_LOCATION_FIELDS`]), the same columns in the same places.
///
/// # Errors
///
/// Writing the output fails (other than a closed pipe).
///
/// # Examples
///
/// ```
/// use copipe::xml::{vehicle_locations, Record};
/// use copipe::{Lifecycle, Stage};
///
/// let v = Record::from_iter([("vid", "1485"), ("lat", "41.88"), ("lon", "-87.62"),
///     ("rt", "22"), ("des", "Howard")]);
/// let mut out = Vec::new();
/// let mut show = vehicle_locations(&mut out);
/// show.send(&v)?;
/// show.close()?;
/// drop(show);
/// assert_eq!(out, b"22,1485,\"Howard\",41.88,-87.62\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn vehicle_locations<W: Write>(out: W) -> BusLocations<W> {
    locations(&VEHICLE_LOCATION_FIELDS, out)
}

fn locations<W: Write>(fields: &'static [&'static str; 5], out: W) -> BusLocations<W> {
    BusLocations {
        printer: Printer::new(out),
        fields,
        missing: MissingFields::of(fields),
        warn: true,
        warned: false,
        tally: None,
    }
}

impl<W: Write> BusLocations<W> {
    /// No warning on stderr at `close`.
    pub fn quiet(mut self) -> BusLocations<W> {
        self.warn = false;
        self
    }

    /// No warning on stderr at `close`: the counts are added to `tally`
    /// instead, so that the caller can add up several stages (the chunks
    /// of a [`ParallelParse`](crate::xml::ParallelParse)) and warn once.
    pub fn count_into(mut self, tally: Arc<Mutex<MissingFields>>) -> BusLocations<W> {
        self.warn = false;
        self.tally = Some(tally);
        self
    }

    /// How many records lacked at least one printed field.
    pub fn records_missing_fields(&self) -> u64 {
        self.missing.records
    }

    /// The counts of records that lacked printed fields.
    pub fn missing_fields(&self) -> MissingFields {
        self.missing
    }

    /// The warning `close` prints, if any record lacked a field.
    pub fn warning(&self) -> Option<String> {
        self.missing.warning()
    }
}

impl<'r, W: Write> Stage<&'r Record> for BusLocations<W> {
    #[inline]
    fn send(&mut self, bus: &'r Record) -> Result<Flow> {
        let mut lacking = false;
        let names = self.fields;
        let mut field = |i: usize| match bus.get(names[i]) {
            Some(v) => v,
            None => {
                self.missing.per_field[i] += 1;
                lacking = true;
                ""
            }
        };
        let (route, id, dir, lat, lon) = (field(0), field(1), field(2), field(3), field(4));
        let buf = self.printer.buffer();
        buf.extend_from_slice(route.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(dir.as_bytes());
        buf.extend_from_slice(b"\",");
        buf.extend_from_slice(lat.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(lon.as_bytes());
        buf.push(b'\n');
        if lacking {
            self.missing.records += 1;
        }
        self.printer.commit()
    }
}

impl<W: Write> Lifecycle for BusLocations<W> {
    fn flush(&mut self) -> Result<()> {
        self.printer.flush()
    }
    fn close(&mut self) -> Result<()> {
        let res = self.printer.close();
        if let Some(tally) = self.tally.take() {
            // Counted once, even if closed twice.
            tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(&self.missing);
        }
        // Warn once, even if closed twice.
        if self.warn && !self.warned {
            if let Some(w) = self.warning() {
                eprintln!("copipe: warning: {w}");
                self.warned = true;
            }
        }
        res
    }
}

/// Prints each record as one JSON object per line. Made by
/// [`json_lines`].
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    printer: Printer<W>,
}

/// Prints each record as a JSON object on its own line, fields in document
/// order: `{"id":"7574","route":"22",...}`.
///
/// # Errors
///
/// Writing the output fails (other than a closed pipe).
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::xml::{json_lines, Record};
/// use copipe::Stage;
///
/// let mut out = Vec::new();
/// let mut json = json_lines(&mut out);
/// json.send(&Record::from_iter([("id", "7574"), ("finalStop", "Paulina & Howard")]))?;
/// json.close()?;
/// drop(json);
/// assert_eq!(out, b"{\"id\":\"7574\",\"finalStop\":\"Paulina & Howard\"}\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn json_lines<W: Write>(out: W) -> JsonLines<W> {
    JsonLines {
        printer: Printer::new(out),
    }
}

impl<'r, W: Write> Stage<&'r Record> for JsonLines<W> {
    fn send(&mut self, record: &'r Record) -> Result<Flow> {
        let buf = self.printer.buffer();
        serde_json::to_writer(&mut *buf, record)
            .map_err(|e| Error::from(std::io::Error::other(e)))?;
        buf.push(b'\n');
        self.printer.commit()
    }
}

impl<W: Write> Lifecycle for JsonLines<W> {
    fn flush(&mut self) -> Result<()> {
        self.printer.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.printer.close()
    }
}
