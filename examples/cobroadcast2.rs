//! The seed's `cobroadcast2.py`: fan-out to three greps and fan-in to one
//! printer through a [`Shared`] handle.
//!
//! ```text
//!                      ┌─▶ grep python ─┐
//! lines(access-log) ──▶ broadcast ─▶ grep ply ────┼─▶ shared printer
//!                      └─▶ grep swig ───┘
//! ```
//!
//! A line that matches two patterns is printed twice, as in the seed. The
//! printer is closed when the last of the three handles closes. The
//! broadcast passes one line at a time, so the output is the seed's, line
//! by line; `--blocks` passes whole blocks (each grep handles a block
//! before the next sees it, so within a block the output is grouped by
//! pattern). Reads the shipped `data/access-log` and exits; `--follow`
//! follows it from its end.
//!
//! ```text
//! cargo run --example cobroadcast2 [-- --follow] [-- --blocks]
//! ```

use std::io;
use std::path::PathBuf;

use copipe::sinks::Printer;
use copipe::text::{Follow, Grep, Lines, Start};
use copipe::{broadcast, Shared};

fn main() -> Result<(), copipe::Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let p = Shared::new(Printer::new(io::stdout().lock()));
    let targets = broadcast((
        Grep::new("python", p.clone())?,
        Grep::new("ply", p.clone())?,
        Grep::new("swig", p.clone())?,
    ));
    // Only the three greps hold the printer from here on.
    drop(p);
    if std::env::args().any(|a| a == "--follow") {
        let mut follow = Follow::builder([&path]).start(Start::Last(0)).build()?;
        follow.run_blocks(targets)
    } else if std::env::args().any(|a| a == "--blocks") {
        Lines::open(&path)?.run_blocks(targets)
    } else {
        Lines::open(&path)?.run(targets)
    }
}
