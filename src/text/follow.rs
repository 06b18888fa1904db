//! [`Follow`]: `tail -f` / `tail -F` done right.
//!
//! One loop reads every followed file to its end, pushes the complete lines,
//! checks each file for truncation and (by name) replacement, calls `flush`
//! on its target and waits: for inotify events when it can, polling when it
//! cannot. A [`StopHandle`] (or a signal, see [`StopHandle::flag`]) ends the
//! wait at once.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchDescriptor, WatchMask};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::block::{Block, SplitLines};
use super::linebuf::LineBuf;
use super::lines::{seek_last_lines, Start};
use super::DEFAULT_MAX_LINE_LEN;
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};

/// Bytes read at a time from a followed file.
const CHUNK: usize = 128 * 1024;

const WAKER: Token = Token(0);
const INOTIFY: Token = Token(1);
const OUTPUT: Token = Token(2);

/// How a followed file is identified from one wait to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FollowMode {
    /// `tail -f`: follow the open file, wherever it is renamed to. The file
    /// must exist at the start.
    #[default]
    Descriptor,
    /// `tail -F`: follow the *name*. When the name points to a new file
    /// (rotation), the old file is read to its end first and kept open a
    /// while for lines written to it late; a missing file is waited for.
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
    /// A file that was missing (`-F`) now exists and is read from its start.
    Appeared,
    /// The file cannot be opened (missing at the start, `-F`): waiting.
    Missing,
    /// The name went away; the open file is still read until a new file
    /// appears under the name.
    Gone,
}

/// A notice about one followed file: what happened and to which path.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    kind: NoticeKind,
    path: &'a Path,
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
}

impl fmt::Display for Notice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match self.kind {
            NoticeKind::Truncated => write!(f, "{p}: file truncated"),
            NoticeKind::Replaced => write!(f, "'{p}' has been replaced; following new file"),
            NoticeKind::Appeared => write!(f, "'{p}' has appeared; following new file"),
            NoticeKind::Missing => write!(f, "cannot open '{p}' for reading: waiting for it"),
            NoticeKind::Gone => write!(f, "'{p}' has become inaccessible; still reading it"),
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
    start: Start,
    mode: FollowMode,
    use_inotify: bool,
    poll_interval: Duration,
    rotate_grace: Duration,
    max_line: usize,
    output: Option<RawFd>,
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
            .finish_non_exhaustive()
    }
}

