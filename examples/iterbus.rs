//! iterbus: incremental parsing in the ElementTree style, for comparison
//! with coroutines (the seed's iterbus.py): each `<bus>` is built as a
//! small element, made into a dictionary, printed if it matches, and
//! dropped (`buses.remove(elem)`).
//!
//! `cargo run --example iterbus [FILE]`

use std::collections::HashMap;
use std::io::Write;

use copipe::xml::{iterparse_elements, XmlInput};
use copipe::Flow;

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    iterparse_elements(XmlInput::from_path(path)?, "bus", |elem| {
        // busdict = dict((child.tag, child.text) for child in elem)
        let bus: HashMap<&str, &str> = elem.children().map(|c| (c.tag(), c.text())).collect();
        if bus.get("route") == Some(&"22") && bus.get("direction") == Some(&"North Bound") {
            let field = |k: &str| bus.get(k).copied().unwrap_or("");
            // The seed's iterbus prints the id first.
            writeln!(
                out,
                "{},{},\"{}\",{},{}",
                field("id"),
                field("route"),
                field("direction"),
                field("latitude"),
                field("longitude")
            )?;
        }
        Ok(Flow::Continue)
    })?;
    out.flush()?;
    Ok(())
}
