//! The task-management system calls: [`get_tid`], [`spawn`], [`kill`],
//! [`wait`], [`yield_now`] (the seed's `GetTid`, `NewTask`, `KillTask`,
//! `WaitTask` and bare `yield`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::Result;

use super::scheduler::{try_with_core, with_core, ExitWait};
use super::task::{boxed, TaskOutput, Tid};

/// The calling task's id (the seed's `GetTid`).
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// let tid = s.spawn(async {});
/// s.spawn(async move { assert_eq!(sched::get_tid().await.seq(), 2) });
/// assert_eq!(tid.seq(), 1);
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub async fn get_tid() -> Tid {
    let (tid, seed_order) = with_core(|core| (core.current(), core.is_seed_order()));
    if seed_order {
        yield_now().await;
    }
    tid
}

/// Starts a new task and returns its id (the seed's `NewTask`).
///
/// The new task is queued behind the tasks already ready; the caller
/// keeps running, unless the scheduler was told
/// [`seed_order`](super::Scheduler::seed_order): then the caller is queued
/// behind the child and resumes after it has run.
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let child = sched::spawn(async { 2 + 2; }).await;
///     assert!(sched::wait(child).await.is_ok());
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub async fn spawn<F>(fut: F) -> Tid
where
    F: Future + 'static,
    F::Output: TaskOutput,
{
    let fut = boxed(fut);
    let (tid, seed_order) = with_core(|core| (core.spawn_boxed(fut), core.is_seed_order()));
    if seed_order {
        yield_now().await;
    }
    tid
}

/// Kills a task: drops its future, so its destructors run (the seed's
/// `KillTask`, which calls the generator's `close()`). Returns false if
/// there is no such task.
///
/// A task blocked in I/O, on a channel, in `sleep` or in `wait` is removed
/// from whatever it waits for. Tasks waiting for it see a normal exit.
/// A task that kills itself is dropped at its next suspension.
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let child = sched::spawn(async { for _ in 0.. { sched::yield_now().await } }).await;
///     sched::yield_now().await;
///     assert!(sched::kill(child).await);
///     assert!(!sched::kill(child).await);
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub async fn kill(tid: Tid) -> bool {
    let (killed, seed_order) = with_core(|core| (core.kill(tid), core.is_seed_order()));
    if seed_order {
        yield_now().await;
    }
    killed
}

/// Waits for a task to exit (the seed's `WaitTask`).
///
/// Returns `Ok(true)` once it has exited normally or was killed, and
/// `Ok(false)` at once if there is no such task (it has already exited,
/// as in the seed).
///
/// # Errors
///
/// If the task failed (returned an error or panicked), the failure, as an
/// [`ErrorKind::Task`](crate::ErrorKind::Task) naming the task.
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.on_failure(|_, _| {});
/// s.spawn(async {
///     let child = sched::spawn(async { if true { panic!("boom") } }).await;
///     let err = sched::wait(child).await.unwrap_err();
///     assert_eq!(err.to_string(), "task failed: task 2: panicked: boom");
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn wait(tid: Tid) -> Wait {
    Wait {
        target: tid,
        state: None,
    }
}

/// The future of [`wait`].
#[must_use = "waiting does nothing unless awaited"]
pub struct Wait {
    target: Tid,
    state: Option<Rc<ExitWait>>,
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("target", &self.target)
            .finish()
    }
}

impl Future for Wait {
    type Output = Result<bool>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<bool>> {
        match &self.state {
            None => {
                let target = self.target;
                match with_core(|core| core.wait_for(core.current(), target)) {
                    None => Poll::Ready(Ok(false)),
                    Some(w) => {
                        self.state = Some(w);
                        Poll::Pending
                    }
                }
            }
            Some(w) => {
                let outcome = w.outcome.borrow_mut().take();
                match outcome {
                    None => Poll::Pending,
                    Some(r) => {
                        self.state = None;
                        Poll::Ready(r.map(|()| true))
                    }
                }
            }
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(w) = self.state.take() {
            if w.outcome.borrow().is_none() {
                let target = self.target;
                try_with_core(|core| core.cancel_wait(target, &w));
            }
        }
    }
}

/// Lets the other ready tasks run, then continues (the seed's bare
/// `yield`).
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async { sched::yield_now().await });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "yielding does nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        with_core(|core| core.yield_current());
        Poll::Pending
    }
}
