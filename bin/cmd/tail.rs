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
use std::cell::Cell;
use std::collections::VecDeque;
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
use copipe::text::{Block, Follow, FollowMode, Grep, Lines, Start};
use copipe::{Error, Flow, Result, Stage};

/// Arguments of `copipe tail`.
#[derive(Debug, clap::Args)]
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
    /// Keep only the lines matching PATTERN (regex crate syntax, on the
    /// line without its newline). Repeat for several: a line matching any
    /// is kept. Without -e every line is kept.
    #[arg(short = 'e', long = "regexp", value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Ignore ASCII case in patterns.
    #[arg(short = 'i', long)]
    ignore_case: bool,
    /// Keep the lines matching no pattern.
    #[arg(short = 'v', long)]
    invert_match: bool,
    /// The files to read; `-` is standard input (not with -f/-F).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the output stage runs: `none` (inline) or `thread` (the
    /// printer and its writes on a thread of their own, behind a thread
    /// bridge). The output is the same.
    #[arg(long, value_enum, default_value_t = Bridge::None)]
    bridge: Bridge,
    /// With -F: keep how far each file was read in PATH (saved after each
    /// flush of stdout), and resume there on the next run, across
    /// rotation and truncation while copipe was down (see durable.rs).
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

/// Where `copipe tail`'s output stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bridge {
    /// In line, on the reading thread.
    None,
    /// On its own thread, behind a thread bridge.
    Thread,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
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
        return super::durable::run(super::durable::Opts {
            files: args.files,
            follow: args.follow,
            follow_name: args.follow_name,
            lines: args.lines,
            checkpoint: args.checkpoint,
            patterns: args.patterns,
            ignore_case: args.ignore_case,
            invert: args.invert_match,
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

    // The output stage: the printer, behind a bridge or not.
    let mut code = match args.bridge {
        Bridge::None => drive(&args, &stop, Printer::new(io::stdout().lock()))?,
        Bridge::Thread => {
            // Lines are appended to one buffer per batch and lent to the
            // printer straight from it (no allocation per line; 1.6x the
            // lines per second of reused slots, `spawn_ref`, on a 200 MB
            // scan where every line matched). Each `flush` (a following
            // source flushes before it waits) carries the partial batch,
            // so a live line is not held back.
            let out = ThreadBridgeBuilder::new()
                .name("copipe-tail-out")
                .spawn_flat::<[u8], _>(Printer::new(io::stdout()))?;
            drive(&args, &stop, out)?
        }
    };
    match signal.load(Ordering::SeqCst) {
        0 => {}
        sig => code = ExitCode::from(128 + sig as u8),
    }
    Ok(code)
}

/// Builds the chain in front of `out` and runs the source into it.
fn drive<O>(args: &Args, stop: &Arc<AtomicBool>, out: O) -> anyhow::Result<ExitCode>
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
    let mut chain = chain(args, names, out)?;
    if args.follow || args.follow_name {
        follow(args, stop, &mut chain)
    } else {
        read(args, stop, &mut chain)
    }
}

/// The one place the stages after the source are built.
fn chain<O>(args: &Args, names: Vec<String>, out: O) -> Result<Tag<Grep<Headers<O>>>>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let file = Rc::new(Cell::new(0));
    let headers = Headers {
        names,
        file: Rc::clone(&file),
        printed: None,
        target: out,
    };
    let grep = Grep::builder()
        .patterns(args.patterns.iter().cloned())
        .ignore_case(args.ignore_case)
        .invert(args.invert_match)
        .build(headers)?;
    Ok(Tag {
        file,
        stopped: false,
        target: grep,
    })
}

/// Static tail: each file once, in order.
fn read<O>(
    args: &Args,
    stop: &Arc<AtomicBool>,
    chain: &mut Tag<Grep<Headers<O>>>,
) -> anyhow::Result<ExitCode>
where
    O: for<'a> Stage<&'a [u8]>,
{
    let mut code = ExitCode::SUCCESS;
    for (i, path) in args.files.iter().enumerate() {
        if stop.load(Ordering::SeqCst) || chain.stopped {
            break;
        }
        if path.as_os_str() == "-" {
            chain.file.set(i);
            if args.files.len() > 1 && chain.target.get_mut().announce(i)?.is_stop() {
                break;
            }
            read_stream(
                io::stdin().lock(),
                Path::new(STDIN_NAME),
                args.lines,
                i,
                stop,
                chain,
            )?;
            continue;
        }
        let lines = match open_positioned(path, args.lines) {
            Ok(l) => l,
            Err(e) => {
                // Like tail: report the file, go on with the others, fail
                // at the end.
                chain.flush()?;
                eprintln!("copipe: {e}");
                code = ExitCode::from(2);
                continue;
            }
        };
        chain.file.set(i);
        if args.files.len() > 1 && chain.target.get_mut().announce(i)?.is_stop() {
            break;
        }
        let lines = match lines {
            Ok(lines) => lines,
            Err(pipe) => {
                // A named pipe or a device cannot seek: read it as a stream.
                read_stream(pipe, path, args.lines, i, stop, chain)?;
                continue;
            }
        };
        lines
            .file_index(i)
            .stop_flag(Arc::clone(stop))
            .run_blocks(KeepOpen(&mut *chain))?;
    }
    chain.close()?;
    Ok(code)
}

