//! `copipe buses`: the seed's bus pipeline on a CTA bus tracker feed.
//!
//! `source -> records("bus") -> [filters] -> formatter -> stdout`. The part
//! after `records` is built in one place, [`build_chain`], from
//! [`ChainArgs`] alone, so that a bridge (thread or process) can be put
//! between `records` and the chain, and a worker process can rebuild the
//! same chain from the same arguments.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use copipe::bridge::subprocess_flat;
use copipe::bridge::ThreadBridgeBuilder;
use copipe::xml::{
    bus_locations, expat_parse, filter_on_field, iterparse, json_lines, records, sax_parse,
    ChunkWriter, EventHandler, MissingFields, ParallelParse, Record, Records, XmlEvent, XmlInput,
};
use copipe::{Lifecycle, Stage};

/// The sample feed built into the binary, used when no FILE is given.
static SAMPLE: &[u8] = include_bytes!("../../data/allroutes.xml");

/// Files at least this large show a progress bar (when stderr is a
/// terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

/// Files larger than this are streamed rather than read whole, so memory
/// stays bounded.
const WHOLE_READ_MAX: u64 = 256 << 20;

/// Arguments of `copipe buses`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: copipe buses --route 22 --direction \"North Bound\"\n\
    (the North Bound #22 bus, the slowest moving object in the universe)"
)]
pub(crate) struct Args {
    /// The feed (allroutes.xml); `-` reads stdin. Without FILE, a sample
    /// feed built into copipe is read.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// How the XML is parsed; all give the same records.
    #[arg(long, value_enum, default_value_t = ParserStyle::Expat)]
    parser: ParserStyle,

    #[command(flatten)]
    pub(crate) chain: ChainArgs,

    /// Where the stages after `records` (filters and output) run: `none`
    /// (inline), `thread` (on a thread of their own, behind a thread
    /// bridge) or `process` (in a `copipe worker buses` child process, fed
    /// records over a pipe). The output is the same.
    #[arg(long, value_enum, default_value_t = Bridge::None)]
    bridge: Bridge,

    /// Threads parsing FILE at once (default: one per core; 1 parses
    /// sequentially). Only the expat parser on a FILE read whole runs in
    /// parallel (not stdin, nor files streamed for their size); the output
    /// and errors are the same either way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Publish each record, as JSON, to NATS JetStream at
    /// nats://[USER:PASS@]HOST:PORT/SUBJECT instead of printing it.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    #[cfg(feature = "nats")]
    #[command(flatten)]
    nats: super::consume::NatsArgs,
}

/// Where `copipe buses`' filters and output run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Bridge {
    /// In line, on the parsing thread.
    None,
    /// On their own thread, behind a thread bridge.
    Thread,
    /// In a child process (`copipe worker buses`), fed over a pipe.
    Process,
}

/// The XML source styles of the seed's performance contest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ParserStyle {
    /// Borrowed events, coalesced text (the fastest).
    Expat,
    /// A ContentHandler with owned names and text, adapted into sends.
    Sax,
    /// Each <bus> built as a small element, turned into a record, dropped.
    Iterparse,
}

/// The stages after `records`: filters and the output format. Everything
/// a worker process needs to rebuild the same chain.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChainArgs {
    /// Only buses on this route (e.g. 22, X9, J14).
    #[arg(long, value_name = "R")]
    pub(crate) route: Option<String>,

    /// Only buses going this way ("North Bound", "South Bound", "East
    /// Bound", "West Bound").
    #[arg(long, value_name = "D")]
    pub(crate) direction: Option<String>,

    /// Only buses whose FIELD equals VALUE exactly (repeatable; all must
    /// hold).
    #[arg(long = "where", value_name = "FIELD=VALUE", value_parser = parse_where)]
    pub(crate) wheres: Vec<(String, String)>,

    /// Output: `csv` prints route,id,"direction",latitude,longitude; `json`
    /// prints each bus as one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub(crate) format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// route,id,"direction",latitude,longitude (the seed's bus_locations).
    Csv,
    /// One JSON object per line, every field of the bus.
    Json,
}

fn parse_where(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected FIELD=VALUE, got `{s}`")),
    }
}

/// The stages after `records`, as one boxed stage.
pub(crate) type Chain = Box<dyn for<'a> Stage<&'a Record> + Send>;

impl ChainArgs {
    /// The filters in the order they apply: route, direction, then each
    /// `--where`.
    pub(crate) fn filters(&self) -> Vec<(String, String)> {
        let mut f = Vec::new();
        if let Some(r) = &self.route {
            f.push(("route".to_string(), r.clone()));
        }
        if let Some(d) = &self.direction {
            f.push(("direction".to_string(), d.clone()));
        }
        f.extend(self.wheres.iter().cloned());
        f
    }

