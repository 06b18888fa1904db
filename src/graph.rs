//! Graph shapes beyond a straight line: [`Broadcast`] (fan-out) and
//! [`Shared`] (fan-in).
//!
//! - [`broadcast`] sends each item to several targets: a tuple of stages
//!   (static dispatch, no allocation) or a `Vec` of stages, for example
//!   `Vec<Box<dyn Stage<T>>>` built at run time. A target that returns
//!   [`Flow::Stop`] is closed and skipped from then on; the broadcast itself
//!   stops only when every target has stopped.
//! - [`Shared::new`] wraps a stage so that several upstream stages can send
//!   into it (the seed's cobroadcast2). Each clone is a handle; the target is
//!   closed when the last open handle closes. A send that re-enters the
//!   target through a cycle is refused with [`ErrorKind::Reentrant`].
//!
//! [`ErrorKind::Reentrant`]: crate::ErrorKind::Reentrant

use crate::Lifecycle;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};

/// A set of targets a [`Broadcast`] sends to: tuples of stages and
/// `Vec<S>`.
///
/// This trait is sealed in spirit: it exists so that `broadcast` accepts
/// both static tuples and dynamic vectors.
pub trait Targets<T>: TargetSet {
    /// Sends `item` to target `i`.
    ///
    /// # Errors
    ///
    /// The target's error.
    fn send_to(&mut self, i: usize, item: T) -> Result<Flow>;
}

/// The item-free half of [`Targets`]: how many targets there are, and
/// flushing or closing one of them (as [`Lifecycle`] is to [`Stage`]).
pub trait TargetSet {
    /// How many targets there are.
    fn count(&self) -> usize;
    /// Flushes target `i`.
    ///
    /// # Errors
    ///
    /// The target's error.
    fn flush_at(&mut self, i: usize) -> Result<()>;
    /// Closes target `i`.
    ///
    /// # Errors
    ///
    /// The target's error.
    fn close_at(&mut self, i: usize) -> Result<()>;
}

impl<T, S: Stage<T>> Targets<T> for Vec<S> {
    #[inline]
    fn send_to(&mut self, i: usize, item: T) -> Result<Flow> {
        self[i].send(item)
    }
}

impl<S: Lifecycle> TargetSet for Vec<S> {
    fn count(&self) -> usize {
        self.len()
    }
    fn flush_at(&mut self, i: usize) -> Result<()> {
        self[i].flush()
    }
    fn close_at(&mut self, i: usize) -> Result<()> {
        self[i].close()
    }
}

macro_rules! tuple_targets {
    ($n:expr; $($name:ident $idx:tt),+) => {
        impl<T, $($name: Stage<T>),+> Targets<T> for ($($name,)+) {
            #[inline]
            fn send_to(&mut self, i: usize, item: T) -> Result<Flow> {
                match i {
                    $($idx => self.$idx.send(item),)+
                    _ => unreachable!("target index {i} out of range"),
                }
            }
        }

        impl<$($name: Lifecycle),+> TargetSet for ($($name,)+) {
            fn count(&self) -> usize { $n }
            fn flush_at(&mut self, i: usize) -> Result<()> {
                match i {
                    $($idx => self.$idx.flush(),)+
                    _ => unreachable!("target index {i} out of range"),
                }
            }
            fn close_at(&mut self, i: usize) -> Result<()> {
                match i {
                    $($idx => self.$idx.close(),)+
                    _ => unreachable!("target index {i} out of range"),
                }
            }
        }
    };
}

tuple_targets!(1; A 0);
tuple_targets!(2; A 0, B 1);
tuple_targets!(3; A 0, B 1, C 2);
tuple_targets!(4; A 0, B 1, C 2, D 3);
tuple_targets!(5; A 0, B 1, C 2, D 3, E 4);
tuple_targets!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_targets!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_targets!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Sends each item to every target. Made by [`broadcast`].
#[derive(Debug)]
pub struct Broadcast<Ts> {
    targets: Ts,
    /// `stopped[i]`: target `i` returned `Stop` and has been closed.
    stopped: Vec<bool>,
    /// The highest-numbered target still live, which gets the item itself
    /// (the others get clones); `None` once every target has stopped.
    /// Updated when a target stops, so `send` does not search for it.
    last_live: Option<usize>,
}

