//! Several schedulers on several threads (libtask9's procs): [`Proc`], and
//! [`xchan`], channels whose ends may live on different threads.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

use crate::error::panic_message;
use crate::{Error, ErrorKind, Result};

use super::scheduler::Scheduler;
use super::task::TaskOutput;

/// A scheduler running on its own thread (libtask9's proc).
///
/// The thread makes a [`Scheduler`], spawns the future built by the
/// closure as its first task, and runs until no task is left. Tasks on
/// different procs talk through [`xchan`] channels.
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, xchan, Proc, Scheduler};
///
/// let (tx, rx) = xchan::<u64>(16);
/// let producer = Proc::spawn("producer", move || async move {
///     for i in 1..=100 {
///         tx.send(i).await.expect("receiver alive");
///     }
/// })?;
/// let mut s = Scheduler::new()?;
/// s.spawn(async move {
///     let mut sum = 0;
///     while let Some(v) = rx.recv().await {
///         sum += v;
///     }
///     assert_eq!(sum, 5050);
/// });
/// s.run()?;
/// producer.join()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct Proc {
    name: String,
    handle: JoinHandle<Result<()>>,
}

impl fmt::Debug for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proc").field("name", &self.name).finish()
    }
}

impl Proc {
    /// Starts a thread named `name` running a scheduler whose first task is
    /// `make()`.
    ///
    /// # Errors
    ///
    /// If the thread cannot be started.
    pub fn spawn<F, Fut>(name: &str, make: F) -> Result<Proc>
    where
        F: FnOnce() -> Fut + std::marker::Send + 'static,
        Fut: Future + 'static,
        Fut::Output: TaskOutput,
    {
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut s = Scheduler::new()?;
                s.spawn(make());
                s.run()?;
                if s.failures() > 0 {
                    return Err(Error::new(ErrorKind::Task(format!(
                        "{} task(s) failed",
                        s.failures()
                    ))));
                }
                Ok(())
            })?;
        Ok(Proc {
            name: name.to_string(),
            handle,
        })
    }

    /// Waits for the proc's scheduler to finish.
    ///
    /// # Errors
    ///
    /// If its scheduler failed (poller error, deadlock), some of its tasks
    /// failed, or the thread panicked.
    pub fn join(self) -> Result<()> {
        let name = self.name;
        match self.handle.join() {
            Ok(r) => {
                r.map_err(|e| Error::new(ErrorKind::Task(format!("proc {name}: {}", describe(&e)))))
            }
            Err(p) => Err(Error::new(ErrorKind::Task(format!(
                "proc {name} panicked: {}",
                panic_message(&*p)
            )))),
        }
    }
}

fn describe(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Task(m) => m.clone(),
        _ => e.to_string(),
    }
}

/// Wakers of the tasks blocked on one side of an [`xchan`].
#[derive(Default)]
struct WaitList(Mutex<Vec<Waker>>);

impl WaitList {
    fn register(&self, w: &Waker) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !l.iter().any(|x| x.will_wake(w)) {
            l.push(w.clone());
        }
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }
}

struct XShared {
    senders: AtomicUsize,
    receivers: AtomicUsize,
    recv_waiting: WaitList,
    send_waiting: WaitList,
}

/// A bounded channel whose ends may be on different threads (different
/// procs, or a plain thread): crossbeam-channel for the values, and the
/// wakers of the blocked tasks, which wake through their scheduler's
/// poller.
///
/// Capacity 0 is taken as 1: a task that blocks does not block its
/// thread, so the sending side needs room for one value.
///
/// # Examples
///
/// See [`Proc`]. A plain thread can use [`XSender::send_blocking`].
pub fn xchan<T: std::marker::Send>(cap: usize) -> (XSender<T>, XReceiver<T>) {
    let (tx, rx) = bounded(cap.max(1));
    let shared = Arc::new(XShared {
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        recv_waiting: WaitList::default(),
        send_waiting: WaitList::default(),
    });
    (
        XSender {
            tx,
            shared: Arc::clone(&shared),
        },
        XReceiver { rx, shared },
    )
}

/// The sending end of an [`xchan`]; `Clone` and `Send`.
pub struct XSender<T> {
    tx: Sender<T>,
    shared: Arc<XShared>,
}

/// The receiving end of an [`xchan`]; `Clone` and `Send`.
pub struct XReceiver<T> {
    rx: Receiver<T>,
    shared: Arc<XShared>,
}

impl<T> fmt::Debug for XSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XSender")
            .field("len", &self.tx.len())
            .finish()
    }
}

impl<T> fmt::Debug for XReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XReceiver")
            .field("len", &self.rx.len())
            .finish()
    }
}

