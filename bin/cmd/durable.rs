//! `copipe tail -F FILE... --checkpoint PATH`, and globs (`-F 'dir/*.log'`):
//! the checkpointed follow on stdout.
//!
//! ```text
//! Follow (checkpoint) ──LineAt──▶ Select (-e/-i/-v) ──▶ Stdout
//! ```
//!
//! Every line read is passed on as a [`LineAt`]; the selection only decides
//! what is printed. `Stdout` writes and flushes on each `flush` of the
//! follow (before it waits) and returns an error if the write failed, so the
//! checkpoint, saved only after a flush that returned `Ok`, never counts a
//! line stdout did not take. The integrator swaps `Stdout` for another
//! `Stage<LineAt>` (a broker publisher whose `flush` returns once every
//! publish is acknowledged) and the guarantee carries over.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use copipe::text::{Follow, FollowMode, Grep, LineAt, Start};
use copipe::{Error, Flow, Lifecycle, Result, Stage};

/// What `copipe tail` hands over for a checkpointed or glob follow.
#[derive(Debug)]
pub(crate) struct Opts {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) follow: bool,
    pub(crate) follow_name: bool,
    pub(crate) lines: Start,
    pub(crate) checkpoint: Option<PathBuf>,
    /// The selection's patterns, as `copipe tail` built them (--file,
    /// --fixed-strings and -x applied).
    pub(crate) patterns: Vec<String>,
    /// `--drop`: a line matching any of these is never passed on.
    pub(crate) drop: Vec<String>,
    pub(crate) ignore_case: bool,
    pub(crate) invert: bool,
    /// `--to nats://HOST:PORT/SUBJECT`: publish the selected lines to
    /// JetStream instead of printing them; the checkpoint then advances
    /// only after the server acknowledged them.
    #[cfg(feature = "nats")]
    pub(crate) to: Option<(
        copipe::bridge::nats::NatsUrl,
        copipe::bridge::nats::NatsConfig,
    )>,
}

/// True when `copipe tail` must run here: a checkpoint was asked for, or
/// a file name holds a glob (only with -f/-F: a static tail leaves globs
/// to the shell).
pub(crate) fn wanted(checkpoint: Option<&Path>, to: bool, files: &[PathBuf], follow: bool) -> bool {
    checkpoint.is_some() || to || (follow && files.iter().any(|p| is_glob(p)))
}

/// A file name with glob characters (`*`, `?`, `[`, `{`): followed as a
/// pattern, so files that appear later and match are followed too.
fn is_glob(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| s.contains(['*', '?', '[', '{']))
}

/// True when `-n`/`--lines` was given on the command line: without it a
/// file seen for the first time with a checkpoint is read from its start
/// (the default of ten lines would skip the rest of a file never shipped).
fn lines_given() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a.starts_with("-n") || a.starts_with("--lines")
    })
}

pub(crate) fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    if !opts.follow && !opts.follow_name {
        anyhow::bail!(
            "--checkpoint and --to need -F (or -f): they follow files and record how far each was read"
        );
    }
    if opts.files.iter().any(|p| p.as_os_str() == "-") {
        anyhow::bail!("cannot follow standard input (`-`) with a checkpoint: give a file name");
    }
    let mode = if opts.follow_name {
        FollowMode::Name
    } else {
        FollowMode::Descriptor
    };
    let mut builder = Follow::builder(&opts.files)
        .mode(mode)
        .watch_output(io::stdout().as_raw_fd());
    if let Some(ck) = &opts.checkpoint {
        builder = builder.checkpoint(ck);
    }
    if opts.checkpoint.is_none() || lines_given() {
        builder = builder.start(opts.lines);
    }
    let mut follow = builder.build()?;
    let handle = follow.stop_handle();
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, handle.flag())?;
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)?;
    }
    let several = opts.files.len() > 1 || opts.files.iter().any(|p| is_glob(p));
    let select = if opts.patterns.is_empty() && opts.drop.is_empty() && !opts.invert {
        None
    } else {
        let drop = Grep::builder()
            .patterns(opts.drop.iter().cloned())
            .ignore_case(opts.ignore_case)
            .invert(!opts.drop.is_empty())
            .build(Matched::default())?;
        Some(
            Grep::builder()
                .patterns(opts.patterns.iter().cloned())
                .ignore_case(opts.ignore_case)
                .invert(opts.invert)
                .build(drop)?,
        )
    };
    #[cfg(feature = "nats")]
    if let Some((url, config)) = &opts.to {
        let publisher = copipe::bridge::nats::Publisher::connect(url, config)?;
        let mut out = Select {
            select,
            inner: publisher,
        };
        let result = follow.run_at(&mut out);
        let stats = out.inner.stats();
        eprintln!(
            "copipe: {} lines acked by stream {} ({} already in the stream)",
            stats.acked,
            out.inner.stream(),
            stats.duplicates
        );
        result?;
        return Ok(exit_code(&follow, &signal));
    }
    let out = Select {
        select,
        inner: Stdout {
            buf: Vec::new(),
            headers: several,
            last: None,
        },
    };
    // The one place the sink is chosen: any `Stage<LineAt>` whose `flush`
    // returns once its lines are taken (a broker publisher) fits here.
    match follow.run_at(out) {
        Ok(()) => {}
        // stdout went away: the lines it did not take are not checkpointed.
        Err(e) if e.is_broken_pipe() => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    }
    Ok(exit_code(&follow, &signal))
}

