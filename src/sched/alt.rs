//! `alt`: wait for the first of several channel operations (libtask9's
//! `alt`, Go's `select`), on local channels and cross-proc ones, with an
//! optional timeout or none at all (non-blocking).
//!
//! A local channel hands a value to a blocked alt directly (its waiter
//! list holds the alt's shared core). A cross-proc channel cannot: its
//! other end is on another thread, so the alt registers its task's waker
//! there and tries the channel again each time it is woken.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::chan::{AltCore, Chan, Owner, RecvWaiter, SendWaiter, TryRecvError, TrySendError};
use super::procs::{XReceiver, XSender};
use super::scheduler::with_core;
use super::timer::after;

/// One operation of an [`Alt`].
trait AltOp<R> {
    /// Completes now if possible.
    fn try_now(&mut self) -> Option<R>;
    /// Blocks as the `index`th operation of `alt`.
    fn enqueue(&mut self, alt: &Rc<AltCore>, index: usize, waker: &Waker);
    /// Tries again after a wake (cross-proc operations, which nobody on
    /// this thread completes for the alt); local ones return `None`.
    fn retry(&mut self) -> Option<R> {
        None
    }
    /// The result of this operation, which fired.
    fn complete(&mut self) -> R;
    /// Withdraws a blocked operation that did not fire.
    fn cancel(&mut self);
}

struct RecvOp<'a, T, F> {
    ch: &'a Chan<T>,
    f: Option<F>,
    waiter: Option<Rc<RecvWaiter<T>>>,
}

impl<T, R, F: FnOnce(Option<T>) -> R> AltOp<R> for RecvOp<'_, T, F> {
    fn try_now(&mut self) -> Option<R> {
        let v = match self.ch.try_recv() {
            Ok(v) => Some(v),
            Err(TryRecvError::Closed) => None,
            Err(TryRecvError::Empty) => return None,
        };
        self.f.take().map(|f| f(v))
    }

    fn enqueue(&mut self, alt: &Rc<AltCore>, index: usize, _: &Waker) {
        self.waiter = Some(self.ch.push_recv_waiter(Owner::Many(Rc::clone(alt)), index));
    }

    fn complete(&mut self) -> R {
        let v = self
            .waiter
            .take()
            .and_then(|w| w.value.borrow_mut().take())
            .flatten();
        // `complete` is called once, for the operation that fired.
        (self.f.take().expect("alt operation completed twice"))(v)
    }

    fn cancel(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.ch.remove_recv_waiter(&w);
        }
    }
}

struct SendOp<'a, T, F> {
    ch: &'a Chan<T>,
    value: Option<T>,
    f: Option<F>,
    waiter: Option<Rc<SendWaiter<T>>>,
}

impl<T, R, F: FnOnce(Result<(), T>) -> R> AltOp<R> for SendOp<'_, T, F> {
    fn try_now(&mut self) -> Option<R> {
        let value = self.value.take()?;
        let res = match self.ch.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => Err(v),
            Err(TrySendError::Full(v)) => {
                self.value = Some(v);
                return None;
            }
        };
        self.f.take().map(|f| f(res))
    }

    fn enqueue(&mut self, alt: &Rc<AltCore>, index: usize, _: &Waker) {
        if let Some(v) = self.value.take() {
            self.waiter = Some(
                self.ch
                    .push_send_waiter(Owner::Many(Rc::clone(alt)), index, v),
            );
        }
    }

    fn complete(&mut self) -> R {
        let res = match self.waiter.take() {
            Some(w) if w.delivered.get() == Some(false) => match w.value.borrow_mut().take() {
                Some(v) => Err(v),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        // `complete` is called once, for the operation that fired.
        (self.f.take().expect("alt operation completed twice"))(res)
    }

    fn cancel(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.ch.remove_send_waiter(&w);
            // Take the value back so it is dropped with the alt.
            self.value = w.value.borrow_mut().take();
        }
    }
}

/// A receive on the other proc's end of an [`xchan`](super::xchan).
struct XRecvOp<'a, T, F> {
    rx: &'a XReceiver<T>,
    f: Option<F>,
}

impl<T, R, F: FnOnce(Option<T>) -> R> AltOp<R> for XRecvOp<'_, T, F> {
    fn try_now(&mut self) -> Option<R> {
        let v = self.rx.try_recv_now()?;
        self.f.take().map(|f| f(v))
    }

    fn enqueue(&mut self, _: &Rc<AltCore>, _: usize, waker: &Waker) {
        self.rx.register_recv(waker);
    }

    fn retry(&mut self) -> Option<R> {
        self.try_now()
    }

    fn complete(&mut self) -> R {
        unreachable!("a cross-proc operation completes in retry, never by firing")
    }

    fn cancel(&mut self) {
        // A stale waker in the channel's list costs one spurious wake at
        // most, which every future of this module tolerates.
    }
}

