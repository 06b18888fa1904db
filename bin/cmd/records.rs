//! `copipe records`: any record-shaped XML as CSV, TSV or JSON lines.
//!
//! `source -> element_records(PATH) -> [filter_where ...] -> record_writer
//! -> stdout`, with the sources, the parallel parse and the thread bridge
//! of `copipe buses`.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use copipe::bridge::ThreadBridgeBuilder;
use copipe::xml::{
    element_records, expat_parse_wanted, filter_where, record_writer, ChunkWriter, ElementRecords,
    FieldTally, ParallelParse, Record, RecordFormat, TextWanted, Where, XmlEvent, XmlInput,
};
use copipe::{Flow, Lifecycle, Stage};

use super::xml_input::{open_input, Opened};

/// Arguments of `copipe records`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Fields of a record: @NAME for each attribute of the element, the text of
each child element with no element children by its path from the element
(rt, pos/lat), and CHILD/@NAME for attributes of elements inside it. A
field that repeats (two <link> children) keeps its first value; text of
elements that have element children is not a field.

Examples:
  copipe records feed.xml --element bus --where route=22 --where 'latitude>41.9'
  copipe records dump.xml --element page --fields title,id --format tsv
  copipe records vehicles.xml --element vehicle --where 'des~^Howard' --format json")]
pub(crate) struct Args {
    /// The XML file; `-` reads stdin. Without FILE, stdin if something is
    /// piped in, else the bus feed sample built into copipe.
    ///
    /// A regular file of 4 MiB or more is mapped, not read (as ripgrep
    /// does): if it is truncated meanwhile, copipe dies of SIGBUS (exit
    /// 135); pipe in a file that may be truncated (`- < FILE`).
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// The record element: a NAME (such elements at any depth), a path
    /// PARENT/NAME (a NAME whose parent is PARENT), or /ROOT/.../NAME
    /// (from the root element).
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_element)]
    element: String,

    #[command(flatten)]
    chain: ChainArgs,

    /// Where the filters and the output run: `none` (inline) or `thread`
    /// (on a thread of their own, behind a thread bridge). The output is
    /// the same.
    #[arg(long, value_enum, default_value_t = Bridge::None)]
    bridge: Bridge,

    /// Threads parsing FILE at once (default: one per core; 1 parses
    /// sequentially). A FILE read whole is parsed in parallel when the
    /// element is a NAME (not a path): cut before such elements under the
    /// first one's parent (the rest is parsed sequentially); the output
    /// and errors are the same either way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// Where `copipe records`' filters and output run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bridge {
    /// In line, on the parsing thread.
    None,
    /// On their own thread, behind a thread bridge.
    Thread,
}

/// The stages after `element_records`.
#[derive(Debug, Clone, clap::Args)]
struct ChainArgs {
    /// Only records meeting COND (repeatable; all must hold):
    /// FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX, or numeric FIELD<N,
    /// FIELD<=N, FIELD>N, FIELD>=N (a value that is not a number fails,
    /// and is counted in the warning). A missing field fails all but !=.
    #[arg(long = "where", value_name = "COND", value_parser = parse_where)]
    wheres: Vec<Where>,

    /// The fields to print, in this order (a missing one prints empty and
    /// is counted in the warning). Default: CSV and TSV print the fields
    /// of the first record printed; JSON prints every field.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    fields: Option<Vec<String>>,

    /// Output: `csv` (RFC 4180 quoting), `tsv` (tab, newline, CR and
    /// backslash escaped as \t \n \r \\) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,

    /// No header line (CSV, TSV).
    #[arg(long)]
    no_header: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Comma-separated, RFC 4180 quoting, a header line.
    Csv,
    /// Tab-separated, escapes, a header line.
    Tsv,
    /// One JSON object per line.
    Json,
}

impl Format {
    fn record_format(self) -> RecordFormat {
        match self {
            Format::Csv => RecordFormat::Csv,
            Format::Tsv => RecordFormat::Tsv,
            Format::Json => RecordFormat::Json,
        }
    }
}

fn parse_where(s: &str) -> Result<Where, String> {
    s.parse::<Where>().map_err(|e| e.to_string())
}

