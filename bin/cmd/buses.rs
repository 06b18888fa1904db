//! `copipe buses`: the seed's bus pipeline on a CTA bus tracker feed.
//!
//! `source -> records("bus") -> [filters] -> formatter -> stdout`. The part
//! after `records` is built in one place, [`build_chain`], from
//! [`ChainArgs`] alone, so that a bridge (thread or process) can be put
//! between `records` and the chain, and a worker process can rebuild the
//! same chain from the same arguments.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use copipe::bridge::subprocess_flat;
use copipe::bridge::ThreadBridgeBuilder;
use copipe::xml::{
    bus_locations, expat_parse, filter_on_field, filter_where, iterparse, json_lines, records,
    sax_parse, vehicle_locations, ChunkWriter, EventHandler, MissingFields, ParallelParse, Record,
    Records, Where, XmlEvent, XmlInput,
};
use copipe::{Lifecycle, Stage};

use super::xml_input::{open_input, Opened};

/// Arguments of `copipe buses`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Two feeds are read, told apart by the root element:\n\
  <buses><bus>: the 2009 feed of the tutorial (route, id, direction,\n\
    latitude, longitude, ...);\n\
  <bustime-response><vehicle>: today's CTA Bus Tracker getvehicles\n\
    response, whose fields stand for the 2009 ones as route = rt,\n\
    id = vid, latitude = lat, longitude = lon; it has no direction: the\n\
    CSV prints des (the destination) in its place, and --direction is\n\
    refused (use --where des=DESTINATION). --route filters on rt.\n\n\
Example: copipe buses --route 22 --direction \"North Bound\"\n\
    (the North Bound #22 bus, the slowest moving object in the universe)")]
pub(crate) struct Args {
    /// The feed (allroutes.xml); `-` reads stdin. Without FILE, stdin if
    /// a feed is piped in, else a sample feed built into copipe.
    ///
    /// A regular file of 4 MiB or more is mapped, not read (as ripgrep
    /// does): if it is truncated meanwhile, copipe dies of SIGBUS (exit
    /// 135); pipe in a file that may be truncated (`- < FILE`).
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

    /// Only buses meeting COND (repeatable; all must hold): FIELD=VALUE,
    /// FIELD!=VALUE, FIELD~REGEX, or numeric FIELD<N, FIELD<=N, FIELD>N,
    /// FIELD>=N, on the feed's own field names (see `copipe records`).
    #[arg(long = "where", value_name = "COND", value_parser = parse_where)]
    pub(crate) wheres: Vec<Where>,

    /// Which feed the records come from: found from the root element; a
    /// worker process is told.
    #[arg(long, value_enum, default_value_t = Dialect::V2009, hide = true)]
    pub(crate) dialect: Dialect,

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

fn parse_where(s: &str) -> Result<Where, String> {
    s.parse::<Where>().map_err(|e| e.to_string())
}

/// The two CTA feeds `copipe buses` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dialect {
    /// `<buses><bus>`: the 2009 feed of the tutorial.
    #[value(name = "2009")]
    V2009,
    /// `<bustime-response><vehicle>`: today's Bus Tracker `getvehicles`.
    Bustime,
}

impl Dialect {
    /// The dialect of a document whose root element is `root`.
    pub(crate) fn of_root(root: &str) -> Dialect {
        if root == "bustime-response" {
            Dialect::Bustime
        } else {
            Dialect::V2009
        }
    }

    /// The dialect of a document in memory, from its root element's name.
    fn sniff(bytes: &[u8]) -> Dialect {
        Dialect::of_root(root_name(bytes).unwrap_or(""))
    }

    /// The record element.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Dialect::V2009 => "bus",
            Dialect::Bustime => "vehicle",
        }
    }
}

/// The name of the root element: the first start tag after the prolog
/// (declaration, comments, processing instructions, doctype). Only a
/// guess for choosing the dialect: the parse checks the document.
fn root_name(bytes: &[u8]) -> Option<&str> {
    prolog_root(bytes, false)
}

