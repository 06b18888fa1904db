//! [`threaded`]: run the downstream stages on their own thread.
//!
//! The producer side ([`ThreadBridge`]) gathers items into a batch (a
//! `Vec<T>`) and sends whole batches over a bounded crossbeam channel to a
//! named worker thread, which owns the target and sends each item on. Batch
//! `Vec`s come back through a small [`Pool`] to be reused, so once the
//! pipeline is running nothing is allocated per item or per batch. For
//! owned items and slots the pool is a stack: the producer refills the Vec
//! returned last, so when the worker keeps up the same two batches
//! alternate. Flat batches instead rotate through all of them (at most
//! `capacity + 3`); [`Pool`] says why.
//!
//! One file per flavour, as crossbeam-channel keeps its `flavors/`:
//!
//! - `mod.rs`: the bridge, its builder, the full-channel policies, the
//!   producer's batching and the worker loop, shared by every flavour;
//! - `pool.rs`: [`Pool`], the spare batches;
//! - `value.rs`: [`ByValue`] and [`threaded`], owned items moved;
//! - `slots.rs`: [`ByRef`] and [`threaded_ref`], borrowed items copied into
//!   reused slots;
//! - `flat.rs`: [`Flattened`] and [`threaded_flat`], borrowed items
//!   flattened into one byte buffer per batch.
//!
//! A flavour is a sealed [`Mode`]; what the shared code asks of it is in
//! the private `carrier::Carrier` trait and the `Deliver` trait of its
//! worker side.
//!
//! ```text
//!  producer thread                          worker thread "copipe-bridge"
//!  send(item) ─▶ batch: Vec<T> ──batches──▶ for item in batch { target.send(item) }
//!                     ▲        (bounded)                 │
//!                     └──── spare Vecs (the pool) ◀──────┘
//! ```
//!
//! Borrowed items cross in one of two ways: [`ByRef`] copies each into an
//! owned slot of the batch (`Vec<B::Owned>`), reused batch after batch;
//! [`Flattened`] appends each item's [`Flat`] form to the batch's one
//! [`FlatBuf`](super::FlatBuf) (a byte region, `Vec<u8>`, and a text
//! region, `String`), carried beside the batch's (then empty) item Vec, and
//! the worker rebuilds the items into one reused place.
//!
//! The two sides share one small [`Shared`] block: the worker's state
//! (running, stopped by its target, failed) so that the producer learns at
//! its very next `send` that downstream stopped or failed, even while its
//! batch is not yet full; an abort flag for a bridge dropped without
//! `close`; and a pending-flush flag for the drop policies.

use crate::Lifecycle;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

use super::flat::{Flat, FlatBuf};

mod flat;
mod pool;
mod slots;
mod value;

use flat::Unflattening;
pub use flat::{threaded_flat, Flattened};
use pool::{Padded, Pool};
use slots::Lending;
pub use slots::{threaded_ref, ByRef};
use value::Moving;
pub use value::{threaded, ByValue};

/// The bridge [`threaded_ref`] makes, named without its item slots' type:
/// a bridge that takes `&B`.
pub type RefThreadBridge<B> = ThreadBridge<<B as ToOwned>::Owned, ByRef<B>>;

/// The bridge [`threaded_flat`] makes, named without its internal
/// parameter: a bridge that takes `&B`.
pub type FlatThreadBridge<B> = ThreadBridge<u8, Flattened<B>>;
use crate::error::{panic_message, Error, ErrorKind, Result};
use crate::stage::{end_source, Flow, SourceEnd, Stage};

/// Items gathered into one batch before it is sent to the worker, unless
/// the builder says otherwise: for borrowed items ([`threaded_ref`]) and
/// for owned items of 32 bytes or more. Smaller owned items ([`threaded`]
/// of `u64`, say) gather up to [`SMALL_BATCH_BYTES`] per batch instead, so
/// up to 1024 items.
///
/// Large enough that channel operations and wake-ups cost little per item,
/// small enough that the batches of bus records in flight stay near the
/// cache (a record lent by [`threaded_ref`] is copied into a slot that
/// owns ~500 bytes); small owned items gain from larger batches. Both are
/// measured by `benches/bridges.rs`. `flush` sends partial batches, so a
/// live stream is not held back whatever the size (the `tail -F` latency
/// in the same bench).
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Items a [`Flattened`] bridge ([`threaded_flat`]) gathers into one batch
/// unless the builder says otherwise; a batch also goes as soon as its
/// bytes reach [`FLAT_BATCH_BYTES`].
///
/// More than [`DEFAULT_BATCH_SIZE`] because a flattened item is small (a
/// bus record ~120 bytes, a batch of 1024 ~125 KiB) and every batch may
/// cost a wake-up of the worker, so fewer, larger batches save wake-ups
/// while a batch of 1024 still fits in cache; larger batches gain nothing
/// more and cost memory. The batch-size sweep of the bus pipeline in
/// `benches/bridges.rs` shows it.
pub const DEFAULT_FLAT_BATCH_SIZE: usize = 1024;

