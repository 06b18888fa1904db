//! I/O readiness: the table of file descriptors the poller watches, and
//! [`read_wait`] / [`write_wait`] (the seed's `ReadWait` / `WriteWait`).
//!
//! # How readiness is tracked
//!
//! Every watched fd is registered once with epoll, edge-triggered, for both
//! directions, with its number and generation as token (the generation
//! tells an event of a closed fd from one of the next fd given its
//! number, since the scheduler hands events out lazily). The table keeps, per fd and
//! direction, a *ready* bit (set by an event) and the tasks waiting for it.
//!
//! - The socket layer tries the operation first (unless the bit is known
//!   to be clear); on `WouldBlock` it clears the bit and waits for the next
//!   edge. A read shorter than the buffer (or a short write) also clears
//!   the bit, since it drained (filled) the socket buffer, which saves the
//!   system call that would only say `WouldBlock`. A busy connection costs
//!   no `epoll_ctl` at all, one event per edge.
//! - The raw [`read_wait`] / [`write_wait`] calls mean "wait until the fd is
//!   ready *now*", which is what the seed's `select` gives. They clear the
//!   bit and re-arm the registration (`EPOLL_CTL_MOD`), which makes the
//!   kernel re-check the fd and queue an event if it is ready already:
//!   the oneshot interest of `ReadWait` / `WriteWait`, one `epoll_ctl` per
//!   wait.
//!
//! The scheduler is single-threaded and only handles events between task
//! polls, so "try, see `WouldBlock`, clear the bit" cannot race with an
//! event. The crate forbids `unsafe`; this file uses mio's safe
//! `SourceFd`.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::scheduler::{try_with_core, with_core, Core};
use super::task::Tid;

/// Which way a task waits on a file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::Read => 0,
            Dir::Write => 1,
        }
    }
}

/// A readiness bit: an edge (data, room, a connection) was reported since
/// the last operation that would block.
const EDGE: u8 = 1;
/// A readiness bit: the peer hung up this direction, or the socket has an
/// error. Unlike [`EDGE`] it is never cleared by an operation, since a
/// short read that drains the data does not consume an end of stream that
/// came with it (epoll reports both in one edge, and none after).
const CLOSED: u8 = 2;

/// "No task" in [`Entry::first`]: sequence numbers start at 1.
const NO_TID: Tid = Tid { seq: 0, index: 0 };

/// What the scheduler knows of one fd.
///
/// 32 bytes, aligned so that an entry never straddles two cache lines:
/// dispatching an event and the woken task's next operation touch one
/// line of the table. The waiters are nearly always zero or one per
/// direction, kept inline in `first`; further ones (several tasks waiting
/// on one fd the same way) go to `more`, allocated only then.
#[repr(align(32))]
struct Entry {
    /// Counts the lives of this fd number: bumped each time the fd is
    /// forgotten (closed) or reset (reopened), and part of the poller
    /// token, so that an event of an earlier life that is still waiting
    /// in the scheduler's buffer is recognised and ignored.
    generation: u32,
    registered: bool,
    /// Readiness by [`Dir::index`]: [`EDGE`] and [`CLOSED`] bits.
    ready: [u8; 2],
    /// The first waiter in each direction, or [`NO_TID`].
    first: [Tid; 2],
    more: Option<Box<[Vec<Tid>; 2]>>,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 32);

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            generation: 0,
            registered: false,
            ready: [0; 2],
            first: [NO_TID; 2],
            more: None,
        }
    }
}

impl Entry {
    /// True if an operation in `dir` would not block, as far as known.
    fn is_ready(&self, dir: Dir) -> bool {
        self.ready[dir.index()] != 0
    }

    /// Forgets the edge in `dir`: an operation said (or showed) that it
    /// would block. A hang-up or error stays: it does not go away, and
    /// no new edge would announce it again.
    fn clear(&mut self, dir: Dir) {
        self.ready[dir.index()] &= !EDGE;
    }

    /// How many tasks wait in `dir`.
    fn count(&self, dir: Dir) -> usize {
        let d = dir.index();
        usize::from(self.first[d] != NO_TID) + self.more.as_ref().map_or(0, |m| m[d].len())
    }

    /// Adds a waiter in `dir` unless present; true if added.
    fn add(&mut self, dir: Dir, tid: Tid) -> bool {
        let d = dir.index();
        if self.first[d] == tid {
            return false;
        }
        if self.first[d] == NO_TID {
            self.first[d] = tid;
            return true;
        }
        let more = &mut self.more.get_or_insert_with(Box::default)[d];
        if more.contains(&tid) {
            return false;
        }
        more.push(tid);
        true
    }

