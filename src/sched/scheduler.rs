//! The scheduler: the task table, the ready queue, the run loop, and the
//! thread-local context through which system calls reach it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mio::{Events, Token};

use crate::error::panic_message;
use crate::{Error, ErrorKind, Result};

use super::poll::{IoEvent, IoTable};
use super::task::{boxed, TaskFuture, TaskOutput, TaskWaker, Tasks, Tid};
use super::timer::Timers;

/// How many tasks run between two non-blocking looks at the poller (and at
/// the timers and the cross-thread wake queue) while tasks are ready.
///
/// Looking costs one `epoll_wait` with a zero timeout (about 0.3 us); doing
/// it once every 61 switches keeps its share of a switch near 5 ns while
/// still letting I/O and timers in at least every 61 switches, so a task
/// that yields in a loop cannot starve sockets. (61 is tokio's
/// `event_interval`; the exact value is not important.) The count starts
/// again each time the ready queue drains: then the scheduler hands out
/// the next buffered poller event, or, with none left, blocks in the
/// poller until the next timer.
pub(crate) const EVENT_INTERVAL: u32 = 61;

/// The poller token of the cross-thread waker; an fd's token is its
/// number and generation (see `poll::token`), never this.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

static NEXT_SCHEDULER_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The scheduler running on this thread, set for the duration of
    /// [`Scheduler::run`]. System calls find the scheduler through it: a
    /// task never holds a reference to its scheduler (the seed: "tasks do
    /// not see the scheduler").
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The id of that scheduler (0: none), so a waker can tell cheaply
    /// whether it is being woken on its own scheduler's thread.
    static CURRENT_ID: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` on the scheduler running on this thread.
///
/// # Panics
///
/// If no scheduler is running on this thread: system calls are only
/// meaningful inside a task. The panic is caught by the scheduler if it
/// happens inside a task of another executor, and is a usage bug otherwise.
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> R {
    CURRENT.with(|c| {
        let c = c.borrow();
        let core = c
            .as_ref()
            .expect("copipe::sched: a system call was made outside a running Scheduler");
        f(core)
    })
}

/// Like [`with_core`], but returns `None` when no scheduler is running
/// (for destructors, which may run after the scheduler has stopped).
pub(crate) fn try_with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| {
            c.try_borrow()
                .ok()
                .and_then(|c| c.as_ref().map(|core| f(core)))
        })
        .ok()
        .flatten()
}

/// The part of a scheduler other threads can reach: a queue of slots to
/// wake and the poller's waker.
pub(crate) struct Remote {
    id: usize,
    queue: Mutex<Vec<u32>>,
    pending: AtomicBool,
    waker: mio::Waker,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("id", &self.id).finish()
    }
}

impl Remote {
    /// Wakes the task in slot `index`: directly when called on the
    /// scheduler's own thread while it runs, else through the queue and
    /// the poller's waker (one `eventfd` write per batch of wakes).
    pub(crate) fn wake_index(&self, index: u32) {
        if CURRENT_ID.with(Cell::get) == self.id && try_with_core(|c| c.wake_index(index)).is_some()
        {
            return;
        }
        // A poisoned lock only means another waker panicked mid-push; the
        // vector itself is still valid.
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.push(index);
        drop(q);
        if !self.pending.swap(true, Ordering::SeqCst) {
            // An error here means the eventfd is gone: the scheduler was
            // dropped, and there is nobody left to wake.
            let _ = self.waker.wake();
        }
    }

    fn take_pending(&self, into: &mut Vec<u32>) {
        if self.pending.swap(false, Ordering::SeqCst) {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *q, into);
        }
    }

    fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }
}

/// How a task ended.
pub(crate) enum Exit {
    Done,
    Killed,
    Failed(Error),
}

/// A task failure's message, without the `task failed:` prefix when the
/// error is already a task error (a panic).
fn describe(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Task(m) => m.clone(),
        _ => e.to_string(),
    }
}

/// A task waiting in `wait(tid)` for another to exit, and where the
/// outcome is delivered.
pub(crate) struct ExitWait {
    pub(crate) waiter: Tid,
    pub(crate) target_seq: u32,
    pub(crate) outcome: RefCell<Option<Result<()>>>,
}

type FailureHandler = Box<dyn FnMut(Tid, &Error)>;
type ExitHandler = Box<dyn FnMut(Tid)>;

/// The scheduler's state, shared (through an `Rc`) by the [`Scheduler`]
/// and the thread-local context.
pub(crate) struct Core {
    pub(crate) tasks: RefCell<Tasks>,
    /// Slots whose tasks are ready to run, each at most once (see
    /// `Slot::queued`).
    pub(crate) ready: RefCell<VecDeque<u32>>,
    current: Cell<Option<Tid>>,
    /// Set by [`yield_now`](super::yield_now) in the running task: queue
    /// it again when its poll returns (the slot is at hand then, so a
    /// switch looks the task up once, not twice).
    requeue: Cell<bool>,
    /// A waker not owned by any slot, lent to tasks polled in a slot that
    /// has none yet (see `run_task`). Its strong count is 1 while here.
    spare: RefCell<Option<Arc<TaskWaker>>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) io: RefCell<IoTable>,
    exit_waiting: RefCell<HashMap<u32, Vec<Rc<ExitWait>>>>,
    pub(crate) remote: Arc<Remote>,
    on_failure: RefCell<Option<FailureHandler>>,
    /// Told of every task's end (see [`Scheduler::on_exit`]).
    on_exit: RefCell<Option<ExitHandler>>,
    /// System calls requeue the caller as the seed's do (see
    /// [`Scheduler::seed_order`]).
    seed_order: Cell<bool>,
    failures: Cell<u64>,
}

impl Core {
    /// The running task.
    ///
    /// # Panics
    ///
    /// If called between tasks (by the scheduler itself): a bug.
    pub(crate) fn current(&self) -> Tid {
        self.current
            .get()
            .expect("copipe::sched: system call outside a task")
    }

    /// True if system calls requeue the caller as the seed's do (see
    /// [`Scheduler::seed_order`]).
    pub(crate) fn is_seed_order(&self) -> bool {
        self.seed_order.get()
    }

    pub(crate) fn spawn_boxed(&self, fut: TaskFuture) -> Tid {
        let (tid, push) = self.tasks.borrow_mut().insert(fut);
        if push {
            self.ready.borrow_mut().push_back(tid.index);
        }
        tid
    }

    /// The spare waker, pointed at slot `index` (made if there is none, or
    /// if a clone of it is still held somewhere).
    fn spare_waker(&self, index: u32) -> Arc<TaskWaker> {
        if let Some(mut arc) = self.spare.borrow_mut().take() {
            if let Some(w) = Arc::get_mut(&mut arc) {
                w.index = index;
                return arc;
            }
        }
        Arc::new(TaskWaker {
            index,
            remote: Arc::clone(&self.remote),
        })
    }

    /// Queues the running task again once its poll returns (the seed's
    /// bare `yield`).
    pub(crate) fn yield_current(&self) {
        // Only a running task can yield (this panics otherwise).
        self.current();
        self.requeue.set(true);
    }

    /// Queues the task in slot `index` if it is live and not queued.
    pub(crate) fn wake_index(&self, index: u32) {
        let mut tasks = self.tasks.borrow_mut();
        if let Some(slot) = tasks.slots.get_mut(index as usize) {
            if slot.seq != 0 && !slot.queued {
                slot.queued = true;
                self.ready.borrow_mut().push_back(index);
            }
        }
    }

    /// Queues a task if it is still the same task (not a later occupant of
    /// its slot).
    pub(crate) fn wake(&self, tid: Tid) {
        let mut tasks = self.tasks.borrow_mut();
        if let Some(slot) = tasks.get_mut(tid) {
            if !slot.queued {
                slot.queued = true;
                self.ready.borrow_mut().push_back(tid.index);
            }
        }
    }

    pub(crate) fn contains(&self, tid: Tid) -> bool {
        self.tasks.borrow().contains(tid)
    }

    /// Drops a task. Returns false if there is no such task.
    pub(crate) fn kill(&self, tid: Tid) -> bool {
        let fut = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(tid) else {
                return false;
            };
            match slot.future.take() {
                Some(f) => f,
                None => {
                    // The task is running: it killed itself. It is dropped
                    // when its poll returns.
                    slot.killed = true;
                    return true;
                }
            }
        };
        self.finish(tid, Some(fut), Exit::Killed);
        true
    }

    /// Registers `waiter` to be woken when `target` exits. Returns `None`
    /// if `target` is not running (the seed's WaitTask returns at once).
    pub(crate) fn wait_for(&self, waiter: Tid, target: Tid) -> Option<Rc<ExitWait>> {
        if !self.contains(target) {
            return None;
        }
        let w = Rc::new(ExitWait {
            waiter,
            target_seq: target.seq,
            outcome: RefCell::new(None),
        });
        self.exit_waiting
            .borrow_mut()
            .entry(target.index)
            .or_default()
            .push(Rc::clone(&w));
        Some(w)
    }

    pub(crate) fn cancel_wait(&self, target: Tid, w: &Rc<ExitWait>) {
        let mut map = self.exit_waiting.borrow_mut();
        if let Some(list) = map.get_mut(&target.index) {
            list.retain(|x| !Rc::ptr_eq(x, w));
            if list.is_empty() {
                map.remove(&target.index);
            }
        }
    }

    /// Polls the task in slot `index` once.
    fn run_task(&self, index: u32) {
        let (mut fut, waker, fresh, tid) = {
            let mut tasks = self.tasks.borrow_mut();
            let slot = &mut tasks.slots[index as usize];
            slot.queued = false;
            if slot.seq == 0 {
                return;
            }
            let Some(fut) = slot.future.take() else {
                return;
            };
            // A slot gets a waker of its own only once its task keeps one
            // past a poll (it parks, or someone cloned the waker). Until
            // then it borrows the spare: a task that finishes in its first
            // poll (most short tasks) allocates no waker.
            let (waker, fresh) = match slot.waker.take() {
                Some(w) => (w, None),
                None => {
                    let arc = self.spare_waker(index);
                    (Waker::from(Arc::clone(&arc)), Some(arc))
                }
            };
            (
                fut,
                waker,
                fresh,
                Tid {
                    seq: slot.seq,
                    index,
                },
            )
        };
        self.current.set(Some(tid));
        let res = catch_unwind(AssertUnwindSafe(|| {
            fut.as_mut().poll_task(&mut Context::from_waker(&waker))
        }));
        self.current.set(None);
        let exit = {
            let mut tasks = self.tasks.borrow_mut();
            let slot = &mut tasks.slots[index as usize];
            let requeue = self.requeue.replace(false);
            let parks = matches!(res, Ok(Poll::Pending)) && !slot.killed;
            match fresh {
                // Nobody kept a clone (the spare's count is ours and the
                // waker's) and the task is done: the spare goes back.
                Some(arc) if !parks && Arc::strong_count(&arc) == 2 => {
                    drop(waker);
                    *self.spare.borrow_mut() = Some(arc);
                }
                Some(arc) => {
                    slot.waker = Some(waker);
                    slot.waker_arc = Some(arc);
                }
                None => slot.waker = Some(waker),
            }
            match res {
                Ok(Poll::Pending) if !slot.killed => {
                    if requeue && !slot.queued {
                        slot.queued = true;
                        self.ready.borrow_mut().push_back(index);
                    }
                    slot.future = Some(fut);
                    return;
                }
                Ok(Poll::Pending) => Exit::Killed,
                Ok(Poll::Ready(Ok(()))) => Exit::Done,
                Ok(Poll::Ready(Err(e))) => Exit::Failed(e),
                Err(payload) => Exit::Failed(Error::new(ErrorKind::Task(format!(
                    "panicked: {}",
                    panic_message(&*payload)
                )))),
            }
        };
        self.finish(tid, Some(fut), exit);
    }

    /// Frees a task's slot, drops its future, reports a failure and wakes
    /// the tasks waiting for it.
    fn finish(&self, tid: Tid, fut: Option<TaskFuture>, exit: Exit) {
        self.tasks.borrow_mut().free(tid.index);
        // The future is dropped with no borrow held: its destructors may
        // make system calls (close a socket, close a channel).
        let mut exit = exit;
        if let Some(fut) = fut {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(fut))) {
                if matches!(exit, Exit::Done | Exit::Killed) {
                    exit = Exit::Failed(Error::new(ErrorKind::Task(format!(
                        "panicked while being dropped: {}",
                        panic_message(&*payload)
                    ))));
                }
            }
        }
        let message = match &exit {
            Exit::Failed(e) => {
                self.failures.set(self.failures.get() + 1);
                self.report(tid, e);
                Some(describe(e))
            }
            Exit::Done | Exit::Killed => None,
        };
        // Most tasks have nobody waiting: skip the hash lookup then.
        let waiters = {
            let mut map = self.exit_waiting.borrow_mut();
            if map.is_empty() {
                None
            } else {
                map.remove(&tid.index)
            }
        };
        for w in waiters.into_iter().flatten() {
            if w.target_seq != tid.seq {
                continue;
            }
            let outcome = match &message {
                None => Ok(()),
                Some(m) => Err(Error::new(ErrorKind::Task(format!("task {tid}: {m}")))),
            };
            *w.outcome.borrow_mut() = Some(outcome);
            self.wake(w.waiter);
        }
        // Taken out while it runs, so that it may itself reach the
        // scheduler (a handler that spawns or prints through a task).
        let handler = self.on_exit.borrow_mut().take();
        if let Some(mut h) = handler {
            h(tid);
            let mut slot = self.on_exit.borrow_mut();
            if slot.is_none() {
                *slot = Some(h);
            }
        }
    }

    fn report(&self, tid: Tid, err: &Error) {
        let mut handler = self.on_failure.borrow_mut();
        match handler.as_mut() {
            Some(h) => h(tid, err),
            None => eprintln!("copipe: task {tid} failed: {}", describe(err)),
        }
    }

    /// True if no task can ever be woken again: nothing is ready, no timer
    /// is set, no task waits for a file descriptor, and no waker is held
    /// outside the scheduler.
    fn is_deadlocked(&self) -> bool {
        if !self.ready.borrow().is_empty()
            || !self.timers.borrow().is_empty()
            || self.io.borrow().waiters() > 0
            || self.remote.is_pending()
        {
            return false;
        }
        if self.tasks.borrow().any_outside_waker() {
            return false;
        }
        // A waker dropped on another thread just after queueing a wake:
        // look at the queue once more after the counts.
        std::sync::atomic::fence(Ordering::SeqCst);
        !self.remote.is_pending()
    }
}

/// A single-threaded cooperative task scheduler: the seed's coroutine
/// "operating system".
///
/// Tasks are futures (`!Send` is fine: they never leave this thread). A
/// task reaches the scheduler only through *system calls*, which it awaits:
/// [`get_tid`](super::get_tid), [`spawn`](super::spawn),
/// [`kill`](super::kill), [`wait`](super::wait),
/// [`yield_now`](super::yield_now), [`sleep`](super::sleep),
/// [`read_wait`](super::read_wait), [`write_wait`](super::write_wait), and
/// the channel, socket and blocking operations built on them. `await` is
/// the trap of the seed's `yield`.
///
/// [`run`](Scheduler::run) runs tasks until none is left. A task that
/// panics or returns an error is contained: it is reported (on stderr, or
/// to the handler set with [`on_failure`](Scheduler::on_failure)), the
/// other tasks keep running, and [`wait`](super::wait) on it returns the
/// failure.
///
/// # How it runs
///
/// Ready tasks sit in a FIFO queue of slot indexes; a task is polled when
/// it reaches the front. The poller (epoll, through mio) is asked for
/// events with a zero timeout only every 61 switches while tasks are
/// ready, and with the time to the next timer as timeout when none is: a
/// switch between ready tasks costs no system call.
///
/// Poller events are handed out one at a time, each when the ready queue
/// runs dry, rather than all at once after the poll: the task an event
/// wakes then runs right after its fd's entry and its slot were touched,
/// while they are still in the CPU cache, instead of after every other
/// woken task's system calls have pushed them out. (On the echo test
/// that is most of the scheduler's own user time.)
///
/// # Examples
///
/// The seed's pyos2: two tasks taking turns.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use copipe::sched::{self, Scheduler};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let mut s = Scheduler::new()?;
/// for name in ["foo", "bar"] {
///     let log = Rc::clone(&log);
///     s.spawn(async move {
///         for _ in 0..2 {
///             log.borrow_mut().push(format!("I'm {name}"));
///             sched::yield_now().await;
///         }
///     });
/// }
/// s.run()?;
/// assert_eq!(*log.borrow(), ["I'm foo", "I'm bar", "I'm foo", "I'm bar"]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct Scheduler {
    core: Rc<Core>,
    poll: mio::Poll,
    events: Events,
    woken: Vec<u32>,
    /// Events from the last poll, dispatched from `next_event` on, one
    /// each time the ready queue is empty (see "How it runs").
    io_events: Vec<IoEvent>,
    next_event: usize,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("id", &self.core.remote.id)
            .field("tasks", &self.core.tasks.borrow().live)
            .finish()
    }
}

impl Scheduler {
    /// Makes a scheduler with its own poller.
    ///
    /// # Errors
    ///
    /// If the operating system refuses an epoll instance or an eventfd.
    pub fn new() -> Result<Scheduler> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let registry = poll.registry().try_clone()?;
        let remote = Arc::new(Remote {
            id: NEXT_SCHEDULER_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker,
        });
        let core = Rc::new(Core {
            tasks: RefCell::new(Tasks::new()),
            ready: RefCell::new(VecDeque::new()),
            current: Cell::new(None),
            requeue: Cell::new(false),
            spare: RefCell::new(None),
            timers: RefCell::new(Timers::new()),
            io: RefCell::new(IoTable::new(registry)),
            exit_waiting: RefCell::new(HashMap::new()),
            remote,
            on_failure: RefCell::new(None),
            on_exit: RefCell::new(None),
            seed_order: Cell::new(false),
            failures: Cell::new(0),
        });
        Ok(Scheduler {
            core,
            poll,
            events: Events::with_capacity(1024),
            woken: Vec::new(),
            io_events: Vec::with_capacity(1024),
            next_event: 0,
        })
    }

    /// Adds a task; it runs when [`run`](Scheduler::run) is called. Inside
    /// a task, use the [`spawn`](super::spawn) system call instead.
    ///
    /// The future may return `()` or `Result<(), E>` with `E: Into<Error>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::sched::Scheduler;
    ///
    /// let mut s = Scheduler::new()?;
    /// let tid = s.spawn(async { Ok::<(), std::io::Error>(()) });
    /// assert_eq!(tid.seq(), 1);
    /// s.run()?;
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn spawn<F>(&self, fut: F) -> Tid
    where
        F: Future + 'static,
        F::Output: TaskOutput,
    {
        self.core.spawn_boxed(boxed(fut))
    }

    /// Sets the handler told of each task that fails (returns an error or
    /// panics), instead of printing `copipe: task N failed: ...` on stderr.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use copipe::sched::Scheduler;
    ///
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let mut s = Scheduler::new()?;
    /// let log = Rc::clone(&seen);
    /// s.on_failure(move |tid, err| log.borrow_mut().push(format!("{tid}: {err}")));
    /// s.spawn(async { Err(copipe::Error::usage("bad input")) });
    /// s.run()?;
    /// assert_eq!(*seen.borrow(), ["1: bad input"]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn on_failure(&mut self, handler: impl FnMut(Tid, &Error) + 'static) {
        *self.core.on_failure.borrow_mut() = Some(Box::new(handler));
    }

    /// Sets the handler told of each task's end: a normal return, a kill
    /// or a failure (after [`on_failure`](Scheduler::on_failure)'s
    /// report). The seed's schedulers from pyos3 on print `Task N
    /// terminated` here; a task that is waited for is reported before its
    /// waiters resume.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use copipe::sched::{self, Scheduler};
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let mut s = Scheduler::new()?;
    /// let l = Rc::clone(&log);
    /// s.on_exit(move |tid| l.borrow_mut().push(format!("Task {tid} terminated")));
    /// s.spawn(async {
    ///     let child = sched::spawn(async { sched::yield_now().await }).await;
    ///     sched::wait(child).await.unwrap();
    /// });
    /// s.run()?;
    /// assert_eq!(*log.borrow(), ["Task 2 terminated", "Task 1 terminated"]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn on_exit(&mut self, handler: impl FnMut(Tid) + 'static) {
        *self.core.on_exit.borrow_mut() = Some(Box::new(handler));
    }

    /// Makes system calls trap as the seed's do: [`spawn`](super::spawn),
    /// [`get_tid`](super::get_tid), [`kill`](super::kill) and a
    /// [`wait`](super::wait) on a task that is gone queue the caller
    /// behind the ready tasks (the seed's `handle()` ends in
    /// `schedule(self.task)`). So a new task runs before its parent
    /// resumes (pyos6 prints `I'm foo` before `Waiting for child`).
    ///
    /// Off by default: then these calls return at once, the parent keeps
    /// running and its children wait their turn, which spares a task
    /// switch per call (`benches/sched.rs`, `spawn`), and a task that
    /// starts many children has them all queued before any runs.
    ///
    /// # Examples
    ///
    /// The seed's pyos6 order: the child speaks first.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use copipe::sched::{self, Scheduler};
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let mut s = Scheduler::new()?;
    /// s.seed_order(true);
    /// let l = Rc::clone(&log);
    /// s.spawn(async move {
    ///     let c = Rc::clone(&l);
    ///     sched::spawn(async move { c.borrow_mut().push("I'm foo") }).await;
    ///     l.borrow_mut().push("Waiting for child");
    /// });
    /// s.run()?;
    /// assert_eq!(*log.borrow(), ["I'm foo", "Waiting for child"]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn seed_order(&mut self, yes: bool) {
        self.core.seed_order.set(yes);
    }

    /// How many tasks have failed so far.
    pub fn failures(&self) -> u64 {
        self.core.failures.get()
    }

    /// How many tasks are alive.
    pub fn len(&self) -> usize {
        self.core.tasks.borrow().live
    }

    /// True if no task is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs tasks until none is left.
    ///
    /// Failed tasks do not stop the run (see [`Scheduler`]).
    ///
    /// # Errors
    ///
    /// - the poller fails (an `epoll_wait` error other than `EINTR`);
    /// - another scheduler is already running on this thread;
    /// - a deadlock: every remaining task waits for something that can no
    ///   longer happen (a channel nobody else holds, a task that waits for
    ///   it in turn). The tasks are dropped and named in the error, instead
    ///   of the run hanging forever.
    pub fn run(&mut self) -> Result<()> {
        let _enter = Enter::new(&self.core)?;
        let mut tick: u32 = 0;
        loop {
            let next = self.core.ready.borrow_mut().pop_front();
            if let Some(index) = next {
                self.core.run_task(index);
                tick += 1;
                if tick == EVENT_INTERVAL {
                    tick = 0;
                    self.turn(Some(Duration::ZERO))?;
                }
                continue;
            }
            // The queue drained, so nothing is being starved: count the
            // next 61 from here. (Counting on would make the look at the
            // poller fall in the middle of a batch of events, dispatching
            // the rest of the batch at once, away from its tasks.)
            tick = 0;
            if self.dispatch_one() {
                continue;
            }
            if self.core.tasks.borrow().live == 0 {
                return Ok(());
            }
            let timeout = self
                .core
                .timers
                .borrow()
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if timeout.is_none() && self.core.is_deadlocked() {
                return Err(self.break_deadlock());
            }
            self.turn(timeout)?;
        }
    }

    /// Dispatches buffered poller events until one wakes a task; false if
    /// none is left.
    fn dispatch_one(&mut self) -> bool {
        let core = &*self.core;
        while let Some(&ev) = self.io_events.get(self.next_event) {
            self.next_event += 1;
            core.io.borrow_mut().on_event(ev, core);
            if !core.ready.borrow().is_empty() {
                self.look_ahead();
                return true;
            }
        }
        false
    }

    /// Loads what the next events will need, so that their cache misses
    /// overlap with the run of the task just woken instead of coming
    /// after it: a prefetch in safe code (the loads are issued now and the
    /// CPU runs on while they complete). Pipelined two deep: the next
    /// event's waiter's slot (its fd entry was loaded one step ago, so the
    /// slot's address is at hand) and the fd entry of the event after.
    fn look_ahead(&self) {
        let core = &*self.core;
        let io = core.io.borrow();
        if let Some(&after) = self.io_events.get(self.next_event + 1) {
            io.touch(after);
        }
        let Some(&next) = self.io_events.get(self.next_event) else {
            return;
        };
        if let Some(tid) = io.first_waiter(next) {
            let tasks = core.tasks.borrow();
            std::hint::black_box(tasks.slots.get(tid.index as usize).map(|s| s.seq));
        }
    }

    /// One look at the world outside the ready queue: cross-thread wakes,
    /// the poller (waiting at most `timeout`), and due timers.
    ///
    /// Events still buffered from the last poll are dispatched first, so
    /// the buffer never holds more than one poll's worth.
    fn turn(&mut self, timeout: Option<Duration>) -> Result<()> {
        while self.dispatch_one() {}
        let core = &*self.core;
        let mut timeout = timeout;
        if core.remote.is_pending() {
            timeout = Some(Duration::ZERO);
        }
        if timeout != Some(Duration::ZERO) || core.io.borrow().is_registered() {
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
            self.io_events.clear();
            self.next_event = 0;
            self.io_events.extend(
                self.events
                    .iter()
                    .filter(|ev| ev.token() != WAKER_TOKEN)
                    .map(IoEvent::new),
            );
        }
        if core.remote.is_pending() {
            core.remote.take_pending(&mut self.woken);
            for index in self.woken.drain(..) {
                core.wake_index(index);
            }
        }
        if !core.timers.borrow().is_empty() {
            Timers::fire_due(core, Instant::now());
        }
        Ok(())
    }

    /// The scheduler's state, for unit tests of the parts it holds.
    #[cfg(test)]
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    fn break_deadlock(&mut self) -> Error {
        // Before the kills, which drop the tasks' outlets.
        let outlets = super::host::stuck_outlets().map_or(String::new(), |o| format!("; {o}"));
        let stuck = self.core.tasks.borrow().live_tids();
        let names: Vec<String> = stuck.iter().map(|t| t.to_string()).collect();
        for tid in stuck {
            self.core.kill(tid);
        }
        Error::new(ErrorKind::Task(format!(
            "deadlock: task(s) {} wait for something that can no longer happen \
             (a channel or a task nobody else can finish); they were dropped{outlets}",
            names.join(", ")
        )))
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Drop the remaining tasks with the context set, so that their
        // destructors (closing sockets and channels) can reach the
        // scheduler. If another scheduler runs on this thread, the futures
        // are dropped without it.
        let tids = self.core.tasks.borrow().live_tids();
        if tids.is_empty() {
            return;
        }
        let enter = Enter::new(&self.core).ok();
        let failed = self.core.failures.get();
        *self.core.on_failure.borrow_mut() = Some(Box::new(|_, _| {}));
        // Tasks dropped with the scheduler did not end while it ran.
        *self.core.on_exit.borrow_mut() = None;
        for tid in tids {
            self.core.kill(tid);
        }
        self.core.failures.set(failed);
        drop(enter);
    }
}

