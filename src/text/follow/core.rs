//! The follow core: every rule about followed files, with no waiting in it.
//!
//! [`Core::step`] reads every followed file to its current end (or until
//! its read budget runs out), pushes the complete lines, and handles what
//! happened to each file since the last step: truncation, rotation, a name
//! gone or come back, a path that cannot be read, a line too long, a glob
//! matching a new file. It never blocks; the drivers decide how to wait:
//! [`Follow`](super::Follow) on a thread (epoll on inotify, a waker and
//! stdout), [`sched::follow`](crate::sched::follow) as a scheduler task
//! (`read_wait` on the inotify fd). Both therefore give the same
//! guarantees, and so does the checkpointed follow, which is `Follow` with
//! a checkpoint file in its [`Registry`].
//!
//! Each open file has a *key* in the registry (its copipe id and offsets);
//! a block is tagged with the key ([`Tag::Key`], for positioned lines) or
//! with the index of its name ([`Tag::Name`], for `==> name <==` headers).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobMatcher};
use inotify::{Inotify, WatchDescriptor, WatchMask};
use memchr::memchr;

use super::{FollowMode, Notice, NoticeFn, NoticeKind};
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};
use crate::text::block::Block;
use crate::text::checkpoint::{Place, Registry};
use crate::text::linebuf::LineBuf;
use crate::text::lines::{seek_last_lines, Start};

/// Bytes read at a time from a followed file.
const CHUNK: usize = 128 * 1024;

/// How many rotated-away files one name keeps open at most: a file
/// replaced again and again within the grace period must not use up the
/// process's descriptors.
const MAX_RETIRED: usize = 4;

/// How often globs are matched against their directory again, at most.
const RESCAN: Duration = Duration::from_millis(200);

/// What a block is tagged with ([`Block::file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// The index of the followed name (`==> name <==` headers).
    Name,
    /// The file's key in the registry (positioned lines).
    Key,
}

/// Where a failure came from: the wait machinery, or the target.
#[derive(Debug)]
pub(crate) enum Fail {
    Input(Error),
    Target(Error),
}

/// Why a drain stopped early.
enum DrainErr {
    /// Reading the file failed: it is dropped (`-f`) or retried (`-F`).
    Read(Error),
    Target(Error),
}

impl From<DrainErr> for Fail {
    fn from(e: DrainErr) -> Fail {
        match e {
            DrainErr::Read(e) => Fail::Input(e),
            DrainErr::Target(e) => Fail::Target(e),
        }
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
    /// Its key in the registry.
    key: usize,
    /// Inside a line longer than the maximum: bytes are dropped up to the
    /// next newline.
    skipping: bool,
}

impl Open {
    fn new(file: File, key: usize, max_line: usize) -> io::Result<Open> {
        let meta = file.metadata()?;
        Ok(Open {
            file,
            id: (meta.dev(), meta.ino()),
            lb: LineBuf::new(CHUNK, max_line),
            pos: 0,
            last_data: Instant::now(),
            wd: None,
            key,
            skipping: false,
        })
    }

    /// Positions the file; returns the offset reading starts at.
    fn place(&mut self, place: Place) -> io::Result<u64> {
        match place {
            Place::At(at) => {
                self.pos = self.file.seek(SeekFrom::Start(at))?;
            }
            Place::Start(Start::Last(n)) => {
                self.pos = seek_last_lines(&mut self.file, n)?;
            }
            Place::Start(start @ Start::From(_)) => {
                self.pos = 0;
                self.lb.set_skip(start.skip());
            }
        }
        self.lb.reset(self.pos);
        Ok(self.pos)
    }
}

/// A followed name: the file open under it and older files it named.
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    cur: Option<Open>,
    /// Rotated-away files still read for late lines, oldest first.
    retired: Vec<Open>,
    /// The name was seen missing while its file was open (reported once).
    gone: bool,
    /// Why the name cannot be followed now, as last reported (reported
    /// again only when the reason changes).
    bad: Option<String>,
    /// Given up (`-f`: it could not be opened or read).
    dead: bool,
    /// Found by glob number `g`: when the name goes away for good, it is
    /// dropped (and found again if it comes back), so date-named logs do
    /// not pile up.
    glob: Option<usize>,
}

