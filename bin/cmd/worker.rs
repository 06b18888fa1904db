//! `copipe worker` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe worker` is not built yet")
}
