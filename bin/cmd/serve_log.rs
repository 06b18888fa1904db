//! `copipe serve_log` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe serve_log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe serve_log` is not built yet")
}
