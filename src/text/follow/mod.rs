//! [`Follow`]: `tail -f` / `tail -F` done right.
//!
//! - `core.rs`: the non-blocking follow core (identity, partial lines,
//!   truncation, rotation, missing and bad paths, long lines, globs), which
//!   both this blocking driver and [`sched::follow`](crate::sched::follow)
//!   drive, so both give the same guarantees
//! - `mod.rs` (this file): [`Follow`], the blocking driver: one loop steps
//!   the core, calls `flush` on its target and waits, for inotify events
//!   when it can, polling when it cannot. A [`StopHandle`] (or a signal, see
//!   [`StopHandle::flag`]) ends the wait at once. With a checkpoint
//!   ([`FollowBuilder::checkpoint`]) it is the checkpointed follow:
//!   [`Follow::run_at`] pushes [`LineAt`]s and saves, after each accepted
//!   flush, how far each file was read.

mod core;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use self::core::{Config, Core, Fail, Tag};
use super::block::{Block, SplitLines};
use super::checkpoint::Registry;
use super::lines::Start;
use super::position::{LineAt, SourceFile};
use super::DEFAULT_MAX_LINE_LEN;
use crate::error::{Error, Result};
use crate::stage::{end_source, Flow, Lifecycle, SourceEnd, Stage};

pub(crate) use self::core::{Config as CoreConfig, Core as FollowCore, Fail as CoreFail};

const WAKER: Token = Token(0);
const INOTIFY: Token = Token(1);
const OUTPUT: Token = Token(2);

/// How a followed file is identified from one wait to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FollowMode {
    /// `tail -f`: follow the open file, wherever it is renamed to. A file
    /// that cannot be opened at the start, or read later, is reported and
    /// given up; the others keep being followed.
    #[default]
    Descriptor,
    /// `tail -F`: follow the *name*. When the name points to a new file
    /// (rotation), the old file is read to its end first and kept open a
    /// while for lines written to it late; a missing or unreadable file (a
    /// directory, no permission, no descriptor left) is retried and
    /// followed once it is a readable regular file again.
    Name,
}

/// What happened to a followed file, reported through
/// [`FollowBuilder::on_notice`] (by default printed on stderr as
/// `copipe: <notice>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoticeKind {
    /// The file shrank below the reading position (`copytruncate`): reading
    /// restarts at its beginning.
    Truncated,
    /// The name now points to another file (rotation): the old one was read
    /// to its end and the new one is read from its start.
    Replaced,
    /// A file that could not be followed (`-F`) now can, and is read from
    /// its start.
    Appeared,
    /// The file cannot be followed: the [`reason`](Notice::reason) says why,
    /// with the OS's reason (`No such file or directory`, `Is a
    /// directory`, `Permission denied`, `Too many open files`). Said once
    /// per change of reason; `-F` keeps retrying, `-f` gives the file up.
    Unreadable,
    /// The name went away; the open file is still read until a new file
    /// appears under the name.
    Gone,
    /// A line longer than the maximum was skipped; the reason names its
    /// byte offset ([`Notice::byte_offset`]). The lines after it are read.
    LongLine,
    /// What the checkpoint found at start-up (a file truncated or rotated
    /// while copipe was down, a file it could not find): the reason says it.
    Checkpoint,
}

/// A notice about one followed file: what happened and to which path.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    kind: NoticeKind,
    path: &'a Path,
    reason: Option<&'a str>,
    byte_offset: Option<u64>,
}

impl<'a> Notice<'a> {
    /// What happened.
    pub fn kind(&self) -> NoticeKind {
        self.kind
    }

    /// The file it happened to, as given.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// Why, for the kinds that carry a reason: the OS's reason, once, for
    /// [`NoticeKind::Unreadable`] (`Permission denied`); the message for
    /// [`NoticeKind::LongLine`] and [`NoticeKind::Checkpoint`].
    pub fn reason(&self) -> Option<&'a str> {
        self.reason
    }

    /// The byte offset it is about ([`NoticeKind::LongLine`]: the skipped
    /// line's first byte).
    pub fn byte_offset(&self) -> Option<u64> {
        self.byte_offset
    }
}

