//! Writing a stage as a coroutine: [`coroutine`] turns an `async` block
//! that receives items from its [`Inbox`] into a [`Coroutine`] stage.
//!
//! The seed's central trick is a generator that *receives*: `line = (yield)`
//! inside a loop, with local variables as its state, started by a decorator
//! and ended by `close()`. Rust has no stable generators, but an `async`
//! block is a compiler-built stackless coroutine, and that is enough. The
//! seed's `grep` beside the copipe version, and what is the same and what
//! differs, are in the docs of [`coroutine`], where users read them.
//!
//! How it works, with no runtime and no threads:
//!
//! - The stage and its block share one `Slot` (`Rc`): a one-item cell
//!   (`Option<T>`), a one-byte `Status`, and the flush request. `send`
//!   puts the item in the cell and polls the boxed future once; [`Recv`]
//!   takes it. No allocation per `send`.
//! - The waker does nothing: nothing ever wakes a coroutine, the next call
//!   on the stage resumes it. So a receive that returns `Pending` records
//!   that in the status (`Waiting`); a poll that returns `Pending` without
//!   it means the block awaits something else, which would never be woken:
//!   that is reported as a misuse instead of a silent hang. `close` sets
//!   the status to `Closed`, which a receive answers with `None`.
//! - The stage holds the future only while the block runs; once it ends,
//!   fails, panics or is misused the future (and the block's locals) is
//!   dropped at once, and `Ended` says how it ended. So a send checks one
//!   pointer to know the block still runs.
//! - A panic is not caught: it unwinds through `Coroutine::resume`, where a
//!   drop guard (forgotten on the normal path, so free) poisons the stage
//!   on its way to the caller. `catch_unwind` + `resume_unwind` would do
//!   the same and keep the panic's message for later errors, but puts the
//!   poll behind one more call that is never inlined, which costs every
//!   send a few instructions (`benches/instructions.sh` counts them).
//! - [`Coroutine::throw`] leaves an error in the slot for the receive the
//!   coroutine waits in: [`Inbox::recv_catching`] returns it, a plain
//!   [`Inbox::recv`] leaves it there, and the stage then ends with it.

use crate::Lifecycle;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::{Error, ErrorKind, Result};
use crate::stage::{Flow, Stage};

