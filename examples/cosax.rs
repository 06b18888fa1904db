//! cosax: push SAX events into a coroutine target (the seed's cosax.py).
//!
//! `cargo run --example cosax [FILE]` prints every event of the feed (by
//! default the sample `data/allroutes.xml`) as the seed's tuples.
//!
//! [`ExpatSplit`] cuts character data at newlines as Python's expat does,
//! so the output is the seed's but for one line: expat also cuts a text
//! run at the end of each chunk `xml.sax.parse` feeds it (every 65,516
//! bytes: `'41.87755604716371'` on the shipped file); copipe does not.

use std::io::Write;

use copipe::xml::{event_fn, sax_parse, EventHandler, ExpatSplit, XmlInput};
use copipe::Flow;

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    // @coroutine def printer(): while True: event = (yield); print(event)
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let printer = event_fn(|event| match writeln!(out, "{event}") {
        Ok(()) => Ok(Flow::Continue),
        // `| head`: the reader went away, stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(e) => Err(e.into()),
    });
    // xml.sax.parse("allroutes.xml", EventHandler(printer()))
    sax_parse(
        XmlInput::from_path(path)?,
        ExpatSplit::new(EventHandler::new(printer)),
    )?;
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