fn parse_element(s: &str) -> Result<String, String> {
    let names = s.trim_start_matches('/');
    if names.is_empty() || names.split('/').any(str::is_empty) {
        return Err(format!(
            "expected NAME, PARENT/NAME or /ROOT/.../NAME, got `{s}`"
        ));
    }
    Ok(s.to_string())
}

/// The fields the chain reads (the columns and the fields filtered on),
/// or empty when it prints every field: what `element_records` gathers.
fn wanted(args: &ChainArgs, columns: Option<&[String]>) -> Vec<String> {
    let Some(cols) = columns.or(args.fields.as_deref()) else {
        return Vec::new();
    };
    let mut w = cols.to_vec();
    w.extend(args.wheres.iter().map(|c| c.field().to_string()));
    w
}

/// The conditions `element_records` may test as it reads (see
/// `ElementRecords::prefilter`): those whose filters come first, up to
/// and including the first numeric one, so that no filter that would have
/// counted a value that is not a number is skipped.
fn early(wheres: &[Where]) -> Vec<Where> {
    let n = wheres
        .iter()
        .position(Where::is_numeric)
        .map_or(wheres.len(), |i| i + 1);
    wheres[..n].to_vec()
}

/// The stages after `element_records`, as one boxed stage.
type Chain = Box<dyn for<'a> Stage<&'a Record> + Send>;

/// `filter_where(..) -> ... -> target`.
fn with_filters(wheres: &[Where], tally: &Arc<Mutex<FieldTally>>, target: Chain) -> Chain {
    let mut chain = target;
    for w in wheres.iter().rev() {
        chain = Box::new(filter_where(w.clone(), chain).count_into(tally.clone()));
    }
    chain
}

/// The filters and the writer. `columns` overrides `--fields` (the
/// parallel parse's columns, found before); `header` false leaves the
/// header to the caller.
fn build_chain<W: io::Write + Send + 'static>(
    args: &ChainArgs,
    columns: Option<&[String]>,
    header: bool,
    tally: &Arc<Mutex<FieldTally>>,
    out: W,
) -> Chain {
    let mut w = record_writer(args.format.record_format(), out).count_into(tally.clone());
    if let Some(c) = columns.or(args.fields.as_deref()) {
        w = w.fields(c.iter().cloned());
    }
    if !header || args.no_header {
        w = w.no_header();
    }
    with_filters(&args.wheres, tally, Box::new(w))
}

/// Keeps the field names of the first record it is sent, then stops.
struct FirstNames(Arc<Mutex<Option<Vec<String>>>>);

impl Stage<&Record> for FirstNames {
    fn send(&mut self, r: &Record) -> copipe::Result<Flow> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(r.iter().map(|(k, _)| k.to_string()).collect());
        Ok(Flow::Stop)
    }
}

impl Lifecycle for FirstNames {
    fn flush(&mut self) -> copipe::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        Ok(())
    }
}

/// The field names of the first record that passes the filters, found by
/// a sequential parse up to it: what a sequential run would print as
/// columns. None if no record passes (or the document breaks before one:
/// the parallel parse then reports the error itself).
///
/// The parse reads a prefix of the document (cut before a `<`), then a 16
/// times longer one, and so on: the first passing record in a prefix is
/// the document's (the events before it are the same), and a whole-input
/// parse would check all the input before its first event, which is a
/// pass over the whole file before the parallel parse can start.
fn first_names(bytes: &[u8], element: &str, wheres: &[Where]) -> Option<Vec<String>> {
    let mut want = 64 << 10;
    loop {
        let end = match bytes.get(want..) {
            Some(rest) => memchr::memchr(b'<', rest).map_or(bytes.len(), |i| want + i),
            None => bytes.len(),
        };
        let found = first_names_in(&bytes[..end], element, wheres);
        if found.is_some() || end == bytes.len() {
            return found;
        }
        want = want.saturating_mul(16);
    }
}

/// [`first_names`] on `bytes` as a whole.
fn first_names_in(bytes: &[u8], element: &str, wheres: &[Where]) -> Option<Vec<String>> {
    let names = Arc::new(Mutex::new(None));
    let tally = Arc::new(Mutex::new(FieldTally::default()));
    let chain = with_filters(wheres, &tally, Box::new(FirstNames(names.clone())));
    let _ = expat_parse_wanted(
        XmlInput::from_bytes(bytes),
        element_records(element, chain).prefilter(early(wheres)),
    );
    let found = names.lock().unwrap_or_else(PoisonError::into_inner).take();
    found
}