/// A [`Flattened`] bridge sends its batch once the batch's bytes reach this
/// (256 KiB, its byte and text regions together), however few the items:
/// large items do not make large batches.
pub const FLAT_BATCH_BYTES: usize = 256 * 1024;

/// A flat batch whose buffer grew past this (both regions' capacity
/// together: 1 MiB, four times [`FLAT_BATCH_BYTES`]), which only an item
/// that large makes, is freed when it comes back rather than kept: the
/// batches rotate, so each would otherwise keep the largest item it ever
/// held for good.
const FLAT_KEEP_BYTES: usize = 4 * FLAT_BATCH_BYTES;

/// Bytes of owned items a default batch gathers when the items are small
/// (below 32 bytes): `u64`s go 1024 to a batch. See [`DEFAULT_BATCH_SIZE`].
pub const SMALL_BATCH_BYTES: usize = 8 * 1024;

/// The default batch size for owned items of type `T`.
fn default_batch_by_value<T>() -> usize {
    (SMALL_BATCH_BYTES / std::mem::size_of::<T>().max(1)).clamp(DEFAULT_BATCH_SIZE, 1024)
}

/// Batches the channel between producer and worker holds.
///
/// At most `capacity + 3` batches exist: the channel's, the one the worker
/// is on, the one the producer is filling and one spare. A worker that
/// keeps up uses two of them in turn, except under [`Flattened`], whose
/// batches rotate through all (see `Pool` in `pool.rs`); the others absorb the moments
/// when the worker is behind. A smaller capacity was slower for `u64`s and
/// no better for records in `benches/bridges.rs`.
pub const DEFAULT_CAPACITY: usize = 16;

/// Name of the worker thread unless the builder gives another.
pub const DEFAULT_THREAD_NAME: &str = "copipe-bridge";

/// What a [`ThreadBridge`] does when its channel is full because the worker
/// is behind.
///
/// The unit that is dropped is a batch (at most
/// [`batch_size`](ThreadBridgeBuilder::batch_size) items, fewer when a
/// `flush` sent a partial batch); the count is in items. Dropping is never
/// silent: see [`ThreadBridge::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Wait until the worker makes room: backpressure, nothing is lost
    /// (the seed's synchronous queue). The default.
    #[default]
    Block,
    /// Drop the batch being sent: the worker keeps what it already has.
    DropNewest,
    /// Drop the oldest batch waiting in the channel to make room for the
    /// new one: the worker sees the most recent items (a live view).
    DropOldest,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Block => "block",
            Policy::DropNewest => "drop-newest",
            Policy::DropOldest => "drop-oldest",
        })
    }
}

/// One message to the worker: a batch of items (the first `len` of
/// `items`; under [`ByRef`] the rest are spare slots kept for reuse), and
/// whether to flush the target after it.
struct Batch<T> {
    items: Vec<T>,
    /// The batch's items under [`Flattened`] (then `items` is empty);
    /// empty and unallocated under the other modes.
    flat: FlatBuf,
    len: usize,
    flush: bool,
}

/// A spare batch: its items Vec and its flat buffer (see [`Batch`]).
type Spare<T> = (Vec<T>, FlatBuf);

/// How a [`ThreadBridge`] hands items over: [`ByValue`] (`value.rs`),
/// [`ByRef`] (`slots.rs`) or [`Flattened`] (`flat.rs`), one flavour each.
///
/// Sealed: the three flavours are the only ones. What differs between them
/// is in the private carrier trait each implements, not in this one.
pub trait Mode: carrier::Carrier {}

/// The private side of a flavour: what the shared producer and worker
/// code asks of it.
pub(crate) mod carrier {
    /// How a flavour carries a batch.
    pub trait Carrier {
        /// Batch Vecs come back with their items, to be overwritten in
        /// place (slots).
        const KEEPS_ITEMS: bool;
        /// Items travel in the batch's `FlatBuf`, not its Vec (flat).
        const FLAT: bool;
        /// What the producer remembers between the items of a batch
        /// (`Flat::Memo` for flat batches, nothing otherwise).
        type Memo: Default + Send;
    }
}

/// How the worker sends a batch to its target: by value or by reference.
trait Deliver<T>: Lifecycle {
    /// Sends `items[..len]` on, in order (under [`Flattened`], decoded from
    /// `flat`); `Stop` as soon as the target stops.
    fn deliver(&mut self, items: &mut Vec<T>, flat: &mut FlatBuf, len: usize) -> Result<Flow>;
}

