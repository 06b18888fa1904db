//! `copipe tail`: tail -f | grep in one tool.
//!
//! The source (`Lines` for a static tail, `Follow` with -f/-F) pushes
//! blocks of lines into one chain built by [`chain`]:
//!
//! ```text
//! source ──Block──▶ Tag ──▶ Grep ──line──▶ Headers ──line──▶ output (Printer)
//! ```
//!
//! `Tag` notes which file a block comes from, `Headers` writes `==> name
//! <==` before the first line of another file. The output stage is a type
//! parameter of [`drive`], so a bridge can wrap the printer in `run` and
//! everything else stays as it is.

use copipe::Lifecycle;

use super::mapped;
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use copipe::bridge::ThreadBridgeBuilder;
use copipe::sinks::Printer;
use copipe::text::{Block, Follow, FollowMode, Grep, KeepOpen, LastLines, Lines, Start};
use copipe::{Error, ErrorKind, Flow, Result, Stage};

use super::select::{SelectArgs, STDIN_NAME};
use super::tail_grep::{Opts, Rich};

/// Arguments of `copipe tail`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Keep following the files as they grow (like tail -f: follows the
    /// open file, even when renamed; stops with SIGINT/SIGTERM).
    #[arg(short = 'f')]
    follow: bool,
    /// Follow the files by name (like tail -F): after a rotation the old
    /// file is read to its end and the new one from its start; truncation
    /// restarts at 0; a missing file is waited for.
    #[arg(short = 'F', conflicts_with = "follow")]
    follow_name: bool,
    /// Start with the last N lines, or with line N for +N (+1: the whole
    /// file; 0: at the end).
    #[arg(
        short = 'n',
        long = "lines",
        value_name = "N|+N",
        default_value = "10",
        allow_hyphen_values = true
    )]
    lines: Start,
    /// The selection: -e, --file, --fixed-strings, -x, --drop, -i, -v, -w
    /// (shared with `copipe serve-log`).
    #[command(flatten)]
    select: SelectArgs,
    /// Print nothing; exit 0 at the first selected line (even after an
    /// error), 1 if none (grep -q).
    #[arg(short = 'q', long = "quiet", visible_alias = "silent")]
    quiet: bool,
    /// Print only the number of selected lines of each file (grep -c;
    /// `FILE:N` with several files).
    #[arg(short = 'c', long)]
    count: bool,
    /// Stop reading a file after NUM selected lines (grep -m); under -f
    /// that file is followed no further, and the run ends once every file
    /// reached NUM.
    #[arg(short = 'm', long, value_name = "NUM")]
    max_count: Option<u64>,
    /// Print only the matching parts of a line, each on its own line
    /// (grep -o).
    #[arg(short = 'o', long)]
    only_matching: bool,
    /// Print grep's `FILE:` before each line instead of tail's
    /// `==> FILE <==` headers (grep -H).
    #[arg(short = 'H', long)]
    with_filename: bool,
    /// Never print file names: neither `FILE:` nor tail's headers (grep -h).
    #[arg(long, conflicts_with = "with_filename")]
    no_filename: bool,
    /// Print the line's number in its file before it (grep -n's `N:`),
    /// also when -n N starts from the end and under -f.
    #[arg(long)]
    line_number: bool,
    /// Print NUM lines after each selected line (grep -A; `--` between
    /// groups).
    #[arg(short = 'A', long, value_name = "NUM")]
    after_context: Option<u64>,
    /// Print NUM lines before each selected line (grep -B).
    #[arg(short = 'B', long, value_name = "NUM")]
    before_context: Option<u64>,
    /// Print NUM lines before and after each selected line (grep -C).
    #[arg(short = 'C', long, value_name = "NUM")]
    context: Option<u64>,
    /// Color matches, file names, line numbers and separators as GNU grep
    /// does by default: always, never, or auto (stdout is a terminal and
    /// NO_COLOR is unset).
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "auto")]
    color: Option<ColorWhen>,
    /// One JSON object per output line (ripgrep's --json shape: type
    /// match/context, path, line_number, absolute_offset, the line as
    /// `text`, or base64 `bytes` when not UTF-8, and submatches).
    #[arg(long)]
    json: bool,
    /// Process a file containing NUL bytes as text (grep -a). Without it,
    /// when patterns select lines in a static file whose first block or a
    /// selected line holds a NUL byte, `copipe: FILE: binary file matches`
    /// (GNU grep 3.8's wording, on stderr) replaces the file's lines from
    /// there on. Following (-f/-F) never suppresses lines.
    #[arg(short = 'a', long)]
    text: bool,
    /// The longest line read, in bytes with its newline; a longer line is
    /// reported once (file and byte offset) and skipped, and every line
    /// after it is still read.
    #[arg(long, value_name = "BYTES", default_value_t = copipe::text::DEFAULT_MAX_LINE_LEN)]
    max_line_len: usize,
    /// The files to read; `-` or none is standard input (under -f/-F it is
    /// read to its end, as a pipe).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the output stage runs: `none` (inline) or `thread` (the
    /// printer and its writes on a thread of their own, behind a thread
    /// bridge). The output is the same.
    #[arg(long, value_enum, default_value_t = Bridge::None)]
    bridge: Bridge,
    /// With -F: keep how far each file was read in PATH (saved after each
    /// flush of stdout), and resume there on the next run, across
    /// rotation and truncation while copipe was down (the README's "Across
    /// machines" says what is and is not guaranteed).
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// With -F/-f: publish the selected lines to NATS JetStream at
    /// nats://[USER:PASS@]HOST:PORT/SUBJECT instead of printing them, each
    /// with the id FILE-ID:OFFSET (a repeat after a crash is dropped by the
    /// server); with --checkpoint, the checkpoint advances only after acks.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    #[cfg(feature = "nats")]
    #[command(flatten)]
    nats: super::consume::NatsArgs,
}