/// A send on an [`xchan`](super::xchan) whose receiver is on another proc.
struct XSendOp<'a, T, F> {
    tx: &'a XSender<T>,
    value: Option<T>,
    f: Option<F>,
}

impl<T, R, F: FnOnce(Result<(), T>) -> R> AltOp<R> for XSendOp<'_, T, F> {
    fn try_now(&mut self) -> Option<R> {
        let value = self.value.take()?;
        match self.tx.try_send_now(value) {
            Ok(res) => self.f.take().map(|f| f(res)),
            Err(v) => {
                self.value = Some(v);
                None
            }
        }
    }

    fn enqueue(&mut self, _: &Rc<AltCore>, _: usize, waker: &Waker) {
        self.tx.register_send(waker);
    }

    fn retry(&mut self) -> Option<R> {
        self.try_now()
    }

    fn complete(&mut self) -> R {
        unreachable!("a cross-proc operation completes in retry, never by firing")
    }

    fn cancel(&mut self) {}
}

/// Waits for the first of several send and receive operations (libtask9's
/// `alt`), built with [`recv`](Alt::recv), [`send`](Alt::send),
/// [`xrecv`](Alt::xrecv), [`xsend`](Alt::xsend) and [`after`](Alt::after)
/// (or [`nonblocking`](Alt::nonblocking)).
///
/// Operations that can complete at once are tried in the order they were
/// added, and the first wins; otherwise the task blocks on all of them and
/// the first to complete wins; the others are withdrawn (a send that did
/// not win keeps its value: it is dropped with the `Alt`). Each operation
/// carries a closure that turns its outcome into the `alt`'s result, so
/// channels of different types can be mixed.
///
/// A timeout is a receive on [`after`](super::after)'s channel, or
/// [`Alt::after`].
///
/// Unlike Plan 9's `alt`, which picks at random among ready operations,
/// the first ready one in order wins: deterministic, and a caller who
/// wants fairness can rotate the order. A value handed to an `alt` (or a
/// `recv`) whose task is killed before it runs again is dropped with it.
///
/// # Examples
///
/// libtask9's example: wait at most 10 seconds for a client, here for a
/// value from another task.
///
/// ```
/// use std::time::Duration;
/// use copipe::sched::{self, alt, Chan, Scheduler};
///
/// enum Got { Client(Option<String>), Timeout }
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let clients: Chan<String> = Chan::new(1);
///     let tx = clients.clone();
///     sched::spawn(async move { tx.send("127.0.0.1:5555".to_string()).await.ok(); }).await;
///     let got = alt()
///         .recv(&clients, Got::Client)
///         .after(Duration::from_secs(10), || Got::Timeout)
///         .await;
///     assert!(matches!(got, Got::Client(Some(_))));
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn alt<'a, R>() -> Alt<'a, R> {
    Alt {
        ops: Vec::new(),
        core: None,
        timeout: None,
    }
}

/// The builder and future of [`alt`].
#[must_use = "an alt does nothing unless awaited"]
pub struct Alt<'a, R> {
    ops: Vec<Box<dyn AltOp<R> + 'a>>,
    core: Option<Rc<AltCore>>,
    timeout: Option<(Duration, Box<dyn FnOnce() -> R + 'a>)>,
}

impl<R> fmt::Debug for Alt<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alt")
            .field("ops", &self.ops.len())
            .field("blocked", &self.core.is_some())
            .finish()
    }
}

