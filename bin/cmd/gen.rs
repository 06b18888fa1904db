//! `copipe gen`: deterministic generators of realistic test data.
//!
//! - `gen_log.rs`: `copipe gen log`
//! - `gen_buses.rs`: `copipe gen buses`

use std::process::ExitCode;

use clap::Subcommand;

use super::{gen_buses, gen_log};

/// Arguments of `copipe gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Apache combined access-log lines (the seed's logsim).
    Log(gen_log::Args),
    /// A CTA bus tracker XML feed (allroutes.xml).
    Buses(gen_buses::Args),
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Log(a) => gen_log::run(a),
        What::Buses(a) => gen_buses::run(a),
    }
}