impl fmt::Display for Notice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        let d = self.reason.unwrap_or("");
        match self.kind {
            NoticeKind::Truncated => write!(f, "{p}: file truncated"),
            NoticeKind::Replaced => write!(f, "'{p}' has been replaced; following new file"),
            NoticeKind::Appeared => write!(f, "'{p}' has appeared; following new file"),
            NoticeKind::Unreadable | NoticeKind::LongLine => write!(f, "{p}: {d}"),
            NoticeKind::Gone => write!(f, "'{p}' has become inaccessible; still reading it"),
            NoticeKind::Checkpoint => write!(f, "{d}"),
        }
    }
}

type NoticeFn = Box<dyn FnMut(Notice<'_>) + Send>;

/// Stops a running [`Follow`] from another thread or a signal handler.
///
/// `stop` sets the flag and wakes the follow's wait; the follow then closes
/// its target (flushing it) and returns `Ok`. A signal handler may set
/// [`flag`](StopHandle::flag) directly (`signal_hook::flag::register`): the
/// signal interrupts the wait, and the flag is seen at once.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use copipe::{sinks::Count, text::Follow};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("log");
/// std::fs::write(&path, "one\n")?;
/// let mut follow = Follow::builder([&path]).build()?;
/// let stop = follow.stop_handle();
/// let t = std::thread::spawn(move || {
///     let mut n = Count::new();
///     follow.run(&mut n).map(|()| n.count())
/// });
/// stop.stop();
/// assert!(t.join().unwrap()? <= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the follow to stop, and wakes it.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A failed wake only delays the stop to the next periodic check.
        let _ = self.waker.wake();
    }

    /// True once a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for `signal_hook::flag::register`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

/// Builds a [`Follow`]. Made by [`Follow::builder`].
pub struct FollowBuilder {
    paths: Vec<PathBuf>,
    start: Option<Start>,
    mode: FollowMode,
    use_inotify: bool,
    poll_interval: Duration,
    rotate_grace: Duration,
    max_line: usize,
    output: Option<RawFd>,
    checkpoint: Option<PathBuf>,
    notice: NoticeFn,
}

