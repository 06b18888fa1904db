//! Task ids, the task table (a slab) and the per-slot waker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::{Error, Result};

use super::scheduler::Remote;

/// The future a task runs, boxed and type-erased.
pub(crate) type TaskFuture = Pin<Box<dyn TaskFut>>;

/// A task id, as the seed's `Task.tid`.
///
/// It displays as the task's sequence number (1 for the first task spawned
/// on a scheduler, 2 for the next, ...), as in the seed's output
/// (`I'm foo 1`). Internally it also names the task's slot, so looking a
/// task up is an array index, and a stale id (a task that has exited, whose
/// slot now holds another task) is recognised by its sequence number.
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// let first = s.spawn(async {
///     let me = sched::get_tid().await;
///     assert_eq!(me.to_string(), "1");
/// });
/// assert_eq!(first.seq(), 1);
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    pub(crate) seq: u32,
    pub(crate) index: u32,
}

impl Tid {
    /// The task's sequence number: 1 for the first task spawned on its
    /// scheduler, counting up.
    pub fn seq(self) -> u32 {
        self.seq
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seq)
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tid({})", self.seq)
    }
}

/// What a task's future may return: `()` or `Result<(), E>` for any error
/// that converts into [`Error`] (such as `io::Error`).
pub trait TaskOutput {
    /// Turns the output into the task's result.
    ///
    /// # Errors
    ///
    /// The task's own error, if it returned one.
    fn into_result(self) -> Result<()>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<()> {
        Ok(())
    }
}

impl<E: Into<Error>> TaskOutput for std::result::Result<(), E> {
    fn into_result(self) -> Result<()> {
        self.map_err(Into::into)
    }
}

/// Boxes a task's future, turning its output into `Result<()>`.
pub(crate) fn boxed<F>(fut: F) -> TaskFuture
where
    F: Future + 'static,
    F::Output: TaskOutput,
{
    Box::pin(fut)
}

/// A task's future with its output turned into `Result<()>`: implemented
/// for every future whose output is a [`TaskOutput`], so a task is boxed
/// once, with no wrapper state around it.
pub(crate) trait TaskFut {
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>>;
}

impl<F> TaskFut for F
where
    F: Future,
    F::Output: TaskOutput,
{
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll(cx).map(TaskOutput::into_result)
    }
}

/// Wakes one slot of one scheduler.
///
/// One waker is made per *slot* and reused by every task that later
/// occupies the slot, so spawning into a recycled slot allocates nothing
/// but the future. A slot gets its waker only when its task keeps one past
/// a poll; until then it borrows the scheduler's spare (repointed with
/// `Arc::get_mut`, so only while nobody else holds it), and a task that
/// finishes in its first poll allocates no waker at all. A waker kept by someone after its task exited can
/// therefore wake the slot's next occupant: that is a spurious wake, which
/// the `Future` contract allows and every system call tolerates.
#[derive(Debug)]
pub(crate) struct TaskWaker {
    pub(crate) index: u32,
    pub(crate) remote: Arc<Remote>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.remote.wake_index(self.index);
    }
}

/// One entry of the task table.
///
/// States of a slot (`seq`, `future`, flags):
///
/// - *free*: `seq == 0`, `future` is `None`; the slot is on the free list.
///   `queued` may still be true if the slot's index sits in the ready queue
///   from before the task was killed; the next occupant then inherits that
///   queue entry instead of being queued twice.
/// - *parked*: `seq != 0`, `future` is `Some`, `queued == false`.
/// - *ready*: `seq != 0`, `queued == true`: the index is in the ready
///   queue exactly once.
/// - *running*: `seq != 0`, `future` is `None` (the scheduler holds it
///   while polling). A running task may be queued (it yielded) or killed
///   (it killed itself; it is dropped when its poll returns).
///
/// A slot is 56 bytes, aligned to 64 so that none straddles two cache
/// lines: waking a task and then running it touch one line of the table.
#[repr(align(64))]
pub(crate) struct Slot {
    pub(crate) future: Option<TaskFuture>,
    pub(crate) waker: Option<Waker>,
    /// The `Arc` behind `waker`, kept to count clones: a strong count above
    /// 2 (this and `waker`) means someone else holds a waker for this slot,
    /// so the task may still be woken from outside.
    pub(crate) waker_arc: Option<Arc<TaskWaker>>,
    pub(crate) seq: u32,
    pub(crate) next_free: u32,
    pub(crate) queued: bool,
    pub(crate) killed: bool,
}