/// Makes a stage from an `async` block that receives items from an
/// [`Inbox`]: the seed's `@coroutine`.
///
/// `body` is called once, with the inbox, and the future it returns is
/// polled at once up to its first `inbox.recv().await` (the seed's
/// decorator calls `next()`). From then on:
///
/// - [`send`](Stage::send) puts the item in the inbox and resumes the future
///   until it waits again; it returns `Ok(Flow::Continue)` while the
///   coroutine runs, and `Ok(Flow::Stop)` once it has returned.
/// - [`close`](Lifecycle::close) makes `recv()` return `None` and runs the
///   future to its end, so the code after the receive loop runs.
/// - [`flush`](Lifecycle::flush) runs the closure of an
///   [`Inbox::recv_flushing`] the coroutine is waiting in; it does nothing
///   while it waits in plain [`Inbox::recv`].
///
/// # The seed's `grep`, and copipe's
///
/// ```python
/// @coroutine
/// def grep(pattern, target):
///     try:
///         while True:
///             line = (yield)
///             if pattern in line:
///                 target.send(line)
///     except GeneratorExit:
///         target.close()
/// ```
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{coroutine, Flow, Inbox, Stage, sinks::Collect};
/// use memchr::memmem;
///
/// fn grep(pattern: &str, mut target: impl Stage<String>) -> impl Stage<String> {
///     let finder = memmem::Finder::new(pattern).into_owned();
///     coroutine(move |inbox: Inbox<String>| async move {
///         while let Some(line) = inbox.recv_flushing(|| target.flush()).await {
///             if finder.find(line.as_bytes()).is_some() && target.send(line)?.is_stop() {
///                 break; // the target wants no more, so neither do we
///             }
///         }
///         target.close() // the seed's `except GeneratorExit:`
///     })
/// }
///
/// let mut out = Collect::new();
/// let mut g = grep("python", &mut out);
/// for line in ["Yeah, but no, but yeah, but no", "python generators rock!"] {
///     if g.send(line.to_string())?.is_stop() {
///         break;
///     }
/// }
/// g.close()?;
/// drop(g);
/// assert_eq!(out.items(), ["python generators rock!"]);
/// assert!(out.is_closed());
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// What is the same:
///
/// - **Locals are the state.** `finder`, `target` and anything else the block
///   declares live across items; a stage with two states (the seed's
///   `buses_to_dicts`) is two nested loops, with no hand-written state enum.
/// - **Receiving is suspending.** `inbox.recv().await` is `(yield)`: each
///   `send` puts one item in the inbox and resumes the coroutine until it
///   waits for the next one.
/// - **Started on creation**, as by the seed's decorator: setup code
///   ("Looking for python") runs when the stage is made.
/// - **`close` is `GeneratorExit`.** After `close`, `recv()` returns `None`,
///   the loop ends and the code after it runs: the seed's
///   `except GeneratorExit:` cleanup, here usually `target.close()`.
/// - **Sub-coroutines.** An `async fn` that takes `&Inbox<T>` and receives
///   can be awaited inside the block: the seed's `yield from`, with no
///   trampoline.
///
/// What differs:
///
/// - **Items are owned** (`T: 'static`): the block keeps the item across an
///   `.await`, so it cannot borrow a source's buffer. Put
///   [`StageExt::owned`](crate::StageExt::owned) in front of a coroutine fed
///   by a line source, or write the stage as a struct when it must take
///   borrowed items.
/// - **Sends are synchronous calls.** `target.send(line)` runs the target to
///   completion before it returns, as in the seed, but a cycle (a stage that
///   sends back into itself through a [`Shared`](crate::Shared) handle) is
///   an [`ErrorKind::Reentrant`] error rather than Python's
///   "generator already executing" crash.
/// - **Results, not exceptions.** The block returns `Result<()>` and `?`
///   works inside it. An `Err` comes out of the `send` (or `close`) during
///   which it was returned. A block that returns `Ok(())` early (say,
///   because its target answered [`Flow::Stop`]) turns that send and every
///   later one into `Ok(Flow::Stop)`.
/// - **No runtime.** The future is polled directly, on the caller's thread,
///   once per call. It may await only its inbox: awaiting anything else
///   that is not ready (a timer, a socket) is an [`ErrorKind::Coroutine`]
///   error, never a hang. Stages that wait for I/O belong on the scheduler.
/// - **Flush is explicit.** Plain `recv()` does not see [`Lifecycle::flush`];
///   [`Inbox::recv_flushing`] runs the closure it is given whenever upstream
///   flushes while the coroutine waits there. That is how a coroutine
///   forwards `flush` to a target it owns (as `grep` above does).
/// - **Panics poison.** A panic inside the block unwinds, message and all,
///   out of the call that resumed it; the block is dropped and every later
///   call returns an [`ErrorKind::Coroutine`] error, like a poisoned
///   `Mutex`.
/// - **Dropping is not closing.** A coroutine dropped without `close` drops
///   its locals (their destructors run) but does not run the code after its
///   loop.
///
/// # Examples
///
/// The seed's `grepclose.py`: setup code, a receive loop, and cleanup after
/// it, observed through a shared log.
///
/// ```
/// use copipe::Lifecycle;
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use copipe::{coroutine, Flow, Inbox, Stage};
///
/// let said = Rc::new(RefCell::new(Vec::new()));
/// let log = Rc::clone(&said);
/// let mut grep = coroutine(move |inbox: Inbox<&'static str>| async move {
///     log.borrow_mut().push("Looking for python".to_string());
///     while let Some(line) = inbox.recv().await {
///         if line.contains("python") {
///             log.borrow_mut().push(line.to_string());
///         }
///     }
///     log.borrow_mut().push("Going away. Goodbye".to_string());
///     Ok(())
/// });
/// assert_eq!(said.borrow().len(), 1); // started on creation
/// assert_eq!(grep.send("Yeah, but no, but yeah, but no")?, Flow::Continue);
/// assert_eq!(grep.send("python generators rock!")?, Flow::Continue);
/// grep.close()?;
/// assert_eq!(
///     *said.borrow(),
///     ["Looking for python", "python generators rock!", "Going away. Goodbye"]
/// );
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// A filter with a target it owns: it forwards `flush`, closes the target
/// after its loop, and stops when the target says so.
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{coroutine, Flow, Inbox, Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// let target = (&mut out).take(2);
/// let mut grep = coroutine(|inbox: Inbox<String>| async move {
///     let mut target = target;
///     while let Some(line) = inbox.recv_flushing(|| target.flush()).await {
///         if line.contains("python") && target.send(line)?.is_stop() {
///             break; // the target wants no more: so do we
///         }
///     }
///     target.close()
/// });
/// assert_eq!(grep.send("python 1".to_string())?, Flow::Continue);
/// assert_eq!(grep.send("ply".to_string())?, Flow::Continue);
/// grep.flush()?;
/// assert_eq!(grep.send("python 2".to_string())?, Flow::Stop);
/// assert_eq!(grep.send("python 3".to_string())?, Flow::Stop);
/// grep.close()?;
/// drop(grep);
/// assert_eq!(out.items(), ["python 1", "python 2"]);
/// assert!(out.is_closed());
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// # Panics
///
/// A panic in the code before the first `recv().await` propagates out of
/// `coroutine` itself.
pub fn coroutine<T, F, Fut>(body: F) -> Coroutine<T, Fut>
where
    T: 'static,
    F: FnOnce(Inbox<T>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let slot = Rc::new(Slot {
        item: Cell::new(None),
        status: Cell::new(Status::Busy),
        flush_asked: Cell::new(false),
        flush_error: Cell::new(None),
        thrown: Cell::new(None),
    });
    let fut = Box::pin(body(Inbox {
        slot: Rc::clone(&slot),
    }));
    let mut co = Coroutine {
        fut: Some(fut),
        ended: Ended::Returned,
        slot,
        waker: &NOOP_WAKER,
    };
    // Start the coroutine, as the seed's decorator calls `next()`. A panic
    // goes on into our caller, and the stage with it.
    let poll = co.resume(Status::Busy, None);
    if let Some(Err(e)) = poll.map(|poll| co.settle(poll, false)) {
        // An error the block returned before its first receive is kept for
        // the first call; a misuse is kept as the state itself.
        if matches!(co.ended, Ended::Returned) {
            co.ended = Ended::Failed(e);
        }
    }
    co
}

/// The receiving end of a coroutine: what `(yield)` is in the seed.
///
/// Each [`Coroutine`] has one inbox, moved into its `async` block. It holds
/// at most one item: the one the current `send` delivered.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{coroutine, Flow, Inbox, Stage, sinks::Collect};
///
/// let mut totals = Collect::new();
/// let out = &mut totals;
/// let mut sum = coroutine(|inbox: Inbox<u32>| async move {
///     let mut total = 0; // a local is the coroutine's state
///     while let Some(n) = inbox.recv().await {
///         total += n;
///     }
///     // Closed: report, and close the target.
///     let _ = out.send(total)?;
///     out.close()
/// });
/// for n in [1, 2, 3] {
///     assert_eq!(sum.send(n)?, Flow::Continue);
/// }
/// sum.close()?;
/// drop(sum);
/// assert_eq!(totals.items(), [6]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct Inbox<T> {
    slot: Rc<Slot<T>>,
}