impl fmt::Debug for FollowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowBuilder")
            .field("paths", &self.paths)
            .field("start", &self.start)
            .field("mode", &self.mode)
            .field("use_inotify", &self.use_inotify)
            .field("poll_interval", &self.poll_interval)
            .field("rotate_grace", &self.rotate_grace)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl FollowBuilder {
    /// Where to start in each file that exists at the start: the last 10
    /// lines by default (with a [`checkpoint`](FollowBuilder::checkpoint),
    /// the whole file). Files that appear later, and new files after a
    /// rotation, are read from their beginning; a file the checkpoint
    /// knows resumes where it was.
    pub fn start(mut self, start: Start) -> FollowBuilder {
        self.start = Some(start);
        self
    }

    /// Follow the open file (`-f`, the default) or the name (`-F`).
    pub fn mode(mut self, mode: FollowMode) -> FollowBuilder {
        self.mode = mode;
        self
    }

    /// Use inotify to wake up (the default). With `false`, or when inotify
    /// is unavailable, the files are polled every
    /// [`poll_interval`](FollowBuilder::poll_interval).
    pub fn inotify(mut self, yes: bool) -> FollowBuilder {
        self.use_inotify = yes;
        self
    }

    /// How often files are checked without inotify (100 ms by default).
    /// With inotify they are also re-checked every second, in case an event
    /// was missed (a file system that does not report changes), and so
    /// that an unreadable path (`-F`) is retried.
    pub fn poll_interval(mut self, every: Duration) -> FollowBuilder {
        self.poll_interval = every;
        self
    }

    /// How long a rotated-away file is kept open after it last grew, so
    /// lines written to it late are not lost (10 s by default).
    pub fn rotate_grace(mut self, grace: Duration) -> FollowBuilder {
        self.rotate_grace = grace;
        self
    }

    /// The longest line accepted, in bytes with its terminator (16 MiB by
    /// default). A longer line is reported once
    /// ([`NoticeKind::LongLine`], with its file and byte offset) and
    /// skipped; the lines after it are read.
    pub fn max_line_len(mut self, bytes: usize) -> FollowBuilder {
        self.max_line = bytes;
        self
    }

    /// Also watch `fd` (normally stdout): when its reader goes away (a
    /// closed pipe, `| head -1`), stop quietly even while no line arrives.
    pub fn watch_output(mut self, fd: RawFd) -> FollowBuilder {
        self.output = Some(fd);
        self
    }

    /// Keep a checkpoint at `path`: each file's copipe id and the offset
    /// after the last line the target accepted, saved after each `flush`
    /// of the target that returned `Ok` (at-least-once), so a restart
    /// resumes where the last run's target left off. See
    /// [`Follow::run_at`] for what a restart finds and what cannot be
    /// guaranteed. Without [`start`](FollowBuilder::start), files seen for
    /// the first time are read from their start.
    pub fn checkpoint(mut self, path: impl AsRef<Path>) -> FollowBuilder {
        self.checkpoint = Some(path.as_ref().to_path_buf());
        self
    }

    /// Where notices (truncation, rotation, ...) go; by default they are
    /// printed on stderr as `copipe: <notice>`.
    pub fn on_notice(mut self, f: impl FnMut(Notice<'_>) + Send + 'static) -> FollowBuilder {
        self.notice = Box::new(f);
        self
    }

    /// Opens the files and positions them (from the checkpoint, if any).
    ///
    /// # Errors
    ///
    /// Not for a file that cannot be followed: that is a notice
    /// ([`NoticeKind::Unreadable`]), and `-f` goes on with the others (and
    /// ends at once if there are none). A checkpoint that cannot be read or
    /// parsed; a glob that is not valid; an error setting up the wait
    /// (epoll).
    pub fn build(self) -> Result<Follow> {
        if self.paths.is_empty() {
            return Err(Error::usage("follow needs at least one file"));
        }
        let registry = Registry::load(self.checkpoint.clone())?;
        let start = match (self.start, registry.is_durable()) {
            (Some(s), _) => s,
            (None, true) => Start::From(1),
            (None, false) => Start::default(),
        };
        let core = Core::new(Config {
            paths: self.paths,
            start,
            mode: self.mode,
            use_inotify: self.use_inotify,
            rotate_grace: self.rotate_grace,
            max_line: self.max_line,
            notice: self.notice,
            registry,
        })?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            waker,
        };
        let mut core = core;
        if let Some(fd) = core.inotify_fd() {
            if poll
                .registry()
                .register(&mut SourceFd(&fd), INOTIFY, Interest::READABLE)
                .is_err()
            {
                core = core.without_inotify();
            }
        }
        if let Some(fd) = self.output {
            // Regular files and /dev/null cannot be watched (EPERM); they
            // never close, so there is nothing to watch for.
            let _ = poll
                .registry()
                .register(&mut SourceFd(&fd), OUTPUT, Interest::WRITABLE);
        }
        Ok(Follow {
            core,
            poll,
            events: Events::with_capacity(16),
            stop,
            poll_interval: self.poll_interval,
        })
    }
}