    /// These arguments as command-line words, to hand the same chain to a
    /// worker process.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(r) = &self.route {
            a.extend(["--route".to_string(), r.clone()]);
        }
        if let Some(d) = &self.direction {
            a.extend(["--direction".to_string(), d.clone()]);
        }
        for (k, v) in &self.wheres {
            a.extend(["--where".to_string(), format!("{k}={v}")]);
        }
        let format = match self.format {
            Format::Csv => "csv",
            Format::Json => "json",
        };
        a.extend(["--format".to_string(), format.to_string()]);
        a
    }
}

/// Builds `filter_on_field(..) -> ... -> formatter(out)` from the
/// arguments: the part of the pipeline a bridge may carry elsewhere.
pub(crate) fn build_chain<W: Write + Send + 'static>(args: &ChainArgs, out: W) -> Chain {
    build_chain_counted(args, out, None)
}

/// [`build_chain`], with the missing-field counts added to `tally` at
/// close instead of a warning on stderr.
fn build_chain_counted<W: Write + Send + 'static>(
    args: &ChainArgs,
    out: W,
    tally: Option<Arc<Mutex<MissingFields>>>,
) -> Chain {
    let mut chain: Chain = match args.format {
        Format::Csv => match tally {
            Some(t) => Box::new(bus_locations(out).count_into(t)),
            None => Box::new(bus_locations(out)),
        },
        Format::Json => Box::new(json_lines(out)),
    };
    for (field, value) in args.filters().iter().rev() {
        chain = Box::new(filter_on_field(field, value, chain));
    }
    chain
}

/// Runs the chosen source, pushing records into `target`: the same target
/// whichever parser style is used.
pub(crate) fn feed<S>(parser: ParserStyle, input: XmlInput<'_>, target: S) -> copipe::Result<()>
where
    S: for<'a> Stage<&'a Record>,
{
    match parser {
        ParserStyle::Expat => expat_parse(input, records("bus", target)),
        ParserStyle::Sax => sax_parse(input, EventHandler::new(records("bus", target))),
        ParserStyle::Iterparse => iterparse(input, "bus", target),
    }
}

/// An opened input: a file read whole (which may be parsed in parallel),
/// or a source for the sequential parsers.
pub(crate) enum Opened {
    Whole(Vec<u8>, PathBuf),
    Input(XmlInput<'static>, Option<indicatif::ProgressBar>),
}

impl Opened {
    /// The input for a sequential parse.
    pub(crate) fn into_input(self) -> (XmlInput<'static>, Option<indicatif::ProgressBar>) {
        match self {
            Opened::Whole(bytes, path) => (XmlInput::from_vec(bytes).with_path(path), None),
            Opened::Input(input, pb) => (input, pb),
        }
    }
}

/// Opens FILE (or stdin, or the built-in sample), with a progress bar when
/// it is worth one.
pub(crate) fn open_input(file: Option<&PathBuf>, threads: usize) -> anyhow::Result<Opened> {
    let Some(path) = file else {
        return Ok(Opened::Input(
            XmlInput::from_bytes(SAMPLE).with_path("allroutes.xml (built-in sample)"),
            None,
        ));
    };
    if path.as_os_str() == "-" {
        return Ok(Opened::Input(
            XmlInput::from_reader(io::stdin()).with_path("<stdin>"),
            None,
        ));
    }
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size >= PROGRESS_BYTES && io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(size);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let input = XmlInput::from_reader(pb.wrap_read(f)).with_path(path);
        return Ok(Opened::Input(input, Some(pb)));
    }
    if size > WHOLE_READ_MAX {
        return Ok(Opened::Input(
            XmlInput::from_reader(f).with_path(path),
            None,
        ));
    }
    let bytes = read_whole(&mut f, size, threads)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Opened::Whole(bytes, path.clone()))
}

/// Files at least this large are read by several threads at once.
const SPLIT_READ_BYTES: u64 = 4 << 20;