    /// Removes a waiter in `dir`; true if it was there.
    fn remove(&mut self, dir: Dir, tid: Tid) -> bool {
        let d = dir.index();
        let more = self.more.as_mut().map(|m| &mut m[d]);
        if self.first[d] == tid {
            self.first[d] = more.and_then(Vec::pop).unwrap_or(NO_TID);
            return true;
        }
        let Some(more) = more else { return false };
        match more.iter().position(|t| *t == tid) {
            Some(pos) => {
                more.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    /// Takes every waiter in `dir` out, leaving none.
    fn take_all(&mut self, dir: Dir) -> impl Iterator<Item = Tid> + '_ {
        let d = dir.index();
        let first = std::mem::replace(&mut self.first[d], NO_TID);
        let more = self.more.as_mut().map(|m| m[d].drain(..));
        (first != NO_TID)
            .then_some(first)
            .into_iter()
            .chain(more.into_iter().flatten())
    }
}

/// The poller token of `fd` in its `generation`: the fd number in the low
/// 32 bits, the generation above (on 64-bit targets; elsewhere the
/// generation is left out and only the fd number is checked).
fn token(fd: usize, generation: u32) -> Token {
    Token(fd | (generation as usize).checked_shl(32).unwrap_or(0))
}

/// The fd number and generation in a poller token (see [`token`]).
fn untoken(t: Token) -> (usize, Option<u32>) {
    let fd = t.0 & u32::MAX as usize;
    let generation = t.0.checked_shr(32).and_then(|g| u32::try_from(g).ok());
    (fd, generation.filter(|_| usize::BITS > 32))
}

/// One poller event, as the scheduler keeps it until it is dispatched:
/// the token and which directions it makes ready. Hang-up and error count
/// as ready both ways, so that waiters wake and see the end of file or
/// the error from their next operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoEvent {
    token: Token,
    /// Readiness bits ([`EDGE`], [`CLOSED`]) by [`Dir::index`].
    ready: [u8; 2],
}

impl IoEvent {
    pub(crate) fn new(ev: &mio::event::Event) -> IoEvent {
        let broken = ev.is_error();
        IoEvent {
            token: ev.token(),
            ready: [
                bits(ev.is_readable(), ev.is_read_closed() || broken),
                bits(ev.is_writable(), ev.is_write_closed() || broken),
            ],
        }
    }
}

/// The readiness bits of one direction of an event. A hang-up or error
/// makes the direction ready too, so that waiters wake and see the end
/// of file or the error from their next operation.
fn bits(edge: bool, closed: bool) -> u8 {
    match (edge, closed) {
        (_, true) => EDGE | CLOSED,
        (true, false) => EDGE,
        (false, false) => 0,
    }
}

/// The fds watched by one scheduler, indexed by fd number.
pub(crate) struct IoTable {
    registry: Registry,
    entries: Vec<Entry>,
    registered: usize,
    waiters: usize,
}

impl IoTable {
    pub(crate) fn new(registry: Registry) -> IoTable {
        IoTable {
            registry,
            entries: Vec::new(),
            registered: 0,
            waiters: 0,
        }
    }

    /// How many tasks wait for an fd.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters
    }

    /// True if any fd was ever registered (else a zero-timeout poll can be
    /// skipped).
    pub(crate) fn is_registered(&self) -> bool {
        self.registered > 0
    }