impl<T> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> Inbox<T> {
    /// Waits for the next item: `Some(item)`, or `None` once the stage has
    /// been closed (and every time after that, so nested receive loops all
    /// end).
    ///
    /// A [`Lifecycle::flush`] while the coroutine waits here does nothing; use
    /// [`Inbox::recv_flushing`] to act on it.
    ///
    /// # Examples
    ///
    /// See [`Inbox`].
    pub fn recv(&self) -> Recv<'_, T> {
        Recv { slot: &self.slot }
    }

    /// Waits for the next item like [`recv`](Inbox::recv), and runs `flush`
    /// each time upstream calls [`Lifecycle::flush`] meanwhile. An error from
    /// `flush` is returned by that `Lifecycle::flush`; the coroutine keeps
    /// waiting.
    ///
    /// This is how a coroutine forwards `flush` to a target it owns: the
    /// closure borrows the target only while the coroutine waits, so the
    /// loop body can use it freely. (It must be `Unpin`, as a closure that
    /// borrows is.)
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::Lifecycle;
    /// use copipe::{coroutine, Flow, Inbox, Stage, sinks::Printer};
    ///
    /// let mut out = Vec::new();
    /// let writer = &mut out;
    /// let mut printer = coroutine(|inbox: Inbox<String>| async move {
    ///     let mut p = Printer::new(writer);
    ///     while let Some(line) = inbox.recv_flushing(|| p.flush()).await {
    ///         if p.send(line)?.is_stop() {
    ///             break; // stdout was closed
    ///         }
    ///     }
    ///     p.close()
    /// });
    /// assert_eq!(printer.send("buffered until flushed".to_string())?, Flow::Continue);
    /// printer.flush()?; // the Printer writes its buffer out now
    /// printer.close()?;
    /// drop(printer);
    /// assert_eq!(out, b"buffered until flushed\n");
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn recv_flushing<F>(&self, flush: F) -> RecvFlushing<'_, T, F>
    where
        F: FnMut() -> Result<()> + Unpin,
    {
        RecvFlushing {
            slot: &self.slot,
            flush,
        }
    }

    /// Waits for the next item like [`recv`](Inbox::recv), or for an error
    /// thrown in with [`Coroutine::throw`]: `Ok(Some(item))`, `Ok(None)`
    /// once closed, `Err(e)` for a thrown error, which the coroutine may
    /// handle and go on (the seed's `try: line = (yield) except
    /// RuntimeError:`), or return with `?` to end the stage with it.
    ///
    /// An error thrown while the coroutine waits in plain `recv` is not
    /// caught: it ends the stage, and `throw` returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{coroutine, Error, Flow, Inbox, Stage};
    ///
    /// let mut g = coroutine(|inbox: Inbox<String>| async move {
    ///     loop {
    ///         match inbox.recv_catching().await {
    ///             Ok(Some(line)) => println!("{line}"),
    ///             Ok(None) => return Ok(()),
    ///             Err(e) => println!("caught: {e}"), // and go on
    ///         }
    ///     }
    /// });
    /// g.send("one".to_string())?;
    /// assert_eq!(g.throw(Error::usage("You're hosed!"))?, Flow::Continue);
    /// g.send("two".to_string())?;
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn recv_catching(&self) -> RecvCatching<'_, T> {
        RecvCatching { slot: &self.slot }
    }

    /// True once the stage has been closed: `recv` returns `None` from now
    /// on.
    pub fn is_closed(&self) -> bool {
        self.slot.status.get() == Status::Closed
    }
}