/// The end of `copipe tail --help`: the exit status and where the flags
/// differ from grep and tail.
const AFTER_HELP: &str = "\
EXIT STATUS:
  0  a line was selected (with -q: even if an error occurred)
  1  no line was selected
  2  an error occurred (a file that cannot be read, a skipped long line,
     a bad pattern, a write error)
  128+N  ended by signal N (SIGINT: 130, SIGTERM: 143)
  A follow that ends by itself (-f - at end of input, -q matched, -m
  reached in every file, stdout closed) exits by the same rule.

DIFFERENCES FROM GREP AND TAIL:
  -f, -F and -n keep tail's meaning, so grep's -f, -F and -n are the long
  options --file, --fixed-strings and --line-number, and grep's -h is
  --no-filename. -n picks input lines before matching (as tail | grep);
  -c, -m, context and --line-number apply to those lines, and line numbers
  are the file's own, also when -n N starts from the end. Several files get
  tail's ==> FILE <== headers unless -H (grep's FILE: prefix), -c or
  --no-filename is given. Patterns use the regex crate's syntax, matched on
  bytes (as LC_ALL=C grep); -o, --color and --json show grep's match (the
  leftmost, and there the longest, whatever the order of the patterns).
  -v inverts the selection and --drop removes lines whatever else matched.
  Binary files (patterns given, no -a): a NUL byte in a static file's first
  block (grep: first buffer) or in a selected line replaces its lines from
  there on with `copipe: FILE: binary file matches` (grep 3.8's wording);
  later NULs in unselected lines are not looked for. Following (-f/-F)
  never suppresses lines; plain tail (no pattern) prints every file.
  Under -f, -m stops following each file at NUM selected lines and ends the
  run once every file reached it; -c prints its counts when the follow
  ends; after-context does not carry over to lines of another file.
  Standard input (- or no FILE) is streamed line by line from line N on
  (-n +N); -n N waits for its end.
  A regular file of 4 MiB or more read with -n +N is mapped, not read (as
  ripgrep does): if it is truncated meanwhile, copipe dies of SIGBUS (exit
  135); use -f, or standard input, for a file that may be truncated.";

/// When --color colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorWhen {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where `copipe tail`'s output stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bridge {
    /// In line, on the reading thread.
    None,
    /// On its own thread, behind a thread bridge.
    Thread,
}

