//! Hosting stages as tasks: [`host`] feeds a [`Stage`] from a channel, and
//! an [`Outlet`] is a stage that pushes into a channel. Together they let
//! any task push into a pipeline, and let a graph have cycles, which
//! direct `send` cannot (the stage would be re-entered while it handles an
//! item).

use crate::Lifecycle;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::{Error, ErrorKind, Flow, Result, Stage};

use super::chan::{Chan, TrySendError};

/// Items an [`Outlet`] could not put in its full channel, to be sent by a
/// task (which can wait) once the stage's `send` returns.
trait Backlog {
    /// Moves everything into the channel, waiting for room.
    fn drain(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
    /// The outlet's name and how many items it holds, if it holds any.
    fn holding(&self) -> Option<(String, usize)>;
}

thread_local! {
    /// Outlets that filled up during the current `send` of a hosted stage.
    static BACKLOGGED: RefCell<Vec<Rc<dyn Backlog>>> = const { RefCell::new(Vec::new()) };
    /// Every outlet that has ever held a backlog on this thread, so that a
    /// deadlock can name the ones still holding items.
    static KNOWN: RefCell<Vec<std::rc::Weak<dyn Backlog>>> = const { RefCell::new(Vec::new()) };
    /// How many `host` calls are inside their stage's `send`, `flush` or
    /// `close` right now: an outlet filled there is drained by `host`.
    static HOSTING: Cell<u32> = const { Cell::new(0) };
}

/// Numbers outlets for their default names.
static NEXT_OUTLET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct OutletState<T> {
    ch: Chan<T>,
    name: RefCell<String>,
    backlog: RefCell<VecDeque<T>>,
    close_after_drain: Cell<bool>,
    /// The drain task spawned by a send outside `host`, while it runs.
    /// Any other drain waits for it to end first, so order is kept.
    drainer: Cell<Option<super::Tid>>,
    known: Cell<bool>,
}

impl<T: 'static> Backlog for OutletState<T> {
    fn drain(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async move {
            while let Some(tid) = self.drainer.get() {
                // Its result is the drain's, which has none to report.
                let _ = super::wait(tid).await;
            }
            self.drain_now().await;
        })
    }

    fn holding(&self) -> Option<(String, usize)> {
        let n = self.backlog.borrow().len();
        (n > 0).then(|| (self.name.borrow().clone(), n))
    }
}

impl<T: 'static> OutletState<T> {
    /// Moves the backlog into the channel; the caller is the only drain.
    async fn drain_now(&self) {
        {
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
        }
    }
}

/// The outlets on this thread that still hold items, as a sentence for a
/// deadlock error, or `None` if no outlet holds any.
pub(crate) fn stuck_outlets() -> Option<String> {
    let held: Vec<String> = KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        k.retain(|w| w.strong_count() > 0);
        k.iter()
            .filter_map(|w| w.upgrade()?.holding())
            .map(|(name, n)| format!("{name} ({n} item(s))"))
            .collect()
    });
    (!held.is_empty()).then(|| {
        format!(
            "outlet(s) still holding items: {} (an outlet's backlog moves only \
             while a task can wait for room in its channel: feed it from `host`, \
             or await `Outlet::drained`)",
            held.join(", ")
        )
    })
}