/// Opens `path`: a regular file positioned at `start`, or (`Err`) any other
/// kind of file, to be read as a stream.
fn open_positioned(path: &Path, start: Start) -> Result<std::result::Result<Lines<File>, File>> {
    let file = File::open(path).map_err(|e| Error::from(e).with_path(path))?;
    if file.metadata().is_ok_and(|m| m.is_file()) {
        Ok(Ok(Lines::new(file).with_path(path).start(start)?))
    } else {
        Ok(Err(file))
    }
}

/// Standard input (`-`) or a pipe: read once; its last N lines are kept in
/// memory (N lines at most), since a pipe cannot seek back.
fn read_stream<R, O>(
    reader: R,
    name: &Path,
    start: Start,
    i: usize,
    stop: &Arc<AtomicBool>,
    chain: &mut Tag<Grep<Headers<O>>>,
) -> anyhow::Result<()>
where
    R: io::Read,
    O: for<'a> Stage<&'a [u8]>,
{
    let lines = Lines::new(reader)
        .with_path(name)
        .file_index(i)
        .stop_flag(Arc::clone(stop));
    match start {
        Start::From(n) => lines
            .skip_lines(n.saturating_sub(1))
            .run_blocks(KeepOpen(&mut *chain))?,
        Start::Last(n) => {
            let mut last = LastLines {
                keep: usize::try_from(n).unwrap_or(usize::MAX),
                lines: VecDeque::new(),
            };
            lines.run(&mut last)?;
            for line in &last.lines {
                if chain.send(Block::new(line, 0).with_file(i))?.is_stop() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// How tail names standard input in headers and errors.
const STDIN_NAME: &str = "standard input";

/// Keeps the last `keep` lines, reusing their buffers.
struct LastLines {
    keep: usize,
    lines: VecDeque<Vec<u8>>,
}

impl<'a> Stage<&'a [u8]> for LastLines {
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        if self.keep == 0 {
            return Ok(Flow::Continue);
        }
        let mut buf = if self.lines.len() == self.keep {
            self.lines.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        buf.clear();
        buf.extend_from_slice(line);
        self.lines.push_back(buf);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for LastLines {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Follow (-f / -F) until stopped.
fn follow<O>(
    args: &Args,
    stop: &Arc<AtomicBool>,
    chain: &mut Tag<Grep<Headers<O>>>,
) -> anyhow::Result<ExitCode>
where
    O: for<'a> Stage<&'a [u8]>,
{
    if args.files.iter().any(|p| p.as_os_str() == "-") {
        anyhow::bail!("cannot follow standard input (`-`): give a file name");
    }
    let mode = if args.follow_name {
        FollowMode::Name
    } else {
        FollowMode::Descriptor
    };
    let mut follow = Follow::builder(&args.files)
        .start(args.lines)
        .mode(mode)
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
    follow.run_blocks(&mut *chain)?;
    // A path that could not be followed was reported: grep's status 2.
    Ok(ExitCode::from(if follow.errors() > 0 { 2 } else { 0 }))
}

/// Notes which file each block comes from, for [`Headers`].
struct Tag<S> {
    file: Rc<Cell<usize>>,
    /// The chain answered `Stop` (stdout closed).
    stopped: bool,
    target: S,
}

impl<'a, S: Stage<Block<'a>>> Stage<Block<'a>> for Tag<S> {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        self.file.set(block.file());
        let flow = self.target.send(block)?;
        self.stopped |= flow.is_stop();
        Ok(flow)
    }
}

impl<S: Lifecycle> Lifecycle for Tag<S> {
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

/// Passes everything on but turns `close` into `flush`: one chain serves
/// several files read one after the other, and is closed once at the end.
struct KeepOpen<S>(S);

impl<T, S: Stage<T>> Stage<T> for KeepOpen<S> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        self.0.send(item)
    }
}

impl<S: Lifecycle> Lifecycle for KeepOpen<S> {
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.0.flush()
    }
}