pub(crate) fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.files.is_empty() {
        args.files.push(PathBuf::from("-"));
    }
    #[cfg(feature = "nats")]
    let to = match &args.to {
        Some(url) => Some((
            copipe::bridge::nats::NatsUrl::parse(url)?,
            args.nats.config()?,
        )),
        None => None,
    };
    #[cfg(not(feature = "nats"))]
    let to: Option<()> = None;
    if super::durable::wanted(
        args.checkpoint.as_deref(),
        to.is_some(),
        &args.files,
        args.follow || args.follow_name,
    ) {
        if wants_rich(&args) {
            anyhow::bail!(
                "-w, -c, -m, -o, -H, --no-filename, --line-number, -A/-B/-C, --color and \
                 --json are not available with --checkpoint, --to or a glob"
            );
        }
        let patterns = args.select.all_patterns()?;
        return super::durable::run(super::durable::Opts {
            files: args.files,
            follow: args.follow,
            follow_name: args.follow_name,
            lines: args.lines,
            checkpoint: args.checkpoint,
            patterns,
            drop: args.select.drop,
            ignore_case: args.select.ignore_case,
            invert: args.select.invert_match,
            #[cfg(feature = "nats")]
            to,
        });
    }
    // SIGINT/SIGTERM set `stop` (which ends a follow's wait at once, or a
    // static scan at its next chunk) and record which signal it was.
    let stop = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)?;
    }
    let status = Rc::new(Status::default());
    if !args.follow && !args.follow_name {
        widen_stdout_pipe();
    }

    // The output stage: the printer, behind a bridge or not.
    let result = match args.bridge {
        Bridge::None => drive(&args, &stop, &status, Printer::new(io::stdout().lock())),
        Bridge::Thread => {
            // Lines are appended to one buffer per batch and lent to the
            // printer straight from it: no allocation per line and no
            // per-line slot to fill, which is why it beats `threaded_ref`'s
            // reused slots (`benches/bridges.rs`). Each `flush` (a following
            // source flushes before it waits) carries the partial batch,
            // so a live line is not held back.
            ThreadBridgeBuilder::new()
                .name("copipe-tail-out")
                .spawn_flat::<[u8], _>(Printer::new(io::stdout()))
                .map_err(anyhow::Error::from)
                .and_then(|out| drive(&args, &stop, &status, out))
        }
    };
    if let Err(e) = result {
        // A closed stdout ends the run quietly; the exit status follows
        // grep's rule on what was selected before.
        if !super::is_broken_pipe(&e) {
            status.error(&message_of(&e));
        }
    }
    if let sig @ 1.. = signal.load(Ordering::SeqCst) {
        return Ok(ExitCode::from(128 + sig as u8));
    }
    Ok(status.exit_code(args.quiet))
}

/// What the run selected and whether anything went wrong, for grep's exit
/// status.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) selected: Cell<u64>,
    failed: Cell<bool>,
}

impl Status {
    /// Reports one problem on stderr (`copipe: PATH: reason`) and marks the
    /// run as failed.
    fn error(&self, message: &str) {
        eprintln!("copipe: {message}");
        self.failed.set(true);
    }

    /// GNU grep's rule: with -q a selected line wins over an error; else an
    /// error gives 2, a selected line 0, nothing 1.
    fn exit_code(&self, quiet: bool) -> ExitCode {
        let selected = self.selected.get() > 0;
        if quiet && selected {
            ExitCode::SUCCESS
        } else if self.failed.get() {
            ExitCode::from(2)
        } else if selected {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// One line for an error: `PATH: reason` with the OS reason once, and
/// `write error: stdout: reason` for the output.
fn message_of(e: &anyhow::Error) -> String {
    if let Some(ce) = e.downcast_ref::<Error>() {
        return copipe_message(ce);
    }
    if let Some(io) = e.downcast_ref::<io::Error>() {
        return format!("write error: stdout: {}", os_reason(io));
    }
    format!("{e:#}")
}

/// [`message_of`] for a copipe error: an input error carries its path; an
/// I/O error without one comes from the output.
fn copipe_message(e: &Error) -> String {
    match (e.kind(), e.path()) {
        (ErrorKind::Io(io), Some(path)) => format!("{}: {}", path.display(), os_reason(io)),
        (ErrorKind::Io(io), None) => format!("write error: stdout: {}", os_reason(io)),
        _ => e.to_string(),
    }
}

/// The OS's reason without Rust's ` (os error N)` suffix, as grep and tail
/// print it.
pub(crate) fn os_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Builds the chain in front of `out` and runs the source into it.
fn drive<O>(args: &Args, stop: &Arc<AtomicBool>, status: &Rc<Status>, out: O) -> anyhow::Result<()>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let names: Vec<String> = args
        .files
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                STDIN_NAME.to_string()
            } else {
                p.display().to_string()
            }
        })
        .collect();
    let mut chain = chain(args, names, status, out)?;
    if args.follow || args.follow_name {
        follow(args, stop, status, &mut chain)
    } else {
        read(args, stop, status, &mut chain)
    }
}