/// The worker is sending items on.
const RUNNING: u8 = 0;
/// The worker's target returned `Stop`; the worker closed it and ended.
const STOPPED: u8 = 1;
/// The worker's target returned an error or panicked; the worker ended.
const FAILED: u8 = 2;

/// State shared by the producer and the worker.
///
/// `state` is read by the producer at every `send`; it sits on a cache line
/// of its own (128 bytes covers adjacent-line prefetch), so that the
/// worker's writes to the other flags never evict it from the producer's
/// cache.
#[derive(Debug, Default)]
#[repr(C)]
struct Shared {
    /// `RUNNING`, `STOPPED` or `FAILED`, written once by the worker.
    state: Padded<AtomicU8>,
    /// Set by `Drop` without `close`: the worker discards what is queued
    /// and ends without closing its target (the stream was abandoned).
    abort: AtomicBool,
    /// A `flush` found the channel full under a drop policy: the worker
    /// flushes its target after the batch it is on.
    flush: AtomicBool,
}

/// Sets the worker's state to `FAILED` unless the worker disarmed it:
/// a panic unwinding out of the target runs this drop.
struct FailGuard<'a> {
    shared: &'a Shared,
    armed: bool,
}

impl Drop for FailGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.state.store(FAILED, Ordering::Release);
        }
    }
}

/// Options of a [`ThreadBridge`]: batch size, channel capacity, full-channel
/// [`Policy`] and thread name.
///
/// # Examples
///
/// ```
/// use copipe::{Stage, bridge::{Policy, ThreadBridgeBuilder}, sinks::Count};
///
/// let mut bridge = ThreadBridgeBuilder::new()
///     .batch_size(64)
///     .capacity(4)
///     .policy(Policy::Block)
///     .name("counter")
///     .spawn(Count::new())?;
/// for i in 0..1000u32 {
///     bridge.send(i)?;
/// }
/// bridge.close()?;
/// assert_eq!(bridge.dropped(), 0);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ThreadBridgeBuilder {
    /// `None`: the default for the items (see [`DEFAULT_BATCH_SIZE`]).
    batch_size: Option<usize>,
    capacity: usize,
    policy: Policy,
    name: String,
    warn_on_drop: bool,
}

impl Default for ThreadBridgeBuilder {
    fn default() -> Self {
        ThreadBridgeBuilder {
            batch_size: None,
            capacity: DEFAULT_CAPACITY,
            policy: Policy::Block,
            name: DEFAULT_THREAD_NAME.to_string(),
            warn_on_drop: true,
        }
    }
}

impl ThreadBridgeBuilder {
    /// The default options.
    pub fn new() -> ThreadBridgeBuilder {
        ThreadBridgeBuilder::default()
    }

