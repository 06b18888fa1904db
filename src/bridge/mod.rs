//! Bridges: run part of a pipeline on another thread or in a child process,
//! without changing its stages (the seed's cothread, coprocess, busproc).
//!
//! - `threaded.rs`: [`threaded`], [`threaded_ref`] and [`ThreadBridge`]:
//!   the target runs on its own named thread, fed batches over a bounded
//!   crossbeam channel; owned items move ([`ByValue`]), borrowed items are
//!   copied into reused slots ([`ByRef`]); full-channel [`Policy`]; errors
//!   and panics come back to the producer. Or borrowed items cross
//!   flattened into one byte buffer per batch ([`threaded_flat`],
//!   [`Flattened`]).
//! - `flat.rs`: [`Flat`], the flat byte form of items for
//!   [`threaded_flat`] (for records, strings, byte strings), and
//!   [`FlatError`].
//! - `wire.rs`: [`sendto`], [`recvfrom`] and [`recvfrom_ref`]:
//!   length-prefixed bincode frames of serde values over any byte stream,
//!   behind a magic/version header, with a maximum frame size
//!   ([`FrameWriter`], [`FrameReader`]). The only file that uses bincode.
//! - `process.rs`: [`subprocess`] and [`ProcessBridge`]: a child process
//!   (a `Command` the caller builds, such as the copipe binary's hidden
//!   `worker` subcommand) runs the downstream stages, fed frames on its stdin; its failure is an error
//!   upstream, never a hang.
//!
//! # Which thread bridge
//!
//! | items sent | use | what crosses the channel | the target takes |
//! |---|---|---|---|
//! | owned (`u64`, `String`, `Record`), `T: Send + 'static` | [`threaded`] | the items themselves, moved | `T` |
//! | borrowed (`&[u8]`, `&str`, `&Record`) from a source's buffer | [`threaded_ref`] | copies in owned slots reused batch after batch (no allocation once warm) | `&B` |
//! | borrowed, many small items or text-heavy records | [`threaded_flat`] | each item's [`Flat`] bytes in one buffer per batch | `&B` |
//!
//! `threaded` on borrowed items fails to compile with "implementation of
//! `Stage` is not general enough": a source lends each line only for the
//! call, and `threaded` needs items it can move to another thread. Use
//! `threaded_ref` (or `threaded_flat`) there, or copy first with
//! `pipe().owned().into(threaded(..))`. `threaded_flat` needs the item type
//! to implement [`Flat`] (`[u8]`, `str`, `Record`); measure both on your
//! items with `cargo bench --bench bridges`.
//!
//! # Examples
//!
//! The same stages inline, behind a thread, and behind the wire:
//!
//! ```
//! use copipe::bridge::{recvfrom_ref, sendto, threaded_ref};
//! use copipe::{sinks::Printer, Stage};
//!
//! let lines = ["22,North Bound", "9,South Bound"];
//!
//! let mut inline = Printer::new(Vec::new());
//! let mut thread = threaded_ref::<str, _>(Printer::new(std::io::sink()));
//! let mut wire = sendto(Vec::new());
//! for line in lines {
//!     inline.send(line)?;
//!     thread.send(line)?;
//!     wire.send(line)?;
//! }
//! thread.close()?;
//! let frames = wire.into_inner()?;
//!
//! let mut out = Vec::new();
//! recvfrom_ref::<String, _, _>(&frames[..], Printer::new(&mut out))?;
//! assert_eq!(out, inline.into_inner()?);
//! # Ok::<(), copipe::Error>(())
//! ```

pub(crate) mod flat;
#[cfg(feature = "nats")]
pub mod nats;
mod process;
mod threaded;
mod wire;

pub use flat::{Flat, FlatBuf, FlatError, FlatSrc};
#[allow(deprecated)] // the deprecated alias is re-exported for one release
pub use process::subprocess_worker;
pub use process::{subprocess, subprocess_flat, FlatFrames, Frames, ProcessBridge, SerdeFrames};
pub use threaded::{
    threaded, threaded_flat, threaded_ref, ByRef, ByValue, FlatThreadBridge, Flattened, Mode,
    Policy, RefThreadBridge, ThreadBridge, ThreadBridgeBuilder, DEFAULT_BATCH_SIZE,
    DEFAULT_CAPACITY, DEFAULT_FLAT_BATCH_SIZE, DEFAULT_THREAD_NAME, FLAT_BATCH_BYTES,
    SMALL_BATCH_BYTES,
};
pub use wire::{
    recvfrom, recvfrom_flat, recvfrom_ref, sendto, FrameReader, FrameWriter, SendTo,
    DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, WIRE_VERSION,
};
