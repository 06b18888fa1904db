//! `copipe gen buses` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe gen buses`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe gen buses` is not built yet")
}
