//! coexpat: the same bus stages, fed by the lower-level expat-style source
//! "with no changes to the processing stages" (the seed's coexpat.py).
//!
//! `cargo run --example coexpat [FILE]`

use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, XmlInput};

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    expat_parse(
        XmlInput::from_path(path)?,
        records(
            "bus",
            filter_on_field(
                "route",
                "22",
                filter_on_field("direction", "North Bound", bus_locations(std::io::stdout())),
            ),
        ),
    )
}