/// The name of the root element when the prolog is plain, so that it is
/// surely the name the parser's first start tag gives: UTF-8 or ASCII
/// bytes, with only white space, an XML declaration, processing
/// instructions and comments before it (no DOCTYPE, no byte order mark).
/// None otherwise, or if the document is cut short (the dialect is then
/// found from the parser's first event). A document the parser rejects
/// before its root sends nothing either way.
fn plain_root(bytes: &[u8]) -> Option<&str> {
    prolog_root(bytes, true)
}

/// The first start tag's name after the prolog; with `plain`, None unless
/// only white space lies between the prolog's markup and no DOCTYPE is
/// there (see [`plain_root`]), else any text and a DOCTYPE are skipped.
fn prolog_root(bytes: &[u8], plain: bool) -> Option<&str> {
    let skip_to = |rest: &[u8], end: &[u8]| -> Option<usize> {
        memchr::memmem::find(rest, end).map(|i| i + end.len())
    };
    let mut rest = bytes;
    loop {
        rest = if plain {
            let lt = rest.iter().position(|b| !b.is_ascii_whitespace())?;
            rest[lt..].strip_prefix(b"<")?
        } else {
            &rest[memchr::memchr(b'<', rest)? + 1..]
        };
        if rest.starts_with(b"?") {
            rest = &rest[skip_to(rest, b"?>")?..];
        } else if rest.starts_with(b"!--") {
            rest = &rest[skip_to(&rest[3..], b"-->")? + 3..];
        } else if rest.starts_with(b"!") {
            if plain {
                return None;
            }
            // A doctype, perhaps with an internal subset.
            let gt = memchr::memchr(b'>', rest)?;
            let end = match memchr::memchr(b'[', &rest[..gt]) {
                Some(_) => skip_to(rest, b"]")?,
                None => gt + 1,
            };
            rest = &rest[end..];
        } else {
            let end = rest
                .iter()
                .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))?;
            return std::str::from_utf8(&rest[..end]).ok();
        }
    }
}

/// The stages after `records`, as one boxed stage.
pub(crate) type Chain = Box<dyn for<'a> Stage<&'a Record> + Send>;

impl ChainArgs {
    /// The exact-match filters in the order they apply: route, then
    /// direction (then each `--where`, see [`build_chain`]).
    pub(crate) fn filters(&self) -> Vec<(String, String)> {
        let mut f = Vec::new();
        if let Some(r) = &self.route {
            let field = match self.dialect {
                Dialect::V2009 => "route",
                Dialect::Bustime => "rt",
            };
            f.push((field.to_string(), r.clone()));
        }
        if let Some(d) = &self.direction {
            f.push(("direction".to_string(), d.clone()));
        }
        f
    }

