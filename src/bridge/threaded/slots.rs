//! Reused slots: [`threaded_ref`] copies each borrowed item into an owned
//! slot of the batch, overwritten batch after batch.

use std::fmt;

use super::{Deliver, Mode, ThreadBridge, ThreadBridgeBuilder};
use crate::bridge::flat::FlatBuf;
use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::Lifecycle;

/// Mode of a bridge made by [`threaded_ref`] /
/// [`ThreadBridgeBuilder::spawn_ref`]: the producer sends borrowed items
/// `&B`, the worker's target receives `&B` too, and in between they are
/// copied into owned slots (`B::Owned`, for example `Vec<u8>` for `[u8]`)
/// that are reused batch after batch with [`ToOwned::clone_into`], so
/// the steady state allocates nothing even for items that own memory.
pub struct ByRef<B: ?Sized> {
    _never: std::convert::Infallible,
    _b: std::marker::PhantomData<fn(&B)>,
}

impl<B: ?Sized> fmt::Debug for ByRef<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByRef")
    }
}

impl<B: ?Sized> Mode for ByRef<B> {}

impl<B: ?Sized> super::carrier::Carrier for ByRef<B> {
    const KEEPS_ITEMS: bool = true;
    const FLAT: bool = false;
    type Memo = ();
}

/// Delivers `&B` borrowed from owned slots, keeping them for reuse.
pub(super) struct Lending<S, B: ?Sized>(pub(super) S, pub(super) std::marker::PhantomData<fn(&B)>);
crate::forward_lifecycle!(impl<S: Lifecycle, B> for Lending<S, B> => 0 where B: ?Sized);

impl<T, B, S> Deliver<T> for Lending<S, B>
where
    T: std::borrow::Borrow<B>,
    B: ?Sized,
    S: for<'a> Stage<&'a B>,
{
    #[inline]
    fn deliver(&mut self, items: &mut Vec<T>, _: &mut FlatBuf, len: usize) -> Result<Flow> {
        for item in &items[..len] {
            if self.0.send(item.borrow())?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

/// Runs `target`, a stage of borrowed items `&B`, on a new thread behind a
/// [`ThreadBridge`] that accepts `&B` too, with the default options: the
/// bridge is invisible to the stages on either side. Lines (`&[u8]`,
/// `&str`) and records (`&Record`) cross it without allocating: each item
/// is copied into a slot (`B::Owned`) that is reused from batch to batch.
///
/// # Panics
///
/// If the operating system refuses to start a thread. Use
/// [`ThreadBridgeBuilder::spawn_ref`] to get that as an error instead.
///
/// # Examples
///
/// ```
/// use copipe::{bridge::threaded_ref, pipe, Stage, sinks::Printer};
///
/// let lines: [&[u8]; 3] = [b"GET /python", b"GET /ply", b"GET /python/"];
/// let printer = Printer::new(Vec::new());
/// let mut pipeline = threaded_ref(pipe().filter(|l: &&[u8]| l.ends_with(b"/")).into(printer));
/// for line in lines {
///     pipeline.send(line)?;
/// }
/// pipeline.close()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn threaded_ref<B, S>(target: S) -> super::RefThreadBridge<B>
where
    B: ToOwned + ?Sized + 'static,
    B::Owned: Send + 'static,
    S: for<'a> Stage<&'a B> + Send + 'static,
{
    match ThreadBridgeBuilder::default().spawn_ref(target) {
        Ok(bridge) => bridge,
        Err(e) => panic!("failed to spawn a thread bridge: {e}"),
    }
}

impl<'a, B> Stage<&'a B> for ThreadBridge<B::Owned, ByRef<B>>
where
    B: ToOwned + ?Sized,
{
    /// Copies `item` into the next slot of the current batch (reusing the
    /// slot's memory) and sends the batch when it is full.
    ///
    /// # Errors
    ///
    /// The target's error or panic, at the first `send` after it happened.
    #[inline]
    fn send(&mut self, item: &'a B) -> Result<Flow> {
        if self.is_over() {
            return self.collect();
        }
        match self.batch.get_mut(self.filled) {
            Some(slot) => item.clone_into(slot),
            None => self.batch.push(item.to_owned()),
        }
        self.placed()
    }
}

impl<B> Lifecycle for ThreadBridge<B::Owned, ByRef<B>>
where
    B: ToOwned + ?Sized,
{
    fn flush(&mut self) -> Result<()> {
        ThreadBridge::flush(self)
    }
    fn close(&mut self) -> Result<()> {
        ThreadBridge::close(self)
    }
}