/// Reads the whole file, whose size was `size` when opened. Copying a
/// large file out of the page cache costs CPU time (copies and page
/// faults), so a large one is read in parts on `threads` threads, each
/// part into its own range of one buffer.
fn read_whole(f: &mut File, size: u64, threads: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let parts = if size >= SPLIT_READ_BYTES {
        threads.clamp(1, 8)
    } else {
        1
    };
    let mut bytes = Vec::new();
    if parts > 1 {
        bytes = vec![0u8; size as usize];
        let part = (bytes.len()).div_ceil(parts);
        let results: Vec<io::Result<()>> = std::thread::scope(|scope| {
            let file = &*f;
            let readers: Vec<_> = bytes
                .chunks_mut(part)
                .enumerate()
                .map(|(i, chunk)| {
                    let at = (i * part) as u64;
                    scope.spawn(move || file.read_exact_at(chunk, at))
                })
                .collect();
            readers
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|_| Err(io::Error::other("a reading thread panicked")))
                })
                .collect()
        });
        match results.into_iter().find(|r| r.is_err()) {
            // The file may have grown since: read on to its end below.
            None => io::Seek::seek(f, io::SeekFrom::Start(size)).map(|_| ())?,
            // It shrank: read it again from the start, the simple way.
            Some(_) => {
                bytes.clear();
                io::Seek::seek(f, io::SeekFrom::Start(0))?;
            }
        }
    }
    io::Read::read_to_end(f, &mut bytes)?;
    Ok(bytes)
}

/// One chunk's stages in a parallel parse: `records` and the chain, with
/// the chunk's own missing-field counts.
struct ChunkChain {
    stages: Records<Chain>,
    tally: Arc<Mutex<MissingFields>>,
}

impl<'e> Stage<XmlEvent<'e>> for ChunkChain {
    #[inline]
    fn send(&mut self, event: XmlEvent<'e>) -> copipe::Result<copipe::Flow> {
        self.stages.send(event)
    }
}

impl Lifecycle for ChunkChain {
    fn flush(&mut self) -> copipe::Result<()> {
        self.stages.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.stages.close()
    }
}

/// The expat-style parse of a file read whole, on `threads` threads: the
/// same output, warning and errors as the sequential parse.
fn run_parallel(
    bytes: &[u8],
    path: &std::path::Path,
    chain: &ChainArgs,
    threads: usize,
) -> copipe::Result<()> {
    let make = |w: ChunkWriter| {
        let tally = Arc::new(Mutex::new(MissingFields::default()));
        ChunkChain {
            stages: records("bus", build_chain_counted(chain, w, Some(tally.clone()))),
            tally,
        }
    };
    let (chunks, result) = ParallelParse::new("bus")
        .threads(threads)
        .with_path(path)
        .run(bytes, make, io::stdout().lock());
    let mut missing = MissingFields::default();
    for c in &chunks {
        missing.add(&c.tally.lock().unwrap_or_else(PoisonError::into_inner));
    }
    if let Some(w) = missing.warning() {
        eprintln!("copipe: warning: {w}");
    }
    result
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    #[cfg(feature = "nats")]
    if let Some(to) = &args.to {
        let (out, stats) = super::consume::record_publisher(to, &args.nats, args.file.as_deref())?;
        let (input, _) = open_input(args.file.as_ref(), 1)?.into_input();
        let chain = ChainArgs {
            format: Format::Json,
            ..args.chain.clone()
        };
        feed(args.parser, input, build_chain(&chain, out))?;
        let s = *stats.lock().unwrap_or_else(PoisonError::into_inner);
        eprintln!(
            "copipe: {} records acked ({} already in the stream)",
            s.acked, s.duplicates
        );
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open_input(args.file.as_ref(), threads)?;
    if let Opened::Whole(bytes, path) = &opened {
        if args.parser == ParserStyle::Expat && args.bridge == Bridge::None && threads > 1 {
            run_parallel(bytes, path, &args.chain, threads)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (input, progress) = opened.into_input();
    let result = match args.bridge {
        Bridge::None => feed(args.parser, input, build_chain(&args.chain, io::stdout())),
        // Records cross flattened into one byte buffer and one String per
        // batch (their values, and their names when they change, in the
        // String), rebuilt by the worker into one reused record with no
        // UTF-8 check: no allocation per record, and less for the parsing
        // thread to copy than a slot per record.
        Bridge::Thread => match ThreadBridgeBuilder::new()
            .name("copipe-buses")
            .spawn_flat::<Record, _>(build_chain(&args.chain, io::stdout()))
        {
            Ok(bridge) => feed(args.parser, input, bridge),
            Err(e) => Err(e),
        },
        // The child rebuilds the same chain from the same arguments; its
        // failure is our error (`close` at the end of `feed` waits for it).
        Bridge::Process => {
            // Records go in flat frames, many to a frame, their names only
            // when they change.
            match subprocess_flat::<Record, _, _>(
                std::iter::once("buses".to_string()).chain(args.chain.to_args()),
            ) {
                Ok(bridge) => feed(args.parser, input, bridge),
                Err(e) => Err(e),
            }
        }
    };
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