/// The future of [`Inbox::recv`].
#[must_use = "a receive does nothing unless awaited"]
pub struct Recv<'a, T> {
    slot: &'a Slot<T>,
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.slot.poll_item()
    }
}

/// The future of [`Inbox::recv_catching`].
#[must_use = "a receive does nothing unless awaited"]
pub struct RecvCatching<'a, T> {
    slot: &'a Slot<T>,
}

impl<T> fmt::Debug for RecvCatching<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvCatching").finish_non_exhaustive()
    }
}

impl<T> Future for RecvCatching<'_, T> {
    type Output = Result<Option<T>>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<Option<T>>> {
        if let Some(e) = self.slot.thrown.take() {
            return Poll::Ready(Err(e));
        }
        self.slot.poll_item().map(Ok)
    }
}

/// The future of [`Inbox::recv_flushing`].
#[must_use = "a receive does nothing unless awaited"]
pub struct RecvFlushing<'a, T, F> {
    slot: &'a Slot<T>,
    flush: F,
}

impl<T, F> fmt::Debug for RecvFlushing<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFlushing").finish_non_exhaustive()
    }
}

impl<T, F> Future for RecvFlushing<'_, T, F>
where
    F: FnMut() -> Result<()> + Unpin,
{
    type Output = Option<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.slot.flush_asked.replace(false) {
            if let Err(e) = (this.flush)() {
                this.slot.flush_error.set(Some(e));
            }
        }
        this.slot.poll_item()
    }
}

/// The state the stage and its coroutine share.
struct Slot<T> {
    /// The item the current `send` delivered, until `recv` takes it.
    item: Cell<Option<T>>,
    /// What the current call expects of a receive; see [`Status`].
    status: Cell<Status>,
    /// `Lifecycle::flush` asks a `recv_flushing` to run its closure.
    flush_asked: Cell<bool>,
    /// What that closure returned, for `Lifecycle::flush` to return.
    flush_error: Cell<Option<Error>>,
    /// The error [`Coroutine::throw`] injects, until a
    /// [`Inbox::recv_catching`] takes it.
    thrown: Cell<Option<Error>>,
}