    fn entry(&mut self, fd: RawFd) -> io::Result<&mut Entry> {
        let i = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, Entry::default);
        }
        Ok(&mut self.entries[i])
    }

    /// Makes `tid` wait for `fd` to be ready in `dir`. With `rearm`, the
    /// registration is renewed so the kernel reports current readiness.
    fn arm(&mut self, fd: RawFd, dir: Dir, tid: Tid, rearm: bool) -> io::Result<()> {
        let registry = &self.registry;
        let i = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, Entry::default);
        }
        let e = &mut self.entries[i];
        if rearm {
            // The kernel reports the fd's state afresh, hang-up included.
            e.ready[dir.index()] = 0;
        } else {
            e.clear(dir);
        }
        let interest = Interest::READABLE | Interest::WRITABLE;
        let token = token(i, e.generation);
        if !e.registered {
            match registry.register(&mut SourceFd(&fd), token, interest) {
                Ok(()) => {}
                // Registered under an earlier life of this fd number (the
                // fd was closed and the number reused while a dup kept the
                // old registration): renew it instead.
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                    registry.reregister(&mut SourceFd(&fd), token, interest)?
                }
                Err(err) => return Err(err),
            }
            e.registered = true;
            self.registered += 1;
        } else if rearm {
            match registry.reregister(&mut SourceFd(&fd), token, interest) {
                Ok(()) => {}
                // The fd was closed and its number reused without telling
                // us: epoll forgot it, so register it afresh.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    registry.register(&mut SourceFd(&fd), token, interest)?
                }
                Err(err) => return Err(err),
            }
        }
        if e.add(dir, tid) {
            self.waiters += 1;
        }
        Ok(())
    }

    /// One step of a non-blocking operation (see [`poll_op`]), with the
    /// table borrowed once for the whole step.
    fn poll_op<R>(
        &mut self,
        core: &Core,
        fd: RawFd,
        dir: Dir,
        waiting: &mut Option<Tid>,
        op: &mut impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        let Ok(i) = usize::try_from(fd) else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "negative fd",
            )));
        };
        loop {
            let blocked = self
                .entries
                .get(i)
                .is_some_and(|e| e.registered && !e.is_ready(dir));
            if !blocked {
                let result = op();
                let e = self.entries.get_mut(i).filter(|e| e.registered);
                match result {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if let Some(e) = e {
                            e.clear(dir);
                        }
                    }
                    result => {
                        if let (Some(e), Ok(r)) = (e, &result) {
                            if drained(r) {
                                e.clear(dir);
                            }
                        }
                        if let Some(tid) = waiting.take() {
                            self.cancel(fd, dir, tid);
                        }
                        return Poll::Ready(result);
                    }
                }
            }
            // Wait for the next edge (registering the fd on first use).
            let tid = core.current();
            return match self.arm(fd, dir, tid, false) {
                Ok(()) => {
                    *waiting = Some(tid);
                    Poll::Pending
                }
                Err(err) => Poll::Ready(Err(err)),
            };
        }
    }

    /// Ready if `fd` is registered and its `dir` bit is set; else waits
    /// for the next edge (registering the fd on first use).
    fn poll_ready(
        &mut self,
        core: &Core,
        fd: RawFd,
        dir: Dir,
        waiting: &mut Option<Tid>,
    ) -> Poll<io::Result<()>> {
        let ready = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get(i))
            .is_some_and(|e| e.registered && e.is_ready(dir));
        if ready {
            if let Some(tid) = waiting.take() {
                self.cancel(fd, dir, tid);
            }
            return Poll::Ready(Ok(()));
        }
        let tid = core.current();
        match self.arm(fd, dir, tid, false) {
            Ok(()) => {
                *waiting = Some(tid);
                Poll::Pending
            }
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn is_ready(&mut self, fd: RawFd, dir: Dir) -> bool {
        match self.entry(fd) {
            Ok(e) => e.is_ready(dir),
            Err(_) => true,
        }
    }

    /// Adds `tid` to the waiters again after a spurious wake.
    fn relist(&mut self, fd: RawFd, dir: Dir, tid: Tid) {
        if let Ok(e) = self.entry(fd) {
            if e.add(dir, tid) {
                self.waiters += 1;
            }
        }
    }

    fn cancel(&mut self, fd: RawFd, dir: Dir, tid: Tid) {
        if let Ok(e) = self.entry(fd) {
            if e.remove(dir, tid) {
                self.waiters -= 1;
            }
        }
    }

    /// Handles one poller event: sets the ready bits and wakes the waiters.
    /// An event for an earlier life of the fd number (closed since the
    /// event was read from the poller) is ignored.
    pub(crate) fn on_event(&mut self, ev: IoEvent, core: &Core) {
        let (fd, generation) = untoken(ev.token);
        let Some(e) = self.entries.get_mut(fd) else {
            return;
        };
        if generation.is_some_and(|g| g != e.generation) {
            return;
        }
        for dir in [Dir::Read, Dir::Write] {
            let bits = ev.ready[dir.index()];
            if bits != 0 {
                e.ready[dir.index()] |= bits;
                self.waiters -= e.count(dir);
                for tid in e.take_all(dir) {
                    core.wake(tid);
                }
            }
        }
    }

    /// The first task an event would wake, if any (for
    /// `Scheduler::look_ahead`).
    pub(crate) fn first_waiter(&self, ev: IoEvent) -> Option<Tid> {
        let (fd, _) = untoken(ev.token);
        let e = self.entries.get(fd)?;
        [Dir::Read, Dir::Write]
            .into_iter()
            .filter(|d| ev.ready[d.index()] != 0)
            .map(|d| e.first[d.index()])
            .find(|t| *t != NO_TID)
    }

    /// Loads the entry an event is for (for `Scheduler::look_ahead`).
    pub(crate) fn touch(&self, ev: IoEvent) {
        let (fd, _) = untoken(ev.token);
        std::hint::black_box(self.entries.get(fd).map(|e| e.first[0]));
    }

    /// Starts a fresh entry for a newly opened fd (its number may have
    /// been used before).
    pub(crate) fn reset(&mut self, fd: RawFd) {
        if let Ok(e) = self.entry(fd) {
            let old = std::mem::take(e);
            e.generation = old.generation.wrapping_add(1);
            if old.registered {
                self.registered -= 1;
            }
            self.waiters -= old.count(Dir::Read) + old.count(Dir::Write);
        }
    }

    /// Stops watching an fd that is about to be closed. Tasks still waiting
    /// on it are woken (they will see the error of their next operation).
    pub(crate) fn forget(&mut self, fd: RawFd, core: &Core) {
        let Ok(slot) = self.entry(fd) else { return };
        let e = std::mem::take(slot);
        slot.generation = e.generation.wrapping_add(1);
        if e.registered {
            // The fd is still open here; an error means it was never
            // registered in this epoll after all, which is what we want.
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            self.registered -= 1;
        }
        self.waiters -= e.count(Dir::Read) + e.count(Dir::Write);
        let mut e = e;
        for dir in [Dir::Read, Dir::Write] {
            for tid in e.take_all(dir) {
                core.wake(tid);
            }
        }
    }
}