/// Fans a stream out to several targets (the seed's `broadcast`).
///
/// Items must be `Clone` (borrowed items such as `&[u8]` are `Copy`). The
/// last live target gets the item itself, the others a clone.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{broadcast, pipe, Stage, sinks::Collect};
///
/// let (mut py, mut all) = (Collect::new(), Collect::new());
/// let mut b = broadcast((
///     pipe().filter(|l: &&str| l.contains("python")).into(&mut py),
///     &mut all,
/// ));
/// for line in ["python rocks", "ply too"] {
///     b.send(line)?;
/// }
/// b.close()?;
/// assert_eq!(py.items(), &["python rocks"]);
/// assert_eq!(all.items().len(), 2);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn broadcast<Ts: TargetSet>(targets: Ts) -> Broadcast<Ts> {
    let n = targets.count();
    Broadcast {
        targets,
        stopped: vec![false; n],
        last_live: n.checked_sub(1),
    }
}

impl<Ts> Broadcast<Ts> {
    /// The targets, for inspection after the stream ends.
    pub fn into_targets(self) -> Ts {
        self.targets
    }
}

impl<T: Clone, Ts: Targets<T>> Stage<T> for Broadcast<Ts> {
    fn send(&mut self, item: T) -> Result<Flow> {
        let Some(last) = self.last_live else {
            return Ok(Flow::Stop);
        };
        for i in 0..last {
            if !self.stopped[i] && self.targets.send_to(i, item.clone())?.is_stop() {
                self.stop(i)?;
            }
        }
        if self.targets.send_to(last, item)?.is_stop() {
            self.stop(last)?;
        }
        Ok(if self.last_live.is_none() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

impl<Ts: TargetSet> Lifecycle for Broadcast<Ts> {
    fn flush(&mut self) -> Result<()> {
        for i in 0..self.stopped.len() {
            if !self.stopped[i] {
                self.targets.flush_at(i)?;
            }
        }
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        // Close every live target even if one fails, and report the first
        // failure: a failing printer must not keep the others unflushed.
        let mut first_err = None;
        for i in 0..self.stopped.len() {
            if !self.stopped[i] {
                self.stopped[i] = true;
                if let Err(e) = self.targets.close_at(i) {
                    first_err.get_or_insert(e);
                }
            }
        }
        self.last_live = None;
        first_err.map_or(Ok(()), Err)
    }
}

impl<Ts> Broadcast<Ts> {
    fn stop(&mut self, i: usize) -> Result<()>
    where
        Ts: TargetSet,
    {
        // The target asked to stop: as its upstream we close it now.
        self.stopped[i] = true;
        self.last_live = self.stopped.iter().rposition(|s| !s);
        self.targets.close_at(i)
    }
}

/// A fan-in handle: several upstream stages send into one target.
///
/// `Shared` is `Clone`; every clone is an open handle. `close` on a handle
/// closes that handle only; the target is closed when the last open handle
/// closes (a handle dropped without `close` just stops counting). Once the
/// target has stopped, every handle's `send` returns `Stop`.
///
/// Sends are plain calls, so a graph with a cycle through a `Shared`
/// handle would re-enter the target while it is still handling an item (the
/// seed's cocrash). Here that send returns an [`ErrorKind::Reentrant`]
/// error instead of corrupting state or panicking.
///
/// `Shared` is single-threaded (`!Send`): handing one to another thread is
/// refused at compile time, which is exactly the seed's cocrash bug
/// (a coroutine sent into from two threads at once):
///
/// ```compile_fail
/// use copipe::{Shared, sinks::Null};
///
/// let shared = Shared::new(Null::new());
/// let other = shared.clone();
/// std::thread::spawn(move || drop(other)); // error: `Rc` cannot be sent between threads
/// ```
///
/// To put a stage on another thread, use a thread bridge, which owns its
/// target on that thread.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{pipe, Shared, Stage, sinks::Collect};
///
/// let out = Shared::new(Collect::new());
/// let mut a = pipe().filter(|x: &i32| *x > 0).into(out.clone());
/// let mut b = pipe().map(|x: i32| x * 100).into(out.clone());
/// a.send(1)?;
/// b.send(2)?;
/// a.close()?;
/// b.close()?;
/// let mut rest = out; // the last open handle
/// rest.close()?;
/// assert_eq!(rest.with(|c| c.items().to_vec()), [1, 200]);
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// [`ErrorKind::Reentrant`]: crate::ErrorKind::Reentrant
#[derive(Debug)]
pub struct Shared<S> {
    inner: Rc<SharedInner<S>>,
    /// This handle's `close` has been called.
    closed: bool,
}

#[derive(Debug)]
struct SharedInner<S> {
    target: RefCell<S>,
    /// Handles neither closed nor dropped.
    open: Cell<usize>,
    /// The target returned `Stop` or has been closed.
    done: Cell<bool>,
}

impl<S> Shared<S> {
    /// Wraps `target` as the first open handle.
    pub fn new(target: S) -> Shared<S> {
        Shared {
            inner: Rc::new(SharedInner {
                target: RefCell::new(target),
                open: Cell::new(1),
                done: Cell::new(false),
            }),
            closed: false,
        }
    }

    /// Runs `f` on the target, for example to read a collector after the
    /// stream ends.
    ///
    /// # Panics
    ///
    /// If called from inside the target's own `send` (a cycle).
    pub fn with<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.inner.target.borrow())
    }

    /// How many handles are still open.
    pub fn open_handles(&self) -> usize {
        self.inner.open.get()
    }

    fn release(&mut self) -> bool {
        if self.closed {
            return false;
        }
        self.closed = true;
        let open = self.inner.open.get() - 1;
        self.inner.open.set(open);
        open == 0
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Shared<S> {
        self.inner.open.set(self.inner.open.get() + 1);
        Shared {
            inner: Rc::clone(&self.inner),
            closed: false,
        }
    }
}

impl<S> Drop for Shared<S> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<T, S: Stage<T>> Stage<T> for Shared<S> {
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.inner.done.get() {
            return Ok(Flow::Stop);
        }
        let Ok(mut target) = self.inner.target.try_borrow_mut() else {
            return Err(Error::reentrant());
        };
        let flow = target.send(item)?;
        if flow.is_stop() {
            // The target wants no more: close it once, for every handle.
            self.inner.done.set(true);
            target.close()?;
        }
        Ok(flow)
    }
}

impl<S: Lifecycle> Lifecycle for Shared<S> {
    fn flush(&mut self) -> Result<()> {
        if self.inner.done.get() {
            return Ok(());
        }
        let Ok(mut target) = self.inner.target.try_borrow_mut() else {
            return Err(Error::reentrant());
        };
        target.flush()
    }
    fn close(&mut self) -> Result<()> {
        if !self.release() || self.inner.done.get() {
            return Ok(());
        }
        let Ok(mut target) = self.inner.target.try_borrow_mut() else {
            return Err(Error::reentrant());
        };
        self.inner.done.set(true);
        target.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::stage::StageExt;
    use crate::testutil::Recorder;
    use crate::ErrorKind;

    #[test]
    fn broadcast_skips_stopped_targets_and_stops_when_all_have() {
        let (mut a, mut b) = (Recorder::new(), Recorder::new());
        {
            let mut bc = broadcast(((&mut a).with_take(1), (&mut b).with_take(2)));
            assert_eq!(bc.send("1").unwrap(), Flow::Continue);
            assert_eq!(bc.send("2").unwrap(), Flow::Stop);
            bc.close().unwrap();
        }
        assert_eq!(a.log(), "send 1\nclose\n");
        assert_eq!(b.log(), "send 1\nsend 2\nclose\n");
    }

    #[test]
    fn broadcast_keeps_feeding_earlier_targets_when_the_last_stops_first() {
        let (mut a, mut b) = (Recorder::new(), Recorder::new());
        {
            let mut bc = broadcast(((&mut a).with_take(3), (&mut b).with_take(1)));
            assert_eq!(bc.send("1").unwrap(), Flow::Continue);
            assert_eq!(bc.send("2").unwrap(), Flow::Continue);
            assert_eq!(bc.send("3").unwrap(), Flow::Stop);
            assert_eq!(bc.send("4").unwrap(), Flow::Stop);
            bc.close().unwrap();
        }
        assert_eq!(a.log(), "send 1\nsend 2\nsend 3\nclose\n");
        assert_eq!(b.log(), "send 1\nclose\n");
    }

    #[test]
    fn dynamic_broadcast_over_boxed_stages() {
        let (mut a, mut b) = (Collect::new(), Collect::new());
        {
            let targets: Vec<Box<dyn Stage<&str> + '_>> = vec![
                (&mut a).with_filter(|s: &&str| s.starts_with('p')).boxed(),
                (&mut b).boxed(),
            ];
            let mut bc = broadcast(targets);
            for s in ["python", "ply", "swig"] {
                assert_eq!(bc.send(s).unwrap(), Flow::Continue);
            }
            bc.close().unwrap();
        }
        assert_eq!(a.items(), &["python", "ply"]);
        assert_eq!(b.items(), &["python", "ply", "swig"]);
    }

