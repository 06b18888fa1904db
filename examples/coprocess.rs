//! The seed's coprocess.py: the parser sends bus records over a pipe to a
//! child process (the seed's busproc.py, here `examples/busproc.rs`) that
//! runs the filters and the printer.
//!
//! ```sh
//! cargo run --example coprocess [allroutes.xml]
//! ```
//!
//! The child is this same program, started again with the argument
//! `busproc` (as `copipe buses --bridge process` starts `copipe worker`),
//! so that one `cargo run` is enough.

use std::io;
use std::path::PathBuf;
use std::process::Command;

use copipe::xml::{expat_parse, records, XmlInput};
use copipe::ProcessBridge;

#[allow(dead_code)] // its `main` is for running it alone
#[path = "busproc.rs"]
mod busproc;

fn main() -> Result<(), copipe::Error> {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    if first.as_deref() == Some("busproc".as_ref()) {
        return busproc::run();
    }
    let path = first
        .map(PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());

    // p = subprocess.Popen(['python', 'busproc.py'], stdin=subprocess.PIPE)
    let mut child = Command::new(std::env::current_exe()?);
    child.arg("busproc");
    let bridge = ProcessBridge::spawn(child)?;

    // xml.sax.parse("allroutes.xml", EventHandler(buses_to_dicts(sendto(p.stdin))))
    // `close` at the end of the parse waits for the child: its failure is
    // our error.
    expat_parse(XmlInput::from_path(&path)?, records("bus", bridge))?;
    let _ = io::Write::flush(&mut io::stdout());
    Ok(())
}