/// One byte for the handshake between a call and the receive it resumes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    /// Set by `send` and `flush` before they poll: a receive that finds no
    /// item suspends, and says so by setting `Waiting`.
    Busy,
    /// A receive returned `Pending` during the current poll, so the
    /// coroutine is suspended in its inbox. A poll that returns `Pending`
    /// without it means the coroutine awaited something else, which
    /// nothing will ever wake.
    Waiting,
    /// `close` was called: a receive returns `None`, from now on.
    Closed,
}

impl<T> Slot<T> {
    #[inline]
    fn poll_item(&self) -> Poll<Option<T>> {
        if let Some(item) = self.item.take() {
            Poll::Ready(Some(item))
        } else if self.status.get() == Status::Closed {
            Poll::Ready(None)
        } else {
            self.status.set(Status::Waiting);
            Poll::Pending
        }
    }
}

/// A stage made from an `async` block by [`coroutine`].
///
/// `Coroutine` is single-threaded (`!Send`, its inbox is shared through an
/// `Rc`): build it on the thread that sends into it. It can send into a
/// [`threaded`](crate::threaded) bridge, but not be moved behind one, which
/// needs a `Send` target. (A `Send` inbox would need an atomic handoff per
/// item; `Rc` and `Cell` cost nothing.)
///
/// ```compile_fail
/// use copipe::{coroutine, threaded, Inbox};
///
/// let co = coroutine(|inbox: Inbox<String>| async move {
///     while inbox.recv().await.is_some() {}
///     Ok(())
/// });
/// let bridge = threaded(co); // error: `Rc<..>` cannot be sent between threads
/// ```
///
/// # Examples
///
/// See [`coroutine`].
pub struct Coroutine<T, Fut> {
    /// The block's future while it runs (suspended in a receive between
    /// calls); `None` once it has ended, and `ended` says how. Dropping it
    /// drops the block's locals.
    fut: Option<Pin<Box<Fut>>>,
    /// How the block ended; meaningless while `fut` is `Some`.
    ended: Ended,
    slot: Rc<Slot<T>>,
    /// [`NOOP_WAKER`], fetched once so a send does not touch the lazy lock.
    waker: &'static Waker,
}

/// How a coroutine's block ended.
enum Ended {
    /// The block has returned (or its error has been reported): sends
    /// answer `Stop`, `flush` and `close` do nothing.
    Returned,
    /// The block returned an error while it was being started, before any
    /// call: the next call returns it, and this becomes `Returned`.
    Failed(Error),
    /// The block panicked (the panic went on into the caller of the call
    /// that resumed it). Every call now returns an error.
    Poisoned,
    /// The block awaited a future other than its inbox that was not ready;
    /// the message explains. Every call returns it as an error.
    Misused(&'static str),
}

impl<T, Fut> fmt::Debug for Coroutine<T, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.fut, &self.ended) {
            (Some(_), _) => "running",
            (None, Ended::Returned) => "returned",
            (None, Ended::Failed(_)) => "failed",
            (None, Ended::Poisoned) => "poisoned",
            (None, Ended::Misused(_)) => "misused",
        };
        f.debug_struct("Coroutine")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<T, Fut> Coroutine<T, Fut> {
    /// Whether the coroutine has ended (returned, failed, panicked or been
    /// misused): sends now answer `Stop` or an error.
    pub fn is_finished(&self) -> bool {
        self.fut.is_none()
    }

    /// Whether the coroutine panicked: every call now returns an error.
    pub fn is_poisoned(&self) -> bool {
        self.fut.is_none() && matches!(self.ended, Ended::Poisoned)
    }

    /// Ends the coroutine: drops its future (and its locals), and whatever
    /// is left in the inbox.
    fn end(&mut self, ended: Ended) {
        end(&mut self.fut, &mut self.ended, &self.slot, ended);
    }
}

/// [`Coroutine::end`] on its parts, for the unwind guard, which cannot hold
/// the whole stage while the future it polls is borrowed from it.
fn end<T, Fut>(fut: &mut Option<Pin<Box<Fut>>>, to: &mut Ended, slot: &Slot<T>, ended: Ended) {
    *fut = None;
    *to = ended;
    slot.item.set(None);
    slot.flush_asked.set(false);
    slot.thrown.set(None);
}

