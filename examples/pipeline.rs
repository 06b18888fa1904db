//! pipeline.py: generators as a pull pipeline, `tail -f | grep python`.
//!
//! Rust's pull pipeline is an iterator chain; `follow` is the one of
//! `examples/follow.rs`. Deliberate difference: by default the log is read
//! from its start to its end (the static form the tests compare);
//! `--follow` is the seed's form. The push form copipe is built on is
//! `examples/copipe.rs`.
//!
//! Run with `cargo run --example pipeline [-- --follow]`.

#[path = "follow.rs"]
#[allow(dead_code)] // follow.rs's own `main` is not used here
mod follow;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use memchr::memmem;

/// `grep(pattern, lines)`: the lines that contain `pattern`.
fn grep<'a>(
    pattern: &'a str,
    lines: impl Iterator<Item = io::Result<Vec<u8>>> + 'a,
) -> impl Iterator<Item = io::Result<Vec<u8>>> + 'a {
    let finder = memmem::Finder::new(pattern);
    lines.filter(move |line| match line {
        Ok(l) => finder.find(l).is_some(),
        Err(_) => true,
    })
}

fn main() -> io::Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let tail = std::env::args().any(|a| a == "--follow");

    // Set up a processing pipe : tail -f | grep python
    let logfile = File::open(path)?;
    let loglines = follow::follow(logfile, tail)?;
    let pylines = grep("python", loglines);

    // Pull results out of the processing pipeline
    let mut out = io::stdout().lock();
    for line in pylines {
        out.write_all(&line?)?;
    }
    Ok(())
}