    /// Items per batch (at least 1). Larger batches cost fewer channel
    /// operations; smaller ones reach the worker sooner. Default
    /// [`DEFAULT_BATCH_SIZE`], or more for small owned items (see there),
    /// and [`DEFAULT_FLAT_BATCH_SIZE`] for [`spawn_flat`](Self::spawn_flat).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n.max(1));
        self
    }

    /// Batches the channel holds (at least 1). Default [`DEFAULT_CAPACITY`].
    /// At most `capacity + 3` batches exist (see [`DEFAULT_CAPACITY`]).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// What to do when the channel is full. Default [`Policy::Block`].
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The worker thread's name (shown by debuggers, `top -H`, panics).
    /// Default [`DEFAULT_THREAD_NAME`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether `close` prints one warning line to stderr when items were
    /// dropped (default true). Turn it off when the program reports
    /// [`ThreadBridge::dropped`] itself.
    pub fn warn_on_drop(mut self, yes: bool) -> Self {
        self.warn_on_drop = yes;
        self
    }

    /// Starts the worker thread with `target`, which receives owned items,
    /// and returns the producer side (see [`threaded`]).
    ///
    /// # Errors
    ///
    /// An I/O error if the operating system refuses to start a thread.
    pub fn spawn<T, S>(self, target: S) -> Result<ThreadBridge<T, ByValue>>
    where
        T: Send + 'static,
        S: Stage<T> + Send + 'static,
    {
        let batch = self.batch_size.unwrap_or_else(default_batch_by_value::<T>);
        self.start(Moving(target), batch)
    }

    /// Starts the worker thread with `target`, which receives borrowed
    /// items `&B`, and returns the producer side, which accepts `&B` too
    /// (see [`threaded_ref`]).
    ///
    /// # Errors
    ///
    /// An I/O error if the operating system refuses to start a thread.
    pub fn spawn_ref<B, S>(self, target: S) -> Result<RefThreadBridge<B>>
    where
        B: ToOwned + ?Sized + 'static,
        B::Owned: Send + 'static,
        S: for<'a> Stage<&'a B> + Send + 'static,
    {
        let batch = self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        self.start(Lending(target, std::marker::PhantomData), batch)
    }

    /// Starts the worker thread with `target`, which receives borrowed
    /// items `&B`, and returns the producer side, which accepts `&B` too
    /// and passes items over flattened into bytes (see [`threaded_flat`]).
    ///
    /// # Errors
    ///
    /// An I/O error if the operating system refuses to start a thread.
    pub fn spawn_flat<B, S>(self, target: S) -> Result<FlatThreadBridge<B>>
    where
        B: Flat + ?Sized + 'static,
        S: for<'a> Stage<&'a B> + Send + 'static,
    {
        let batch = self.batch_size.unwrap_or(DEFAULT_FLAT_BATCH_SIZE);
        self.start(Unflattening::<S, B>(target, B::Place::default()), batch)
    }

    fn start<T, M, D>(self, target: D, batch_size: usize) -> Result<ThreadBridge<T, M>>
    where
        T: Send + 'static,
        M: Mode,
        D: Deliver<T> + Send + 'static,
    {
        let (tx, rx) = bounded::<Batch<T>>(self.capacity);
        // Every batch Vec is in the channel, with the producer, with the
        // worker, or in the pool; room for all of them means a return never
        // frees a Vec in the steady state.
        let pool = Arc::new(Pool::new(self.capacity + 2, M::FLAT));
        let unmade = if M::FLAT { self.capacity + 2 } else { 0 };
        let shared = Arc::new(Shared::default());
        let worker_shared = Arc::clone(&shared);
        let worker_pool = Arc::clone(&pool);
        let steal = (self.policy == Policy::DropOldest).then(|| rx.clone());
        let handle = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || run_worker::<T, M, D>(target, rx, &worker_pool, &worker_shared))?;
        Ok(ThreadBridge {
            batch: Vec::with_capacity(if M::FLAT { 0 } else { batch_size }),
            flat: FlatBuf::new(),
            filled: 0,
            tx: Some(tx),
            pool,
            unmade,
            steal,
            shared,
            handle: Some(handle),
            batch_size,
            policy: self.policy,
            name: self.name,
            warn_on_drop: self.warn_on_drop,
            dropped: 0,
            unflushed: false,
            done: None,
            memo: M::Memo::default(),
            _mode: std::marker::PhantomData,
        })
    }
}

/// The worker thread: sends every item of every batch to the target, in
/// order, until the producer closes the channel (then closes the target),
/// the target stops or fails, or the producer aborts.
fn run_worker<T, M: Mode, D: Deliver<T>>(
    mut target: D,
    rx: Receiver<Batch<T>>,
    pool: &Pool<T>,
    shared: &Shared,
) -> Result<()> {
    let mut guard = FailGuard {
        shared,
        armed: true,
    };
    // The worker is its target's source: it ends by `end_source`, unless
    // the producer aborted (then the target is dropped unclosed).
    let (end, stopped) = (|| {
        while let Ok(Batch {
            mut items,
            mut flat,
            len,
            flush,
        }) = rx.recv()
        {
            if shared.abort.load(Ordering::Acquire) {
                return (None, false);
            }
            match target.deliver(&mut items, &mut flat, len) {
                // Downstream wants no more: as its upstream, the worker
                // closes it. The producer sees STOPPED at its next send.
                Ok(Flow::Stop) => return (Some(SourceEnd::Done), true),
                Ok(Flow::Continue) => {}
                Err(e) => return (Some(SourceEnd::Target(e)), false),
            }
            // The producer takes the Vec back for its next batch (empty, or
            // under `ByRef` with its items as slots to overwrite); if it has
            // enough already, the Vec is freed here.
            debug_assert!(M::KEEPS_ITEMS || items.is_empty());
            debug_assert!(flat.is_empty());
            if flat.capacity() > FLAT_KEEP_BYTES {
                flat = FlatBuf::new();
            }
            drop(pool.put((items, flat)));
            // Load before swapping: a swap is a write, and a write per
            // batch would take the line from the producer each time.
            if flush
                || (shared.flush.load(Ordering::Relaxed)
                    && shared.flush.swap(false, Ordering::AcqRel))
            {
                if let Some(end) = SourceEnd::after_flush(target.flush()) {
                    return (Some(end), false);
                }
            }
        }
        // The channel is closed: `close` (end of stream) or `Drop` (abort).
        if shared.abort.load(Ordering::Acquire) {
            return (None, false);
        }
        (Some(SourceEnd::Done), false)
    })();
    let result = match end {
        Some(end) => end_source(&mut target, end),
        None => Ok(()),
    };
    if stopped && result.is_ok() {
        shared.state.store(STOPPED, Ordering::Release);
    }
    // On an error (or a panic, which skips this) the guard marks FAILED.
    guard.armed = result.is_err();
    drop(guard);
    result
}

