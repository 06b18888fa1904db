//! [`subprocess`]: run the downstream stages in a child process, fed wire
//! frames on its stdin (the seed's coprocess + busproc).
//!
//! The child is by default the copipe binary itself, run as
//! `copipe worker <PIPELINE> [ARGS]`: a hidden subcommand that reads frames
//! from stdin with [`recvfrom`](super::recvfrom) into the named stages (or,
//! for records, flat frames with [`recvfrom_flat`](super::recvfrom_flat),
//! fed by a bridge from [`subprocess_flat`]).
//! Any program that reads a wire stream on stdin will do
//! ([`ProcessBridge::spawn`]).
//!
//! Failure travels upstream, never as a hang or as silently short output:
//!
//! - A write to a child that has died fails (`EPIPE`; the copipe binary and
//!   the test harness ignore `SIGPIPE`). The bridge then waits for the child
//!   and returns its exit status as the error. A child that exited with
//!   status 0 before reading everything wanted no more (its output was
//!   closed, a `take` was satisfied): that is a `Stop`, not an error.
//! - Each time the buffer is written out, the bridge also checks (without
//!   waiting) whether the child has ended, so a child that dies early is
//!   noticed within one 64 KiB buffer even if its pipe never fills.
//! - `close` writes what is buffered, closes the child's stdin (its end of
//!   stream), waits for it and turns a non-zero exit into the error.
//! - The child's stderr passes through to ours, so its own message (such
//!   as a decode error with its byte offset) is printed as it happens.
//! - If the parent dies, the child's stdin reaches EOF and the child ends.

use crate::Lifecycle;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use serde::Serialize;

use super::flat::Flat;
use super::wire::FrameWriter;
use crate::error::{Error, ErrorKind, Result};
use crate::stage::{Flow, Stage};

/// A [`Stage`] that sends each item as a frame to a child process. Made by
/// [`subprocess`] or [`ProcessBridge::spawn`].
///
/// Errors: the child's death or non-zero exit is an [`ErrorKind::Process`]
/// error naming the command and its exit status or signal, returned once,
/// from the `send`, `flush` or `close` that found it; later calls return
/// `Stop`. Dropping the bridge without `close` abandons the stream: the
/// child is killed and reaped.
///
/// # Examples
///
/// Any program that reads a wire stream on stdin can be the child; here
/// `cat` copies the stream into a file, which [`recvfrom`](super::recvfrom)
/// reads back:
///
/// ```
/// use std::process::Command;
/// use copipe::{recvfrom, ProcessBridge, Stage, sinks::Collect};
///
/// let file = tempfile::NamedTempFile::new()?;
/// let mut cat = Command::new("cat");
/// cat.stdout(file.reopen()?);
/// let mut bridge = ProcessBridge::spawn(cat)?;
/// for i in 0..3u64 {
///     bridge.send(i)?;
/// }
/// bridge.close()?; // waits for `cat` to finish
///
/// let mut out = Collect::<u64>::new();
/// recvfrom(std::fs::File::open(file.path())?, &mut out)?;
/// assert_eq!(out.items(), [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Two kinds of frames: `ProcessBridge<SerdeFrames>` (the default, from [`subprocess`]
/// and [`ProcessBridge::spawn`]) sends any `serde::Serialize` item as a
/// bincode frame of its own; `ProcessBridge<FlatFrames<B>>` (from
/// [`subprocess_flat`] and [`ProcessBridge::spawn_flat`]) takes `&B` for
/// a [`Flat`] type `B` and sends flat frames of many items, which the child
/// reads with [`recvfrom_flat`](super::recvfrom_flat).
pub struct ProcessBridge<M: Frames = SerdeFrames> {
    child: Child,
    /// `None` once stdin is closed (by `close`, or after a failure).
    frames: Option<FrameWriter<ChildStdin>>,
    /// The command line, for messages.
    command: String,
    /// How the child ended, once known: `Continue` after a clean close,
    /// `Stop` after it stopped early or its failure was returned.
    done: Option<Flow>,
    /// The producer's memory between the items of a flat frame.
    memo: M::Memo,
}

impl<M: Frames> fmt::Debug for ProcessBridge<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBridge")
            .field("command", &self.command)
            .field("pid", &self.child.id())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Starts `cmd` with its stdin connected to the bridge, and returns the
