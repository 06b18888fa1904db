//! The seed's cothread.py: the bus filters and the printer run on their own
//! thread, fed by the parser through a thread bridge.
//!
//! ```sh
//! cargo run --example cothread [allroutes.xml]
//! ```
//!
//! Prints the North Bound #22 buses of the sample feed (or of the file
//! given), exactly as `examples/buses.rs` does without the thread.

use std::io;
use std::path::PathBuf;

use copipe::bridge::threaded_ref;
use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, Record, XmlInput};

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());

    // xml.sax.parse("allroutes.xml", EventHandler(
    //     buses_to_dicts(
    //     threaded(
    //         filter_on_field("route", "22",
    //         filter_on_field("direction", "North Bound",
    //         bus_locations()))
    //     ))))
    expat_parse(
        XmlInput::from_path(&path)?,
        records(
            "bus",
            threaded_ref::<Record, _>(filter_on_field(
                "route",
                "22",
                filter_on_field("direction", "North Bound", bus_locations(io::stdout())),
            )),
        ),
    )
}
