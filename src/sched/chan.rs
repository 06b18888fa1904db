//! Typed channels between the tasks of one scheduler (libtask9's
//! `Channel`): unbuffered (rendezvous) or buffered.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::scheduler::{try_with_core, with_core};
use super::task::Tid;

/// One blocked `alt` (or one blocked `send`/`recv`, an `alt` of one
/// operation): the task to wake and which of its operations fired.
///
/// `fired` is `None` while the task waits; the first operation to
/// complete sets it, and waiter entries of an `alt` that has fired are
/// stale: a channel skips them.
pub(crate) struct AltCore {
    pub(crate) task: Tid,
    pub(crate) fired: Cell<Option<usize>>,
}

/// Who a waiter belongs to: a lone `send`/`recv` (its state inline, one
/// allocation per blocked operation) or one operation of an `alt` (state
/// shared by its operations).
pub(crate) enum Owner {
    One(AltCore),
    Many(Rc<AltCore>),
}

impl Owner {
    fn core(&self) -> &AltCore {
        match self {
            Owner::One(c) => c,
            Owner::Many(c) => c,
        }
    }

    fn is_live(&self) -> bool {
        self.core().is_live()
    }

    fn fire(&self, index: usize) {
        self.core().fire(index);
    }
}

impl AltCore {
    pub(crate) fn new(task: Tid) -> Rc<AltCore> {
        Rc::new(AltCore::single(task))
    }

    pub(crate) fn single(task: Tid) -> AltCore {
        AltCore {
            task,
            fired: Cell::new(None),
        }
    }

    fn is_live(&self) -> bool {
        self.fired.get().is_none()
    }

    fn fire(&self, index: usize) {
        self.fired.set(Some(index));
        try_with_core(|core| core.wake(self.task));
    }
}

/// A task blocked receiving. `value` is `Some(Some(v))` once a value was
/// handed over, `Some(None)` if the channel closed.
pub(crate) struct RecvWaiter<T> {
    pub(crate) alt: Owner,
    pub(crate) index: usize,
    pub(crate) value: RefCell<Option<Option<T>>>,
}

/// A task blocked sending `value`. `delivered` is `Some(true)` once a
/// receiver (or the buffer) took the value, `Some(false)` if the channel
/// closed (the value is still in `value`).
pub(crate) struct SendWaiter<T> {
    pub(crate) alt: Owner,
    pub(crate) index: usize,
    pub(crate) value: RefCell<Option<T>>,
    pub(crate) delivered: Cell<Option<bool>>,
}

struct Inner<T> {
    buf: VecDeque<T>,
    cap: usize,
    closed: bool,
    recvq: VecDeque<Rc<RecvWaiter<T>>>,
    sendq: VecDeque<Rc<SendWaiter<T>>>,
}

/// A typed channel between tasks of one scheduler (libtask9's `Channel`).
///
/// With capacity 0 it is a rendezvous: `send` completes when a receiver
/// takes the value. With capacity `n`, up to `n` values wait in a buffer.
/// A `Chan` is a cheap handle (`Clone`); every clone can send and receive.
/// [`close`](Chan::close) wakes every blocked sender and receiver:
/// receivers still get the values buffered before the close, then `None`.
/// Several operations on several channels can wait together with
/// [`alt`](super::alt).
///
/// Within a scheduler only (it is `!Send`); between threads, see
/// [`xchan`](super::xchan).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Chan, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// let ch = Chan::new(0);
/// let tx = ch.clone();
/// s.spawn(async move {
///     for i in 0..3 {
///         tx.send(i).await.expect("open");
///     }
///     tx.close();
/// });
/// s.spawn(async move {
///     let mut got = Vec::new();
///     while let Some(v) = ch.recv().await {
///         got.push(v);
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct Chan<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Chan<T> {
        Chan {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("Chan")
            .field("cap", &i.cap)
            .field("len", &i.buf.len())
            .field("closed", &i.closed)
            .finish()
    }
}

/// Why [`Chan::try_send`] did not send; the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The buffer is full (or, for a rendezvous channel, no receiver
    /// waits).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// A send on a closed channel; the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("send on a closed channel")
    }
}

impl<T: fmt::Debug> std::error::Error for SendError<T> {}

