//! buses: parse and filter XML with a series of connected stages (the
//! seed's buses.py): where are the North Bound #22 buses?
//!
//! `cargo run --example buses [FILE]`

use copipe::xml::{bus_locations, filter_on_field, records, sax_parse, EventHandler, XmlInput};

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    sax_parse(
        XmlInput::from_path(path)?,
        EventHandler::new(records(
            "bus",
            filter_on_field(
                "route",
                "22",
                filter_on_field("direction", "North Bound", bus_locations(std::io::stdout())),
            ),
        )),
    )
}
