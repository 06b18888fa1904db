//! # copipe: push-based coroutine dataflow
//!
//! ## Brief overview
//!
//! copipe builds pipelines out of small stages that *receive* items, after
//! David Beazley's "A Curious Course on Coroutines and Concurrency"
//! (PyCon 2009). A [`Stage`] has three verbs: [`send`](Stage::send) one
//! item, [`flush`](Lifecycle::flush) what is buffered because upstream is about
//! to wait, and [`close`](Lifecycle::close) at the end of the stream. `send`
//! answers with a [`Flow`]: `Continue`, or `Stop` when downstream wants no
//! more. Errors are one concrete [`Error`] that travels upstream as a return
//! value.
//!
//! A *source* is not a stage: it owns a loop and pushes into one. Stages
//! nest by value into one statically dispatched chain; items may borrow from
//! the source's buffer, so the hot path does not allocate per item.
//!
//! - [`pipe()`]: a pipeline written in the order items travel,
//!   `pipe().filter(p).map(f).take(n).into(sink)`; [`StageExt`] builds the
//!   same stages from the sink's end (`with_map`, `with_filter`, ...);
//!   [`from_fn`] makes a stage from a closure.
//! - Owned and borrowed items: `pipe().owned()` copies borrows (before a
//!   stage that keeps items), `pipe().lend()` lends owned items (before a
//!   stage that takes borrows), `pipe().map_ref(f)` maps to a borrow of
//!   the item.
//! - [`broadcast`] fans out; [`Shared`] fans in.
//! - [`sinks`]: [`Printer`](sinks::Printer), [`Null`](sinks::Null),
//!   [`Collect`](sinks::Collect), [`Count`](sinks::Count).
//! - [`coroutine()`]: write a stage as an `async` block that awaits its
//!   items (`inbox.recv().await`), the seed's `line = (yield)`.
//! - [`text`]: the line sources [`Lines`] and [`Follow`] (`tail -f` /
//!   `tail -F`), and [`Grep`], which searches whole blocks of lines.
//! - [`xml`]: XML event sources in three styles (expat, SAX, iterparse)
//!   and the CTA bus stages `records`, `filter_on_field`, `bus_locations`.
//! - [`bridge`]: the same stages on another thread ([`threaded`] for owned
//!   items, [`threaded_ref`] and [`threaded_flat`] for borrowed ones: see
//!   the table in [`bridge`]) or in a child process ([`subprocess`]), fed
//!   bincode frames over a pipe.
//! - [`sched`]: a cooperative task scheduler (the seed's coroutine
//!   "operating system"): system calls, epoll I/O, timers, channels with
//!   `alt`, blocking calls on helper threads, stages hosted as tasks.
//!
//! ## A pipeline
//!
//! The seed's `grep('python', printer())`, over lines held in memory:
//!
//! ```
//! use copipe::Lifecycle;
//! use copipe::{pipe, Flow, Stage, sinks::Printer};
//!
//! let log: &[&[u8]] = &[
//!     b"GET /python/tutorial HTTP/1.1\n",
//!     b"GET /ply/index.html HTTP/1.1\n",
//!     b"GET /python/ HTTP/1.1\n",
//! ];
//! let mut out = Vec::new();
//! {
//!     let mut grep = pipe()
//!         .filter(|line: &&[u8]| line.windows(6).any(|w| w == b"python"))
//!         .into(Printer::new(&mut out));
//!     for line in log {
//!         if grep.send(*line)? == Flow::Stop {
//!             break;
//!         }
//!     }
//!     grep.close()?;
//! }
//! assert_eq!(out, b"GET /python/tutorial HTTP/1.1\nGET /python/ HTTP/1.1\n");
//! # Ok::<(), copipe::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bridge;
mod coroutine;
mod error;
mod graph;
pub mod sched;
pub mod sinks;

/// The traits a pipeline needs in scope: `use copipe::prelude::*;`.
///
/// # Examples
///
/// ```
/// use copipe::prelude::*;
/// use copipe::sinks::Collect;
///
/// let mut out = Collect::new();
/// let mut evens = pipe().filter(|x: &u32| x % 2 == 0).into(&mut out);
/// for x in 0..5 {
///     if evens.send(x)? == Flow::Stop {
///         break;
///     }
/// }
/// evens.close()?;
/// assert_eq!(out.items(), &[0, 2, 4]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub mod prelude {
    pub use crate::{pipe, Flow, Lifecycle, Stage, StageExt};
}
mod pipe;
mod stage;
#[cfg(test)]
mod testutil;
pub mod text;
pub mod xml;

pub use bridge::{
    recvfrom, sendto, subprocess, threaded, threaded_flat, threaded_ref, ProcessBridge,
    ThreadBridge,
};
pub use coroutine::{coroutine, Coroutine, Inbox, Recv, RecvCatching, RecvFlushing};
pub use error::{Error, ErrorKind, Result};
pub use graph::{broadcast, Broadcast, Shared, TargetSet, Targets};
pub use pipe::{pipe, Chain, Identity, Layer, Pipe};
pub use stage::{
    end_source, filter, from_fn, map, take, Filter, Flow, FromFn, Inspect, Lend, Lifecycle, Map,
    Owned, SourceEnd, Stage, StageExt, Take,
};
pub use text::{Follow, Grep, Lines};

// The README's Rust examples are compiled and run as doctests. Each is a
// whole program (`fn main() -> Result<(), copipe::Error>`), with no hidden
// `# ` lines, so what the README renders is exactly what is tested; its
// shell examples are run by tests/readme.rs.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