/// The chain after the source.
type Chain<O> = Tag<Body<O>>;

/// What follows the source: the plain grep and printer, or, when a grep
/// output option is asked for, [`Rich`] (the plain path then does no
/// per-line work for options it does not use).
// One per run: keeping the plain stages inline (not boxed) saves an
// indirection on every block of the plain path.
#[allow(clippy::large_enum_variant)]
enum Body<O> {
    Plain(Plain<O, NoBinaryTest>),
    /// The same, testing selected lines for binary data.
    Checked(Plain<O, Rc<Binary>>),
    Rich(Box<Rich<O>>),
}

impl<O: for<'a> Stage<&'a [u8]>> Body<O> {
    /// Writes file `i`'s header (static tail), if headers are printed.
    fn announce(&mut self, i: usize) -> Result<Flow> {
        match self {
            Body::Plain(g) => g.get_mut().get_mut().target.announce(i),
            Body::Checked(g) => g.get_mut().get_mut().target.announce(i),
            Body::Rich(r) => r.announce(i),
        }
    }

    /// True when a `Stop` ends the whole run, not just one file (-m).
    fn is_finished(&self) -> bool {
        match self {
            Body::Plain(_) | Body::Checked(_) => true,
            Body::Rich(r) => r.is_finished(),
        }
    }
}

impl<'a, O: for<'b> Stage<&'b [u8]>> Stage<Block<'a>> for Body<O> {
    #[inline]
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        match self {
            Body::Plain(g) => g.send(block),
            Body::Checked(g) => g.send(block),
            Body::Rich(r) => r.send(block),
        }
    }
}

impl<O: for<'b> Stage<&'b [u8]>> Lifecycle for Body<O> {
    fn flush(&mut self) -> Result<()> {
        match self {
            Body::Plain(g) => g.flush(),
            Body::Checked(g) => g.flush(),
            Body::Rich(r) => r.flush(),
        }
    }
    fn close(&mut self) -> Result<()> {
        match self {
            Body::Plain(g) => g.close(),
            Body::Checked(g) => g.close(),
            Body::Rich(r) => r.close(),
        }
    }
}

/// True when an option only [`Rich`] implements is asked for.
fn wants_rich(args: &Args) -> bool {
    args.select.word_regexp
        || args.count
        || args.max_count.is_some()
        || args.only_matching
        || args.with_filename
        || args.no_filename
        || args.line_number
        || args.after_context.is_some()
        || args.before_context.is_some()
        || args.context.is_some()
        || use_color(args)
        || args.json
}

/// --color: always, or auto with stdout a terminal (not TERM=dumb) and
/// NO_COLOR unset. Colors are grep's defaults; GREP_COLORS is not read.
fn use_color(args: &Args) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match args.color {
        Some(ColorWhen::Always) => true,
        Some(ColorWhen::Auto) => {
            // As grep: a terminal that is not `dumb`.
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            !no_color && !dumb && io::IsTerminal::is_terminal(&io::stdout())
        }
        _ => false,
    }
}

/// Counts the selected lines for the exit status; with -q stops at the
/// first and prints nothing.
struct Selected<S, B> {
    status: Rc<Status>,
    quiet: bool,
    binary: B,
    target: S,
}

/// How [`Selected`] tests a line for binary data: not at all (the plain
/// path then pays nothing per line), or by grep's NUL rule ([`Binary`]).
trait BinaryTest {
    /// True when the selected `line` must not be printed; the message is
    /// then due.
    fn is_binary(&self, line: &[u8]) -> bool;
}

/// No binary detection.
struct NoBinaryTest;