const POISONED: &str = "poisoned: the coroutine panicked during an earlier call \
     (the panic went to that call's caller); it cannot be resumed";

const NOT_READY: &str = "the coroutine awaited a future that is not ready; \
     a coroutine stage is resumed only by the calls made on it, so it may \
     await only `inbox.recv()` (run stages that wait for I/O or timers as \
     scheduler tasks)";

const NOT_READY_ON_CLOSE: &str = "the coroutine awaited a future that is not \
     ready while closing; after `close` it may await only `inbox.recv()`, \
     which returns `None`";

impl<T, Fut> Coroutine<T, Fut>
where
    Fut: Future<Output = Result<()>>,
{
    /// Resumes the coroutine once, if it is running: sets the inbox's
    /// status and polls the future with the no-op waker. `None` if the
    /// block has ended.
    ///
    /// A panic in the block goes on into the caller as it is (no
    /// `catch_unwind`, which would put the poll behind one more call that
    /// is never inlined); on its way out it drops the guard, which poisons
    /// the stage.
    #[inline(always)]
    fn resume(&mut self, status: Status, item: Option<T>) -> Option<Poll<Result<()>>> {
        let guard = PoisonOnUnwind {
            fut: &mut self.fut,
            ended: &mut self.ended,
            slot: &self.slot,
        };
        let Some(fut) = guard.fut.as_mut() else {
            std::mem::forget(guard);
            return None;
        };
        guard.slot.item.set(item);
        guard.slot.status.set(status);
        let poll = fut.as_mut().poll(&mut Context::from_waker(self.waker));
        // No panic: disarm the guard (forgetting it costs nothing).
        std::mem::forget(guard);
        Some(poll)
    }

    /// What a poll that did not leave the coroutine waiting in its inbox
    /// means: it returned (`Stop`, or its error), or it awaited something
    /// else (a misuse, which ends it). When `closing`, `Pending` is always
    /// a misuse, since a receive no longer waits.
    #[cold]
    #[inline(never)]
    fn settle(&mut self, poll: Poll<Result<()>>, closing: bool) -> Result<Flow> {
        match poll {
            Poll::Pending if self.slot.status.get() == Status::Waiting && !closing => {
                Ok(Flow::Continue)
            }
            Poll::Pending => {
                let message = if closing {
                    NOT_READY_ON_CLOSE
                } else {
                    NOT_READY
                };
                self.end(Ended::Misused(message));
                Err(Error::new(ErrorKind::Coroutine(message.to_string())))
            }
            Poll::Ready(Ok(())) => {
                self.end(Ended::Returned);
                Ok(Flow::Stop)
            }
            Poll::Ready(Err(e)) => {
                self.end(Ended::Returned);
                Err(e)
            }
        }
    }

    /// The answer of a stage whose block has ended: `Ok` if it returned,
    /// its error otherwise. A `Failed` error is reported once.
    #[cold]
    fn finished(&mut self) -> Result<()> {
        match &self.ended {
            Ended::Returned => Ok(()),
            Ended::Poisoned => Err(Error::new(ErrorKind::Coroutine(POISONED.to_string()))),
            Ended::Misused(message) => Err(Error::new(ErrorKind::Coroutine(message.to_string()))),
            Ended::Failed(_) => match std::mem::replace(&mut self.ended, Ended::Returned) {
                Ended::Failed(e) => Err(e),
                _ => unreachable!("matched as Failed just above"),
            },
        }
    }

    /// Throws `err` into the coroutine at the receive it waits in (the
    /// seed's `g.throw(RuntimeError, "You're hosed!")`) and runs it until
    /// it waits again.
    ///
    /// If it waits in [`Inbox::recv_catching`], that receive returns
    /// `Err(err)`: the coroutine may handle it and go on (`throw` returns
    /// `Ok(Flow::Continue)`), return (`Ok(Flow::Stop)`), or return an
    /// error, which `throw` returns. If it waits in plain
    /// [`Inbox::recv`], the error is not caught: the stage ends, as a
    /// generator does on an uncaught exception, and `throw` returns `err`.
    ///
    /// # Errors
    ///
    /// `err` itself if the coroutine did not catch it or has already
    /// ended; the coroutine's error otherwise, as for `send`.
    ///
    /// # Examples
    ///
    /// See [`Inbox::recv_catching`].
    pub fn throw(&mut self, err: Error) -> Result<Flow> {
        if self.fut.is_none() {
            self.finished()?;
            return Err(err);
        }
        self.slot.thrown.set(Some(err));
        let poll = self.resume(Status::Busy, None);
        if let Some(uncaught) = self.slot.thrown.take() {
            self.end(Ended::Returned);
            return Err(uncaught);
        }
        match poll {
            Some(poll) => self.settle(poll, false),
            None => self.send_after_end(),
        }
    }

    /// `send` on a coroutine that has ended.
    #[cold]
    #[inline(never)]
    fn send_after_end(&mut self) -> Result<Flow> {
        self.finished()?;
        Ok(Flow::Stop)
    }
}

