//! `copipe gen log` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe gen log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe gen log` is not built yet")
}
