//! `copipe gen buses`: a deterministic CTA bus tracker feed.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `copipe gen buses`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Approximate size in megabytes (1 MB = 1,000,000 bytes).
    #[arg(long, default_value_t = 30.0)]
    mb: f64,

    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Output file; `-` or none writes stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.mb.is_finite() && args.mb >= 0.0) {
        anyhow::bail!("--mb must be a size in megabytes, got {}", args.mb);
    }
    let bytes = (args.mb * 1e6) as u64;
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            copipe::xml::generate_buses(f, bytes, args.seed)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        _ => {
            copipe::xml::generate_buses(io::stdout().lock(), bytes, args.seed)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