/// `tail -f` / `tail -F` as a source: pushes the lines of one or more files
/// as they grow.
///
/// - Starts with the last N lines ([`Start::Last`], 10 by default), from
///   line N ([`Start::From`]) or at the end (`Start::Last(0)`).
/// - A line is sent only when its newline has arrived: a line written in
///   two parts arrives as one line.
/// - Truncation (the file shrinks below the reading position) is reported
///   ([`NoticeKind::Truncated`]) and reading restarts at 0; a partial line
///   held from before is sent first. Truncation is seen by size, so a file
///   truncated and refilled past the old position between two looks
///   cannot be told from one that grew (true of every `tail`).
/// - In [`FollowMode::Name`], rotation (the name points to another file, by
///   device and inode) drains the old file to its end before the new one is
///   read, and keeps reading the old one while it still grows (for
///   [`rotate_grace`](FollowBuilder::rotate_grace)), so lines written late
///   into `log.1` are not lost. A missing or unreadable path is retried; a
///   directory put in a file's place never ends the follow.
/// - A path that cannot be followed is reported ([`NoticeKind::Unreadable`])
///   and the others are followed. A line longer than
///   [`max_line_len`](FollowBuilder::max_line_len) is reported and skipped.
/// - A path whose file name holds a glob (`dir/*.log`) follows every file
///   of that directory that matches, now and later, each by name.
/// - It waits for inotify events (file and directory), with a polling
///   fallback, and calls `flush` on its target each time before it waits.
/// - It ends when the target returns [`Flow::Stop`], when stopped through
///   its [`StopHandle`], or when the watched output closes; it then closes
///   its target and returns `Ok`.
///
/// Blocks sent by [`run_blocks`](Follow::run_blocks) carry the index of
/// their file ([`Block::file`]), for `==> name <==` headers.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use copipe::{Flow, StageExt};
/// use copipe::text::{line_fn, Follow, Start};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("access-log");
/// std::fs::write(&path, "old\nlast\n")?;
/// let mut follow = Follow::builder([&path]).start(Start::Last(1)).build()?;
/// let mut log = std::fs::OpenOptions::new().append(true).open(&path)?;
/// log.write_all(b"new\n")?;
/// let mut seen = Vec::new();
/// follow.run(
///     line_fn(|line: &[u8]| {
///         seen.push(String::from_utf8_lossy(line).into_owned());
///         Ok(Flow::Continue)
///     })
///     .take(2),
/// )?;
/// assert_eq!(seen, ["last\n", "new\n"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Follow {
    core: Core,
    poll: Poll,
    events: Events,
    stop: StopHandle,
    poll_interval: Duration,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Follow {
    /// A builder following `paths`.
    pub fn builder<I, P>(paths: I) -> FollowBuilder
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        FollowBuilder {
            paths: paths
                .into_iter()
                .map(|p| p.as_ref().to_path_buf())
                .collect(),
            start: None,
            mode: FollowMode::default(),
            use_inotify: true,
            poll_interval: Duration::from_millis(100),
            rotate_grace: Duration::from_secs(10),
            max_line: DEFAULT_MAX_LINE_LEN,
            output: None,
            checkpoint: None,
            notice: Box::new(|n| eprintln!("copipe: {n}")),
        }
    }

    /// A handle that stops this follow from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// True when waits are driven by inotify (false: polling).
    pub fn uses_inotify(&self) -> bool {
        self.core.uses_inotify()
    }

    /// How many problems were reported so far: paths that could not be
    /// followed and lines skipped as too long (for an exit status).
    pub fn errors(&self) -> u64 {
        self.core.errors()
    }

    /// Follows, sending each line to `target`, until stopped.
    ///
    /// # Errors
    ///
    /// The target's error (the target is not closed); an error of the wait
    /// itself (the target is closed first). In [`FollowMode::Descriptor`],
    /// once every file was given up (reported as notices), the follow ends
    /// with `Ok`; [`errors`](Follow::errors) counts them.
    pub fn run<S>(&mut self, target: S) -> Result<()>
    where
        S: for<'a> Stage<&'a [u8]>,
    {
        self.run_blocks(SplitLines::new(target))
    }

    /// Follows, sending whole chunks of lines ([`Block`]s) to `target`,
    /// until stopped.
    ///
    /// # Errors
    ///
    /// As for [`run`](Follow::run).
    pub fn run_blocks<S>(&mut self, mut target: S) -> Result<()>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        self.core.set_tag(Tag::Name);
        let end = match self.follow(&mut target) {
            Ok(()) => SourceEnd::Done,
            Err(Fail::Input(e)) => SourceEnd::Input(e),
            Err(Fail::Target(e)) => SourceEnd::Target(e),
        };
        end_source(&mut target, end)
    }

    /// Follows, sending each line with its position ([`LineAt`]: the
    /// file's copipe id and path, the byte offset of the line) to
    /// `target`, until stopped. With a
    /// [`checkpoint`](FollowBuilder::checkpoint) this is the checkpointed
    /// follow:
    ///
    /// - after each `target.flush()` that returns `Ok` (the follow flushes
    ///   before each wait, and `close` flushes), the checkpoint records per
    ///   file the offset after the last line sent: lines the target has
    ///   accepted. It is never written before the flush, so a crash (even
    ///   `kill -9`) can only repeat lines sent after the last flush
    ///   (at-least-once), never lose one.
    /// - on restart each file resumes at its offset, found by device,
    ///   inode and a fingerprint of its first bytes (see
    ///   [`FINGERPRINT_LEN`](super::FINGERPRINT_LEN)); a file truncated
    ///   while copipe was down is read from 0 (and said so); a file rotated
    ///   while copipe was down is found among its siblings, drained from
    ///   its offset, and then the new file is read from its start.
    /// - a file truncated while followed gets a new id: the same offsets
    ///   now hold other lines, so `id:offset` never names two lines.
    ///
    /// What cannot be guaranteed: a `copytruncate` rotation that copies
    /// and truncates while copipe is down loses, for copipe, the lines
    /// written between its last flush and the copy unless the copy is kept
    /// beside the file (it has another inode, so it is not recognised);
    /// and a truncated file refilled past the saved offset before the
    /// restart, with the same first bytes, is resumed at the saved offset.
    ///
    /// # Errors
    ///
    /// As for [`run`](Follow::run); also an error writing the checkpoint
    /// (the target was flushed; nothing is lost, lines may repeat).
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{Flow, StageExt, from_fn};
    /// use copipe::text::{Follow, LineAt};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = dir.path().join("app.log");
    /// let ck = dir.path().join("app.ck");
    /// std::fs::write(&log, "one\ntwo\n")?;
    /// let mut seen = Vec::new();
    /// Follow::builder([&log]).checkpoint(&ck).build()?.run_at(
    ///     from_fn(|l: LineAt<'_>| {
    ///         seen.push((l.offset, l.file.id.len()));
    ///         Ok(Flow::Continue)
    ///     })
    ///     .take(2),
    /// )?;
    /// assert_eq!(seen, [(0, 32), (4, 32)]);
    /// // A second run resumes after "two\n": nothing is read again.
    /// std::fs::write(&log, "one\ntwo\nthree\n")?;
    /// let mut again = Vec::new();
    /// Follow::builder([&log]).checkpoint(&ck).build()?.run_at(
    ///     from_fn(|l: LineAt<'_>| {
    ///         again.push(l.bytes.to_vec());
    ///         Ok(Flow::Continue)
    ///     })
    ///     .take(1),
    /// )?;
    /// assert_eq!(again, [b"three\n".to_vec()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_at<S>(&mut self, target: S) -> Result<()>
    where
        S: for<'a> Stage<LineAt<'a>>,
    {
        self.core.set_tag(Tag::Key);
        let mut at = Positioned {
            registry: Arc::clone(self.core.registry()),
            cached: None,
            target,
        };
        let end = match self.follow(&mut at) {
            Ok(()) => SourceEnd::Done,
            Err(Fail::Input(e)) => SourceEnd::Input(e),
            Err(Fail::Target(e)) => SourceEnd::Target(e),
        };
        end_source(&mut at, end)
    }

    fn follow<S>(&mut self, target: &mut S) -> std::result::Result<(), Fail>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        loop {
            let stop = self.stop.clone();
            let (flow, _) = self.core.step(target, None, &move || stop.is_stopped())?;
            if flow.is_stop() {
                return Ok(());
            }
            target.flush().map_err(Fail::Target)?;
            if self.wait()?.is_stop() {
                return Ok(());
            }
        }
    }

    /// Waits for an event, a stop or the next periodic check.
    fn wait(&mut self) -> std::result::Result<Flow, Fail> {
        if self.stop.is_stopped() {
            return Ok(Flow::Stop);
        }
        let period = if self.core.uses_inotify() {
            Duration::from_secs(1).max(self.poll_interval)
        } else {
            self.poll_interval
        };
        let timeout = self.core.timeout(period);
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            // A signal: its handler may have set the stop flag.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::Input(e.into())),
        }
        for ev in &self.events {
            if ev.token() == OUTPUT && (ev.is_error() || ev.is_write_closed()) {
                return Ok(Flow::Stop);
            }
        }
        self.core.drain_events();
        Ok(if self.stop.is_stopped() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

/// Turns the core's blocks (tagged with registry keys) into [`LineAt`]s,
/// notes what was sent, and saves the checkpoint after each flush the
/// target accepted.
struct Positioned<S> {
    registry: Arc<Mutex<Registry>>,
    /// The source of the last key seen (blocks come in runs of one file).
    cached: Option<(usize, Arc<SourceFile>)>,
    target: S,
}

impl<S> Positioned<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain data behind.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<'a, S: for<'b> Stage<LineAt<'b>>> Stage<Block<'a>> for Positioned<S> {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        let key = block.file();
        let source = match &self.cached {
            Some((k, s)) if *k == key => Arc::clone(s),
            _ => {
                let Some(s) = self.lock().source(key) else {
                    // Every open file has a key until it is let go.
                    return Err(Error::usage("follow: a block of an unknown file"));
                };
                self.cached = Some((key, Arc::clone(&s)));
                s
            }
        };
        let start = block.byte_offset();
        let mut offset = start;
        let mut flow = Flow::Continue;
        for line in block.lines() {
            let at = LineAt {
                bytes: line,
                file: &source,
                offset,
            };
            offset += line.len() as u64;
            if self.target.send(at)?.is_stop() {
                flow = Flow::Stop;
                break;
            }
        }
        let sent = (offset - start) as usize;
        self.lock().sent(key, start, &block.bytes()[..sent]);
        Ok(flow)
    }
}