impl<'a, R: 'a> Alt<'a, R> {
    /// Adds a receive on `ch`; `f` gets the value, or `None` if the channel
    /// is closed and drained.
    pub fn recv<T: 'a>(mut self, ch: &'a Chan<T>, f: impl FnOnce(Option<T>) -> R + 'a) -> Self {
        self.ops.push(Box::new(RecvOp {
            ch,
            f: Some(f),
            waiter: None,
        }));
        self
    }

    /// Adds a send of `value` on `ch`; `f` gets `Ok(())` once sent, or
    /// `Err(value)` if the channel is closed.
    pub fn send<T: 'a>(
        mut self,
        ch: &'a Chan<T>,
        value: T,
        f: impl FnOnce(Result<(), T>) -> R + 'a,
    ) -> Self {
        self.ops.push(Box::new(SendOp {
            ch,
            value: Some(value),
            f: Some(f),
            waiter: None,
        }));
        self
    }

    /// Adds a receive on a cross-proc channel (an [`xchan`](super::xchan)
    /// whose senders may be tasks of other procs or plain threads); `f`
    /// gets the value, or `None` once every sender is gone and the channel
    /// is drained.
    pub fn xrecv<T: std::marker::Send + 'a>(
        mut self,
        rx: &'a XReceiver<T>,
        f: impl FnOnce(Option<T>) -> R + 'a,
    ) -> Self {
        self.ops.push(Box::new(XRecvOp { rx, f: Some(f) }));
        self
    }

    /// Adds a send of `value` on a cross-proc channel; `f` gets `Ok(())`
    /// once sent, or `Err(value)` if every receiver is gone.
    pub fn xsend<T: std::marker::Send + 'a>(
        mut self,
        tx: &'a XSender<T>,
        value: T,
        f: impl FnOnce(Result<(), T>) -> R + 'a,
    ) -> Self {
        self.ops.push(Box::new(XSendOp {
            tx,
            value: Some(value),
            f: Some(f),
        }));
        self
    }

    /// Adds a timeout: if no operation completes within `dur`, the alt
    /// returns `f()`.
    pub fn after(mut self, dur: Duration, f: impl FnOnce() -> R + 'a) -> Self {
        self.timeout = Some((dur, Box::new(f)));
        self
    }

    /// Makes the alt non-blocking (libtask9's `canblock=False`): if no
    /// operation can complete at once, it returns `f()` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::sched::{alt, Chan, Scheduler};
    ///
    /// let mut s = Scheduler::new()?;
    /// s.spawn(async {
    ///     let ch: Chan<u32> = Chan::new(1);
    ///     let got = alt().recv(&ch, |v| v).nonblocking(|| None).await;
    ///     assert_eq!(got, None); // nothing was ready
    ///     ch.send(7).await.unwrap();
    ///     let got = alt().recv(&ch, |v| v).nonblocking(|| None).await;
    ///     assert_eq!(got, Some(7));
    /// });
    /// s.run()?;
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn nonblocking(self, f: impl FnOnce() -> R + 'a) -> Self {
        self.after(Duration::ZERO, f)
    }
}

impl<'a, R: 'a> Future for Alt<'a, R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = &mut *self;
        if let Some(core) = &this.core {
            let Some(fired) = core.fired.get() else {
                return this.retry_cross_proc();
            };
            this.core = None;
            for (i, op) in this.ops.iter_mut().enumerate() {
                if i != fired {
                    op.cancel();
                }
            }
            return Poll::Ready(this.ops[fired].complete());
        }
        for op in this.ops.iter_mut() {
            if let Some(r) = op.try_now() {
                return Poll::Ready(r);
            }
        }
        if let Some((dur, f)) = this.timeout.take() {
            if dur.is_zero() {
                return Poll::Ready(f());
            }
            let ch = after(dur);
            this.ops.push(Box::new(TimeoutRecv { ch, f: Some(f) }));
        }
        let core = AltCore::new(with_core(|c| c.current()));
        for (i, op) in this.ops.iter_mut().enumerate() {
            op.enqueue(&core, i, cx.waker());
        }
        this.core = Some(core);
        // A cross-proc value that came between the try and the
        // registration woke nobody: look once more.
        this.retry_cross_proc()
    }
}

impl<R> Alt<'_, R> {
    /// Tries the cross-proc operations of a blocked alt; if one completes,
    /// the alt is marked fired (so no local channel hands it a value
    /// meanwhile) and the others are withdrawn.
    fn retry_cross_proc(&mut self) -> Poll<R> {
        for i in 0..self.ops.len() {
            if let Some(r) = self.ops[i].retry() {
                if let Some(core) = self.core.take() {
                    core.fired.set(Some(i));
                }
                for (j, op) in self.ops.iter_mut().enumerate() {
                    if j != i {
                        op.cancel();
                    }
                }
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    }
}

/// A receive on the alt's own timer channel.
struct TimeoutRecv<'a, R> {
    ch: Chan<Instant>,
    f: Option<Box<dyn FnOnce() -> R + 'a>>,
}

impl<R> AltOp<R> for TimeoutRecv<'_, R> {
    fn try_now(&mut self) -> Option<R> {
        None
    }

    fn enqueue(&mut self, alt: &Rc<AltCore>, index: usize, _: &Waker) {
        // The channel is private to this op: the waiter needs no handle
        // beyond the channel itself, which is dropped with the op.
        let _ = self.ch.push_recv_waiter(Owner::Many(Rc::clone(alt)), index);
    }

    fn complete(&mut self) -> R {
        // `complete` is called once, for the operation that fired.
        (self.f.take().expect("alt timeout completed twice"))()
    }

    fn cancel(&mut self) {
        // Closing the private channel drops the waiter and makes the
        // pending timer's send a no-op.
        self.ch.close();
    }
}

impl<R> Drop for Alt<'_, R> {
    fn drop(&mut self) {
        if self.core.take().is_some() {
            for op in self.ops.iter_mut() {
                op.cancel();
            }
        }
    }
}
