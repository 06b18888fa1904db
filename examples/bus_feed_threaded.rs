//! bus_feed_threaded: the bus feed parsed on one thread, filtered and
//! printed on another (issue 16's fourth program). The records stage sends
//! `&Record` borrowed from one reused record, so the bridge is one of the
//! two for borrowed items: `threaded_flat` (see the table in
//! `copipe::bridge`).
//!
//! `cargo run --example bus_feed_threaded [FILE]`

use copipe::threaded_flat;
use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, Record, XmlInput};

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    let on_another_thread = threaded_flat::<Record, _>(filter_on_field(
        "route",
        "22",
        filter_on_field("direction", "North Bound", bus_locations(std::io::stdout())),
    ));
    // The parser's `close` at the end of the input closes the bridge, which
    // joins the thread and returns its error, if any.
    expat_parse(
        XmlInput::from_path(path)?,
        records("bus", on_another_thread),
    )
}
