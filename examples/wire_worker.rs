//! wire_worker: the downstream half of a process bridge, for the tests and
//! benches of the wire (not a program to learn from: see `coprocess.rs`).
//!
//! `wire_worker seq` reads u64 frames on stdin that must count up from 0
//! and prints how many came; `wire_worker lines` reads byte-string frames
//! and prints each as a line. Errors go to stderr with exit status 2, as
//! `copipe worker` does. These pipelines used to be hidden subcommands of
//! the shipped `copipe worker`; they test the wire, so they live here.
//!
//! `cargo build --example wire_worker`, then run it as a
//! `ProcessBridge`'s child (tests/common/examples.rs finds it).

#[path = "../tests/common/seq_check.rs"]
mod seq_check;

use std::io::{self, Write};
use std::process::ExitCode;

use copipe::bridge::recvfrom_ref;
use copipe::sinks::Printer;
use copipe::{recvfrom, Result};
use seq_check::SeqCheck;

fn run(pipeline: &str) -> Result<()> {
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    match pipeline {
        // One reused buffer: Vec's `deserialize_in_place` keeps it.
        "lines" => recvfrom_ref::<Vec<u8>, _, _>(stdin, Printer::new(stdout)),
        "seq" => {
            let check = SeqCheck::default();
            let result = recvfrom::<u64, _, _>(stdin, check.clone());
            // Closed at the end of the input and after a bad frame (what
            // came before it was delivered): say how many came.
            if check.closes() > 0 {
                writeln!(stdout, "{}", check.count())?;
                stdout.flush()?;
            }
            result
        }
        other => Err(copipe::Error::usage(format!(
            "no pipeline {other:?} (lines, seq)"
        ))),
    }
}

fn main() -> ExitCode {
    let pipeline = std::env::args().nth(1).unwrap_or_default();
    match run(&pipeline) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wire_worker {pipeline}: {e}");
            ExitCode::from(2)
        }
    }
}