/// The producer side of a thread bridge: a [`Stage`] that hands items to a
/// target running on its own thread. Made by [`threaded`] or
/// [`ThreadBridgeBuilder`].
///
/// - Items are sent in batches; a batch goes when it is full, on `flush`
///   (a partial batch, and the worker then flushes its target) and on
///   `close`. Order is kept and, under [`Policy::Block`], nothing accepted
///   is lost.
/// - A `Stop` from the target reaches the producer at its next `send` as
///   `Ok(Flow::Stop)`. An error from the target, or its panic (as
///   [`ErrorKind::Panic`] with the panic message), reaches the producer at
///   its next `send`, `flush` or `close`. The error is returned once; later
///   calls return `Stop`.
/// - `close` sends what is left, waits for the worker to send it on and to
///   close the target, joins the thread, and returns the target's error if
///   it had one.
/// - Dropping the bridge without `close` abandons the stream: the worker
///   discards what is queued, does not close its target, and the thread is
///   joined before the drop returns. A panic in the worker that nobody
///   collected is reported on stderr.
///
/// # Examples
///
/// ```
/// use copipe::{pipe, threaded, Stage, sinks::Collect};
///
/// let mut bridge = threaded(pipe().map(|x: u64| x * 2).into(Collect::new()));
/// for i in 0..10u64 {
///     bridge.send(i)?;
/// }
/// bridge.close()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct ThreadBridge<T, M: Mode = ByValue> {
    /// The batch being filled: items `..filled`; under `ByRef` the items
    /// after them are slots from earlier batches, overwritten in place.
    batch: Vec<T>,
    /// The batch's items under [`Flattened`] (then `batch` is empty);
    /// empty and unallocated under the other modes.
    flat: FlatBuf,
    filled: usize,
    /// `None` once the stream is closed or the worker has ended.
    tx: Option<Sender<Batch<T>>>,
    /// Spare batch Vecs: returned by the worker, and by a drop policy.
    pool: Arc<Pool<T>>,
    /// Spares still to make before the producer takes any back: under
    /// [`Flattened`], all `capacity + 2` at the start, so that the
    /// `capacity + 3` batches rotate (see [`Pool`]); 0 otherwise.
    unmade: usize,
    /// A receiver of the batch channel, under `DropOldest` only: it lets the
    /// producer take the oldest batch out of a full channel. (Under the other
    /// policies the worker holds the only receiver, so its death disconnects
    /// the channel and wakes a producer blocked on a full one.)
    steal: Option<Receiver<Batch<T>>>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<Result<()>>>,
    batch_size: usize,
    policy: Policy,
    name: String,
    warn_on_drop: bool,
    dropped: u64,
    /// Items were sent since the last flush reached the worker.
    unflushed: bool,
    /// How the worker ended, once the producer has collected it: `Stop` for
    /// a stopped or failed target (the error was returned already), or
    /// `Continue` after a clean close.
    done: Option<Flow>,
    /// What the producer remembers between the items of the current batch
    /// (under [`Flattened`]).
    memo: M::Memo,
    _mode: std::marker::PhantomData<fn() -> M>,
}

