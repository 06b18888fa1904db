//! Bridges: run part of a pipeline on another thread or in a child process,
//! without changing its stages (the seed's cothread, coprocess, busproc).
//!
//! - `threaded.rs`: [`threaded`], [`threaded_ref`] and [`ThreadBridge`]:
//!   the target runs on its own named thread, fed batches over a bounded
//!   crossbeam channel; owned items move ([`ByValue`]), borrowed items are
//!   copied into reused slots ([`ByRef`]); full-channel [`Policy`]; errors
//!   and panics come back to the producer.
//! - `wire.rs`: [`sendto`] and [`recvfrom`]: length-prefixed bincode frames
//!   of serde values over any byte stream, behind a magic/version header,
//!   with a maximum frame size ([`FrameWriter`], [`FrameReader`]).
//! - `process.rs`: [`subprocess`] and [`ProcessBridge`]: a child process
//!   (by default the copipe binary's hidden `worker` subcommand) runs the
//!   downstream stages, fed frames on its stdin; its failure is an error
//!   upstream, never a hang.

mod process;
mod threaded;
mod wire;

pub use process::{subprocess, ProcessBridge};
pub use threaded::{
    threaded, threaded_ref, ByRef, ByValue, Mode, Policy, ThreadBridge, ThreadBridgeBuilder,
    DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY, DEFAULT_THREAD_NAME,
};
pub use wire::{
    recvfrom, recvfrom_ref, sendto, FrameReader, FrameWriter, SendTo, DEFAULT_MAX_FRAME,
    HEADER_LEN, MAGIC, WIRE_VERSION,
};