impl BinaryTest for NoBinaryTest {
    #[inline]
    fn is_binary(&self, _: &[u8]) -> bool {
        false
    }
}

impl BinaryTest for Rc<Binary> {
    #[inline]
    fn is_binary(&self, line: &[u8]) -> bool {
        let binary = Binary::is_binary(self, line);
        if binary {
            self.hit.set(true);
        }
        binary
    }
}

/// grep's binary files, for a static tail without -a: from the first
/// block holding a NUL byte on, the file's lines are not printed; its
/// first selected line there ends the file with `copipe: FILE: binary
/// file matches` on stderr (GNU grep 3.8's wording). Following never
/// suppresses lines.
#[derive(Debug, Default)]
pub(crate) struct Binary {
    /// The current file is binary from here on.
    pub(crate) muted: Cell<bool>,
    /// A line was selected while muted: the message is due.
    pub(crate) hit: Cell<bool>,
    /// Detection is on (static tail with patterns, without -a).
    pub(crate) on: Cell<bool>,
}

impl Binary {
    /// True when the selected `line` is not to be printed: its file is
    /// binary (a NUL in its first block, or in this or an earlier selected
    /// line).
    #[inline]
    pub(crate) fn is_binary(&self, line: &[u8]) -> bool {
        if self.on.get() && !self.muted.get() && memchr::memchr(0, line).is_some() {
            self.muted.set(true);
        }
        self.muted.get()
    }
}

impl<'a, S: Stage<&'a [u8]>, B: BinaryTest> Stage<&'a [u8]> for Selected<S, B> {
    #[inline]
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        self.status.selected.set(self.status.selected.get() + 1);
        if self.quiet {
            return Ok(Flow::Stop);
        }
        if self.binary.is_binary(line) {
            return Ok(Flow::Stop);
        }
        self.target.send(line)
    }
}

impl<S: Lifecycle, B> Lifecycle for Selected<S, B> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// The one place the stages after the source are built.
fn chain<O>(args: &Args, names: Vec<String>, status: &Rc<Status>, out: O) -> Result<Chain<O>>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let binary = Rc::new(Binary::default());
    // Binary detection applies to a static tail that selects (patterns
    // given: without them it is tail, which prints any file), without -a.
    let selects = args.select.selects();
    binary
        .on
        .set(selects && !args.text && !args.follow && !args.follow_name);
    let detect = binary.on.get().then(|| BinaryCheck {
        names: names.clone(),
        current: None,
        state: Rc::clone(&binary),
    });
    if wants_rich(args) {
        let several = names.len() > 1;
        let opts = Opts {
            patterns: args.select.all_patterns()?,
            drop: args.select.drop.clone(),
            ignore_case: args.select.ignore_case,
            invert: args.select.invert_match,
            word: args.select.word_regexp,
            count: args.count,
            max: args.max_count,
            only: args.only_matching,
            with_name: args.with_filename || (several && args.count && !args.no_filename),
            headers: several
                && !args.with_filename
                && !args.no_filename
                && !args.count
                && !args.json,
            line_number: args.line_number,
            before: args.before_context.or(args.context).unwrap_or(0),
            after: args.after_context.or(args.context).unwrap_or(0),
            color: use_color(args),
            json: args.json,
            quiet: args.quiet,
            follow: args.follow || args.follow_name,
            start: args.lines,
        };
        let paths = args
            .files
            .iter()
            .map(|p| (p.as_os_str() != "-").then(|| p.clone()))
            .collect();
        return Ok(Tag {
            file: Rc::new(Cell::new(0)),
            stopped: false,
            binary: detect,
            target: Body::Rich(Box::new(Rich::new(
                opts, names, paths, status, &binary, out,
            )?)),
        });
    }
    let file = Rc::new(Cell::new(0));
    let headers = Headers {
        names,
        file: Rc::clone(&file),
        printed: None,
        target: out,
    };
    let target = if binary.on.get() {
        Body::Checked(plain(args, status, headers, Rc::clone(&binary))?)
    } else {
        Body::Plain(plain(args, status, headers, NoBinaryTest)?)
    };
    Ok(Tag {
        file,
        stopped: false,
        binary: detect,
        target,
    })
}