/// The task table: a slab of slots with a free list.
pub(crate) struct Tasks {
    pub(crate) slots: Vec<Slot>,
    free_head: u32,
    pub(crate) live: usize,
    next_seq: u32,
}

const NIL: u32 = u32::MAX;

impl Tasks {
    pub(crate) fn new() -> Tasks {
        Tasks {
            slots: Vec::new(),
            free_head: NIL,
            live: 0,
            next_seq: 1,
        }
    }

    /// Puts a future in a free slot. Returns its id and whether the caller
    /// must push the index on the ready queue (false when the slot's index
    /// is already there, inherited from a killed task).
    pub(crate) fn insert(&mut self, future: TaskFuture) -> (Tid, bool) {
        let seq = self.next_seq;
        // Sequence numbers skip 0, which marks a free slot.
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.live += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            self.free_head = slot.next_free;
            slot.future = Some(future);
            slot.seq = seq;
            slot.killed = false;
            let push = !slot.queued;
            slot.queued = true;
            (Tid { seq, index }, push)
        } else {
            let index = u32::try_from(self.slots.len()).expect("fewer than 4 billion tasks");
            self.slots.push(Slot {
                future: Some(future),
                waker: None,
                waker_arc: None,
                seq,
                next_free: NIL,
                queued: true,
                killed: false,
            });
            (Tid { seq, index }, true)
        }
    }

    /// The slot of a live task, or `None` if the task has exited.
    pub(crate) fn get_mut(&mut self, tid: Tid) -> Option<&mut Slot> {
        self.slots
            .get_mut(tid.index as usize)
            .filter(|s| s.seq == tid.seq && s.seq != 0)
    }

    pub(crate) fn contains(&self, tid: Tid) -> bool {
        self.slots
            .get(tid.index as usize)
            .is_some_and(|s| s.seq == tid.seq && s.seq != 0)
    }

    /// Frees a slot; the caller has taken the future out.
    pub(crate) fn free(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        debug_assert!(slot.seq != 0);
        slot.seq = 0;
        slot.future = None;
        slot.killed = false;
        slot.next_free = self.free_head;
        self.free_head = index;
        self.live -= 1;
    }

    /// True if a waker of some live, parked task is held outside the
    /// scheduler (a blocking job, a cross-thread channel, a foreign
    /// future), so that task may still be woken.
    pub(crate) fn any_outside_waker(&self) -> bool {
        self.slots.iter().any(|s| {
            s.seq != 0
                && s.waker_arc
                    .as_ref()
                    .is_some_and(|a| Arc::strong_count(a) > 2)
        })
    }

    /// The live tasks, for reports.
    pub(crate) fn live_tids(&self) -> Vec<Tid> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.seq != 0)
            .map(|(i, s)| Tid {
                seq: s.seq,
                index: i as u32,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_with_new_sequence_numbers() {
        let mut t = Tasks::new();
        let (a, push_a) = t.insert(boxed(async {}));
        let (b, _) = t.insert(boxed(async {}));
        assert!(push_a);
        assert_eq!((a.seq, a.index, b.seq, b.index), (1, 0, 2, 1));
        // Free `a` while its index is still queued: the next task in the
        // slot inherits the queue entry instead of being queued twice.
        t.free(a.index);
        assert!(!t.contains(a));
        let (c, push_c) = t.insert(boxed(async {}));
        assert_eq!((c.seq, c.index), (3, 0));
        assert!(!push_c, "slot 0 is still in the ready queue");
        assert!(
            t.get_mut(a).is_none(),
            "a stale id does not reach the new task"
        );
        assert_eq!(t.live, 2);
        assert_eq!(t.live_tids(), [c, b]);
    }
}
