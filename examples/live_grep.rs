//! live_grep: `tail -f FILE | grep PATTERN | tee COPY | head -n N` as one
//! pipeline (issue 16's second program): a followed file, a grep, each
//! match broadcast to two sinks (stdout and a copy file), and the whole
//! follow stopped after N matches.
//!
//! `cargo run --example live_grep -- PATTERN N FILE COPY`
//!
//! The file is read from its first line, then followed as it grows. The
//! stages are written in data order with `pipe()`: `take(n)` returns
//! `Flow::Stop` with the n-th match, which ends the follow; the follow then
//! closes the pipeline (both printers flush). While it waits for the file
//! to grow, the follow flushes its target, so each match is on stdout as
//! soon as it is read.

use copipe::sinks::Printer;
use copipe::text::{Follow, Grep, Start};
use copipe::{broadcast, pipe};

fn main() -> Result<(), copipe::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pattern, n, file, copy] = &args[..] else {
        return Err(copipe::Error::usage("usage: live_grep PATTERN N FILE COPY"));
    };
    let n: usize = n
        .parse()
        .map_err(|_| copipe::Error::usage(format!("N: not a count: {n}")))?;
    let both = broadcast((
        Printer::new(std::io::stdout()),
        Printer::new(std::fs::File::create(copy)?),
    ));
    let mut follow = Follow::builder([file]).start(Start::From(1)).build()?;
    follow.run(Grep::new(pattern, pipe().take(n).into(both))?)
}
