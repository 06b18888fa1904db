//! The seed's busproc.py: the bus processor that runs as a child process.
//! It reads wire frames of bus records on stdin and runs the filters and
//! the printer on them.
//!
//! `examples/coprocess.rs` starts it (as itself, in `busproc` mode); run
//! alone it reads a wire stream from stdin:
//!
//! ```sh
//! cargo run --example busproc < frames.bin
//! ```

use std::io;

use copipe::bridge::recvfrom_ref;
use copipe::xml::{bus_locations, filter_on_field, Record};

/// recvfrom(sys.stdin,
///          filter_on_field("route", "22",
///          filter_on_field("direction", "North Bound",
///          bus_locations())))
pub(crate) fn run() -> Result<(), copipe::Error> {
    recvfrom_ref::<Record, _, _>(
        io::stdin().lock(),
        filter_on_field(
            "route",
            "22",
            filter_on_field("direction", "North Bound", bus_locations(io::stdout())),
        ),
    )
}

fn main() -> Result<(), copipe::Error> {
    run()
}
