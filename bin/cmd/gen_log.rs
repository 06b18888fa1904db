//! `copipe gen log`: Apache combined access-log lines (the seed's logsim),
//! deterministic under `--seed`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use copipe::text::LogSim;

/// Arguments of `copipe gen log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write about this many MiB (1 MiB = 1048576 bytes), then stop. The
    /// default when neither --rate nor --lines is given: 1.
    #[arg(long, value_name = "N", conflicts_with_all = ["rate", "lines"])]
    mb: Option<u64>,
    /// Keep appending this many lines per second (until interrupted, or
    /// until --lines lines are written), flushing every 10 ms.
    #[arg(long, value_name = "LINES_PER_S")]
    rate: Option<u64>,
    /// Write this many lines, then stop.
    #[arg(long, value_name = "N")]
    lines: Option<u64>,
    /// Seed: the same seed gives the same log, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Put a raw Latin-1 byte (invalid UTF-8) into one line in N on
    /// average; 0 for none.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    invalid_utf8_every: u64,
    /// The file to write (created or truncated; appended to with --rate).
    /// Standard output when absent.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            let file = if args.rate.is_some() {
                OpenOptions::new().create(true).append(true).open(path)
            } else {
                File::create(path)
            };
            Box::new(file.with_context(|| format!("{}", path.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = io::BufWriter::with_capacity(256 * 1024, out);
    let mut sim = LogSim::new(args.seed).invalid_utf8_every(args.invalid_utf8_every);
    let mut buf = Vec::with_capacity(64 * 1024);
    let name = args
        .output
        .as_ref()
        .map_or_else(|| "<stdout>".to_string(), |p| p.display().to_string());

    if let Some(rate) = args.rate {
        let rate = rate.max(1);
        let limit = args.lines.unwrap_or(u64::MAX);
        let start = Instant::now();
        let tick = Duration::from_millis(10);
        let mut next = start;
        while sim.lines() < limit {
            // Lines due by now, at `rate` per second.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64 + 1;
            while sim.lines() < due.min(limit) {
                sim.write_line(&mut buf);
            }
            out.write_all(&buf).with_context(|| name.clone())?;
            out.flush().with_context(|| name.clone())?;
            buf.clear();
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    } else {
        let (limit_lines, limit_bytes) = match (args.lines, args.mb) {
            (Some(n), _) => (n, u64::MAX),
            (None, mb) => (u64::MAX, mb.unwrap_or(1).saturating_mul(1 << 20)),
        };
        let mut written = 0u64;
        while sim.lines() < limit_lines && written < limit_bytes {
            let before = buf.len();
            sim.write_line(&mut buf);
            written += (buf.len() - before) as u64;
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf).with_context(|| name.clone())?;
                buf.clear();
            }
        }
        out.write_all(&buf).with_context(|| name.clone())?;
    }
    out.flush().with_context(|| name.clone())?;
    Ok(ExitCode::SUCCESS)
}
