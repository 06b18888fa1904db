//! Timers: a binary heap of deadlines, [`sleep`] and [`after`].

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::chan::Chan;
use super::scheduler::{with_core, Core};
use super::task::Tid;

/// State of one sleep, shared by the [`Sleep`] future and its heap entry.
///
/// `PENDING` until the deadline passes, then `FIRED`; `CANCELLED` when
/// the `Sleep` is dropped first, so the heap entry (removed lazily, when
/// it comes due) wakes nobody.
const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

pub(crate) enum Action {
    Wake { tid: Tid, state: Rc<Cell<u8>> },
    Call(Box<dyn FnOnce()>),
}

struct Entry {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The scheduler's timers: a min-heap on (deadline, insertion order).
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    pub(crate) fn add(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            action,
        }));
    }

    /// Runs every action due at `now`, one at a time with no borrow held
    /// (a callback may send on a channel, which wakes tasks).
    pub(crate) fn fire_due(core: &Core, now: Instant) {
        loop {
            let entry = {
                let mut t = core.timers.borrow_mut();
                match t.heap.peek() {
                    Some(e) if e.0.at <= now => t.heap.pop().map(|e| e.0),
                    _ => None,
                }
            };
            let Some(entry) = entry else { return };
            match entry.action {
                Action::Wake { tid, state } => {
                    if state.get() == PENDING {
                        state.set(FIRED);
                        core.wake(tid);
                    }
                }
                Action::Call(f) => f(),
            }
        }
    }
}

/// Suspends the calling task for `dur` (libtask9's `sleep`).
///
/// Other tasks run meanwhile. The deadline sits in the scheduler's timer
/// heap; the scheduler blocks in the poller no longer than until the
/// earliest deadline.
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let start = Instant::now();
///     sched::sleep(Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn sleep(dur: Duration) -> Sleep {
    Sleep {
        at: Instant::now().checked_add(dur),
        state: None,
    }
}

/// The future of [`sleep`].
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    /// `None`: so far in the future that it never comes.
    at: Option<Instant>,
    state: Option<Rc<Cell<u8>>>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("at", &self.at).finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        match &self.state {
            Some(state) if state.get() == FIRED => Poll::Ready(()),
            Some(_) => Poll::Pending,
            None => {
                let Some(at) = self.at else {
                    // Never: park; the deadlock check still sees us as
                    // waiting on nothing, which is the truth.
                    return Poll::Pending;
                };
                if at <= Instant::now() {
                    return Poll::Ready(());
                }
                let state = Rc::new(Cell::new(PENDING));
                with_core(|core| {
                    let tid = core.current();
                    core.timers.borrow_mut().add(
                        at,
                        Action::Wake {
                            tid,
                            state: Rc::clone(&state),
                        },
                    );
                });
                self.state = Some(state);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            if state.get() == PENDING {
                state.set(CANCELLED);
            }
        }
    }
}

/// A channel that receives the time once, `dur` from now: libtask9's
/// `after`, for a timeout in [`alt`](super::alt).
///
/// # Panics
///
/// If called outside a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let timeout = sched::after(Duration::from_millis(1));
///     assert!(timeout.recv().await.is_some());
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn after(dur: Duration) -> Chan<Instant> {
    let ch = Chan::new(1);
    let tx = ch.clone();
    let at = Instant::now() + dur;
    with_core(|core| {
        core.timers.borrow_mut().add(
            at,
            Action::Call(Box::new(move || {
                // The channel has room for this one value and nobody else
                // sends on it; a closed channel just means nobody waits.
                let _ = tx.try_send(Instant::now());
            })),
        );
    });
    ch
}

/// One nanosecond (libtask9's `Nanosecond`): durations read as in the
/// seed, `10 * SECOND`.
pub const NANOSECOND: Duration = Duration::from_nanos(1);
/// One microsecond (libtask9's `Microsecond`).
pub const MICROSECOND: Duration = Duration::from_micros(1);
/// One millisecond (libtask9's `Millisecond`).
pub const MILLISECOND: Duration = Duration::from_millis(1);
/// One second (libtask9's `Second`): `sleep(2 * SECOND)`.
pub const SECOND: Duration = Duration::from_secs(1);
/// One minute (libtask9's `Minute`).
pub const MINUTE: Duration = Duration::from_secs(60);
/// One hour (libtask9's `Hour`).
pub const HOUR: Duration = Duration::from_secs(3600);