impl<T> Clone for XSender<T> {
    fn clone(&self) -> XSender<T> {
        self.shared.senders.fetch_add(1, Ordering::SeqCst);
        XSender {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Clone for XReceiver<T> {
    fn clone(&self) -> XReceiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        XReceiver {
            rx: self.rx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for XSender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The crossbeam sender is dropped after this, so wake receivers
            // from a state where they may still find the channel connected:
            // they register again and are woken by nobody. Disconnect first.
            let (dummy, _) = bounded(1);
            drop(std::mem::replace(&mut self.tx, dummy));
            self.shared.recv_waiting.wake_all();
        }
    }
}

impl<T> Drop for XReceiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, Ordering::SeqCst) == 1 {
            let (_, dummy) = bounded(1);
            drop(std::mem::replace(&mut self.rx, dummy));
            self.shared.send_waiting.wake_all();
        }
    }
}

impl<T: std::marker::Send> XSender<T> {
    /// Sends a value, waiting (as a task) while the channel is full.
    ///
    /// # Errors
    ///
    /// The value back if every receiver is gone.
    pub fn send(&self, value: T) -> XSend<'_, T> {
        XSend {
            tx: self,
            value: Some(value),
        }
    }

    /// Sends a value from a plain thread, blocking it while the channel is
    /// full.
    ///
    /// # Errors
    ///
    /// The value back if every receiver is gone.
    pub fn send_blocking(&self, value: T) -> std::result::Result<(), T> {
        self.tx.send(value).map_err(|e| e.into_inner())?;
        self.shared.recv_waiting.wake_all();
        Ok(())
    }
}

/// The future of [`XSender::send`].
#[must_use = "a send does nothing unless awaited"]
pub struct XSend<'a, T> {
    tx: &'a XSender<T>,
    value: Option<T>,
}

impl<T> fmt::Debug for XSend<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XSend").finish_non_exhaustive()
    }
}

impl<T> Unpin for XSend<'_, T> {}

impl<T: std::marker::Send> Future for XSend<'_, T> {
    type Output = std::result::Result<(), T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(mut value) = self.value.take() else {
            return Poll::Pending;
        };
        for attempt in 0..2 {
            match self.tx.tx.try_send(value) {
                Ok(()) => {
                    self.tx.shared.recv_waiting.wake_all();
                    return Poll::Ready(Ok(()));
                }
                Err(TrySendError::Disconnected(v)) => return Poll::Ready(Err(v)),
                Err(TrySendError::Full(v)) => value = v,
            }
            if attempt == 0 {
                // Register, then try again: a receiver that made room in
                // between will have woken us or left room to see.
                self.tx.shared.send_waiting.register(cx.waker());
            }
        }
        self.value = Some(value);
        Poll::Pending
    }
}

impl<T: std::marker::Send> XReceiver<T> {
    /// Receives a value, waiting (as a task) while the channel is empty.
    /// `None` once every sender is gone and the channel is drained.
    pub fn recv(&self) -> XRecv<'_, T> {
        XRecv { rx: self }
    }

    /// Receives from a plain thread, blocking it.
    pub fn recv_blocking(&self) -> Option<T> {
        let v = self.rx.recv().ok()?;
        self.shared.send_waiting.wake_all();
        Some(v)
    }
}

impl<T> XReceiver<T> {
    /// One non-blocking receive: `Some(Some(v))` a value, `Some(None)` the
    /// channel is closed and drained, `None` nothing yet.
    pub(super) fn try_recv_now(&self) -> Option<Option<T>> {
        match self.rx.try_recv() {
            Ok(v) => {
                self.shared.send_waiting.wake_all();
                Some(Some(v))
            }
            Err(TryRecvError::Disconnected) => Some(None),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Asks to be woken by the next send or the last sender's drop.
    pub(super) fn register_recv(&self, w: &Waker) {
        self.shared.recv_waiting.register(w);
    }
}

impl<T> XSender<T> {
    /// One non-blocking send: `Ok(Ok(()))` sent, `Ok(Err(v))` every
    /// receiver is gone, `Err(v)` full.
    pub(super) fn try_send_now(
        &self,
        value: T,
    ) -> std::result::Result<std::result::Result<(), T>, T> {
        match self.tx.try_send(value) {
            Ok(()) => {
                self.shared.recv_waiting.wake_all();
                Ok(Ok(()))
            }
            Err(TrySendError::Disconnected(v)) => Ok(Err(v)),
            Err(TrySendError::Full(v)) => Err(v),
        }
    }

    /// Asks to be woken when a receive makes room or the last receiver
    /// goes.
    pub(super) fn register_send(&self, w: &Waker) {
        self.shared.send_waiting.register(w);
    }
}

/// The future of [`XReceiver::recv`].
#[must_use = "a receive does nothing unless awaited"]
pub struct XRecv<'a, T> {
    rx: &'a XReceiver<T>,
}

impl<T> fmt::Debug for XRecv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XRecv").finish_non_exhaustive()
    }
}

impl<T: std::marker::Send> Future for XRecv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        for attempt in 0..2 {
            match self.rx.rx.try_recv() {
                Ok(v) => {
                    self.rx.shared.send_waiting.wake_all();
                    return Poll::Ready(Some(v));
                }
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            if attempt == 0 {
                self.rx.shared.recv_waiting.register(cx.waker());
            }
        }
        Poll::Pending
    }
}
