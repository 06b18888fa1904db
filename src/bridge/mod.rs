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
//!   (by default the copipe binary's hidden `worker` subcommand) runs the
//!   downstream stages, fed frames on its stdin; its failure is an error
//!   upstream, never a hang.
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
pub use process::{subprocess, subprocess_flat, ProcessBridge};
pub use threaded::{
    threaded, threaded_flat, threaded_ref, ByRef, ByValue, Flattened, Mode, Policy, ThreadBridge,
    ThreadBridgeBuilder, DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY, DEFAULT_FLAT_BATCH_SIZE,
    DEFAULT_THREAD_NAME, FLAT_BATCH_BYTES, SMALL_BATCH_BYTES,
};
pub use wire::{
    recvfrom, recvfrom_flat, recvfrom_ref, sendto, FrameReader, FrameWriter, SendTo,
    DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, WIRE_VERSION,
};