/// One chunk's stages in a parallel parse, with the chunk's own counts for
/// the warning: only the chunks the parse used are added up (a chunk after
/// a cut that was not confirmed, or after an error, is closed too, and
/// its records are not the document's).
struct ChunkChain(ElementRecords<Chain>, Arc<Mutex<FieldTally>>);

impl<'e> Stage<XmlEvent<'e>> for ChunkChain {
    // Always inlined into the parse loop, as `buses`' `ByRoot`: a call
    // per event costs its prologue and epilogue.
    #[inline(always)]
    fn send(&mut self, event: XmlEvent<'e>) -> copipe::Result<Flow> {
        self.0.send(event)
    }
}

impl TextWanted for ChunkChain {
    #[inline(always)]
    fn text_wanted(&self) -> bool {
        self.0.text_wanted()
    }
}

impl Lifecycle for ChunkChain {
    fn flush(&mut self) -> copipe::Result<()> {
        self.0.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.0.close()
    }
}

/// The parse of a file read whole, on `threads` threads: the same output,
/// warning and errors as the sequential parse.
fn run_parallel(
    bytes: &[u8],
    path: &std::path::Path,
    args: &Args,
    threads: usize,
    tally: &Arc<Mutex<FieldTally>>,
) -> anyhow::Result<()> {
    let chain = &args.chain;
    // Every chunk prints the same columns, and the header is printed
    // here, once.
    let columns = match (&chain.fields, chain.format) {
        (Some(f), _) => Some(f.clone()),
        (None, Format::Json) => None,
        (None, _) => Some(first_names(bytes, &args.element, &chain.wheres).unwrap_or_default()),
    };
    if let Some(c) = &columns {
        if !chain.no_header && chain.format != Format::Json && !c.is_empty() {
            // A writer with chosen fields that gets no record prints its
            // header alone.
            let mut header = record_writer(chain.format.record_format(), io::stdout().lock())
                .fields(c.iter().cloned());
            header.close()?;
        }
    }
    let make = |w: ChunkWriter| {
        let own = Arc::new(Mutex::new(FieldTally::default()));
        ChunkChain(
            element_records(
                &args.element,
                build_chain(chain, columns.as_deref(), false, &own, w),
            )
            .only(wanted(chain, columns.as_deref()))
            .prefilter(early(&chain.wheres)),
            own,
        )
    };
    let (chunks, result) = ParallelParse::new(&args.element)
        .threads(threads)
        .with_path(path)
        .run_wanted(bytes, make, io::stdout().lock());
    let mut total = tally.lock().unwrap_or_else(PoisonError::into_inner);
    for c in &chunks {
        total.add(&c.1.lock().unwrap_or_else(PoisonError::into_inner));
    }
    drop(total);
    Ok(result?)
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let tally = Arc::new(Mutex::new(FieldTally::default()));
    let opened = open_input(args.file.as_ref())?;
    let result = match opened {
        Opened::Whole(bytes, path)
            if args.bridge == Bridge::None && threads > 1 && !args.element.contains('/') =>
        {
            run_parallel(&bytes, &path, &args, threads, &tally)
        }
        mut opened => {
            let (input, progress) = opened.input();
            let chain = build_chain(&args.chain, None, true, &tally, io::stdout());
            let result = match args.bridge {
                Bridge::None => expat_parse_wanted(
                    input,
                    element_records(&args.element, chain)
                        .only(wanted(&args.chain, None))
                        .prefilter(early(&args.chain.wheres)),
                ),
                // Records cross flattened, many to a batch, their names
                // only when they change (as `copipe buses --bridge thread`).
                Bridge::Thread => match ThreadBridgeBuilder::new()
                    .name("copipe-records")
                    .spawn_flat::<Record, _>(chain)
                {
                    Ok(bridge) => expat_parse_wanted(
                        input,
                        element_records(&args.element, bridge)
                            .only(wanted(&args.chain, None))
                            .prefilter(early(&args.chain.wheres)),
                    ),
                    Err(e) => Err(e),
                },
            };
            if let Some(pb) = progress {
                pb.finish_and_clear();
            }
            result.map_err(anyhow::Error::from)
        }
    };
    if let Some(w) = tally
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .warning()
    {
        eprintln!("copipe: warning: {w}");
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
