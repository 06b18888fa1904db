//! `copipe tail` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `copipe tail`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`copipe tail` is not built yet")
}