/// Sets the thread-local context for the duration of a run, and restores
/// it even if the run unwinds.
struct Enter;

impl Enter {
    fn new(core: &Rc<Core>) -> Result<Enter> {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if c.is_some() {
                return Err(Error::usage(
                    "a scheduler is already running on this thread; \
                     run other schedulers on their own threads (see sched::Proc)",
                ));
            }
            *c = Some(Rc::clone(core));
            CURRENT_ID.with(|id| id.set(core.remote.id));
            Ok(Enter)
        })
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT_ID.with(|id| id.set(0));
        let core = CURRENT.with(|c| c.borrow_mut().take());
        drop(core);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that finishes in its first poll gives the spare waker back;
    /// one that kept a clone of it leaves it with its slot (so that the
    /// clone keeps waking that slot), and the spare is made anew.
    #[test]
    fn the_spare_waker_comes_back_only_if_nobody_kept_a_clone() {
        let mut s = Scheduler::new().unwrap();
        let kept: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let a = s.spawn(async {});
        let k = Rc::clone(&kept);
        let b = s.spawn(std::future::poll_fn(move |cx| {
            *k.borrow_mut() = Some(cx.waker().clone());
            Poll::Ready(())
        }));
        let c = s.spawn(async {});
        s.run().unwrap();
        let core = &*s.core;
        let tasks = core.tasks.borrow();
        assert!(tasks.slots[a.index as usize].waker.is_none());
        assert!(tasks.slots[c.index as usize].waker.is_none());
        let b_arc = tasks.slots[b.index as usize]
            .waker_arc
            .as_ref()
            .expect("b's slot owns the waker b kept");
        assert_eq!(b_arc.index, b.index);
        let spare = core.spare.borrow();
        let spare = spare.as_ref().expect("c made a new spare and gave it back");
        assert!(!Arc::ptr_eq(spare, b_arc));
        assert_eq!(Arc::strong_count(spare), 1);
    }
}