    /// These arguments for a feed of `dialect`.
    ///
    /// # Errors
    ///
    /// `--direction` on a getvehicles response, which has none.
    pub(crate) fn for_dialect(&self, dialect: Dialect) -> copipe::Result<ChainArgs> {
        if dialect == Dialect::Bustime && self.direction.is_some() {
            return Err(copipe::Error::usage(
                "--direction: a Bus Tracker getvehicles response has no direction; \
                 filter on the destination instead, e.g. --where des=Howard \
                 or --where 'des~Howard'",
            ));
        }
        Ok(ChainArgs {
            dialect,
            ..self.clone()
        })
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
        for w in &self.wheres {
            a.extend(["--where".to_string(), w.to_string()]);
        }
        if self.dialect == Dialect::Bustime {
            a.extend(["--dialect".to_string(), "bustime".to_string()]);
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
        Format::Csv => {
            let show = match args.dialect {
                Dialect::V2009 => bus_locations(out),
                Dialect::Bustime => vehicle_locations(out),
            };
            match tally {
                Some(t) => Box::new(show.count_into(t)),
                None => Box::new(show),
            }
        }
        Format::Json => Box::new(json_lines(out)),
    };
    for w in args.wheres.iter().rev() {
        chain = Box::new(filter_where(w.clone(), chain));
    }
    for (field, value) in args.filters().iter().rev() {
        chain = Box::new(filter_on_field(field, value, chain));
    }
    chain
}

/// Runs the chosen source, pushing records into the target `make`
/// builds once the feed's dialect is known: from the root element (expat
/// and SAX styles), or `known` (the iterparse style, which needs the
/// record element before it starts).
fn feed<F>(
    parser: ParserStyle,
    input: XmlInput<'_>,
    known: Option<Dialect>,
    make: F,
) -> copipe::Result<()>
where
    F: FnOnce(Dialect) -> copipe::Result<Chain>,
{
    let by_root = |make| ByRoot {
        make: Some(make),
        stages: None,
    };
    match parser {
        ParserStyle::Expat => expat_parse(input, by_root(make)),
        ParserStyle::Sax => sax_parse(input, EventHandler::new(by_root(make))),
        ParserStyle::Iterparse => {
            let dialect = known.unwrap_or(Dialect::V2009);
            iterparse(input, dialect.tag(), make(dialect)?)
        }
    }
}

/// `records(tag, chain)`, built when the root element's start tag (the
/// first event) tells the dialect.
struct ByRoot<F> {
    make: Option<F>,
    stages: Option<Records<Chain>>,
}

impl<'e, F> Stage<XmlEvent<'e>> for ByRoot<F>
where
    F: FnOnce(Dialect) -> copipe::Result<Chain>,
{
    // Always inlined into the parse loop: a call per event cost about 18
    // instructions of prologue and epilogue (callgrind, the bus feed).
    #[inline(always)]
    fn send(&mut self, event: XmlEvent<'e>) -> copipe::Result<copipe::Flow> {
        match &mut self.stages {
            Some(stages) => stages.send(event),
            None => self.first(event),
        }
    }
}

impl<F> ByRoot<F>
where
    F: FnOnce(Dialect) -> copipe::Result<Chain>,
{
    /// The first event: build the chain for the root's dialect. Out of
    /// line, so that `send` stays small enough to inline into the parser.
    #[cold]
    #[inline(never)]
    fn first(&mut self, event: XmlEvent<'_>) -> copipe::Result<copipe::Flow> {
        let dialect = match &event {
            XmlEvent::Start(tag) => Dialect::of_root(tag.name()),
            _ => Dialect::V2009,
        };
        let stages = match self.make.take() {
            Some(make) => self.stages.insert(records(dialect.tag(), make(dialect)?)),
            None => return Ok(copipe::Flow::Stop),
        };
        stages.send(event)
    }
}

impl<F> Lifecycle for ByRoot<F> {
    fn flush(&mut self) -> copipe::Result<()> {
        match &mut self.stages {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
    fn close(&mut self) -> copipe::Result<()> {
        match &mut self.stages {
            Some(s) => s.close(),
            None => Ok(()),
        }
    }
}

/// One chunk's stages in a parallel parse: `records` and the chain, with
/// the chunk's own missing-field counts.
struct ChunkChain {
    stages: Records<Chain>,
    tally: Arc<Mutex<MissingFields>>,
}

impl<'e> Stage<XmlEvent<'e>> for ChunkChain {
    // Always inlined into the parse loop, as `ByRoot` and records'
    // `ChunkChain`: a call per event costs its prologue and epilogue.
    #[inline(always)]
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
            stages: records(
                chain.dialect.tag(),
                build_chain_counted(chain, w, Some(tally.clone())),
            ),
            tally,
        }
    };
    let (chunks, result) = ParallelParse::new(chain.dialect.tag())
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
        let mut opened = open_input(args.file.as_ref())?;
        let (input, _) = opened.input();
        let chain = ChainArgs {
            format: Format::Json,
            ..args.chain.clone()
        };
        feed(args.parser, input, None, |d| {
            Ok(build_chain(&chain.for_dialect(d)?, out))
        })?;
        let s = *stats.lock().unwrap_or_else(PoisonError::into_inner);
        eprintln!(
            "copipe: {} records acked ({} already in the stream)",
            s.acked, s.duplicates
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut opened = open_input(args.file.as_ref())?;
    let known = match &opened {
        Opened::Whole(bytes, _) => Some(Dialect::sniff(bytes)),
        Opened::Input(..) => None,
    };
    if let (Opened::Whole(bytes, path), Some(dialect)) = (&opened, known) {
        if args.parser == ParserStyle::Expat && args.bridge == Bridge::None && threads > 1 {
            run_parallel(bytes, path, &args.chain.for_dialect(dialect)?, threads)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    // The root element read off a plain prolog, in memory: the chain is
    // built before the parse, which then feeds it with no per-event check
    // for a dialect still unknown (see `plain_root`).
    let direct = match (&opened, args.parser, args.bridge) {
        (Opened::Whole(bytes, _), ParserStyle::Expat, Bridge::None) => plain_root(bytes)
            .map(Dialect::of_root)
            .and_then(|d| args.chain.for_dialect(d).ok()),
        _ => None,
    };
    let (input, progress) = opened.input();
    let chain = &args.chain;
    let result = match args.bridge {
        Bridge::None => match direct {
            Some(c) => expat_parse(
                input,
                records(c.dialect.tag(), build_chain(&c, io::stdout())),
            ),
            None => feed(args.parser, input, known, |d| {
                Ok(build_chain(&chain.for_dialect(d)?, io::stdout()))
            }),
        },
        // Records cross flattened into one byte buffer and one String per
        // batch (their values, and their names when they change, in the
        // String), rebuilt by the worker into one reused record with no
        // UTF-8 check: no allocation per record, and less for the parsing
        // thread to copy than a slot per record.
        Bridge::Thread => feed(args.parser, input, known, |d| {
            let bridge = ThreadBridgeBuilder::new()
                .name("copipe-buses")
                .spawn_flat::<Record, _>(build_chain(&chain.for_dialect(d)?, io::stdout()))?;
            Ok(Box::new(bridge) as Chain)
        }),
        // The child rebuilds the same chain from the same arguments; its
        // failure is our error (`close` at the end of `feed` waits for it).
        // Records go in flat frames, many to a frame, their names only
        // when they change.
        Bridge::Process => feed(args.parser, input, known, |d| {
            let words = chain.for_dialect(d)?.to_args();
            let bridge = super::worker::command(std::iter::once("buses".to_string()).chain(words))
                .and_then(subprocess_flat::<Record>)?;
            Ok(Box::new(bridge) as Chain)
        }),
    };
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_root_reads_only_plain_prologs() {
        fn root(doc: &str) -> Option<&str> {
            plain_root(doc.as_bytes())
        }
        assert_eq!(root("<buses><bus/></buses>"), Some("buses"));
        assert_eq!(
            root("<?xml version=\"1.0\"?>\n<!-- <bustime-response> -->\n<buses>"),
            Some("buses")
        );
        assert_eq!(
            root("<?pi <x> ?><bustime-response a='1'>"),
            Some("bustime-response")
        );
        assert_eq!(root(" \r\n\t<buses/>"), Some("buses"));
        assert_eq!(root("<!-- a -->--><buses>"), None, "text before the root");
        // A DOCTYPE, a byte order mark, UTF-16 or a cut document: found
        // from the parser's first event instead.
        assert_eq!(root("<!DOCTYPE buses><buses>"), None);
        assert_eq!(root("\u{FEFF}<buses>"), None);
        assert_eq!(plain_root(b"\xFF\xFE<\0b\0>\0"), None);
        assert_eq!(root("<!-- <buses>"), None);
        assert_eq!(root("<?xml "), None);
        assert_eq!(root("<buses"), None);
        assert_eq!(root(""), None);
    }

    #[test]
    fn plain_root_agrees_with_the_sniff() {
        for doc in [
            "<buses><bus><id>1</id></bus></buses>",
            "<?xml version=\"1.0\"?><bustime-response><vehicle/></bustime-response>",
            "<!-- c --><?p?>\n<buses>",
        ] {
            assert_eq!(
                plain_root(doc.as_bytes()),
                root_name(doc.as_bytes()),
                "{doc}"
            );
        }
    }
}
