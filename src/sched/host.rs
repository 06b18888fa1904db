//! Hosting stages as tasks: [`host`] feeds a [`Stage`] from a channel, and
//! an [`Outlet`] is a stage that pushes into a channel. Together they let
//! any task push into a pipeline, and let a graph have cycles, which
//! direct `send` cannot (the stage would be re-entered while it handles an
//! item).

use crate::Lifecycle;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::{Flow, Result, Stage};

use super::chan::{Chan, TrySendError};

/// Items an [`Outlet`] could not put in its full channel, to be sent by the
/// hosting task (which can wait) once the stage's `send` returns.
trait Backlog {
    /// Moves everything into the channel, waiting for room.
    fn drain(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
}

thread_local! {
    /// Outlets that filled up during the current `send` of a hosted stage.
    static BACKLOGGED: RefCell<Vec<Rc<dyn Backlog>>> = const { RefCell::new(Vec::new()) };
}

struct OutletState<T> {
    ch: Chan<T>,
    backlog: RefCell<VecDeque<T>>,
    close_after_drain: std::cell::Cell<bool>,
}

impl<T: 'static> Backlog for OutletState<T> {
    fn drain(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async move {
            loop {
                let next = self.backlog.borrow_mut().pop_front();
                let Some(item) = next else { break };
                if self.ch.send(item).await.is_err() {
                    // The channel closed: what is left cannot be delivered.
                    self.backlog.borrow_mut().clear();
                    break;
                }
            }
            if self.close_after_drain.get() {
                self.ch.close();
            }
        })
    }
}

/// A stage that pushes each item into a [`Chan`]: the edge into a hosted
/// stage.
///
/// `send` never blocks (a stage cannot wait): when the channel is full the
/// item goes into the outlet's backlog, and the task hosting the stage that
/// sent it (see [`host`]) moves the backlog into the channel, waiting for
/// room, before it takes its next item. Memory is thus bounded by the
/// channel plus what one input item produces. `send` returns
/// `Flow::Stop` once the channel is closed; `close` closes the channel
/// (after the backlog is drained).
///
/// # Examples
///
/// See [`host`].
pub struct Outlet<T> {
    state: Rc<OutletState<T>>,
}

impl<T> fmt::Debug for Outlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outlet")
            .field("backlog", &self.state.backlog.borrow().len())
            .finish()
    }
}

impl<T: 'static> Outlet<T> {
    /// An outlet into `ch`.
    pub fn new(ch: Chan<T>) -> Outlet<T> {
        Outlet {
            state: Rc::new(OutletState {
                ch,
                backlog: RefCell::new(VecDeque::new()),
                close_after_drain: std::cell::Cell::new(false),
            }),
        }
    }

    fn register(&self) {
        let me: Rc<dyn Backlog> = self.state.clone();
        BACKLOGGED.with(|b| {
            let mut b = b.borrow_mut();
            if !b.iter().any(|x| Rc::ptr_eq(x, &me)) {
                b.push(me);
            }
        });
    }
}

impl<T: 'static> Stage<T> for Outlet<T> {
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.state.ch.is_closed() {
            return Ok(Flow::Stop);
        }
        if !self.state.backlog.borrow().is_empty() {
            self.state.backlog.borrow_mut().push_back(item);
            return Ok(Flow::Continue);
        }
        match self.state.ch.try_send(item) {
            Ok(()) => Ok(Flow::Continue),
            Err(TrySendError::Closed(_)) => Ok(Flow::Stop),
            Err(TrySendError::Full(item)) => {
                self.state.backlog.borrow_mut().push_back(item);
                self.register();
                Ok(Flow::Continue)
            }
        }
    }
}

impl<T: 'static> Lifecycle for Outlet<T> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        if self.state.backlog.borrow().is_empty() {
            self.state.ch.close();
        } else {
            self.state.close_after_drain.set(true);
            self.register();
        }
        Ok(())
    }
}

/// Drains the backlogs of outlets filled during the last `send`.
async fn drain_backlogs() {
    loop {
        let list = BACKLOGGED.with(|b| std::mem::take(&mut *b.borrow_mut()));
        if list.is_empty() {
            return;
        }
        for b in list {
            b.drain().await;
        }
    }
}

/// Hosts a stage in a task: receives items from `inbox` and sends each to
/// `stage`, until the inbox is closed and drained or the stage says
/// `Flow::Stop`; then closes the stage. The stage is flushed each time the
/// inbox runs empty (upstream is about to wait). Await it in a task of its
/// own (`sched::spawn(host(inbox, stage))`).
///
/// Any task can then push into the pipeline with `inbox.send(item).await`,
/// and a stage's output can reach another hosted stage through an
/// [`Outlet`], including one upstream of it: a cycle. Items then travel
/// through channels, each stage runs in its own task, and no stage is
/// re-entered.
///
/// # Errors
///
/// The stage's error; the task fails with it (and the scheduler reports
/// it). Items still in the inbox are dropped and the inbox is closed, so
/// senders see the failure.
///
/// # Examples
///
/// A cycle: `double` sends into `halve_or_stop`, which sends back into
/// `double` until the value is large, then into the result channel.
///
/// ```
/// use copipe::sched::{self, host, Chan, Outlet, Scheduler};
/// use copipe::{from_fn, Flow, Stage};
///
/// let mut s = Scheduler::new()?;
/// let a: Chan<u64> = Chan::new(4);
/// let b: Chan<u64> = Chan::new(4);
/// let done: Chan<u64> = Chan::new(1);
/// let mut to_b = Outlet::new(b.clone());
/// s.spawn(host(a.clone(), from_fn(move |x: u64| to_b.send(x * 2))));
/// let mut to_a = Outlet::new(a.clone());
/// let mut to_done = Outlet::new(done.clone());
/// s.spawn(host(b.clone(), from_fn(move |x: u64| {
///     if x < 100 { to_a.send(x + 1) } else { to_done.send(x) }
/// })));
/// s.spawn(async move {
///     a.send(1).await.expect("open");
///     let got = done.recv().await;
///     assert_eq!(got, Some(126)); // 1 -> 2 -> 3 -> 6 -> 7 -> ... -> 62 -> 63 -> 126
///     a.close();
///     b.close();
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub async fn host<T, S>(inbox: Chan<T>, mut stage: S) -> Result<()>
where
    S: Stage<T>,
{
    let result = async {
        loop {
            let item = match inbox.try_recv() {
                Ok(item) => item,
                Err(_) => {
                    // About to wait (or at the end): push out what is
                    // buffered downstream.
                    stage.flush()?;
                    drain_backlogs().await;
                    match inbox.recv().await {
                        Some(item) => item,
                        None => break,
                    }
                }
            };
            let flow = stage.send(item)?;
            drain_backlogs().await;
            if flow == Flow::Stop {
                break;
            }
        }
        stage.close()?;
        drain_backlogs().await;
        Ok(())
    }
    .await;
    // Senders still waiting must not wait forever for a stage that is done.
    inbox.close();
    if result.is_err() {
        while inbox.try_recv().is_ok() {}
    }
    result
}