/// Poisons the coroutine if dropped, which happens only while a panic in
/// its block unwinds through [`Coroutine::resume`]: on the normal path the
/// guard is forgotten.
struct PoisonOnUnwind<'a, T, Fut> {
    fut: &'a mut Option<Pin<Box<Fut>>>,
    ended: &'a mut Ended,
    slot: &'a Slot<T>,
}

impl<T, Fut> Drop for PoisonOnUnwind<'_, T, Fut> {
    fn drop(&mut self) {
        // Dropping the future here is safe to do while unwinding: an async
        // block that panicked has already dropped its locals, so its own
        // drop does nothing more.
        end(self.fut, self.ended, self.slot, Ended::Poisoned);
    }
}

/// The waker every coroutine stage polls with. It does nothing: a coroutine
/// stage is resumed by the next call on it, never by a wake-up.
///
/// (A `Wake` impl rather than `Waker::noop()`: the same thing, kept
/// from when the crate's MSRV predated it.)
static NOOP_WAKER: LazyLock<Waker> = LazyLock::new(|| Waker::from(Arc::new(Noop)));

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

impl<T, Fut> Stage<T> for Coroutine<T, Fut>
where
    Fut: Future<Output = Result<()>>,
{
    /// Puts `item` in the inbox and resumes the coroutine until it waits
    /// again. Once the block has returned, answers `Ok(Flow::Stop)`.
    ///
    /// # Errors
    ///
    /// The error the block returned during this call. An
    /// [`ErrorKind::Coroutine`] error if the block awaited something other
    /// than its inbox, now or earlier, or panicked earlier. An error the
    /// block returned before its first receive is returned by the first
    /// call.
    ///
    /// # Panics
    ///
    /// If the block panics, the panic continues into the caller.
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        match self.resume(Status::Busy, Some(item)) {
            // The hot path: the coroutine took the item and waits for the next.
            Some(Poll::Pending) if self.slot.status.get() == Status::Waiting => Ok(Flow::Continue),
            Some(poll) => self.settle(poll, false),
            None => self.send_after_end(),
        }
    }
}