/// A glob (`dir/*.log`): its directory is listed again when it changes,
/// and each new match becomes a followed name.
#[derive(Debug)]
struct Glob {
    dir: PathBuf,
    matcher: GlobMatcher,
    seen: HashSet<PathBuf>,
    /// Why the directory cannot be listed, as last reported.
    bad: Option<String>,
}

/// What the core is built from.
pub(crate) struct Config {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) start: Start,
    pub(crate) mode: FollowMode,
    pub(crate) use_inotify: bool,
    pub(crate) rotate_grace: Duration,
    pub(crate) max_line: usize,
    pub(crate) notice: NoticeFn,
    pub(crate) registry: Registry,
}

/// The non-blocking follow core; see the module docs.
pub(crate) struct Core {
    files: Vec<Watched>,
    globs: Vec<Glob>,
    mode: FollowMode,
    inotify: Option<Inotify>,
    inotify_buf: Vec<u8>,
    start: Start,
    rotate_grace: Duration,
    max_line: usize,
    notice: NoticeFn,
    registry: Arc<Mutex<Registry>>,
    tag: Tag,
    last_scan: Instant,
    /// Paths reported as unreadable or lines skipped, for the exit status.
    errors: u64,
    /// Reads left in this step (`None`: no limit).
    budget: Option<usize>,
    exhausted: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("files", &self.files)
            .field("globs", &self.globs)
            .field("mode", &self.mode)
            .field("inotify", &self.inotify.is_some())
            .finish_non_exhaustive()
    }
}

/// True when `path`'s file name has glob characters.
pub(crate) fn is_glob(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| s.contains(['*', '?', '[', '{']))
}

/// The OS reason of an I/O error, without Rust's ` (os error N)` suffix:
/// `Permission denied`, `Too many open files`.
pub(crate) fn reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn with_path(e: io::Error, path: &Path) -> Error {
    Error::from(e).with_path(path)
}

impl Core {
    /// Opens and positions the files (reporting those that cannot be
    /// followed), expands the globs, and sets up inotify.
    ///
    /// # Errors
    ///
    /// In [`FollowMode::Descriptor`], when no file at all can be opened
    /// (the first one's error). A bad glob.
    pub(crate) fn new(cfg: Config) -> Result<Core> {
        let inotify = if cfg.use_inotify {
            Inotify::init().ok()
        } else {
            None
        };
        let mut core = Core {
            files: Vec::new(),
            globs: Vec::new(),
            mode: cfg.mode,
            inotify,
            inotify_buf: vec![0; 4096],
            start: cfg.start,
            rotate_grace: cfg.rotate_grace,
            max_line: cfg.max_line,
            notice: cfg.notice,
            registry: Arc::new(Mutex::new(cfg.registry)),
            tag: Tag::Name,
            last_scan: Instant::now(),
            errors: 0,
            budget: None,
            exhausted: false,
            scratch: Vec::new(),
        };
        for path in cfg.paths {
            if is_glob(&path) {
                core.add_glob(&path)?;
                continue;
            }
            // A path that cannot be followed is reported (a notice), not
            // an error: the others are followed.
            core.add_name(path, true);
        }
        core.scan_globs(true);
        Ok(core)
    }

    /// The registry (ids, offsets, checkpoint).
    pub(crate) fn registry(&self) -> &Arc<Mutex<Registry>> {
        &self.registry
    }

    /// True when waits can be driven by inotify.
    pub(crate) fn uses_inotify(&self) -> bool {
        self.inotify.is_some()
    }

    /// The same core polling instead (the driver could not wait on the
    /// inotify descriptor).
    pub(crate) fn without_inotify(mut self) -> Core {
        self.inotify = None;
        self
    }

    /// The inotify descriptor to wait on, if any.
    pub(crate) fn inotify_fd(&self) -> Option<RawFd> {
        self.inotify.as_ref().map(|i| i.as_raw_fd())
    }