/// Why [`Chan::try_recv`] returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl<T> Chan<T> {
    /// A channel with room for `cap` buffered values (0: rendezvous).
    pub fn new(cap: usize) -> Chan<T> {
        Chan {
            inner: Rc::new(RefCell::new(Inner {
                buf: VecDeque::with_capacity(cap.min(1024)),
                cap,
                closed: false,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
            })),
        }
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.inner.borrow().cap
    }

    /// How many values are buffered.
    pub fn len(&self) -> usize {
        self.inner.borrow().buf.len()
    }

    /// True if no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once [`close`](Chan::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }

    /// True if both handles are the same channel.
    pub fn same_channel(&self, other: &Chan<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Closes the channel and wakes its blocked senders (their sends fail)
    /// and receivers (they get `None` once the buffer is drained).
    /// Closing twice does nothing.
    pub fn close(&self) {
        let (recvq, sendq) = {
            let mut i = self.inner.borrow_mut();
            if i.closed {
                return;
            }
            i.closed = true;
            (std::mem::take(&mut i.recvq), std::mem::take(&mut i.sendq))
        };
        for w in recvq {
            if w.alt.is_live() {
                *w.value.borrow_mut() = Some(None);
                w.alt.fire(w.index);
            }
        }
        for w in sendq {
            if w.alt.is_live() {
                w.delivered.set(Some(false));
                w.alt.fire(w.index);
            }
        }
    }

    /// Sends without waiting: hands the value to a blocked receiver, or
    /// buffers it.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if that is not possible now,
    /// [`TrySendError::Closed`] if the channel is closed.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut i = self.inner.borrow_mut();
        if i.closed {
            return Err(TrySendError::Closed(value));
        }
        while let Some(w) = i.recvq.pop_front() {
            if w.alt.is_live() {
                drop(i);
                *w.value.borrow_mut() = Some(Some(value));
                w.alt.fire(w.index);
                return Ok(());
            }
        }
        if i.buf.len() < i.cap {
            i.buf.push_back(value);
            Ok(())
        } else {
            Err(TrySendError::Full(value))
        }
    }

    /// Receives without waiting: a buffered value, or one from a blocked
    /// sender.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is none now,
    /// [`TryRecvError::Closed`] if the channel is closed and drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut i = self.inner.borrow_mut();
        if let Some(v) = i.buf.pop_front() {
            // Room in the buffer: let one blocked sender in.
            while let Some(w) = i.sendq.pop_front() {
                if w.alt.is_live() {
                    if let Some(sv) = w.value.borrow_mut().take() {
                        i.buf.push_back(sv);
                    }
                    w.delivered.set(Some(true));
                    drop(i);
                    w.alt.fire(w.index);
                    break;
                }
            }
            return Ok(v);
        }
        while let Some(w) = i.sendq.pop_front() {
            if w.alt.is_live() {
                drop(i);
                let v = w.value.borrow_mut().take();
                w.delivered.set(Some(true));
                w.alt.fire(w.index);
                // A live send waiter always holds its value.
                return v.ok_or(TryRecvError::Empty);
            }
        }
        if i.closed {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Sends a value, waiting until a receiver takes it (rendezvous) or
    /// the buffer has room.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the channel is (or gets) closed.
    ///
    /// # Panics
    ///
    /// If it must wait outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send {
            ch: self,
            value: Some(value),
            waiter: None,
        }
    }

    /// Receives a value, waiting until there is one. `None` once the
    /// channel is closed and drained.
    ///
    /// # Panics
    ///
    /// If it must wait outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    pub fn recv(&self) -> Recv<'_, T> {
        Recv {
            ch: self,
            waiter: None,
        }
    }

    /// Blocks the current task as a receiver; used by `recv` and `alt`.
    pub(crate) fn push_recv_waiter(&self, alt: Owner, index: usize) -> Rc<RecvWaiter<T>> {
        let w = Rc::new(RecvWaiter {
            alt,
            index,
            value: RefCell::new(None),
        });
        self.inner.borrow_mut().recvq.push_back(Rc::clone(&w));
        w
    }

    pub(crate) fn push_send_waiter(&self, alt: Owner, index: usize, value: T) -> Rc<SendWaiter<T>> {
        let w = Rc::new(SendWaiter {
            alt,
            index,
            value: RefCell::new(Some(value)),
            delivered: Cell::new(None),
        });
        self.inner.borrow_mut().sendq.push_back(Rc::clone(&w));
        w
    }

    pub(crate) fn remove_recv_waiter(&self, w: &Rc<RecvWaiter<T>>) {
        if let Ok(mut i) = self.inner.try_borrow_mut() {
            i.recvq.retain(|x| !Rc::ptr_eq(x, w));
        }
    }

    pub(crate) fn remove_send_waiter(&self, w: &Rc<SendWaiter<T>>) {
        if let Ok(mut i) = self.inner.try_borrow_mut() {
            i.sendq.retain(|x| !Rc::ptr_eq(x, w));
        }
    }
}

/// The future of [`Chan::send`].
#[must_use = "a send does nothing unless awaited"]
pub struct Send<'a, T> {
    ch: &'a Chan<T>,
    value: Option<T>,
    waiter: Option<Rc<SendWaiter<T>>>,
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send").finish_non_exhaustive()
    }
}

impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(w) = &self.waiter {
            return match w.delivered.get() {
                None => Poll::Pending,
                Some(true) => {
                    self.waiter = None;
                    Poll::Ready(Ok(()))
                }
                Some(false) => {
                    let v = w.value.borrow_mut().take();
                    self.waiter = None;
                    // A send that was not delivered still holds its value.
                    Poll::Ready(Err(SendError(v.expect("undelivered value"))))
                }
            };
        }
        let Some(value) = self.value.take() else {
            return Poll::Pending;
        };
        match self.ch.try_send(value) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(TrySendError::Closed(v)) => Poll::Ready(Err(SendError(v))),
            Err(TrySendError::Full(v)) => {
                let alt = Owner::One(AltCore::single(with_core(|c| c.current())));
                self.waiter = Some(self.ch.push_send_waiter(alt, 0, v));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            if w.alt.is_live() {
                self.ch.remove_send_waiter(&w);
            }
        }
    }
}

/// The future of [`Chan::recv`].
#[must_use = "a receive does nothing unless awaited"]
pub struct Recv<'a, T> {
    ch: &'a Chan<T>,
    waiter: Option<Rc<RecvWaiter<T>>>,
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(w) = &self.waiter {
            let got = w.value.borrow_mut().take();
            return match got {
                None => Poll::Pending,
                Some(v) => {
                    self.waiter = None;
                    Poll::Ready(v)
                }
            };
        }
        match self.ch.try_recv() {
            Ok(v) => Poll::Ready(Some(v)),
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                let alt = Owner::One(AltCore::single(with_core(|c| c.current())));
                self.waiter = Some(self.ch.push_recv_waiter(alt, 0));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            if w.alt.is_live() {
                self.ch.remove_recv_waiter(&w);
            }
        }
    }
}