    #[test]
    fn broadcast_propagates_the_first_error() {
        let mut a = Collect::new();
        let failing = crate::from_fn(|_: u8| Err(Error::usage("nope")));
        let mut bc = broadcast((failing, &mut a));
        assert!(bc.send(1).is_err());
    }

    #[test]
    fn shared_closes_target_when_last_handle_closes() {
        let rec = Shared::new(Recorder::new());
        let mut h1 = rec.clone();
        let mut h2 = rec.clone();
        drop(rec); // dropped without close: no longer counts
        assert_eq!(h1.send("a").unwrap(), Flow::Continue);
        h1.close().unwrap();
        h1.close().unwrap(); // idempotent
        assert_eq!(h2.with(|r| r.log()), "send a\n");
        assert_eq!(h2.send("b").unwrap(), Flow::Continue);
        h2.close().unwrap();
        assert_eq!(h2.with(|r| r.log()), "send a\nsend b\nclose\n");
    }

    #[test]
    fn shared_reentrant_send_is_an_error_not_a_panic() {
        // A stage that sends back into its own Shared handle: a cycle.
        struct Loop(Option<Shared<Loop>>);
        impl Stage<u32> for Loop {
            fn send(&mut self, item: u32) -> Result<Flow> {
                match &mut self.0 {
                    Some(back) => back.send(item + 1),
                    None => Ok(Flow::Continue),
                }
            }
        }

        impl Lifecycle for Loop {
            fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn close(&mut self) -> Result<()> {
                Ok(())
            }
        }

        let mut shared = Shared::new(Loop(None));
        let back = shared.clone();
        shared.inner.target.borrow_mut().0 = Some(back);
        let err = shared.send(1).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Reentrant));
        // Break the Rc cycle so the test does not leak.
        shared.inner.target.borrow_mut().0 = None;
    }

    #[test]
    fn shared_stop_reaches_every_handle() {
        let out = Shared::new(Collect::new().with_take(1));
        let mut a = out.clone();
        let mut b = out.clone();
        assert_eq!(a.send(1).unwrap(), Flow::Stop);
        assert_eq!(b.send(2).unwrap(), Flow::Stop);
    }
}