impl FollowBuilder {
    /// Where to start in each file that exists at the start: the last 10
    /// lines by default. Files that appear later, and new files after a
    /// rotation, are read from their beginning.
    pub fn start(mut self, start: Start) -> FollowBuilder {
        self.start = start;
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
    /// was missed (a file system that does not report changes).
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
    /// default); a longer one is an error naming the file and byte offset.
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

    /// Where notices (truncation, rotation, ...) go; by default they are
    /// printed on stderr as `copipe: <notice>`.
    pub fn on_notice(mut self, f: impl FnMut(Notice<'_>) + Send + 'static) -> FollowBuilder {
        self.notice = Box::new(f);
        self
    }

    /// Opens the files and positions them.
    ///
    /// # Errors
    ///
    /// In [`FollowMode::Descriptor`], a file that cannot be opened (the
    /// error names it). In [`FollowMode::Name`] a missing file is waited
    /// for instead. Also an error setting up the wait (epoll).
    pub fn build(mut self) -> Result<Follow> {
        if self.paths.is_empty() {
            return Err(Error::usage("follow needs at least one file"));
        }
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            waker,
        };
        let mut inotify = if self.use_inotify {
            Inotify::init().ok()
        } else {
            None
        };
        if let Some(ino) = &inotify {
            let fd = ino.as_raw_fd();
            if poll
                .registry()
                .register(&mut SourceFd(&fd), INOTIFY, Interest::READABLE)
                .is_err()
            {
                inotify = None;
            }
        }
        if let Some(fd) = self.output {
            // Regular files and /dev/null cannot be watched (EPERM); they
            // never close, so there is nothing to watch for.
            let _ = poll
                .registry()
                .register(&mut SourceFd(&fd), OUTPUT, Interest::WRITABLE);
        }
        let mut files = Vec::with_capacity(self.paths.len());
        for (i, path) in std::mem::take(&mut self.paths).into_iter().enumerate() {
            let mut watched = Watched {
                path,
                cur: None,
                retired: Vec::new(),
                gone: false,
            };
            match File::open(&watched.path) {
                Ok(file) => {
                    let mut open = Open::new(file, i, self.max_line)
                        .map_err(|e| Error::from(e).with_path(&watched.path))?;
                    open.position(self.start)
                        .map_err(|e| Error::from(e).with_path(&watched.path))?;
                    watched.cur = Some(open);
                }
                Err(_) if self.mode == FollowMode::Name => {
                    (self.notice)(Notice {
                        kind: NoticeKind::Missing,
                        path: &watched.path,
                    });
                }
                Err(e) => return Err(Error::from(e).with_path(&watched.path)),
            }
            files.push(watched);
        }
        let mut follow = Follow {
            files,
            mode: self.mode,
            poll,
            events: Events::with_capacity(16),
            inotify,
            inotify_buf: vec![0; 4096],
            stop,
            poll_interval: self.poll_interval,
            rotate_grace: self.rotate_grace,
            max_line: self.max_line,
            notice: self.notice,
        };
        for i in 0..follow.files.len() {
            follow.watch(i);
        }
        Ok(follow)
    }
}

/// One open file being read.
#[derive(Debug)]
struct Open {
    file: File,
    id: (u64, u64),
    lb: LineBuf,
    /// Where the next read starts.
    pos: u64,
    /// When a read last returned data (for retiring a rotated file).
    last_data: Instant,
    /// The inotify watch on this file, removed when the file is let go.
    wd: Option<WatchDescriptor>,
}

impl Open {
    fn new(file: File, index: usize, max_line: usize) -> io::Result<Open> {
        let meta = file.metadata()?;
        let mut lb = LineBuf::new(CHUNK, max_line);
        lb.set_file(index);
        Ok(Open {
            file,
            id: (meta.dev(), meta.ino()),
            lb,
            pos: 0,
            last_data: Instant::now(),
            wd: None,
        })
    }

    fn position(&mut self, start: Start) -> io::Result<()> {
        match start {
            Start::Last(n) if self.file.metadata()?.is_file() => {
                self.pos = seek_last_lines(&mut self.file, n)?;
            }
            // A pipe or device cannot seek back: it is read from here on.
            Start::Last(_) => {}
            Start::From(_) => self.lb.set_skip(start.skip()),
        }
        self.lb.reset(self.pos);
        Ok(())
    }
}

/// A followed name: the file open under it and older files it named.
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    cur: Option<Open>,
    /// Rotated-away files still read for late lines, oldest first.
    retired: Vec<Open>,
    /// The name was seen missing (reported once).
    gone: bool,
}