/// bridge that feeds it one bincode frame per item: the downstream stages
/// run in the child, which reads the frames with
/// [`recvfrom`](super::recvfrom). Same as [`ProcessBridge::spawn`].
///
/// The library does not know which program that is: a program of your
/// own (the crate's `examples/wire_worker.rs` is a small one), or the
/// copipe binary's hidden `copipe worker buses` subcommand.
///
/// # Errors
///
/// An I/O error if the program cannot be started, naming it.
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use copipe::{subprocess, Lifecycle, Stage};
///
/// // A program that reads u64 frames with `recvfrom`.
/// let mut cmd = Command::new("wire_worker");
/// cmd.arg("seq");
/// let mut child = subprocess(cmd)?;
/// for i in 0..3u64 {
///     child.send(i)?;
/// }
/// child.close()?; // waits for the child; its failure is our error
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn subprocess(cmd: Command) -> Result<ProcessBridge> {
    ProcessBridge::spawn(cmd)
}

/// [`subprocess`] for items of a [`Flat`] type: the bridge feeds `cmd`
/// flat frames of `&B` items, many to a frame
/// ([`FrameWriter::write_flat`]), which the child reads with
/// [`recvfrom_flat`](super::recvfrom_flat) (`copipe worker buses` does, for
/// [`Record`](crate::xml::Record)s). Same as [`ProcessBridge::spawn_flat`].
///
/// # Errors
///
/// An I/O error if the program cannot be started, naming it.
pub fn subprocess_flat<B: Flat + ?Sized>(cmd: Command) -> Result<ProcessBridge<FlatFrames<B>>> {
    ProcessBridge::spawn_flat(cmd)
}

/// Deprecated: the library no longer assumes it runs inside the copipe
/// binary. Build the `Command` (`copipe worker ARGS...`) and call
/// [`subprocess`].
///
/// # Errors
///
/// An I/O error if the executable cannot be found or started.
#[deprecated(
    since = "0.2.0",
    note = "build the Command yourself (`copipe worker ARGS...`) and call `subprocess(cmd)`"
)]
pub fn subprocess_worker<I, S>(worker_args: I) -> Result<ProcessBridge>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("worker").args(worker_args);
    ProcessBridge::spawn(cmd)
}

/// What a [`ProcessBridge`] writes to its child: [`SerdeFrames`] or
/// [`FlatFrames`]. Sealed.
pub trait Frames: frames::FrameKind {}

mod frames {
    /// The private side of a frame kind.
    pub trait FrameKind {
        /// What the writer remembers between the items of a frame.
        type Memo: Default;
    }
}

/// Frames of a [`ProcessBridge`] made by [`subprocess`] /
/// [`ProcessBridge::spawn`]: each `serde::Serialize` item is a bincode
/// frame of its own, read by [`recvfrom`](super::recvfrom).
#[derive(Debug)]
pub enum SerdeFrames {}

impl Frames for SerdeFrames {}
impl frames::FrameKind for SerdeFrames {
    type Memo = ();
}

/// Frames of a [`ProcessBridge`] made by [`subprocess_flat`] /
/// [`ProcessBridge::spawn_flat`]: many `&B` items of a [`Flat`] type to a
/// frame, read by [`recvfrom_flat`](super::recvfrom_flat).
pub struct FlatFrames<B: ?Sized> {
    _never: std::convert::Infallible,
    _b: std::marker::PhantomData<fn(&B)>,
}

impl<B: ?Sized> fmt::Debug for FlatFrames<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlatFrames")
    }
}

impl<B: Flat + ?Sized> Frames for FlatFrames<B> {}
impl<B: Flat + ?Sized> frames::FrameKind for FlatFrames<B> {
    type Memo = B::Memo;
}

/// The size asked for the pipe to the child: 1 MiB, Linux's default
/// `/proc/sys/fs/pipe-max-size` (the most an unprivileged process gets).
const PIPE_SIZE: usize = 1 << 20;

impl ProcessBridge {
    /// Starts `cmd` with its stdin connected to the bridge; its stdout and
    /// stderr are as `cmd` says (inherited unless set). A child whose
    /// stdout is a pipe must have that pipe read by another thread while
    /// the bridge writes, or both processes wait on full pipes.
    ///
    /// # Errors
    ///
    /// An I/O error if the program cannot be started, naming it.
    pub fn spawn(cmd: Command) -> Result<ProcessBridge> {
        ProcessBridge::start(cmd)
    }
}