/// grep's rule: 2 when a path or a line was reported, 128+N on signal N.
fn exit_code(follow: &Follow, signal: &AtomicUsize) -> ExitCode {
    match signal.load(Ordering::SeqCst) {
        0 if follow.errors() > 0 => ExitCode::from(2),
        0 => ExitCode::SUCCESS,
        sig => ExitCode::from(128 + sig as u8),
    }
}

/// Passes on the lines the patterns select (all of them without `-e`).
struct Select<S> {
    select: Option<Grep<Grep<Matched>>>,
    inner: S,
}

impl<'a, S: Stage<LineAt<'a>>> Stage<LineAt<'a>> for Select<S> {
    fn send(&mut self, line: LineAt<'a>) -> Result<Flow> {
        if let Some(grep) = &mut self.select {
            grep.get_mut().get_mut().0 = false;
            let _ = grep.send(line.bytes)?;
            if !grep.get_mut().get_mut().0 {
                return Ok(Flow::Continue);
            }
        }
        self.inner.send(line)
    }
}

impl<S: Lifecycle> Lifecycle for Select<S> {
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}

/// Notes whether the line the [`Grep`] was given passed.
#[derive(Debug, Default)]
struct Matched(bool);

impl<'a> Stage<&'a [u8]> for Matched {
    fn send(&mut self, _line: &'a [u8]) -> Result<Flow> {
        self.0 = true;
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Matched {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Prints the selected lines (with `==> path <==` headers when several
/// files are followed); writes and flushes stdout on `flush`, and fails if
/// stdout did not take everything, so no line is checkpointed unwritten.
struct Stdout {
    buf: Vec<u8>,
    headers: bool,
    /// The path of the last line printed (a truncated file keeps its
    /// name, under a new id: no new header).
    last: Option<PathBuf>,
}

impl Stdout {
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|()| out.flush())
            .map_err(|e| {
                let kind = e.kind();
                let msg = format!("write error: stdout: {}", super::tail::os_reason(&e));
                if kind == io::ErrorKind::BrokenPipe {
                    Error::from(e)
                } else {
                    Error::from(io::Error::new(kind, msg))
                }
            })?;
        self.buf.clear();
        Ok(())
    }
}

impl<'a> Stage<LineAt<'a>> for Stdout {
    fn send(&mut self, line: LineAt<'a>) -> Result<Flow> {
        if self.headers && self.last.as_deref() != Some(line.file.path.as_path()) {
            if self.last.is_some() {
                self.buf.push(b'\n');
            }
            self.buf
                .extend_from_slice(format!("==> {} <==\n", line.file.path.display()).as_bytes());
            self.last = Some(line.file.path.clone());
        }
        self.buf.extend_from_slice(line.bytes);
        if line.bytes.last() != Some(&b'\n') {
            self.buf.push(b'\n');
        }
        if self.buf.len() >= 256 * 1024 {
            self.write_out()?;
        }
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Stdout {
    fn flush(&mut self) -> Result<()> {
        self.write_out()
    }
    fn close(&mut self) -> Result<()> {
        self.write_out()
    }
}