/// Forgets `fd` on the running scheduler, if any (for destructors).
pub(crate) fn forget_fd(fd: RawFd) {
    try_with_core(|core| {
        if let Ok(mut io) = core.io.try_borrow_mut() {
            io.forget(fd, core);
        }
    });
}

/// Marks `fd` as new on the running scheduler.
pub(crate) fn reset_fd(fd: RawFd) {
    try_with_core(|core| core.io.borrow_mut().reset(fd));
}

/// Waits until `fd` is readable (the seed's `ReadWait`).
///
/// Returns when a read on `fd` would not block: data, end of file, or an
/// error is there to be read. The fd should be non-blocking; the task does
/// the read itself afterwards. Works on any pollable fd (sockets, pipes,
/// terminals, inotify); not on regular files, which epoll refuses.
///
/// # Errors
///
/// If epoll refuses the fd (`EPERM` for a regular file, `EBADF`).
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use copipe::sched::{self, Scheduler};
///
/// // A socket pair is a bidirectional pipe.
/// let (mut rx, mut tx) = std::os::unix::net::UnixStream::pair()?;
/// let mut s = Scheduler::new()?;
/// s.spawn(async move {
///     sched::read_wait(rx.as_raw_fd()).await?;
///     let mut buf = [0; 5];
///     rx.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"hello");
///     Ok::<(), copipe::Error>(())
/// });
/// s.spawn(async move { tx.write_all(b"hello") });
/// s.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_wait(fd: RawFd) -> IoWait {
    IoWait::new(fd, Dir::Read, true)
}

/// Waits until `fd` is writable (the seed's `WriteWait`).
///
/// # Errors
///
/// As [`read_wait`].
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use std::os::fd::AsRawFd;
/// use copipe::sched::{self, Scheduler};
///
/// let (_rx, tx) = std::os::unix::net::UnixStream::pair()?;
/// let mut s = Scheduler::new()?;
/// s.spawn(async move { sched::write_wait(tx.as_raw_fd()).await });
/// s.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_wait(fd: RawFd) -> IoWait {
    IoWait::new(fd, Dir::Write, true)
}

/// Waits for the next readiness edge of a registered fd, after an
/// operation said `WouldBlock` (no re-arm).
pub(crate) fn edge_wait(fd: RawFd, dir: Dir) -> IoWait {
    IoWait::new(fd, dir, false)
}