impl<T, M: Mode> fmt::Debug for ThreadBridge<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadBridge")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("batch_size", &self.batch_size)
            .field("pending", &self.filled)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl<T, M: Mode> ThreadBridge<T, M> {
    /// Items dropped so far under [`Policy::DropNewest`] or
    /// [`Policy::DropOldest`] (always 0 under [`Policy::Block`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The worker thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full-channel policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// True while the worker has neither stopped nor failed and the bridge
    /// is not closed.
    pub fn is_running(&self) -> bool {
        self.done.is_none() && self.shared.state.load(Ordering::Acquire) == RUNNING
    }

    /// Sends the current batch (possibly empty, if `flush` is set) under the
    /// bridge's policy. Returns `Err(())` if the worker has gone.
    fn push_batch(&mut self, flush: bool) -> std::result::Result<(), ()> {
        let Some(tx) = &self.tx else {
            return Err(());
        };
        let spare = if self.unmade > 0 {
            self.unmade -= 1;
            None
        } else {
            self.pool.take()
        };
        let (fresh, fresh_flat) = spare.unwrap_or_else(|| {
            let cap = if M::FLAT { 0 } else { self.batch_size };
            (Vec::with_capacity(cap), FlatBuf::new())
        });
        let items = std::mem::replace(&mut self.batch, fresh);
        let flat = std::mem::replace(&mut self.flat, fresh_flat);
        let len = std::mem::take(&mut self.filled);
        let mut msg = Batch {
            items,
            flat,
            len,
            flush,
        };
        match self.policy {
            Policy::Block => tx.send(msg).map_err(|_| ()),
            Policy::DropNewest => match tx.try_send(msg) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(msg)) => {
                    self.dropped += msg.len as u64;
                    if msg.flush {
                        self.shared.flush.store(true, Ordering::Release);
                    }
                    self.keep_spare(msg.items, msg.flat);
                    Ok(())
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            },
            Policy::DropOldest => loop {
                match tx.try_send(msg) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Full(back)) => {
                        msg = back;
                        let Some(steal) = &self.steal else {
                            unreachable!("DropOldest always keeps a receiver");
                        };
                        match steal.try_recv() {
                            Ok(old) => {
                                self.dropped += old.len as u64;
                                if old.flush {
                                    msg.flush = true;
                                }
                                self.keep_spare(old.items, old.flat);
                            }
                            // The worker took it meanwhile: try again.
                            Err(TryRecvError::Empty) => {}
                            Err(TryRecvError::Disconnected) => return Err(()),
                        }
                        // The worker may have ended while we were stealing
                        // (we hold a receiver, so the channel stays open).
                        if self.shared.state.load(Ordering::Acquire) != RUNNING {
                            return Err(());
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => return Err(()),
                }
            },
        }
    }

    /// Puts a dropped batch's Vec back for reuse (emptied under `ByValue`,
    /// as slots under `ByRef`). If the recycle channel is full of spares,
    /// the Vec is freed instead.
    fn keep_spare(&self, mut items: Vec<T>, mut flat: FlatBuf) {
        if !M::KEEPS_ITEMS {
            items.clear();
        }
        flat.clear();
        drop(self.pool.put((items, flat)));
    }

    /// The worker has ended (or the channel is gone): join it and turn how
    /// it ended into what the producer returns.
    fn collect(&mut self) -> Result<Flow> {
        if let Some(flow) = self.done {
            return Ok(flow);
        }
        self.tx = None;
        self.steal = None;
        let result = self.join();
        self.done = Some(Flow::Stop);
        result.map(|()| Flow::Stop)
    }

    /// Joins the worker and returns its result, its panic as an error.
    fn join(&mut self) -> Result<()> {
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(result) => result,
            Err(payload) => Err(Error::new(ErrorKind::Panic(format!(
                "{} (in thread bridge `{}`)",
                panic_message(&*payload),
                self.name
            )))),
        }
    }

    fn report_drops(&self) {
        if self.dropped > 0 && self.warn_on_drop {
            eprintln!(
                "copipe: thread bridge `{}` dropped {} item{} (policy {})",
                self.name,
                self.dropped,
                if self.dropped == 1 { "" } else { "s" },
                self.policy
            );
        }
    }
}

impl<T, M: Mode> ThreadBridge<T, M> {
    /// True if the producer must stop sending: the bridge is closed, or the
    /// worker has stopped or failed. One atomic load per item: the
    /// producer learns of a stop or failure downstream at once, even with
    /// a half-full batch.
    #[inline]
    fn is_over(&self) -> bool {
        self.done.is_some() || self.shared.state.load(Ordering::Acquire) != RUNNING
    }

    /// Counts the item just placed at `filled` and sends the batch if full.
    #[inline]
    fn placed(&mut self) -> Result<Flow> {
        self.placed_if_full(false)
    }

    /// Counts the item just placed at `filled` and sends the batch if it
    /// has `batch_size` items, or if `full` says it is full already.
    #[inline]
    fn placed_if_full(&mut self, full: bool) -> Result<Flow> {
        self.filled += 1;
        self.unflushed = true;
        if (full || self.filled >= self.batch_size) && self.push_batch(false).is_err() {
            return self.collect();
        }
        Ok(Flow::Continue)
    }

    /// Sends the partial batch; the worker flushes its target after it
    /// (the same as its [`Lifecycle::flush`](crate::Lifecycle::flush)).
    ///
    /// # Errors
    ///
    /// The target's error or panic, if it has ended with one.
    pub fn flush(&mut self) -> Result<()> {
        if self.is_over() {
            return self.collect().map(|_| ());
        }
        if !self.unflushed {
            return Ok(());
        }
        self.unflushed = false;
        if self.push_batch(true).is_err() {
            return self.collect().map(|_| ());
        }
        Ok(())
    }

    /// Sends what is left, waits until the worker has sent it on and closed
    /// the target, and joins the thread (the same as its
    /// [`Lifecycle::close`](crate::Lifecycle::close)).
    ///
    /// # Errors
    ///
    /// The target's error (from a `send` or from its `close`), or its panic
    /// as [`ErrorKind::Panic`], unless an earlier call returned it already.
    pub fn close(&mut self) -> Result<()> {
        if self.done.is_some() {
            // Closed already, or the worker ended and we reported how.
            return Ok(());
        }
        if self.shared.state.load(Ordering::Acquire) == RUNNING && self.filled > 0 {
            // A failure here means the worker ended: `join` says how.
            let _ = self.push_batch(false);
        }
        // Dropping the sender (and our receiver, if any) is the end of the
        // stream: the worker closes the target once the channel is drained.
        self.tx = None;
        self.steal = None;
        let result = self.join();
        self.done = Some(Flow::Continue);
        self.report_drops();
        result
    }
}