    /// Drops the queued inotify events (any event only means "check
    /// again"). With `None` the inotify fd is set up blocking-free by
    /// [`Inotify::read_events`], which never blocks.
    pub(crate) fn drain_events(&mut self) {
        if let Some(ino) = &mut self.inotify {
            loop {
                match ino.read_events(&mut self.inotify_buf) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
    }

    /// How long a driver may wait, at most, given its usual period: less
    /// when a rotated file is due to be let go sooner.
    pub(crate) fn timeout(&self, period: Duration) -> Duration {
        let now = Instant::now();
        let mut timeout = period;
        for w in &self.files {
            for r in &w.retired {
                let due = (r.last_data + self.rotate_grace).saturating_duration_since(now);
                timeout = timeout.min(due + Duration::from_millis(1));
            }
        }
        timeout
    }

    /// Paths reported as unreadable and lines skipped so far.
    pub(crate) fn errors(&self) -> u64 {
        self.errors
    }

    /// Tags blocks with keys (positioned lines) or name indexes.
    pub(crate) fn set_tag(&mut self, tag: Tag) {
        self.tag = tag;
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain data behind.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn say(&mut self, kind: NoticeKind, path: &Path, reason: Option<&str>, at: Option<u64>) {
        (self.notice)(Notice {
            kind,
            path,
            reason,
            byte_offset: at,
        });
    }

    /// Reports that file `i` cannot be followed, unless it was already
    /// reported for the same reason.
    fn report_bad(&mut self, i: usize, why: String) {
        if self.files[i].bad.as_deref() == Some(why.as_str()) {
            return;
        }
        self.errors += 1;
        let path = self.files[i].path.clone();
        self.say(NoticeKind::Unreadable, &path, Some(&why), None);
        self.files[i].bad = Some(why);
    }

    /// Starts following `path`; when it cannot be opened now it is
    /// reported (`-F` retries it, `-f` gives it up).
    fn add_name(&mut self, path: PathBuf, initial: bool) {
        let i = self.files.len();
        self.files.push(Watched {
            path,
            cur: None,
            retired: Vec::new(),
            gone: false,
            bad: None,
            dead: false,
            glob: None,
        });
        let path = self.files[i].path.clone();
        let opened = open_regular(&path);
        // What the checkpoint knows of the name, rotated files included.
        let mut resume = self.lock().resume(&path, opened.as_ref().ok());
        for n in &resume.notices {
            self.say(NoticeKind::Checkpoint, &path, Some(n), None);
        }
        for (file, key, at) in std::mem::take(&mut resume.retired) {
            match Open::new(file, key, self.max_line)
                .and_then(|mut o| o.place(Place::At(at)).map(|_| o))
            {
                Ok(o) => self.files[i].retired.push(o),
                Err(e) => {
                    let why = reason(&e);
                    self.lock().released(key);
                    self.report_bad(i, why);
                }
            }
        }
        let err = match opened {
            Ok(file) => {
                let placed = {
                    let mut reg = self.lock();
                    let (key, place) = match resume.cur {
                        Some(kp) => kp,
                        None => {
                            let key = reg.add(&path, &file);
                            // A file the checkpoint knew the name for is
                            // new since (rotated or truncated while copipe
                            // was down): all of it is new. A file seen for
                            // the first time at start-up starts as `-n`
                            // says; one that appears later, at its start.
                            let place = if initial && !resume.known {
                                Place::Start(self.start)
                            } else {
                                Place::At(0)
                            };
                            (key, place)
                        }
                    };
                    drop(reg);
                    Open::new(file, key, self.max_line).and_then(|mut o| {
                        let at = o.place(place)?;
                        Ok((o, at))
                    })
                };
                match placed {
                    Ok((o, at)) => {
                        self.lock().start_at(o.key, at);
                        self.files[i].cur = Some(o);
                        None
                    }
                    Err(e) => Some(with_path(e, &path)),
                }
            }
            Err(e) => Some(with_path(e, &path)),
        };
        if let Some(e) = err {
            let why = match e.kind() {
                crate::error::ErrorKind::Io(io) => reason(io),
                _ => e.to_string(),
            };
            self.report_bad(i, why);
            if self.mode == FollowMode::Descriptor {
                self.files[i].dead = true;
            }
        }
        self.watch(i);
    }

    /// Adds a glob; its matches are followed by name.
    fn add_glob(&mut self, path: &Path) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if is_glob(&dir) {
            return Err(Error::usage(format!(
                "{}: only the file name may hold a glob (`dir/*.log`), not the directory",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::usage(format!("{}: not a glob", path.display())))?;
        let matcher = GlobBuilder::new(name)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?
            .compile_matcher();
        if let Some(ino) = &mut self.inotify {
            let _ = ino
                .watches()
                .add(&dir, WatchMask::CREATE | WatchMask::MOVED_TO);
        }
        self.globs.push(Glob {
            dir,
            matcher,
            seen: HashSet::new(),
            bad: None,
        });
        Ok(())
    }

    /// Lists each glob's directory and follows the new matches, at most
    /// every [`RESCAN`] (a directory of many files is not listed at every
    /// step of a busy follow).
    fn scan_globs(&mut self, initial: bool) {
        if self.globs.is_empty() || (!initial && self.last_scan.elapsed() < RESCAN) {
            return;
        }
        self.last_scan = Instant::now();
        for g in 0..self.globs.len() {
            let dir = self.globs[g].dir.clone();
            let mut found = Vec::new();
            match fs::read_dir(&dir) {
                Ok(rd) => {
                    self.globs[g].bad = None;
                    for e in rd.filter_map(|e| e.ok()) {
                        let p = dir.join(e.file_name());
                        let glob = &self.globs[g];
                        if glob.seen.contains(&p) || !glob.matcher.is_match(e.file_name()) {
                            continue;
                        }
                        // A directory matching the glob is not a log.
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            continue;
                        }
                        found.push(p);
                    }
                }
                Err(e) => {
                    let why = reason(&e);
                    if self.globs[g].bad.as_deref() != Some(why.as_str()) {
                        self.errors += 1;
                        self.say(NoticeKind::Unreadable, &dir, Some(&why), None);
                        self.globs[g].bad = Some(why);
                    }
                }
            }
            found.sort();
            for p in found {
                self.globs[g].seen.insert(p.clone());
                // A file rotated to a name the glob also matches
                // (`app.log` -> `app.1.log`) is the file already being
                // read: following it again would repeat its lines.
                if let Ok(m) = fs::metadata(&p) {
                    if self.is_open((m.dev(), m.ino())) {
                        continue;
                    }
                }
                // A file that appears later is read from its start.
                self.add_name(p, initial);
                if let Some(w) = self.files.last_mut() {
                    w.glob = Some(g);
                }
            }
        }
    }

    /// True when the file `id` (device, inode) is open under some name.
    fn is_open(&self, id: (u64, u64)) -> bool {
        self.files.iter().any(|w| {
            w.cur.as_ref().is_some_and(|c| c.id == id) || w.retired.iter().any(|r| r.id == id)
        })
    }

    /// Watches file `i` (its current inode) and, by name, its directory.
    fn watch(&mut self, i: usize) {
        let mode = self.mode;
        let Some(ino) = &mut self.inotify else {
            return;
        };
        let w = &mut self.files[i];
        // A failed watch (the watch limit is reached) leaves the periodic
        // re-check, which still sees every change, only later.
        if let Some(cur) = &mut w.cur {
            if let Ok(wd) = ino.watches().add(
                &w.path,
                WatchMask::MODIFY
                    | WatchMask::ATTRIB
                    | WatchMask::CLOSE_WRITE
                    | WatchMask::MOVE_SELF
                    | WatchMask::DELETE_SELF,
            ) {
                cur.wd = Some(wd);
            }
        }
        if mode == FollowMode::Name {
            let dir = match w.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let _ = ino.watches().add(
                dir,
                WatchMask::CREATE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE
                    | WatchMask::ATTRIB,
            );
        }
    }

    /// True when nothing is left to follow (`-f`, every file given up).
    pub(crate) fn all_dead(&self) -> bool {
        self.globs.is_empty() && !self.files.is_empty() && self.files.iter().all(|w| w.dead)
    }

    /// Reads every file to its current end (or `max_reads` reads of at most
    /// a chunk each) and handles what happened to each. Returns `Stop` when
    /// the target asked to stop, and whether the budget ran out (more data
    /// may be waiting: step again before waiting).
    pub(crate) fn step<S>(
        &mut self,
        target: &mut S,
        max_reads: Option<usize>,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<(Flow, bool), Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        self.budget = max_reads;
        self.exhausted = false;
        self.scan_globs(false);
        for i in 0..self.files.len() {
            if stop() || self.check(i, target, stop)?.is_stop() {
                return Ok((Flow::Stop, false));
            }
            if self.exhausted {
                return Ok((Flow::Continue, true));
            }
        }
        if self.mode == FollowMode::Descriptor && self.all_dead() {
            return Ok((Flow::Stop, false));
        }
        Ok((Flow::Continue, false))
    }

    /// Reads `open` to its current end, sending complete lines.
    fn drain<S>(
        &mut self,
        i: usize,
        which: Which,
        target: &mut S,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<Flow, DrainErr>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        let tag = self.tag;
        let max_line = self.max_line;
        loop {
            if self.exhausted {
                return Ok(Flow::Continue);
            }
            let Watched {
                path, cur, retired, ..
            } = &mut self.files[i];
            let open = match which {
                Which::Cur => cur.as_mut(),
                Which::Retired(r) => retired.get_mut(r),
            };
            let Some(open) = open else {
                return Ok(Flow::Continue);
            };
            if open.skipping {
                let found = skip_long(open, &mut self.scratch)
                    .map_err(|e| DrainErr::Read(with_path(e, path)))?;
                if !found {
                    return Ok(Flow::Continue);
                }
            }
            open.lb.set_file(match tag {
                Tag::Name => i,
                Tag::Key => open.key,
            });
            let n = match open.lb.read_from(&mut open.file) {
                Ok(n) => n,
                Err(e) if is_too_long(&e) => {
                    // The buffer holds exactly `max_line` bytes of the line
                    // (it never grows past the maximum), all read from
                    // `pos - max_line` on.
                    let at = open.pos.saturating_sub(max_line as u64);
                    open.skipping = true;
                    let path = path.clone();
                    self.errors += 1;
                    let msg = format!(
                        "line at byte offset {at} is longer than {max_line} bytes \
                         (the maximum line length): skipped"
                    );
                    // Lines before it go out before the notice about it.
                    target.flush().map_err(DrainErr::Target)?;
                    self.say(NoticeKind::LongLine, &path, Some(&msg), Some(at));
                    continue;
                }
                Err(e) => return Err(DrainErr::Read(e.with_path(path))),
            };
            if n == 0 {
                return Ok(Flow::Continue);
            }
            open.pos += n as u64;
            open.last_data = Instant::now();
            if open.lb.emit(target).map_err(DrainErr::Target)?.is_stop() || stop() {
                return Ok(Flow::Stop);
            }
            if let Some(b) = &mut self.budget {
                *b = b.saturating_sub(1);
                if *b == 0 {
                    self.exhausted = true;
                }
            }
        }
    }

    /// Lets go of an open file: its held partial line is sent, its key
    /// leaves the registry, its watch is removed.
    fn release<S>(&mut self, mut old: Open, target: &mut S) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        if let (Some(ino), Some(wd)) = (&mut self.inotify, old.wd.take()) {
            // It may be gone already (the file was deleted).
            let _ = ino.watches().remove(wd);
        }
        let flow = if old.skipping {
            Flow::Continue
        } else {
            old.lb.finish(target).map_err(Fail::Target)?
        };
        self.lock().released(old.key);
        Ok(flow)
    }

    /// A read of file `i` failed: report it; `-f` gives the name up, `-F`
    /// retries it.
    fn read_failed<S>(
        &mut self,
        i: usize,
        which: Which,
        e: Error,
        target: &mut S,
    ) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        let why = match e.kind() {
            crate::error::ErrorKind::Io(io) => reason(io),
            _ => e.to_string(),
        };
        let old = match which {
            Which::Cur => self.files[i].cur.take(),
            Which::Retired(r) => Some(self.files[i].retired.remove(r)),
        };
        target.flush().map_err(Fail::Target)?;
        self.report_bad(i, why);
        if let Some(old) = old {
            if self.release(old, target)?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        if self.mode == FollowMode::Descriptor && self.files[i].cur.is_none() {
            self.files[i].dead = true;
        }
        Ok(Flow::Continue)
    }

    /// Reads file `i` (its rotated-away files first), handling truncation
    /// and, by name, replacement.
    fn check<S>(
        &mut self,
        i: usize,
        target: &mut S,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        if self.files[i].dead {
            return Ok(Flow::Continue);
        }
        // Rotated-away files: late lines first, then let go after the grace.
        let mut r = 0;
        while r < self.files[i].retired.len() {
            match self.drain(i, Which::Retired(r), target, stop) {
                Ok(Flow::Stop) => return Ok(Flow::Stop),
                Ok(Flow::Continue) => {}
                Err(DrainErr::Read(e)) => {
                    if self.read_failed(i, Which::Retired(r), e, target)?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                    continue;
                }
                Err(DrainErr::Target(e)) => return Err(Fail::Target(e)),
            }
            if self.exhausted {
                return Ok(Flow::Continue);
            }
            if self.files[i].retired[r].last_data.elapsed() >= self.rotate_grace {
                let old = self.files[i].retired.remove(r);
                if self.release(old, target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
            } else {
                r += 1;
            }
        }
        if self.files[i].cur.is_some() {
            match self.drain(i, Which::Cur, target, stop) {
                Ok(Flow::Stop) => return Ok(Flow::Stop),
                Ok(Flow::Continue) => {}
                Err(DrainErr::Read(e)) => return self.read_failed(i, Which::Cur, e, target),
                Err(DrainErr::Target(e)) => return Err(Fail::Target(e)),
            }
            if self.exhausted {
                return Ok(Flow::Continue);
            }
            if self.truncated(i, target, stop)?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        if self.mode == FollowMode::Name {
            return self.check_name(i, target, stop);
        }
        Ok(Flow::Continue)
    }

    /// Has the open file of `i` shrunk below the reading position
    /// (`copytruncate`)? Then its held partial line is sent, it is said,
    /// and reading restarts at 0 under a new id.
    fn truncated<S>(
        &mut self,
        i: usize,
        target: &mut S,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        let w = &mut self.files[i];
        let Some(cur) = &mut w.cur else {
            return Ok(Flow::Continue);
        };
        let len = match cur.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                let e = with_path(e, &w.path);
                return self.read_failed(i, Which::Cur, e, target);
            }
        };
        if len >= cur.pos {
            return Ok(Flow::Continue);
        }
        // Lines before the event go out before the notice about it.
        target.flush().map_err(Fail::Target)?;
        let path = w.path.clone();
        self.say(NoticeKind::Truncated, &path, None, None);
        let w = &mut self.files[i];
        let Some(cur) = &mut w.cur else {
            return Ok(Flow::Continue);
        };
        if !cur.skipping && cur.lb.finish(target).map_err(Fail::Target)?.is_stop() {
            return Ok(Flow::Stop);
        }
        cur.skipping = false;
        if let Err(e) = cur.file.seek(SeekFrom::Start(0)) {
            let e = with_path(e, &w.path);
            return self.read_failed(i, Which::Cur, e, target);
        }
        cur.pos = 0;
        cur.lb.reset(0);
        {
            let reg = &self.registry;
            let mut reg = reg.lock().unwrap_or_else(|e| e.into_inner());
            cur.key = reg.truncated(cur.key, &cur.file);
        }
        match self.drain(i, Which::Cur, target, stop) {
            Ok(flow) => Ok(flow),
            Err(DrainErr::Read(e)) => self.read_failed(i, Which::Cur, e, target),
            Err(DrainErr::Target(e)) => Err(Fail::Target(e)),
        }
    }

    /// By name: has the name gone, appeared, turned into something that
    /// is not a file, or been pointed at a new file?
    fn check_name<S>(
        &mut self,
        i: usize,
        target: &mut S,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        let path = self.files[i].path.clone();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(_) if self.files[i].glob.is_some() => {
                // A name found by a glob is gone: its file is kept a while
                // for late lines, then the name is dropped.
                if let Some(old) = self.files[i].cur.take() {
                    if self.retire(i, old, target)?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                }
                if self.files[i].retired.is_empty() {
                    let w = &mut self.files[i];
                    w.dead = true;
                    if let Some(g) = w.glob {
                        self.globs[g].seen.remove(&path);
                    }
                }
                return Ok(Flow::Continue);
            }
            Err(e) => {
                let w = &mut self.files[i];
                if w.cur.is_some() {
                    if !w.gone {
                        w.gone = true;
                        // Lines before the event go out before the notice.
                        target.flush().map_err(Fail::Target)?;
                        self.say(NoticeKind::Gone, &path, None, None);
                    }
                } else {
                    target.flush().map_err(Fail::Target)?;
                    self.report_bad(i, reason(&e));
                }
                return Ok(Flow::Continue);
            }
        };
        let id = (meta.dev(), meta.ino());
        if self.files[i].cur.as_ref().is_some_and(|c| c.id == id) {
            return Ok(Flow::Continue);
        }
        let opened = if meta.is_file() {
            File::open(&path).map_err(|e| reason(&e))
        } else {
            Err(not_a_file(&meta))
        };
        let file = match opened {
            Ok(f) => f,
            Err(why) => {
                // The old file (if any) keeps being read for late lines.
                if let Some(old) = self.files[i].cur.take() {
                    if self.retire(i, old, target)?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                }
                target.flush().map_err(Fail::Target)?;
                self.report_bad(i, why);
                return Ok(Flow::Continue);
            }
        };
        let key = self.lock().add(&path, &file);
        let mut new = match Open::new(file, key, self.max_line) {
            Ok(o) => o,
            Err(e) => {
                self.lock().released(key);
                self.report_bad(i, reason(&e));
                return Ok(Flow::Continue);
            }
        };
        let kind = match self.files[i].cur.take() {
            Some(old) => {
                // Rotation: everything in the old file comes first.
                if self.retire(i, old, target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
                NoticeKind::Replaced
            }
            None => NoticeKind::Appeared,
        };
        let w = &mut self.files[i];
        w.gone = false;
        w.bad = None;
        target.flush().map_err(Fail::Target)?;
        self.say(kind, &path, None, None);
        new.lb.reset(0);
        self.lock().start_at(key, 0);
        self.files[i].cur = Some(new);
        self.watch(i);
        match self.drain(i, Which::Cur, target, stop) {
            Ok(flow) => Ok(flow),
            Err(DrainErr::Read(e)) => self.read_failed(i, Which::Cur, e, target),
            Err(DrainErr::Target(e)) => Err(Fail::Target(e)),
        }
    }

    /// Drains `old` (the file a name pointed to before) and keeps it open
    /// for late lines; the oldest beyond [`MAX_RETIRED`] is let go.
    fn retire<S>(&mut self, i: usize, old: Open, target: &mut S) -> std::result::Result<Flow, Fail>
    where
        S: for<'a> Stage<Block<'a>> + ?Sized,
    {
        self.files[i].retired.push(old);
        let r = self.files[i].retired.len() - 1;
        let never = || false;
        match self.drain(i, Which::Retired(r), target, &never) {
            Ok(Flow::Stop) => return Ok(Flow::Stop),
            Ok(Flow::Continue) => {}
            Err(DrainErr::Read(e)) => {
                if self.read_failed(i, Which::Retired(r), e, target)?.is_stop() {
                    return Ok(Flow::Stop);
                }
            }
            Err(DrainErr::Target(e)) => return Err(Fail::Target(e)),
        }
        if self.files[i].retired.len() > MAX_RETIRED {
            let oldest = self.files[i].retired.remove(0);
            return self.release(oldest, target);
        }
        Ok(Flow::Continue)
    }
}

/// Which open file of a name.
#[derive(Debug, Clone, Copy)]
enum Which {
    Cur,
    Retired(usize),
}

/// Opens `path` if it is a regular file (a directory, FIFO or device
/// cannot be followed: a FIFO would block the open).
fn open_regular(path: &Path) -> io::Result<File> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::other(not_a_file(&meta)));
    }
    File::open(path)
}

fn not_a_file(meta: &fs::Metadata) -> String {
    if meta.is_dir() {
        "Is a directory".to_string()
    } else {
        "not a regular file".to_string()
    }
}

/// True for the line buffer's "line longer than the maximum" error.
fn is_too_long(e: &Error) -> bool {
    matches!(e.kind(), crate::error::ErrorKind::Io(io) if io.kind() == io::ErrorKind::InvalidData)
}

/// Drops the rest of an over-long line: reads up to its newline and
/// positions the file and the line buffer just after it. Returns false at
/// the end of the file, still inside the line.
fn skip_long(open: &mut Open, scratch: &mut Vec<u8>) -> io::Result<bool> {
    scratch.resize(64 * 1024, 0);
    loop {
        let n = match open.file.read(scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(false);
        }
        open.last_data = Instant::now();
        if let Some(nl) = memchr(b'\n', &scratch[..n]) {
            let after = open.pos + nl as u64 + 1;
            open.file.seek(SeekFrom::Start(after))?;
            open.pos = after;
            open.lb.reset(after);
            open.skipping = false;
            return Ok(true);
        }
        open.pos += n as u64;
    }
}