impl<B: Flat + ?Sized> ProcessBridge<FlatFrames<B>> {
    /// [`ProcessBridge::spawn`] for items of a [`Flat`] type, sent in flat
    /// frames (see [`subprocess_flat`]).
    ///
    /// # Errors
    ///
    /// An I/O error if the program cannot be started, naming it.
    pub fn spawn_flat(cmd: Command) -> Result<ProcessBridge<FlatFrames<B>>> {
        ProcessBridge::start(cmd)
    }
}

impl<M: Frames> ProcessBridge<M> {
    fn start(mut cmd: Command) -> Result<ProcessBridge<M>> {
        let command = describe(&cmd);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(ErrorKind::Process(format!("cannot start `{command}`: {e}")))
        })?;
        let Some(stdin) = child.stdin.take() else {
            unreachable!("stdin was set to a pipe just above");
        };
        // A bigger pipe lets the parent run further ahead of the child, so
        // each side blocks (and wakes the other) every few thousand
        // records instead of every few hundred. Best effort: a system that
        // refuses the size keeps the default 64 KiB, which works the same.
        let _ = rustix::pipe::fcntl_setpipe_size(&stdin, PIPE_SIZE);
        Ok(ProcessBridge {
            child,
            frames: Some(FrameWriter::new(stdin)),
            command,
            done: None,
            memo: M::Memo::default(),
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's command line, as used in messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Writes the buffered frames to the child (the same as its
    /// [`Lifecycle::flush`](crate::Lifecycle::flush)).
    ///
    /// # Errors
    ///
    /// The child's failure.
    pub fn flush(&mut self) -> Result<()> {
        if self.done.is_some() {
            return Ok(());
        }
        let Some(frames) = &mut self.frames else {
            return Ok(());
        };
        let res = frames.flush();
        self.after_write(res, true).map(|_| ())
    }

    /// Writes what is buffered, closes the child's stdin and waits for the
    /// child to finish (the same as its
    /// [`Lifecycle::close`](crate::Lifecycle::close)).
    ///
    /// # Errors
    ///
    /// The child's non-zero exit or death, naming the status or signal.
    pub fn close(&mut self) -> Result<()> {
        if self.done.is_some() {
            return Ok(());
        }
        let write_error = match self.frames.as_mut().map(FrameWriter::flush) {
            Some(Err(e)) => match e.into_kind() {
                ErrorKind::Io(io) => Some(io),
                other => return Err(Error::new(other)),
            },
            _ => None,
        };
        let res = self.finish(write_error).map(|_| ());
        self.done = Some(Flow::Continue);
        res
    }

    /// The stream is over for the child (its stdin is closed) or it has
    /// ended: wait for it and turn its status into what upstream sees.
    fn finish(&mut self, write_error: Option<io::Error>) -> Result<Flow> {
        self.frames = None; // EOF on the child's stdin
        let status = self.child.wait().map_err(|e| {
            Error::new(ErrorKind::Process(format!(
                "cannot wait for `{}`: {e}",
                self.command
            )))
        })?;
        if status.success() {
            // A child that ended cleanly before reading everything wanted no
            // more: the same as a `Stop` from inline stages.
            let flow = if write_error.is_some() {
                Flow::Stop
            } else {
                Flow::Continue
            };
            self.done = Some(Flow::Stop);
            return Ok(flow);
        }
        self.done = Some(Flow::Stop);
        Err(Error::new(ErrorKind::Process(format!(
            "`{}` {}",
            self.command,
            explain(status)
        ))))
    }

    /// After a write: if it failed on the pipe, or the buffer went out and
    /// the child has ended meanwhile, finish.
    fn after_write(&mut self, res: Result<()>, wrote_out: bool) -> Result<Flow> {
        match res {
            Ok(()) => {
                if wrote_out {
                    // A cheap `waitpid(WNOHANG)`, once per buffer.
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return self.finish(Some(io::ErrorKind::BrokenPipe.into()));
                    }
                }
                Ok(Flow::Continue)
            }
            Err(e) => match e.into_kind() {
                ErrorKind::Io(io) => self.finish(Some(io)),
                other => Err(Error::new(other)),
            },
        }
    }
}