impl<T, M: Mode> Drop for ThreadBridge<T, M> {
    fn drop(&mut self) {
        if self.handle.is_none() {
            return;
        }
        // Abandoned without close: tell the worker to discard what is
        // queued and not to close its target, then wait for it.
        self.shared.abort.store(true, Ordering::Release);
        self.tx = None;
        self.steal = None;
        if let Err(e) = self.join() {
            if matches!(e.kind(), ErrorKind::Panic(_)) && !std::thread::panicking() {
                eprintln!("copipe: {e}");
            }
        }
        self.report_drops();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::stage::{from_fn, StageExt};
    use std::sync::{Arc as StdArc, Mutex};

    /// A stage that records what it sees into shared memory, so the test can
    /// read it after the worker thread has ended.
    fn recorder(log: StdArc<Mutex<Vec<String>>>) -> impl Stage<u32> + Send + 'static {
        struct Rec(StdArc<Mutex<Vec<String>>>);
        impl Stage<u32> for Rec {
            fn send(&mut self, item: u32) -> Result<Flow> {
                self.0.lock().unwrap().push(format!("send {item}"));
                Ok(Flow::Continue)
            }
        }

        impl Lifecycle for Rec {
            fn flush(&mut self) -> Result<()> {
                self.0.lock().unwrap().push("flush".into());
                Ok(())
            }
            fn close(&mut self) -> Result<()> {
                self.0.lock().unwrap().push("close".into());
                Ok(())
            }
        }

        Rec(log)
    }

    #[test]
    fn small_owned_items_get_bigger_default_batches() {
        assert_eq!(default_batch_by_value::<u64>(), 1024);
        assert_eq!(default_batch_by_value::<u8>(), 1024);
        assert_eq!(default_batch_by_value::<()>(), 1024);
        assert_eq!(default_batch_by_value::<[u8; 16]>(), 512);
        assert_eq!(default_batch_by_value::<String>(), 341);
        assert_eq!(default_batch_by_value::<[u8; 32]>(), DEFAULT_BATCH_SIZE);
        assert_eq!(default_batch_by_value::<[u8; 80]>(), DEFAULT_BATCH_SIZE);
        let b = threaded::<u64, _>(Collect::new());
        assert_eq!(b.batch_size, 1024);
        let b = threaded_ref::<str, _>(Collect::<String>::new().with_map(|s: &str| s.to_string()));
        assert_eq!(b.batch_size, DEFAULT_BATCH_SIZE);
        let b = ThreadBridgeBuilder::new()
            .batch_size(3)
            .spawn::<u64, _>(Collect::new())
            .unwrap();
        assert_eq!(b.batch_size, 3);
        let b = threaded_flat::<str, _>(Collect::<String>::new().with_map(|s: &str| s.to_string()));
        assert_eq!(b.batch_size, DEFAULT_FLAT_BATCH_SIZE);
    }