/// The plain chain: the selection, then --drop, then the headers.
type Plain<O, B> = Grep<Grep<Selected<Headers<O>, B>>>;

/// Builds the plain chain in front of `headers`.
fn plain<O, B>(
    args: &Args,
    status: &Rc<Status>,
    headers: Headers<O>,
    binary: B,
) -> Result<Plain<O, B>> {
    args.select.grep(
        args.select.all_patterns()?,
        Selected {
            status: Rc::clone(status),
            quiet: args.quiet,
            binary,
            target: headers,
        },
    )
}

/// Static tail: each file once, in order. A file that cannot be read is
/// reported (`copipe: PATH: reason`) and the others are still read; the
/// run then exits 2 (policy a).
fn read<O>(
    args: &Args,
    stop: &Arc<AtomicBool>,
    status: &Rc<Status>,
    chain: &mut Chain<O>,
) -> anyhow::Result<()>
where
    O: for<'a> Stage<&'a [u8]>,
{
    for (i, path) in args.files.iter().enumerate() {
        if stop.load(Ordering::SeqCst) || chain.stopped {
            break;
        }
        read_one(args, stop, status, chain, i, path)?;
    }
    chain.close()?;
    Ok(())
}

/// Reads file `i` into the chain. An error of the input is reported and
/// `Ok` returned; an error of the output is returned.
fn read_one<O>(
    args: &Args,
    stop: &Arc<AtomicBool>,
    status: &Rc<Status>,
    chain: &mut Chain<O>,
    i: usize,
    path: &Path,
) -> anyhow::Result<()>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let opened = if path.as_os_str() == "-" {
        Ok(Input::Stdin)
    } else {
        open_positioned(path, args.lines)
    };
    let input = match opened {
        Ok(input) => input,
        Err(e) => {
            chain.flush()?;
            status.error(&copipe_message(&e));
            return Ok(());
        }
    };
    chain.file.set(i);
    if args.files.len() > 1 && !args.quiet && chain.target.announce(i)?.is_stop() {
        chain.stopped = true;
        return Ok(());
    }
    let result = match input {
        Input::Stdin => read_stream(
            io::stdin().lock(),
            Path::new(STDIN_NAME),
            args,
            i,
            stop,
            status,
            chain,
        ),
        // A named pipe, a device or a /proc file cannot seek back: read it
        // forward (policy e).
        Input::Stream(file) => read_stream(file, path, args, i, stop, status, chain),
        Input::Seekable(lines) => {
            let lines = configure(lines, args, path, status)
                .file_index(i)
                .stop_flag(Arc::clone(stop));
            // A large static file from a line on (`-n +N`): mapped and
            // searched in place, its pages mapped ahead by a second thread
            // (see `mapped::map`). Followed files, the last lines (`-n N`: little
            // to read) and small files are read.
            let mapped =
                (!args.follow && !args.follow_name && matches!(args.lines, Start::From(_)))
                    .then(|| mapped::map(lines.get_ref()))
                    .flatten();
            match mapped {
                Some(data) => {
                    let done = AtomicBool::new(false);
                    std::thread::scope(|s| {
                        s.spawn(|| mapped::populate(&data, &done));
                        let r = lines.run_blocks_over(&data[..], KeepOpen::new(&mut *chain));
                        done.store(true, Ordering::Relaxed);
                        r
                    })
                }
                None => lines.run_blocks(KeepOpen::new(&mut *chain)),
            }
        }
    };
    let result = match result {
        // An error naming a path is the input's: report it, go on.
        Err(e) if e.path().is_some() && !e.is_broken_pipe() => {
            chain.flush()?;
            status.error(&copipe_message(&e));
            Ok(())
        }
        other => other,
    };
    result?;
    if let Body::Rich(r) = &mut chain.target {
        if !args.follow && !args.follow_name && r.end_file(i)?.is_stop() {
            chain.stopped = true;
        }
    }
    Ok(())
}

/// The line source's settings shared by every input: the line length
/// limit, and skipping (and reporting) a longer line (policy d).
fn configure<R: io::Read>(
    lines: Lines<R>,
    args: &Args,
    path: &Path,
    status: &Rc<Status>,
) -> Lines<R> {
    let status = Rc::clone(status);
    let name = path.display().to_string();
    lines
        .max_line_len(args.max_line_len)
        .skip_long_lines(move |offset, max| {
            status.error(&format!(
                "{name}: line at byte offset {offset} is longer than {max} bytes \
                 (--max-line-len): skipped"
            ));
        })
}

