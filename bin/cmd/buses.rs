//! `copipe buses` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe buses`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe buses` is not built yet")
}
