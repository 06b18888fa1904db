//! `copipe worker PIPELINE`: the hidden downstream half of a process bridge.
//!
//! The parent (`copipe::subprocess`, `copipe buses --bridge process`) runs
//! `copipe worker <PIPELINE> [ARGS]` and streams wire frames to its stdin;
//! the worker decodes them with `recvfrom` into the named stages and prints
//! to its stdout, which it shares with the parent. Its errors go to stderr
//! and its exit status (2 on error) is what the parent reports.
//!
//! Only the pipelines the CLI itself starts live here; the tests' and
//! benches' workers of the wire (`seq`, `lines`) are the crate's
//! `examples/wire_worker.rs`.

use std::io;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use copipe::bridge::recvfrom_flat;
use copipe::xml::Record;

use super::buses::{build_chain, ChainArgs};

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
    /// Items are bus records in flat frames; run the filters and the
    /// output of `copipe buses` with the same options (what `copipe buses
    /// --bridge process` starts).
    Buses(ChainArgs),
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdin = io::stdin().lock();
    match args.pipeline {
        Pipeline::Buses(chain) => {
            // One reused record, rebuilt from each record's flat form (a
            // frame's text checked as UTF-8 once): its names and fields
            // stay while the names do not change.
            recvfrom_flat::<Record, _, _>(stdin, build_chain(&chain, io::stdout()))
                .context("worker buses")?
        }
    }
    Ok(ExitCode::SUCCESS)
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
