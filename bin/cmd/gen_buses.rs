//! `copipe gen buses`: a deterministic CTA bus tracker feed, 2009's or
//! today's (`--format bustime`).

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

    /// `2009`: the tutorial's feed (`<buses><bus>` with route, id,
    /// direction, latitude, longitude, ...); `bustime`: today's CTA Bus
    /// Tracker `getvehicles` response (`<bustime-response><vehicle>` with
    /// vid, tmstmp, lat, lon, hdg, pid, rt, des, pdist, dly, ...).
    #[arg(long, value_enum, default_value_t = FeedFormat::V2009)]
    format: FeedFormat,

    /// Output file; `-` or none writes stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The feed formats `copipe gen buses` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FeedFormat {
    /// The 2009 feed of the tutorial (allroutes.xml).
    #[value(name = "2009")]
    V2009,
    /// Today's Bus Tracker API getvehicles response.
    Bustime,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let generate = match args.format {
        FeedFormat::V2009 => copipe::xml::generate_buses::<Box<dyn io::Write>>,
        FeedFormat::Bustime => copipe::xml::generate_bustime::<Box<dyn io::Write>>,
    };
    if !(args.mb.is_finite() && args.mb >= 0.0) {
        anyhow::bail!("--mb must be a size in megabytes, got {}", args.mb);
    }
    let bytes = (args.mb * 1e6) as u64;
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            generate(Box::new(f), bytes, args.seed)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        _ => {
            generate(Box::new(io::stdout().lock()), bytes, args.seed)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