/// When stdout is a pipe, asks for a 1 MiB one (the default is 64 KiB;
/// 1 MiB is Linux's default limit for an unprivileged process), as the
/// process bridge does for its pipes: a static scan writes in bulk, and
/// with the larger pipe it waits for its reader far less often (one
/// literal on 1 GiB into a reading pipe: 0.39 s wall instead of 0.48 s,
/// the same CPU time). Failing is harmless: the pipe stays as it was.
fn widen_stdout_pipe() {
    // On anything but a pipe (a file, a terminal) the call fails: no check
    // is needed first.
    let _ = rustix::pipe::fcntl_setpipe_size(io::stdout(), 1 << 20);
}

/// An input, opened.
enum Input {
    /// Standard input.
    Stdin,
    /// A regular file, positioned at its start line.
    Seekable(Lines<File>),
    /// Anything that cannot seek back, read forward.
    Stream(File),
}

/// Opens `path`: a regular file positioned at `start`, or any other kind of
/// file (or a regular file that reports no size, as /proc files do), to be
/// read as a stream. A directory is an error.
fn open_positioned(path: &Path, start: Start) -> Result<Input> {
    let file = File::open(path).map_err(|e| Error::from(e).with_path(path))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::from(e).with_path(path))?;
    if meta.is_dir() {
        let e = io::Error::from_raw_os_error(libc::EISDIR);
        return Err(Error::from(e).with_path(path));
    }
    if meta.is_file() && meta.len() > 0 {
        Ok(Input::Seekable(
            Lines::new(file).with_path(path).start(start)?,
        ))
    } else {
        Ok(Input::Stream(file))
    }
}