impl<T: Serialize> Stage<T> for ProcessBridge<SerdeFrames> {
    /// Encodes the item into the buffer; writes it to the child when full.
    ///
    /// # Errors
    ///
    /// The child's failure ([`ErrorKind::Process`], naming its exit status
    /// or signal), or an item that does not encode.
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.done.is_some() {
            return Ok(Flow::Stop);
        }
        let Some(frames) = &mut self.frames else {
            return Ok(Flow::Stop);
        };
        let before = frames.buffered();
        let res = frames.write(&item);
        let wrote_out = frames.buffered() < before;
        if res.is_ok() && !wrote_out {
            return Ok(Flow::Continue);
        }
        self.after_write(res, wrote_out)
    }
}

impl<'a, B: Flat + ?Sized> Stage<&'a B> for ProcessBridge<FlatFrames<B>> {
    /// Appends the item's flat form to the open frame in the buffer;
    /// writes the buffer to the child when full.
    ///
    /// # Errors
    ///
    /// The child's failure ([`ErrorKind::Process`], naming its exit status
    /// or signal), or an item over the maximum frame size.
    #[inline]
    fn send(&mut self, item: &'a B) -> Result<Flow> {
        if self.done.is_some() {
            return Ok(Flow::Stop);
        }
        let Some(frames) = &mut self.frames else {
            return Ok(Flow::Stop);
        };
        let before = frames.buffered();
        let res = frames.write_flat(item, &mut self.memo);
        let wrote_out = frames.buffered() < before;
        if res.is_ok() && !wrote_out {
            return Ok(Flow::Continue);
        }
        self.after_write(res, wrote_out)
    }
}

impl<M: Frames> Lifecycle for ProcessBridge<M> {
    fn flush(&mut self) -> Result<()> {
        ProcessBridge::flush(self)
    }
    fn close(&mut self) -> Result<()> {
        ProcessBridge::close(self)
    }
}

impl<M: Frames> Drop for ProcessBridge<M> {
    fn drop(&mut self) {
        if self.done.is_some() {
            return;
        }
        // Abandoned without close: the stream is not complete, so the child
        // must not treat it as complete. End it and reap it.
        self.frames = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prog arg arg` for messages: the program's file name and its arguments.
fn describe(cmd: &Command) -> String {
    let prog = std::path::Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    let mut s = prog;
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// "exited with status 2", "was killed by signal 9 (SIGKILL)".
fn explain(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    if let Some(sig) = status.signal() {
        let name = match sig {
            1 => " (SIGHUP)",
            2 => " (SIGINT)",
            6 => " (SIGABRT)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            13 => " (SIGPIPE)",
            15 => " (SIGTERM)",
            _ => "",
        };
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        return format!("was killed by signal {sig}{name}{core}");
    }
    format!("ended with {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_fails_at_once_is_an_error_naming_its_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let mut b = ProcessBridge::spawn(cmd).unwrap();
        let pid = b.id();
        let mut err = None;
        // The pipe accepts up to its capacity before the child is noticed;
        // the buffer check or EPIPE must report it well before a million.
        for i in 0..1_000_000u64 {
            match b.send(i) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => panic!("a failed child is not a stop"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.unwrap_or_else(|| b.close().unwrap_err());
        assert_eq!(
            err.to_string(),
            "child process: `sh -c exit 3` exited with status 3"
        );
        assert_eq!(b.send(1u64).unwrap(), Flow::Stop);
        b.close().unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_child_that_exits_cleanly_early_is_a_stop() {
        let mut cmd = Command::new("true");
        cmd.stdout(Stdio::null());
        let mut b = ProcessBridge::spawn(cmd).unwrap();
        let mut stopped = false;
        for i in 0..1_000_000u64 {
            if b.send(i).unwrap().is_stop() {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        b.close().unwrap();
    }

    #[test]
    fn a_missing_program_is_named() {
        let e = ProcessBridge::spawn(Command::new("/nonexistent/copipe-worker")).unwrap_err();
        assert!(
            e.to_string().contains("cannot start `copipe-worker`"),
            "{e}"
        );
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(
            explain(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            explain(ExitStatus::from_raw(2 << 8)),
            "exited with status 2"
        );
    }
}
