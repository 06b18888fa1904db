//! The seed's `cobroadcast.py`: one source broadcast to three greps, each
//! with its own printer.
//!
//! ```text
//!                      ┌─▶ grep python ─▶ printer
//! lines(access-log) ──▶ broadcast ─▶ grep ply ────▶ printer
//!                      └─▶ grep swig ───▶ printer
//! ```
//!
//! Reads the shipped `data/access-log` and exits; `--follow` follows it
//! from its end instead. Each printer buffers on its own, so the three
//! streams come out in chunks rather than interleaved line by line
//! (cobroadcast2 shares one printer).
//!
//! ```text
//! cargo run --example cobroadcast [-- --follow]
//! ```

use std::io;
use std::path::PathBuf;

use copipe::broadcast;
use copipe::sinks::Printer;
use copipe::text::{Follow, Grep, Lines, Start};

fn main() -> Result<(), copipe::Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let targets = broadcast((
        Grep::new("python", Printer::new(io::stdout()))?,
        Grep::new("ply", Printer::new(io::stdout()))?,
        Grep::new("swig", Printer::new(io::stdout()))?,
    ));
    if std::env::args().any(|a| a == "--follow") {
        let mut follow = Follow::builder([&path]).start(Start::Last(0)).build()?;
        follow.run_blocks(targets)
    } else {
        Lines::open(&path)?.run_blocks(targets)
    }
}
