//! follow.py: a generator that follows a log file like `tail -f`, pulled
//! by a `for` loop that prints each line.
//!
//! Rust's pull-side generator is an [`Iterator`]. Deliberate difference:
//! by default it reads `data/access-log` from its start and stops at its
//! end (the static form the tests compare); `--follow` is the seed's form,
//! from the end, polling every 0.1 s. copipe's own answer is push-based
//! (`copipe tail`, `text::Follow`): see `examples/copipe.rs`.
//!
//! Run with `cargo run --example follow [-- --follow]`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

/// The lines of `file`, each with its `\n`, as bytes (a log need not be
/// UTF-8); with `tail`, from the end and forever.
pub(crate) fn follow(
    file: File,
    tail: bool,
) -> io::Result<impl Iterator<Item = io::Result<Vec<u8>>>> {
    let mut reader = BufReader::new(file);
    if tail {
        reader.seek(SeekFrom::End(0))?; // Go to the end of the file
    }
    Ok(std::iter::from_fn(move || loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) if tail => std::thread::sleep(Duration::from_millis(100)), // Sleep briefly
            Ok(0) => return None,
            Ok(_) => return Some(Ok(line)),
            Err(e) => return Some(Err(e)),
        }
    }))
}

fn main() -> io::Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let tail = std::env::args().any(|a| a == "--follow");
    let mut out = io::stdout().lock();
    for line in follow(File::open(path)?, tail)? {
        // `print line,`: the line ends in a newline, so no soft space.
        out.write_all(&line?)?;
    }
    Ok(())
}
