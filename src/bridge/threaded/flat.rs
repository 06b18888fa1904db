//! Flat batches: [`threaded_flat`] appends each borrowed item's
//! [`Flat`] form to the batch's one byte buffer.

use std::fmt;

use super::{Deliver, Mode, ThreadBridge, ThreadBridgeBuilder, FLAT_BATCH_BYTES};
use crate::bridge::flat::{Flat, FlatBuf};
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};
use crate::Lifecycle;

/// Mode of a bridge made by [`threaded_flat`] /
/// [`ThreadBridgeBuilder::spawn_flat`]: the producer sends borrowed items
/// `&B`, the worker's target receives `&B` too, and in between each item
/// is appended to its batch's one [`FlatBuf`] (bytes to its byte region,
/// text to its text region), in the compact form `B` chooses ([`Flat`]);
/// the worker rebuilds every item into one reused [`Flat::Place`] (or
/// lends it straight from the batch). The bridge's batches are those
/// buffers, beside item Vecs that stay empty:
/// [`FlatThreadBridge<B>`](super::FlatThreadBridge). Also the
/// mode of a [`ProcessBridge`](crate::bridge::ProcessBridge) that sends flat
/// frames ([`subprocess_flat`](crate::bridge::subprocess_flat)).
pub struct Flattened<B: ?Sized> {
    _never: std::convert::Infallible,
    _b: std::marker::PhantomData<fn(&B)>,
}

impl<B: ?Sized> fmt::Debug for Flattened<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flattened")
    }
}

impl<B: Flat + ?Sized> Mode for Flattened<B> {}

impl<B: Flat + ?Sized> super::carrier::Carrier for Flattened<B> {
    const KEEPS_ITEMS: bool = false;
    const FLAT: bool = true;
    type Memo = B::Memo;
}

/// Rebuilds flattened items from a batch's byte and text regions into one
/// reused place and lends them. A decode error's offset is in the byte
/// region.
pub(super) struct Unflattening<S, B: Flat + ?Sized>(pub(super) S, pub(super) B::Place);
crate::forward_lifecycle!(impl<S: Lifecycle, B> for Unflattening<S, B> => 0 where B: Flat + ?Sized);

impl<B, S> Deliver<u8> for Unflattening<S, B>
where
    B: Flat + ?Sized,
    S: for<'a> Stage<&'a B>,
{
    #[inline]
    fn deliver(&mut self, _: &mut Vec<u8>, flat: &mut FlatBuf, len: usize) -> Result<Flow> {
        let mut src = flat.src();
        let mut flow = Flow::Continue;
        for _ in 0..len {
            let item = match B::unflatten(&mut src, &mut self.1) {
                Ok(item) => item,
                Err(e) => {
                    let at = (flat.bytes().len() - src.bytes().len()) as u64;
                    return Err(Error::decode(at, format!("flattened batch: {e}")));
                }
            };
            if self.0.send(item)?.is_stop() {
                flow = Flow::Stop;
                break;
            }
        }
        flat.clear();
        Ok(flow)
    }
}

/// Runs `target`, a stage of borrowed items `&B`, on a new thread behind a
/// [`ThreadBridge`] that accepts `&B` too and passes them over flattened
/// into bytes ([`Flattened`]), with the default options.
///
/// Like [`threaded_ref`](crate::threaded_ref), the bridge is invisible to the stages on either
/// side and allocates nothing per item once warm; the difference is how
/// items travel. [`threaded_ref`](crate::threaded_ref) copies each item into an owned slot
/// (for a [`Record`](crate::xml::Record), three buffers); this appends its
/// [`Flat`] form to one byte buffer and one `String` per batch (for a
/// record, its values in the `String`, their lengths in the bytes, and its
/// names only when they change), which the worker decodes into one reused
/// record, taking the values as `&str` with no UTF-8 check. The producer
/// copies less and the two cores share fewer cache lines; the worker does
/// the decoding. For records in a pipeline whose producer is the busier
/// side (parsing XML), this is the faster mode: see `benches/bridges.rs`.
///
/// Memory: the batches rotate through all `capacity + 3` buffers rather
/// than reusing the last one returned (the producer writes faster into a
/// buffer the worker read long ago), each kept at up to 1 MiB: ~2.4 MB for
/// bus records at the defaults. A smaller
/// [`capacity`](ThreadBridgeBuilder::capacity) or
/// [`batch_size`](ThreadBridgeBuilder::batch_size) keeps less.
///
/// # Panics
///
/// If the operating system refuses to start a thread. Use
/// [`ThreadBridgeBuilder::spawn_flat`] to get that as an error instead.
///
/// # Examples
///
/// ```
/// use copipe::bridge::threaded_flat;
/// use copipe::xml::{filter_on_field, Record};
/// use copipe::{from_fn, Flow, Stage};
///
/// let mut seen = Vec::new();
/// let sink = from_fn(move |r: &Record| {
///     seen.push(r.get("id").unwrap_or("").to_string());
///     Ok(Flow::Continue)
/// });
/// let mut bridge = threaded_flat::<Record, _>(filter_on_field("route", "22", sink));
/// for (id, route) in [("1", "22"), ("2", "9"), ("3", "22")] {
///     bridge.send(&Record::from_iter([("id", id), ("route", route)]))?;
/// }
/// bridge.close()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn threaded_flat<B, S>(target: S) -> super::FlatThreadBridge<B>
where
    B: Flat + ?Sized + 'static,
    S: for<'a> Stage<&'a B> + Send + 'static,
{
    match ThreadBridgeBuilder::default().spawn_flat(target) {
        Ok(bridge) => bridge,
        Err(e) => panic!("failed to spawn a thread bridge: {e}"),
    }
}

impl<'a, B> Stage<&'a B> for ThreadBridge<u8, Flattened<B>>
where
    B: Flat + ?Sized,
{
    /// Appends `item`'s flat form to the current batch's byte and text
    /// regions and sends the batch when it holds `batch_size` items or
    /// [`FLAT_BATCH_BYTES`] (both regions together).
    ///
    /// # Errors
    ///
    /// The target's error or panic, at the first `send` after it happened.
    #[inline]
    fn send(&mut self, item: &'a B) -> Result<Flow> {
        if self.is_over() {
            return self.collect();
        }
        if self.filled == 0 {
            // Every batch stands alone: it may be dropped whole.
            self.memo = B::Memo::default();
        }
        item.flatten(&mut self.memo, &mut self.flat);
        let full = self.flat.len() >= FLAT_BATCH_BYTES;
        self.placed_if_full(full)
    }
}

impl<B> Lifecycle for ThreadBridge<u8, Flattened<B>>
where
    B: Flat + ?Sized,
{
    fn flush(&mut self) -> Result<()> {
        ThreadBridge::flush(self)
    }
    fn close(&mut self) -> Result<()> {
        ThreadBridge::close(self)
    }
}
