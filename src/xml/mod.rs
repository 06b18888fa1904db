//! XML event sources in three styles and the CTA bus stages (the seed's
//! second act: cosax, buses, coexpat, iterbus).
//!
//! The seed pushes XML events into coroutines that turn `<bus>` elements
//! into dictionaries, filter them and print where the buses are; then it
//! swaps the event source for lower-level parsers "with no changes to the
//! processing stages". Here the three sources are:
//!
//! - [`expat_parse`]: borrowed [`XmlEvent`]s, adjacent character data
//!   coalesced as expat's `buffer_text` (the fastest; `copipe buses`'
//!   default), and [`ParallelParse`], the same over a file in memory cut
//!   into chunks parsed on several threads;
//! - [`sax_parse`] with a [`ContentHandler`] receiving owned names,
//!   attributes and text, and [`EventHandler`] turning the callbacks into
//!   sends (the seed's cosax);
//! - [`iterparse`]: each `<bus>` subtree built as a small [`Element`],
//!   turned into a [`Record`], and dropped (the seed's iterbus).
//!
//! The stages: [`records`] (`buses_to_dicts`), [`filter_on_field`],
//! [`bus_locations`], [`json_lines`]. All sources read an [`XmlInput`]
//! (a file read whole, or any reader streamed with bounded memory) and
//! report malformed XML as `FILE:LINE:COL (byte offset N): message`.
//!
//! ```
//! use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, XmlInput};
//!
//! let doc = b"<buses><bus><id>1485</id><route>22</route><direction>North Bound</direction>\
//!             <latitude>41.88</latitude><longitude>-87.62</longitude></bus></buses>";
//! let mut out = Vec::new();
//! expat_parse(XmlInput::from_bytes(doc),
//!     records("bus",
//!     filter_on_field("route", "22",
//!     bus_locations(&mut out))))?;
//! assert_eq!(out, b"22,1485,\"North Bound\",41.88,-87.62\n");
//! # Ok::<(), copipe::Error>(())
//! ```
//!
//! Files:
//!
//! - `event.rs`: [`XmlEvent`], [`Tag`], [`Attrs`]
//! - `input.rs`: [`XmlInput`], where a source reads its document from
//! - `parse.rs`: the parse loop the three styles share and its
//!   well-formedness checks
//! - `lexical.rs`: the lexical productions checked (Char, Name, the
//!   XML declaration, attribute lists)
//! - `dtd.rs`: the DOCTYPE's internal subset checked, and its entities
//! - `chunk.rs`: a parse of part of a document in memory, for
//!   [`ParallelParse`]
//! - `pull/`: how the loop reads events, from bytes in memory
//!   (`slice.rs`) or from a stream through a fixed buffer (`stream.rs`)
//! - `expat.rs`: the expat-style source, [`expat_parse`]
//! - `sax.rs`: the SAX-style source, [`sax_parse`], [`ContentHandler`],
//!   [`EventHandler`]
//! - `parallel.rs`: [`ParallelParse`], the expat-style source on several
//!   threads over a document in memory, exact as a sequential parse
//! - `iterparse.rs`: the iterparse-style source, [`iterparse`],
//!   [`iterparse_elements`], [`Element`]
//! - `record/`: [`Record`], the state machines that fill one
//!   (`buses_to_dicts`, and [`element_records`] for any record-shaped
//!   XML), its flat form, the [`Where`] filters and the [`RecordWriter`]
//! - `buses.rs`: the stages [`records`], [`filter_on_field`],
//!   [`bus_locations`], [`json_lines`]
//! - `gen.rs`: [`generate_buses`], the feed generator

mod buses;
mod chunk;
mod dtd;
mod event;
mod expat;
mod gen;
mod input;
mod iterparse;
mod lexical;
mod parallel;
mod parse;
mod pull;
mod record;
mod sax;

pub use buses::{
    bus_locations, filter_on_field, json_lines, records, vehicle_locations, BusLocations,
    FilterOnField, JsonLines, MissingFields, Records, BUS_LOCATION_FIELDS, VEHICLE_LOCATION_FIELDS,
};
pub use event::{event_fn, Attrs, AttrsIter, EventFn, Tag, XmlEvent};
pub use expat::{expat_parse, expat_parse_wanted, TextWanted};
pub use gen::{generate_buses, generate_bustime};
pub use input::XmlInput;
pub use iterparse::{iterparse, iterparse_elements, Element};
pub use parallel::{ChunkWriter, ParallelParse};
pub use record::{
    element_records, field_matches, filter_where, record_writer, Check, ElementRecords,
    FieldMatches, FieldTally, FilterWhere, Record, RecordFormat, RecordMemo, RecordWriter, Where,
};
pub use sax::{sax_parse, ContentHandler, EventHandler, ExpatSplit};