/// Runs a non-blocking operation until it does not say `WouldBlock`,
/// waiting for readiness in between (the body of the seed's `Accept`,
/// `Recv` and `Send`).
///
/// `drained` tells from a result that the socket buffer was emptied (a
/// read shorter than the buffer) or filled (a short write): the ready bit
/// is then cleared at once, and the next operation waits for the next
/// edge instead of paying a system call to hear `WouldBlock` (as tokio
/// does; with edge-triggered epoll, new data after the drain always
/// brings a new edge).
pub(crate) async fn io_op<R>(
    fd: RawFd,
    dir: Dir,
    mut op: impl FnMut() -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> io::Result<R> {
    if known_not_ready(fd, dir) {
        edge_wait(fd, dir).await?;
    }
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => edge_wait(fd, dir).await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(r) => {
                if drained(&r) {
                    clear_ready(fd, dir);
                }
                return Ok(r);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One step of a non-blocking operation, for the hand-written socket
/// futures (the body of [`io_op`] as a poll function): tries `op` unless
/// the fd is known not to be ready; on `WouldBlock` registers the task as
/// a waiter for the next edge (recording it in `waiting`) and returns
/// `Pending`. `drained` is as for [`io_op`].
///
/// The scheduler's fd table is looked up once per step; a future in
/// this style is a few words (the socket, the buffer, `waiting`), where
/// the same logic as nested `async fn`s took five cache lines of task
/// state, each a cache miss when a woken task runs.
///
/// # Panics
///
/// If the operation would block outside a task of a running
/// [`Scheduler`](super::Scheduler).
pub(crate) fn poll_op<R>(
    fd: RawFd,
    dir: Dir,
    waiting: &mut Option<Tid>,
    mut op: impl FnMut() -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> Poll<io::Result<R>> {
    let step = try_with_core(|core| {
        core.io
            .borrow_mut()
            .poll_op(core, fd, dir, waiting, &mut op, &drained)
    });
    if let Some(step) = step {
        return step;
    }
    // No scheduler: the operation may still succeed at once.
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Panics with the "outside a running Scheduler" message.
                with_core(|_| ());
                return Poll::Ready(Err(e));
            }
            result => return Poll::Ready(result),
        }
    }
}

/// Waits until `fd` is known ready in `dir` (its bit set by an edge since
/// the last operation that would have blocked), without doing the
/// operation: the step of [`Socket::readable`](super::Socket::readable).
///
/// # Panics
///
/// Outside a task of a running [`Scheduler`](super::Scheduler).
pub(crate) fn poll_ready(fd: RawFd, dir: Dir, waiting: &mut Option<Tid>) -> Poll<io::Result<()>> {
    with_core(|core| core.io.borrow_mut().poll_ready(core, fd, dir, waiting))
}

/// A non-blocking operation done at once, keeping the fd's ready bit
/// right: cleared on `WouldBlock`, and when `drained` says the operation
/// emptied (filled) the socket buffer.
pub(crate) fn try_op<R>(
    fd: RawFd,
    dir: Dir,
    mut op: impl FnMut() -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> io::Result<R> {
    let result = loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => break r,
        }
    };
    let clear = match &result {
        Ok(r) => drained(r),
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    if clear {
        clear_ready(fd, dir);
    }
    result
}

/// Removes the waiter a dropped [`poll_op`] future left behind, if any.
pub(crate) fn cancel_op(fd: RawFd, dir: Dir, waiting: Option<Tid>) {
    if let Some(tid) = waiting {
        try_with_core(|core| {
            if let Ok(mut io) = core.io.try_borrow_mut() {
                io.cancel(fd, dir, tid);
            }
        });
    }
}

/// True if `fd` is registered and its `dir` bit is clear: an operation
/// now would only say `WouldBlock`.
fn known_not_ready(fd: RawFd, dir: Dir) -> bool {
    try_with_core(|core| {
        let mut io = core.io.borrow_mut();
        match io.entry(fd) {
            Ok(e) => e.registered && !e.is_ready(dir),
            Err(_) => false,
        }
    })
    .unwrap_or(false)
}

fn clear_ready(fd: RawFd, dir: Dir) {
    try_with_core(|core| {
        if let Ok(e) = core.io.borrow_mut().entry(fd) {
            if e.registered {
                e.clear(dir);
            }
        }
    });
}

/// The future of [`read_wait`] and [`write_wait`].
#[must_use = "waiting does nothing unless awaited"]
pub struct IoWait {
    fd: RawFd,
    dir: Dir,
    rearm: bool,
    waiting: Option<Tid>,
}

impl fmt::Debug for IoWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoWait")
            .field("fd", &self.fd)
            .field("dir", &self.dir)
            .finish()
    }
}

