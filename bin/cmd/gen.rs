//! `copipe gen`: deterministic generators of realistic test data.

use std::process::ExitCode;

use clap::Subcommand;

/// Arguments of `copipe gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Apache combined access-log lines (the seed's logsim).
    Log(LogArgs),
    /// A CTA bus tracker XML feed (allroutes.xml).
    Buses(BusesArgs),
}

/// Arguments of `copipe gen log`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {}

/// Arguments of `copipe gen buses`.
#[derive(Debug, clap::Args)]
pub(crate) struct BusesArgs {}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Log(_) => anyhow::bail!("`copipe gen log` is not built yet"),
        What::Buses(_) => anyhow::bail!("`copipe gen buses` is not built yet"),
    }
}