/// A stage that pushes each item into a [`Chan`]: the edge into a hosted
/// stage.
///
/// # The rule
///
/// `send` never blocks (a stage cannot wait). When the channel is full,
/// the item goes into the outlet's *backlog*, in order, and a task moves the
/// backlog into the channel as room appears:
///
/// - inside [`host`] (the outlet is the target of a hosted stage), the
///   hosting task drains the backlog after each `send`, before it takes
///   its next item, so memory is bounded by the channel plus what one
///   input item produces;
/// - anywhere else in a running scheduler (a task's own loop,
///   [`sched::follow`](super::follow)), the outlet spawns a task that
///   drains it. Items wait in the backlog until the sending task next
///   yields; to bound memory, await [`drained`](Outlet::drained) after
///   sending, as a producer awaiting `Chan::send` would;
/// - with no scheduler running on the thread, a `send` that finds the
///   channel full fails with [`ErrorKind::Usage`](crate::ErrorKind::Usage).
///
/// `send` returns `Flow::Stop` once the channel is closed; `close` closes
/// the channel after the backlog is drained. If the scheduler deadlocks
/// while an outlet still holds items, its error names the outlet
/// ([`with_name`](Outlet::with_name)).
///
/// # Examples
///
/// Fed from a task's own loop (outside `host`), with a channel smaller
/// than what is sent:
///
/// ```
/// use copipe::sched::{Chan, Outlet, Scheduler};
/// use copipe::{Lifecycle, Stage};
///
/// let mut s = Scheduler::new()?;
/// let ch: Chan<u32> = Chan::new(2);
/// let rx = ch.clone();
/// s.spawn(async move {
///     let mut out = Outlet::new(ch).with_name("numbers");
///     for i in 0..100 {
///         out.send(i).expect("a scheduler runs");
///     }
///     out.close().expect("close");
/// });
/// s.spawn(async move {
///     let mut got = Vec::new();
///     while let Some(x) = rx.recv().await {
///         got.push(x);
///     }
///     assert_eq!(got, (0..100).collect::<Vec<_>>());
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// See [`host`] for outlets between hosted stages (a cycle).
pub struct Outlet<T> {
    state: Rc<OutletState<T>>,
}

impl<T> fmt::Debug for Outlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outlet")
            .field("name", &self.state.name.borrow())
            .field("backlog", &self.state.backlog.borrow().len())
            .finish()
    }
}

impl<T: 'static> Outlet<T> {
    /// An outlet into `ch`, named `outlet#N` until [`with_name`](Outlet::with_name).
    pub fn new(ch: Chan<T>) -> Outlet<T> {
        let n = NEXT_OUTLET.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Outlet {
            state: Rc::new(OutletState {
                ch,
                name: RefCell::new(format!("outlet#{n}")),
                backlog: RefCell::new(VecDeque::new()),
                close_after_drain: Cell::new(false),
                drainer: Cell::new(None),
                known: Cell::new(false),
            }),
        }
    }

    /// Names the outlet in errors (a deadlock names outlets still holding
    /// items).
    pub fn with_name(self, name: impl Into<String>) -> Outlet<T> {
        *self.state.name.borrow_mut() = name.into();
        self
    }

    /// Items waiting in the backlog for room in the channel.
    pub fn backlog(&self) -> usize {
        self.state.backlog.borrow().len()
    }

    /// Waits until the backlog has moved into the channel: await it after
    /// sending from a task's own loop to keep memory bounded by the channel.
    ///
    /// # Panics
    ///
    /// If awaited outside a task of a running [`Scheduler`](super::Scheduler)
    /// while the backlog is not empty.
    pub async fn drained(&self) {
        if !self.state.backlog.borrow().is_empty() || self.state.close_after_drain.get() {
            self.state.drain().await;
        }
    }

    /// Arranges for the backlog to be drained: by the hosting task inside
    /// `host`, by a task of its own elsewhere.
    fn schedule_drain(&self) -> Result<()> {
        if !self.state.known.replace(true) {
            let weak: std::rc::Weak<dyn Backlog> = {
                let rc: Rc<dyn Backlog> = self.state.clone();
                Rc::downgrade(&rc)
            };
            KNOWN.with(|k| k.borrow_mut().push(weak));
        }
        if HOSTING.with(Cell::get) > 0 {
            let me: Rc<dyn Backlog> = self.state.clone();
            BACKLOGGED.with(|b| {
                let mut b = b.borrow_mut();
                if !b.iter().any(|x| Rc::ptr_eq(x, &me)) {
                    b.push(me);
                }
            });
            return Ok(());
        }
        if self.state.drainer.get().is_some() {
            return Ok(());
        }
        let state = self.state.clone();
        let task = super::task::boxed(async move {
            state.drain_now().await;
            state.drainer.set(None);
        });
        match super::scheduler::try_with_core(|core| core.spawn_boxed(task)) {
            Some(tid) => {
                self.state.drainer.set(Some(tid));
                Ok(())
            }
            None => Err(Error::new(ErrorKind::Usage(format!(
                "{}: its channel is full and no scheduler runs on this thread to \
                 wait for room; send into an Outlet from a scheduler task",
                self.state.name.borrow()
            )))),
        }
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
                self.schedule_drain()?;
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
        if self.state.backlog.borrow().is_empty() && self.state.drainer.get().is_none() {
            self.state.ch.close();
            Ok(())
        } else {
            self.state.close_after_drain.set(true);
            self.schedule_drain()
        }
    }
}