/// Where a failure came from: our own input, or the target.
enum Fail {
    Input(Error),
    Target(Error),
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
///   into `log.1` are not lost. A missing file is waited for.
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
    files: Vec<Watched>,
    mode: FollowMode,
    poll: Poll,
    events: Events,
    inotify: Option<Inotify>,
    inotify_buf: Vec<u8>,
    stop: StopHandle,
    poll_interval: Duration,
    rotate_grace: Duration,
    max_line: usize,
    notice: NoticeFn,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("files", &self.files)
            .field("mode", &self.mode)
            .field("inotify", &self.inotify.is_some())
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
            start: Start::default(),
            mode: FollowMode::default(),
            use_inotify: true,
            poll_interval: Duration::from_millis(100),
            rotate_grace: Duration::from_secs(10),
            max_line: DEFAULT_MAX_LINE_LEN,
            output: None,
            notice: Box::new(|n| eprintln!("copipe: {n}")),
        }
    }

    /// A handle that stops this follow from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// True when waits are driven by inotify (false: polling).
    pub fn uses_inotify(&self) -> bool {
        self.inotify.is_some()
    }

    /// Follows, sending each line to `target`, until stopped.
    ///
    /// # Errors
    ///
    /// A read error or an over-long line, naming the file (the target is
    /// closed first); or the target's error (not closed).
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
        match self.follow(&mut target) {
            Ok(()) => target.close(),
            Err(Fail::Input(e)) => {
                target.close()?;
                Err(e)
            }
            Err(Fail::Target(e)) => Err(e),
        }
    }

    fn follow<S>(&mut self, target: &mut S) -> std::result::Result<(), Fail>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        loop {
            for i in 0..self.files.len() {
                if self.stop.is_stopped() || self.check(i, target)?.is_stop() {
                    return Ok(());
                }
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
        let mut timeout = if self.inotify.is_some() {
            Duration::from_secs(1).max(self.poll_interval)
        } else {
            self.poll_interval
        };
        let now = Instant::now();
        for w in &self.files {
            for r in &w.retired {
                let due = (r.last_data + self.rotate_grace).saturating_duration_since(now);
                timeout = timeout.min(due + Duration::from_millis(1));
            }
        }
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
        if let Some(ino) = &mut self.inotify {
            // Drain every queued event: any event just means "check again".
            loop {
                match ino.read_events(&mut self.inotify_buf) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        Ok(if self.stop.is_stopped() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    /// Watches file `i` (its current inode) and, by name, its directory.
    fn watch(&mut self, i: usize) {
        let Some(ino) = &mut self.inotify else {
            return;
        };
        let w = &mut self.files[i];
        // A failed watch (the watch limit is reached) leaves the periodic
        // re-check, which still sees every change, only later.
        let wd = ino.watches().add(
            &w.path,
            WatchMask::MODIFY
                | WatchMask::ATTRIB
                | WatchMask::CLOSE_WRITE
                | WatchMask::MOVE_SELF
                | WatchMask::DELETE_SELF,
        );
        if let (Some(cur), Ok(wd)) = (&mut w.cur, wd) {
            cur.wd = Some(wd);
        }
        if self.mode == FollowMode::Name {
            let dir = match w.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let _ = ino.watches().add(
                dir,
                WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::MOVED_FROM | WatchMask::DELETE,
            );
        }
    }

    /// Reads file `i` (its rotated-away files first), handling truncation
    /// and replacement.
    fn check<S>(&mut self, i: usize, target: &mut S) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        let grace = self.rotate_grace;
        let stop = &self.stop;
        let w = &mut self.files[i];
        // Rotated-away files: late lines first, then let go after the grace.
        let mut r = 0;
        while r < w.retired.len() {
            if drain(&mut w.retired[r], &w.path, stop, target)?.is_stop() {
                return Ok(Flow::Stop);
            }
            if w.retired[r].last_data.elapsed() >= grace {
                let mut old = w.retired.remove(r);
                unwatch(&mut self.inotify, old.wd.take());
                if old.lb.finish(target).map_err(Fail::Target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
            } else {
                r += 1;
            }
        }
        if let Some(cur) = &mut w.cur {
            if drain(cur, &w.path, stop, target)?.is_stop() {
                return Ok(Flow::Stop);
            }
            let len = cur
                .file
                .metadata()
                .map_err(|e| Fail::Input(Error::from(e).with_path(&w.path)))?
                .len();
            if len < cur.pos {
                // Lines before the event go out before the notice about it.
                target.flush().map_err(Fail::Target)?;
                (self.notice)(Notice {
                    kind: NoticeKind::Truncated,
                    path: &w.path,
                });
                if cur.lb.finish(target).map_err(Fail::Target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
                cur.file
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| Fail::Input(Error::from(e).with_path(&w.path)))?;
                cur.pos = 0;
                cur.lb.reset(0);
                if drain(cur, &w.path, stop, target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
            }
        }
        if self.mode == FollowMode::Name {
            return self.check_name(i, target);
        }
        Ok(Flow::Continue)
    }

    /// By name: has the name gone, appeared, or been pointed at a new file?
    fn check_name<S>(&mut self, i: usize, target: &mut S) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        let w = &mut self.files[i];
        let meta = match fs::metadata(&w.path) {
            Ok(m) => m,
            Err(_) => {
                if w.cur.is_some() && !w.gone {
                    w.gone = true;
                    // Lines before the event go out before the notice.
                    target.flush().map_err(Fail::Target)?;
                    (self.notice)(Notice {
                        kind: NoticeKind::Gone,
                        path: &w.path,
                    });
                }
                return Ok(Flow::Continue);
            }
        };
        let id = (meta.dev(), meta.ino());
        if w.cur.as_ref().is_some_and(|c| c.id == id) {
            return Ok(Flow::Continue);
        }
        let file = match File::open(&w.path) {
            Ok(f) => f,
            // Gone again between stat and open: look again next time.
            Err(_) => return Ok(Flow::Continue),
        };
        let mut new = Open::new(file, i, self.max_line)
            .map_err(|e| Fail::Input(Error::from(e).with_path(&w.path)))?;
        let kind = match w.cur.take() {
            Some(mut old) => {
                // Rotation: everything in the old file comes first.
                if drain(&mut old, &w.path, &self.stop, target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
                w.retired.push(old);
                // Keep the number of open files bounded even if the file is
                // replaced again and again within the grace period.
                if w.retired.len() > 4 {
                    let mut oldest = w.retired.remove(0);
                    unwatch(&mut self.inotify, oldest.wd.take());
                    if oldest.lb.finish(target).map_err(Fail::Target)?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                }
                NoticeKind::Replaced
            }
            None => NoticeKind::Appeared,
        };
        w.gone = false;
        target.flush().map_err(Fail::Target)?;
        (self.notice)(Notice {
            kind,
            path: &w.path,
        });
        new.lb.reset(0);
        let flow = drain(&mut new, &w.path, &self.stop, target)?;
        w.cur = Some(new);
        self.watch(i);
        Ok(flow)
    }
}

/// Removes the watch on a file that is let go, so writes to it no longer
/// wake the follow.
fn unwatch(inotify: &mut Option<Inotify>, wd: Option<WatchDescriptor>) {
    if let (Some(ino), Some(wd)) = (inotify, wd) {
        // It may be gone already (the file was deleted): nothing to undo.
        let _ = ino.watches().remove(wd);
    }
}

/// Reads `open` to its current end, sending complete lines.
fn drain<S>(
    open: &mut Open,
    path: &Path,
    stop: &StopHandle,
    target: &mut S,
) -> std::result::Result<Flow, Fail>
where
    S: for<'a> Stage<Block<'a>>,
{
    loop {
        let n = open
            .lb
            .read_from(&mut open.file)
            .map_err(|e| Fail::Input(e.with_path(path)))?;
        if n == 0 {
            return Ok(Flow::Continue);
        }
        open.pos += n as u64;
        open.last_data = Instant::now();
        if open.lb.emit(target).map_err(Fail::Target)?.is_stop() {
            return Ok(Flow::Stop);
        }
        if stop.is_stopped() {
            return Ok(Flow::Stop);
        }
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
        };
        assert_eq!(n.to_string(), "log: file truncated");
        let n = Notice {
            kind: NoticeKind::Replaced,
            path: Path::new("log"),
        };
        assert_eq!(n.to_string(), "'log' has been replaced; following new file");
    }

    #[test]
    fn missing_file_is_an_error_naming_it_when_following_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let err = Follow::builder([dir.path().join("nope")])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