impl IoWait {
    fn new(fd: RawFd, dir: Dir, rearm: bool) -> IoWait {
        IoWait {
            fd,
            dir,
            rearm,
            waiting: None,
        }
    }
}

impl Future for IoWait {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (fd, dir, rearm) = (self.fd, self.dir, self.rearm);
        match self.waiting {
            None => {
                let tid = with_core(|core| -> io::Result<Tid> {
                    let tid = core.current();
                    core.io.borrow_mut().arm(fd, dir, tid, rearm)?;
                    Ok(tid)
                })?;
                self.waiting = Some(tid);
                Poll::Pending
            }
            Some(tid) => with_core(|core| {
                let mut io = core.io.borrow_mut();
                if io.is_ready(fd, dir) {
                    io.cancel(fd, dir, tid);
                    drop(io);
                    self.waiting = None;
                    Poll::Ready(Ok(()))
                } else {
                    io.relist(fd, dir, tid);
                    Poll::Pending
                }
            }),
        }
    }
}

impl Drop for IoWait {
    fn drop(&mut self) {
        if let Some(tid) = self.waiting {
            try_with_core(|core| {
                if let Ok(mut io) = core.io.try_borrow_mut() {
                    io.cancel(self.fd, self.dir, tid);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::sched::task::boxed;
    use crate::sched::Scheduler;

    fn tid(seq: u32) -> Tid {
        Tid { seq, index: seq }
    }

    #[test]
    fn entry_keeps_one_waiter_inline_and_the_rest_aside() {
        let mut e = Entry::default();
        assert!(e.add(Dir::Read, tid(1)));
        assert!(!e.add(Dir::Read, tid(1)), "no duplicates");
        assert!(e.more.is_none(), "one waiter needs no allocation");
        assert!(e.add(Dir::Read, tid(2)));
        assert!(e.add(Dir::Read, tid(3)));
        assert!(!e.add(Dir::Read, tid(3)), "no duplicates aside either");
        assert!(e.add(Dir::Write, tid(2)));
        assert_eq!((e.count(Dir::Read), e.count(Dir::Write)), (3, 1));
        // Removing the inline waiter moves one from aside into its place.
        assert!(e.remove(Dir::Read, tid(1)));
        assert!(!e.remove(Dir::Read, tid(1)));
        assert_eq!(e.count(Dir::Read), 2);
        let mut woken: Vec<Tid> = e.take_all(Dir::Read).collect();
        woken.sort();
        assert_eq!(woken, [tid(2), tid(3)]);
        assert_eq!(e.count(Dir::Read), 0);
        assert_eq!(e.take_all(Dir::Write).collect::<Vec<_>>(), [tid(2)]);
        assert_eq!(e.count(Dir::Write), 0);
    }

    #[test]
    fn tokens_carry_the_fd_and_its_generation() {
        for (fd, generation) in [(0, 0), (7, 1), (1 << 20, u32::MAX)] {
            assert_eq!(untoken(token(fd, generation)), (fd, Some(generation)));
        }
    }

    /// An event read from the poller before its fd was closed, and
    /// dispatched after the fd number was reused, must not make the new
    /// fd look ready or wake its waiter.
    #[test]
    fn an_event_of_an_earlier_life_of_the_fd_number_is_ignored() {
        let s = Scheduler::new().unwrap();
        let core = s.core();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let (waiter, _) = core.tasks.borrow_mut().insert(boxed(async {}));
        let stale = IoEvent {
            token: token(fd as usize, 0),
            ready: [EDGE, EDGE],
        };
        // The fd's number begins a new life (as after close + accept),
        // and a task waits for it to turn readable.
        core.io.borrow_mut().reset(fd);
        core.io
            .borrow_mut()
            .arm(fd, Dir::Read, waiter, false)
            .unwrap();
        core.io.borrow_mut().on_event(stale, core);
        let mut io = core.io.borrow_mut();
        assert_eq!(io.waiters(), 1, "the waiter was not woken");
        assert!(!io.is_ready(fd, Dir::Read) && !io.is_ready(fd, Dir::Write));
        // An event of the current life does wake it.
        let generation = io.entries[fd as usize].generation;
        let fresh = IoEvent {
            token: token(fd as usize, generation),
            ..stale
        };
        io.on_event(fresh, core);
        assert_eq!(io.waiters(), 0);
        assert!(io.is_ready(fd, Dir::Read));
        drop(io);
        core.io.borrow_mut().forget(fd, core);
    }
}