impl<T, Fut> Lifecycle for Coroutine<T, Fut>
where
    Fut: Future<Output = Result<()>>,
{
    /// Runs the closure of the [`Inbox::recv_flushing`] the coroutine waits
    /// in; does nothing if it waits in plain [`Inbox::recv`] or has ended.
    ///
    /// # Errors
    ///
    /// The closure's error, or the coroutine's error (as for `send`).
    ///
    /// # Panics
    ///
    /// If the closure panics, the panic continues into the caller.
    fn flush(&mut self) -> Result<()> {
        self.slot.flush_asked.set(true);
        let Some(poll) = self.resume(Status::Busy, None) else {
            self.slot.flush_asked.set(false);
            return self.finished();
        };
        // A plain `recv` leaves the request unanswered: nothing to flush.
        self.slot.flush_asked.set(false);
        let flow = self.settle(poll, false);
        if let Some(e) = self.slot.flush_error.take() {
            return Err(e);
        }
        flow.map(|_| ())
    }

    /// Makes `recv` return `None` and runs the coroutine to its end. Closing
    /// again, or closing a coroutine that has returned, does nothing.
    ///
    /// # Errors
    ///
    /// The error the block returns while closing, or its earlier error (as
    /// for `send`).
    ///
    /// # Panics
    ///
    /// If the block panics, the panic continues into the caller.
    fn close(&mut self) -> Result<()> {
        // `recv` never waits once closed, so a poll that is still pending
        // is a misuse, which `settle` reports.
        match self.resume(Status::Closed, None) {
            Some(poll) => self.settle(poll, true).map(|_| ()),
            None => self.finished(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Recorder;

    #[test]
    fn the_coroutine_waits_in_its_inbox_between_sends() {
        let mut seen = Vec::new();
        let mut co = coroutine(|inbox: Inbox<u8>| async move {
            while let Some(n) = inbox.recv().await {
                seen.push(n);
            }
            assert_eq!(seen, [1, 2]);
            Ok(())
        });
        assert!(co.fut.is_some());
        assert_eq!(co.slot.status.get(), Status::Waiting);
        assert_eq!(co.send(1).unwrap(), Flow::Continue);
        assert!(co.slot.item.take().is_none(), "the item was taken");
        assert_eq!(co.send(2).unwrap(), Flow::Continue);
        co.close().unwrap();
        assert!(co.is_finished());
        assert!(co.fut.is_none() && matches!(co.ended, Ended::Returned));
    }

    #[test]
    fn an_item_not_taken_is_dropped_when_the_coroutine_returns() {
        let item = Rc::new(());
        let mut co = coroutine(|inbox: Inbox<Rc<()>>| async move {
            let _first = inbox.recv().await;
            Ok(())
        });
        assert_eq!(co.send(Rc::clone(&item)).unwrap(), Flow::Stop);
        assert_eq!(co.send(Rc::clone(&item)).unwrap(), Flow::Stop);
        assert_eq!(Rc::strong_count(&item), 1, "no clone is left in the slot");
    }

    #[test]
    fn flush_runs_only_in_recv_flushing() {
        let mut rec = Recorder::new();
        {
            let target = &mut rec;
            let mut co = coroutine(|inbox: Inbox<&'static str>| async move {
                // The first item is received without flushing...
                let Some(first) = inbox.recv().await else {
                    return Ok(());
                };
                assert_eq!(target.send(first)?, Flow::Continue);
                // ...the rest with.
                while let Some(s) = inbox.recv_flushing(|| target.flush()).await {
                    assert_eq!(target.send(s)?, Flow::Continue);
                }
                target.close()
            });
            co.flush().unwrap(); // waiting in plain recv: nothing happens
            assert_eq!(co.send("a").unwrap(), Flow::Continue);
            co.flush().unwrap();
            assert!(!co.slot.flush_asked.get());
            assert_eq!(co.send("b").unwrap(), Flow::Continue);
            co.close().unwrap();
        }
        assert_eq!(rec.log(), "send a\nflush\nsend b\nclose\n");
    }

    #[test]
    fn a_flush_error_comes_out_of_flush_and_the_coroutine_keeps_running() {
        let mut fail = true;
        let mut co = coroutine(|inbox: Inbox<u8>| async move {
            let mut n = 0;
            let mut flush = || {
                if std::mem::take(&mut fail) {
                    Err(Error::usage("disk full"))
                } else {
                    Ok(())
                }
            };
            while inbox.recv_flushing(&mut flush).await.is_some() {
                n += 1;
            }
            assert_eq!(n, 1);
            Ok(())
        });
        assert_eq!(co.flush().unwrap_err().to_string(), "disk full");
        co.flush().unwrap();
        assert_eq!(co.send(1).unwrap(), Flow::Continue);
        co.close().unwrap();
    }

    #[test]
    fn an_error_while_starting_comes_out_of_the_first_call_only() {
        let mut co = coroutine(|_inbox: Inbox<u8>| async move { Err(Error::usage("bad pattern")) });
        assert!(co.is_finished());
        assert_eq!(co.send(1).unwrap_err().to_string(), "bad pattern");
        assert_eq!(co.send(2).unwrap(), Flow::Stop);
        co.close().unwrap();
    }

    #[test]
    fn a_coroutine_that_awaits_something_else_while_closing_is_an_error() {
        let mut co = coroutine(|inbox: Inbox<u8>| async move {
            while inbox.recv().await.is_some() {}
            std::future::pending::<()>().await;
            Ok(())
        });
        let err = co.close().unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Coroutine(m) if m.contains("while closing")));
        assert!(co.is_finished());
        assert!(!co.is_poisoned());
    }

    #[test]
    fn debug_names_the_state() {
        let co = coroutine(|inbox: Inbox<u8>| async move {
            inbox.recv().await;
            Ok(())
        });
        assert_eq!(format!("{co:?}"), "Coroutine { state: \"running\", .. }");
    }
}