/// Standard input or a pipe: read once, forward. From line N on (`-n +N`),
/// each line goes out as soon as it is read (the output is flushed when a
/// read comes back short); the last N lines are kept in a ring of N lines
/// and sent at the end, as tail does.
fn read_stream<R, O>(
    reader: R,
    name: &Path,
    args: &Args,
    i: usize,
    stop: &Arc<AtomicBool>,
    status: &Rc<Status>,
    chain: &mut Chain<O>,
) -> Result<()>
where
    R: io::Read,
    O: for<'a> Stage<&'a [u8]>,
{
    let lines = configure(Lines::new(reader), args, name, status)
        .with_path(name)
        .file_index(i)
        .stop_flag(Arc::clone(stop));
    match args.lines {
        Start::From(n) => lines
            .skip_lines(n.saturating_sub(1))
            .stream(true)
            .run_blocks(KeepOpen::new(&mut *chain))?,
        Start::Last(n) => {
            let mut last = LastLines::new(usize::try_from(n).unwrap_or(usize::MAX));
            lines.run(&mut last)?;
            if let (Body::Rich(r), Some((offset, _)), Some(number)) = (
                &mut chain.target,
                last.lines().next(),
                last.first_line_number(),
            ) {
                // True line numbers: the lines kept are the last ones read.
                r.set_next_line(i, offset, number);
            }
            for (offset, line) in last.lines() {
                if chain.send(Block::new(line, offset).with_file(i))?.is_stop() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Follow (-f / -F) until stopped. Standard input (`-`) is read to its
/// end first, as a pipe; the files are then followed.
fn follow<O>(
    args: &Args,
    stop: &Arc<AtomicBool>,
    status: &Rc<Status>,
    chain: &mut Chain<O>,
) -> anyhow::Result<()>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let mut files = Vec::new();
    for (i, path) in args.files.iter().enumerate() {
        if path.as_os_str() == "-" {
            read_one(args, stop, status, chain, i, path)?;
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() || chain.stopped || stop.load(Ordering::SeqCst) {
        chain.close()?;
        return Ok(());
    }
    let mode = if args.follow_name {
        FollowMode::Name
    } else {
        FollowMode::Descriptor
    };
    let mut follow = Follow::builder(&files)
        .start(args.lines)
        .mode(mode)
        .max_line_len(args.max_line_len)
        .watch_output(io::stdout().as_raw_fd())
        .build()?;
    let handle = follow.stop_handle();
    // The signals also set the follow's own flag: the signal interrupts its
    // wait (EINTR) and it sees the flag at once. A signal that came before
    // this point was recorded in `stop` only: pass it on.
    let flag = handle.flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    if stop.load(Ordering::SeqCst) {
        handle.stop();
    }
    if files.len() == args.files.len() {
        follow.run_blocks(&mut *chain)?;
    } else {
        // Blocks of the followed files are numbered from 0 among them;
        // headers name them among all the files.
        let map: Vec<usize> = (0..args.files.len())
            .filter(|&i| args.files[i].as_os_str() != "-")
            .collect();
        follow.run_blocks(Renumber {
            map,
            target: &mut *chain,
        })?;
    }
    // The core reported each path it could not follow (and each long line
    // it skipped) as a notice: grep's status 2.
    if follow.errors() > 0 {
        status.failed.set(true);
    }
    Ok(())
}

/// Maps the file index of a block from the followed files to all files.
struct Renumber<S> {
    map: Vec<usize>,
    target: S,
}

impl<'a, S: Stage<Block<'a>>> Stage<Block<'a>> for Renumber<S> {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        let i = self.map[block.file()];
        self.target.send(block.with_file(i))
    }
}

impl<S: Lifecycle> Lifecycle for Renumber<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// Notes which file each block comes from, for [`Headers`].
struct Tag<S> {
    file: Rc<Cell<usize>>,
    /// The chain answered `Stop` (stdout closed).
    stopped: bool,
    /// Binary file detection (static tail without -a).
    binary: Option<BinaryCheck>,
    target: S,
}

/// Looks for a NUL byte in each block of a file until one is found.
struct BinaryCheck {
    names: Vec<String>,
    current: Option<usize>,
    state: Rc<Binary>,
}

impl<'a, O: for<'b> Stage<&'b [u8]>> Stage<Block<'a>> for Tag<Body<O>> {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        self.file.set(block.file());
        if let Some(check) = &mut self.binary {
            // A file's first block is searched for a NUL byte (as grep
            // looks at its first buffer); later blocks are not, so the plain
            // path pays nothing per block: a selected line holding a NUL
            // switches the file to binary there (see `Selected`).
            if check.current != Some(block.file()) {
                check.current = Some(block.file());
                check
                    .state
                    .muted
                    .set(memchr::memchr(0, block.bytes()).is_some());
            }
        }
        let flow = self.target.send(block)?;
        if let Some(check) = &self.binary {
            if check.state.hit.replace(false) {
                // This file ends here; the others are still read.
                self.target.flush()?;
                eprintln!("copipe: {}: binary file matches", check.names[block.file()]);
                return Ok(Flow::Stop);
            }
        }
        self.stopped |= flow.is_stop() && self.target.is_finished();
        Ok(flow)
    }
}

impl<O: for<'b> Stage<&'b [u8]>> Lifecycle for Tag<Body<O>> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// Writes tail's `==> name <==` header before the first line of a file
/// other than the previous line's (only when there are several files).
struct Headers<S> {
    names: Vec<String>,
    file: Rc<Cell<usize>>,
    printed: Option<usize>,
    target: S,
}

impl<S: for<'a> Stage<&'a [u8]>> Headers<S> {
    /// Writes the header of file `i` now (a static tail names every file,
    /// even one with no lines).
    fn announce(&mut self, i: usize) -> Result<Flow> {
        if self.printed.is_some() && self.target.send(&b"\n"[..])?.is_stop() {
            return Ok(Flow::Stop);
        }
        self.printed = Some(i);
        let header = format!("==> {} <==\n", self.names[i]);
        self.target.send(header.as_bytes())
    }
}

impl<'a, S: for<'b> Stage<&'b [u8]>> Stage<&'a [u8]> for Headers<S> {
    #[inline]
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        let file = self.file.get();
        if self.names.len() > 1 && self.printed != Some(file) && self.announce(file)?.is_stop() {
            return Ok(Flow::Stop);
        }
        self.target.send(line)
    }
}

impl<S: Lifecycle> Lifecycle for Headers<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}
