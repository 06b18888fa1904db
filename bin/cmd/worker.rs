//! `copipe worker PIPELINE`: the hidden downstream half of a process bridge.
//!
//! The parent (`copipe::subprocess`, `copipe buses --bridge process`) runs
//! `copipe worker <PIPELINE> [ARGS]` and streams wire frames to its stdin;
//! the worker decodes them with `recvfrom` into the named stages and prints
//! to its stdout, which it shares with the parent. Its errors go to stderr
//! and its exit status (2 on error) is what the parent reports.

use copipe::Lifecycle;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use copipe::bridge::{recvfrom_flat, recvfrom_ref};
use copipe::xml::Record;

use super::buses::{build_chain, ChainArgs};
use copipe::sinks::Printer;
use copipe::{recvfrom, Error, ErrorKind, Flow, Stage};

/// Arguments of `copipe worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pipeline: Pipeline,
}

/// The pipelines a worker can run. Each one fixes the item type the parent
/// must send.
#[derive(Debug, Subcommand)]
enum Pipeline {
    /// Items are byte strings; print each as a line.
    Lines,
    /// Items are u64 that must count up from 0; print how many came.
    Seq,
    /// Items are bus records in flat frames; run the filters and the
    /// output of `copipe buses` with the same options (what `copipe buses
    /// --bridge process` starts).
    Buses(ChainArgs),
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    match args.pipeline {
        Pipeline::Lines => {
            // One reused buffer: Vec's `deserialize_in_place` keeps it.
            recvfrom_ref::<Vec<u8>, _, _>(stdin, Printer::new(stdout)).context("worker lines")?
        }
        Pipeline::Buses(chain) => {
            // One reused record, rebuilt from each record's flat form (a
            // frame's text checked as UTF-8 once): its names and fields
            // stay while the names do not change.
            recvfrom_flat::<Record, _, _>(stdin, build_chain(&chain, io::stdout()))
                .context("worker buses")?
        }
        Pipeline::Seq => {
            let mut check = SeqCheck {
                next: 0,
                out: stdout,
            };
            recvfrom::<u64, _, _>(stdin, &mut check).context("worker seq")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that items count up from 0 and prints the count at close: a
/// worker for tests and benchmarks of the wire itself.
struct SeqCheck<W> {
    next: u64,
    out: W,
}

impl<W: Write> Stage<u64> for SeqCheck<W> {
    fn send(&mut self, item: u64) -> copipe::Result<Flow> {
        if item != self.next {
            return Err(Error::new(ErrorKind::Bridge(format!(
                "item {} is {item}: out of order or lost",
                self.next
            ))));
        }
        self.next += 1;
        Ok(Flow::Continue)
    }
}

impl<W: Write> Lifecycle for SeqCheck<W> {
    fn flush(&mut self) -> copipe::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        writeln!(self.out, "{}", self.next)?;
        self.out.flush()?;
        Ok(())
    }
}

/// `copipe worker ARGS...`: this executable, for `subprocess` and
/// `subprocess_flat`, which take any `Command`.
pub(crate) fn command<I, S>(worker_args: I) -> copipe::Result<std::process::Command>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("worker").args(worker_args);
    Ok(cmd)
}
