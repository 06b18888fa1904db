//! I/O readiness: the table of file descriptors the poller watches, and
//! [`read_wait`] / [`write_wait`] (the seed's `ReadWait` / `WriteWait`).
//!
//! # How readiness is tracked
//!
//! Every watched fd is registered once with epoll, edge-triggered, for both
//! directions, with its own number as token. The table keeps, per fd and
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

/// The tasks waiting on one fd in one direction. Nearly always zero or
/// one, kept inline so that a wait and a wake touch no other memory.
#[derive(Default)]
struct Waiters {
    first: Option<Tid>,
    rest: Vec<Tid>,
}

impl Waiters {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Adds `tid` unless present; true if added.
    fn add(&mut self, tid: Tid) -> bool {
        if self.first == Some(tid) || self.rest.contains(&tid) {
            return false;
        }
        if self.first.is_none() {
            self.first = Some(tid);
        } else {
            self.rest.push(tid);
        }
        true
    }

    /// Removes `tid`; true if it was there.
    fn remove(&mut self, tid: Tid) -> bool {
        if self.first == Some(tid) {
            self.first = self.rest.pop();
            return true;
        }
        match self.rest.iter().position(|t| *t == tid) {
            Some(pos) => {
                self.rest.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    /// Takes every waiter out, leaving the list empty.
    fn take_all(&mut self) -> impl Iterator<Item = Tid> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }
}

#[derive(Default)]
struct Entry {
    registered: bool,
    readable: bool,
    writable: bool,
    readers: Waiters,
    writers: Waiters,
}

impl Entry {
    fn bit(&mut self, dir: Dir) -> &mut bool {
        match dir {
            Dir::Read => &mut self.readable,
            Dir::Write => &mut self.writable,
        }
    }

    fn list(&mut self, dir: Dir) -> &mut Waiters {
        match dir {
            Dir::Read => &mut self.readers,
            Dir::Write => &mut self.writers,
        }
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
        *e.bit(dir) = false;
        let interest = Interest::READABLE | Interest::WRITABLE;
        let token = Token(i);
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
        if e.list(dir).add(tid) {
            self.waiters += 1;
        }
        Ok(())
    }

    fn is_ready(&mut self, fd: RawFd, dir: Dir) -> bool {
        match self.entry(fd) {
            Ok(e) => *e.bit(dir),
            Err(_) => true,
        }
    }

    /// Adds `tid` to the waiters again after a spurious wake.
    fn relist(&mut self, fd: RawFd, dir: Dir, tid: Tid) {
        if let Ok(e) = self.entry(fd) {
            if e.list(dir).add(tid) {
                self.waiters += 1;
            }
        }
    }

    fn cancel(&mut self, fd: RawFd, dir: Dir, tid: Tid) {
        if let Ok(e) = self.entry(fd) {
            if e.list(dir).remove(tid) {
                self.waiters -= 1;
            }
        }
    }

    /// Handles one poller event: sets the ready bits and wakes the waiters.
    /// Hang-up and error count as ready both ways, so that waiters wake and
    /// see the end of file or the error from their next operation.
    pub(crate) fn on_event(&mut self, ev: &mio::event::Event, core: &Core) {
        let Some(e) = self.entries.get_mut(ev.token().0) else {
            return;
        };
        let broken = ev.is_error();
        if ev.is_readable() || ev.is_read_closed() || broken {
            e.readable = true;
            self.waiters -= e.readers.len();
            for tid in e.readers.take_all() {
                core.wake(tid);
            }
        }
        if ev.is_writable() || ev.is_write_closed() || broken {
            e.writable = true;
            self.waiters -= e.writers.len();
            for tid in e.writers.take_all() {
                core.wake(tid);
            }
        }
    }

    /// Starts a fresh entry for a newly opened fd (its number may have
    /// been used before).
    pub(crate) fn reset(&mut self, fd: RawFd) {
        if let Ok(e) = self.entry(fd) {
            let old = std::mem::take(e);
            if old.registered {
                self.registered -= 1;
            }
            self.waiters -= old.readers.len() + old.writers.len();
        }
    }

    /// Stops watching an fd that is about to be closed. Tasks still waiting
    /// on it are woken (they will see the error of their next operation).
    pub(crate) fn forget(&mut self, fd: RawFd, core: &Core) {
        let Ok(e) = self.entry(fd) else { return };
        let e = std::mem::take(e);
        if e.registered {
            // The fd is still open here; an error means it was never
            // registered in this epoll after all, which is what we want.
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            self.registered -= 1;
        }
        self.waiters -= e.readers.len() + e.writers.len();
        let mut e = e;
        let all: Vec<Tid> = e.readers.take_all().chain(e.writers.take_all()).collect();
        for tid in all {
            core.wake(tid);
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

/// True if `fd` is registered and its `dir` bit is clear: an operation
/// now would only say `WouldBlock`.
fn known_not_ready(fd: RawFd, dir: Dir) -> bool {
    try_with_core(|core| {
        let mut io = core.io.borrow_mut();
        match io.entry(fd) {
            Ok(e) => e.registered && !*e.bit(dir),
            Err(_) => false,
        }
    })
    .unwrap_or(false)
}

fn clear_ready(fd: RawFd, dir: Dir) {
    try_with_core(|core| {
        if let Ok(e) = core.io.borrow_mut().entry(fd) {
            if e.registered {
                *e.bit(dir) = false;
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