/// Marks the current thread as inside a hosted stage's call, for as long
/// as it lives.
struct Hosting;

impl Hosting {
    fn enter() -> Hosting {
        HOSTING.with(|h| h.set(h.get() + 1));
        Hosting
    }
}

impl Drop for Hosting {
    fn drop(&mut self) {
        HOSTING.with(|h| h.set(h.get() - 1));
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
                    {
                        let _hosting = Hosting::enter();
                        stage.flush()?;
                    }
                    drain_backlogs().await;
                    match inbox.recv().await {
                        Some(item) => item,
                        None => break,
                    }
                }
            };
            let flow = {
                let _hosting = Hosting::enter();
                stage.send(item)?
            };
            drain_backlogs().await;
            if flow == Flow::Stop {
                break;
            }
        }
        {
            let _hosting = Hosting::enter();
            stage.close()?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::Scheduler;
    use crate::Lifecycle;

    /// Issue 16: an outlet fed outside `host` delivered only what fit in its
    /// channel; now a drain task moves the rest, in order.
    #[test]
    fn outlet_outside_host_delivers_everything_in_order() {
        let mut s = Scheduler::new().unwrap();
        let ch: Chan<u32> = Chan::new(4);
        let rx = ch.clone();
        s.spawn(async move {
            let mut out = Outlet::new(ch);
            for i in 0..1000 {
                assert_eq!(out.send(i).unwrap(), Flow::Continue);
                if i % 100 == 0 {
                    super::super::yield_now().await;
                }
            }
            out.close().unwrap();
        });
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        s.spawn(async move {
            while let Some(x) = rx.recv().await {
                g.borrow_mut().push(x);
            }
        });
        s.run().unwrap();
        assert_eq!(*got.borrow(), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn drained_bounds_the_backlog() {
        let mut s = Scheduler::new().unwrap();
        let ch: Chan<u32> = Chan::new(2);
        let rx = ch.clone();
        s.spawn(async move {
            let mut out = Outlet::new(ch);
            for i in 0..50 {
                assert_eq!(out.send(i).unwrap(), Flow::Continue);
                out.drained().await;
                assert_eq!(out.backlog(), 0);
            }
            out.close().unwrap();
            out.drained().await;
        });
        s.spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            assert_eq!(n, 50);
        });
        s.run().unwrap();
    }

    #[test]
    fn deadlock_names_the_outlet_still_holding_items() {
        let mut s = Scheduler::new().unwrap();
        let ch: Chan<u32> = Chan::new(2);
        let keep = ch.clone(); // nobody receives
        s.spawn(async move {
            let mut out = Outlet::new(ch).with_name("to-nobody");
            for i in 0..10 {
                assert_eq!(out.send(i).unwrap(), Flow::Continue);
            }
            // Wait for the drain, which can never finish.
            out.drained().await;
            drop(keep);
        });
        let err = s.run().unwrap_err().to_string();
        assert!(err.contains("deadlock"), "{err}");
        assert!(err.contains("to-nobody ("), "{err}");
    }

    #[test]
    fn full_outlet_without_a_scheduler_is_an_error() {
        let ch: Chan<u32> = Chan::new(1);
        let mut out = Outlet::new(ch).with_name("lonely");
        assert_eq!(out.send(1).unwrap(), Flow::Continue);
        let err = out.send(2).unwrap_err().to_string();
        assert!(
            err.contains("lonely") && err.contains("no scheduler"),
            "{err}"
        );
    }
}