impl<S: Lifecycle> Lifecycle for Positioned<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()?;
        self.lock().commit()
    }

    fn close(&mut self) -> Result<()> {
        self.target.close()?;
        let mut reg = self.lock();
        reg.commit()?;
        // A follow that ends leaves its checkpoint on disk.
        reg.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_like_tail() {
        let n = Notice {
            kind: NoticeKind::Truncated,
            path: Path::new("log"),
            reason: None,
            byte_offset: None,
        };
        assert_eq!(n.to_string(), "log: file truncated");
        let n = Notice {
            kind: NoticeKind::Replaced,
            path: Path::new("log"),
            reason: None,
            byte_offset: None,
        };
        assert_eq!(n.to_string(), "'log' has been replaced; following new file");
        let n = Notice {
            kind: NoticeKind::Unreadable,
            path: Path::new("adir"),
            reason: Some("Is a directory"),
            byte_offset: None,
        };
        assert_eq!(n.to_string(), "adir: Is a directory");
    }

    #[test]
    fn missing_file_is_a_notice_and_the_follow_ends_with_nothing_left() {
        let dir = tempfile::tempdir().unwrap();
        let said = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&said);
        let mut f = Follow::builder([dir.path().join("nope")])
            .on_notice(move |n| s.lock().unwrap().push(n.to_string()))
            .build()
            .unwrap();
        f.run(crate::sinks::Null::new()).unwrap();
        assert_eq!(f.errors(), 1);
        let said = said.lock().unwrap();
        assert!(
            said[0].ends_with("nope: No such file or directory"),
            "{said:?}"
        );
    }
}
