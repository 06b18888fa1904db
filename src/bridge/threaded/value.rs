//! Owned values: [`threaded`] moves each item to the worker.

use super::{Deliver, Mode, ThreadBridge, ThreadBridgeBuilder};
use crate::bridge::flat::FlatBuf;
use crate::error::Result;
use crate::stage::{Flow, Stage};
use crate::Lifecycle;

/// Mode of a bridge made by [`threaded`] / [`ThreadBridgeBuilder::spawn`]:
/// the producer sends owned items `T`, which move to the worker, and the
/// worker's target receives them by value. Also the default mode of a
/// [`ProcessBridge`](crate::bridge::ProcessBridge): any serde item, a frame each.
#[derive(Debug)]
pub enum ByValue {}

impl Mode for ByValue {}

impl super::carrier::Carrier for ByValue {
    const KEEPS_ITEMS: bool = false;
    const FLAT: bool = false;
    type Memo = ();
}

/// Delivers owned items, emptying the batch.
pub(super) struct Moving<S>(pub(super) S);
crate::forward_lifecycle!(impl<S: Lifecycle> for Moving<S> => 0);

impl<T, S: Stage<T>> Deliver<T> for Moving<S> {
    #[inline]
    fn deliver(&mut self, items: &mut Vec<T>, _: &mut FlatBuf, len: usize) -> Result<Flow> {
        items.truncate(len);
        for item in items.drain(..) {
            if self.0.send(item)?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

/// Runs `target` on a new thread behind a [`ThreadBridge`] with the default
/// options: batches of [`DEFAULT_BATCH_SIZE`](crate::bridge::DEFAULT_BATCH_SIZE)
/// (more for small items), [`Policy::Block`](crate::bridge::Policy::Block),
/// thread name [`DEFAULT_THREAD_NAME`](crate::bridge::DEFAULT_THREAD_NAME)
/// (the seed's `threaded(target)`).
///
/// Items must be owned and `Send`; put `pipe().owned()` ([`StageExt::with_owned`])
/// in front of the bridge for borrowed items such as the lines of a line
/// source, or use [`threaded_ref`](crate::threaded_ref) /
/// [`threaded_flat`](crate::threaded_flat) (see the table in
/// [`bridge`](crate::bridge)).
///
/// # Panics
///
/// If the operating system refuses to start a thread, like
/// [`std::thread::spawn`]. Use [`ThreadBridgeBuilder`] to get that as an
/// error instead.
///
/// # Examples
///
/// The seed's cothread: the filters and the printer run on their own thread.
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{pipe, threaded, Stage, sinks::Printer};
///
/// let lines = ["route 22 north", "route 9 south", "route 22 south"];
/// let printer = Printer::new(Vec::new()); // any writer; stdout in a real program
/// let mut pipeline = pipe()
///     .owned()
///     .into(threaded(pipe().filter(|l: &String| l.contains("22")).into(printer)));
/// for line in lines {
///     pipeline.send(line)?;
/// }
/// Lifecycle::close(&mut pipeline)?;
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// [`StageExt::with_owned`]: crate::StageExt::with_owned
pub fn threaded<T, S>(target: S) -> ThreadBridge<T, ByValue>
where
    T: Send + 'static,
    S: Stage<T> + Send + 'static,
{
    match ThreadBridgeBuilder::default().spawn(target) {
        Ok(bridge) => bridge,
        Err(e) => panic!("failed to spawn a thread bridge: {e}"),
    }
}

impl<T> Stage<T> for ThreadBridge<T, ByValue> {
    /// Adds `item` to the current batch and sends the batch when it is full.
    ///
    /// # Errors
    ///
    /// The target's error or panic, at the first `send` after it happened.
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.is_over() {
            return self.collect();
        }
        // Batch Vecs come back empty under `ByValue`.
        self.batch.push(item);
        self.placed()
    }
}

impl<T> Lifecycle for ThreadBridge<T, ByValue> {
    fn flush(&mut self) -> Result<()> {
        ThreadBridge::flush(self)
    }
    fn close(&mut self) -> Result<()> {
        ThreadBridge::close(self)
    }
}
