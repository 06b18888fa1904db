//! The seed's `copipe.py`: `follow(f, grep('python', printer()))`.
//!
//! Prints the lines of the shipped `data/access-log` that contain
//! "python", then exits. With `--follow` it starts at the end of the file
//! and keeps printing new python lines as they are appended (run
//! `copipe gen log --rate 100 -o data/access-log` in another terminal),
//! until Ctrl-C.
//!
//! ```text
//! cargo run --example copipe [-- --follow]
//! ```

use std::io;
use std::path::PathBuf;

use copipe::sinks::Printer;
use copipe::text::{Follow, Grep, Lines, Start};

fn main() -> Result<(), copipe::Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let printer = Printer::new(io::stdout().lock());
    let grep = Grep::new("python", printer)?;
    if std::env::args().any(|a| a == "--follow") {
        // Like the seed: seek to the end, then follow.
        let mut follow = Follow::builder([&path]).start(Start::Last(0)).build()?;
        follow.run_blocks(grep)
    } else {
        Lines::open(&path)?.run_blocks(grep)
    }
}