    #[test]
    fn a_flat_batch_grown_for_a_huge_item_is_not_kept_at_that_size() {
        let (tx, rx) = crossbeam_channel::unbounded::<usize>();
        let mut bridge = ThreadBridgeBuilder::new()
            .capacity(4)
            .spawn_flat::<[u8], _>(from_fn(move |item: &[u8]| {
                let _ = tx.send(item.len());
                Ok(Flow::Continue)
            }))
            .unwrap();
        let huge = vec![b'x'; 4 * FLAT_KEEP_BYTES];
        for item in [&huge[..], b"small"] {
            let _ = bridge.send(item).unwrap();
            bridge.flush().unwrap();
            assert_eq!(rx.recv().unwrap(), item.len());
        }
        // Both batches came back (the producer takes none back until it
        // has made `capacity + 2`); the huge one as an empty buffer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while bridge.pool.spares.lock().unwrap().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the batches never came back"
            );
            std::thread::yield_now();
        }
        let kept: Vec<usize> = (bridge.pool.spares.lock().unwrap().iter())
            .map(|(_, flat)| flat.capacity())
            .collect();
        assert!(kept.iter().all(|&c| c <= FLAT_KEEP_BYTES), "{kept:?}");
        bridge.close().unwrap();
    }

    #[test]
    fn flush_carries_a_partial_batch_and_flushes_the_target() {
        let log = StdArc::new(Mutex::new(Vec::new()));
        let mut b = ThreadBridgeBuilder::new()
            .batch_size(100)
            .spawn(recorder(log.clone()))
            .unwrap();
        assert_eq!(b.send(1).unwrap(), Flow::Continue);
        assert_eq!(b.send(2).unwrap(), Flow::Continue);
        b.flush().unwrap();
        b.flush().unwrap(); // nothing new: not forwarded again
        assert_eq!(b.send(3).unwrap(), Flow::Continue);
        b.close().unwrap();
        b.close().unwrap(); // idempotent
        assert_eq!(
            log.lock().unwrap().join(","),
            "send 1,send 2,flush,send 3,close"
        );
    }

    #[test]
    fn drop_without_close_does_not_close_the_target() {
        let log = StdArc::new(Mutex::new(Vec::new()));
        let mut b = ThreadBridgeBuilder::new()
            .batch_size(1)
            .spawn(recorder(log.clone()))
            .unwrap();
        assert_eq!(b.send(1).unwrap(), Flow::Continue);
        b.flush().unwrap();
        drop(b);
        let log = log.lock().unwrap();
        assert!(!log.contains(&"close".to_string()), "{log:?}");
    }

    #[test]
    fn error_is_returned_once_then_stop() {
        let mut b = ThreadBridgeBuilder::new()
            .batch_size(1)
            .spawn(from_fn(|x: u32| {
                if x == 3 {
                    Err(Error::usage("three"))
                } else {
                    Ok(Flow::Continue)
                }
            }))
            .unwrap();
        let mut err = None;
        for i in 0..1_000_000 {
            match b.send(i) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => panic!("stop before the error"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err.expect("the error arrives").to_string(), "three");
        assert_eq!(b.send(9).unwrap(), Flow::Stop);
        b.close().unwrap();
    }

    #[test]
    fn drop_oldest_keeps_the_newest_items() {
        // The worker blocks on a channel of its own until the producer has
        // overfilled the bridge, so drops are certain, not timing-dependent.
        let (gate_tx, gate_rx) = bounded::<()>(0);
        let (started_tx, started_rx) = bounded::<()>(1);
        let out = StdArc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let mut first = true;
        let mut b = ThreadBridgeBuilder::new()
            .batch_size(1)
            .capacity(2)
            .policy(Policy::DropOldest)
            .warn_on_drop(false)
            .spawn(from_fn(move |x: u32| {
                if first {
                    first = false;
                    let _ = started_tx.send(());
                    let _ = gate_rx.recv();
                }
                sink.lock().unwrap().push(x);
                Ok(Flow::Continue)
            }))
            .unwrap();
        assert_eq!(b.send(0).unwrap(), Flow::Continue);
        // Wait until the worker holds item 0 and is blocked on the gate.
        started_rx.recv().unwrap();
        for i in 1..=10 {
            assert_eq!(b.send(i).unwrap(), Flow::Continue);
        }
        gate_tx.send(()).unwrap();
        b.close().unwrap();
        let out = out.lock().unwrap().clone();
        assert_eq!(out.first(), Some(&0));
        assert_eq!(&out[out.len() - 2..], &[9, 10]);
        assert_eq!(b.dropped() as usize, 11 - out.len());
        assert!(b.dropped() > 0);
    }

    #[test]
    fn collect_behind_a_bridge_keeps_order() {
        let out = StdArc::new(Mutex::new(Collect::new()));
        let sink = out.clone();
        let mut b = ThreadBridgeBuilder::new()
            .batch_size(7)
            .spawn(from_fn(move |x: u64| sink.lock().unwrap().send(x)).with_map(|x: u64| x + 1))
            .unwrap();
        for i in 0..1000 {
            assert_eq!(b.send(i).unwrap(), Flow::Continue);
        }
        b.close().unwrap();
        let got = out.lock().unwrap().items().to_vec();
        assert_eq!(got, (1..=1000).collect::<Vec<u64>>());
    }

    #[test]
    fn by_ref_lends_borrowed_items_and_reuses_slots() {
        let out = StdArc::new(Mutex::new(Vec::<String>::new()));
        let sink = out.clone();
        struct Lines(StdArc<Mutex<Vec<String>>>);
        impl Stage<&[u8]> for Lines {
            fn send(&mut self, line: &[u8]) -> Result<Flow> {
                self.0
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(line).into_owned());
                Ok(Flow::Continue)
            }
        }

        impl Lifecycle for Lines {
            fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn close(&mut self) -> Result<()> {
                Ok(())
            }
        }

        let mut b = ThreadBridgeBuilder::new()
            .batch_size(3)
            .capacity(1)
            .spawn_ref::<[u8], _>(Lines(sink))
            .unwrap();
        let mut want = Vec::new();
        // Lines of varying length, so reused slots must shrink and grow.
        for i in 0..1000 {
            let line = "x".repeat(i % 7) + &i.to_string();
            assert_eq!(b.send(line.as_bytes()).unwrap(), Flow::Continue);
            want.push(line);
        }
        b.close().unwrap();
        assert_eq!(*out.lock().unwrap(), want);
    }
}
