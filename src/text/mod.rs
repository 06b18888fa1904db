//! Text pipelines: line sources and `grep`.
//!
//! - `block.rs`: [`Block`], a chunk of whole lines a source hands on in one
//!   piece, and [`SplitLines`], the adapter that turns blocks into lines for
//!   per-line stages; [`line_fn`], a closure stage for borrowed lines
//! - `lines.rs`: [`Lines`], the source that reads lines from any reader;
//!   [`Start`] (`-n N` / `-n +N`) and [`seek_last_lines`]
//! - `linebuf.rs`: the bounded buffer both sources split lines in (private)
//! - `follow/`: [`Follow`], `tail -f` / `tail -F` done right, on one
//!   non-blocking follow core (`follow/core.rs`) that the scheduler's
//!   [`follow`](crate::sched::follow) drives too; [`StopHandle`], [`Notice`]
//! - `checkpoint.rs`: the checkpointed follow's registry: file identity
//!   (device, inode, [`FINGERPRINT_LEN`] first bytes), copipe file ids,
//!   offsets accepted by the target, written atomically after each flush
//! - `grep.rs`: [`Grep`], several patterns (any match passes), `-i`, `-v`,
//!   compiled into one matcher: `memmem` for one literal, Aho-Corasick for
//!   many, one regex (ripgrep's size limits) otherwise
//! - `keep_open.rs`: [`KeepOpen`], one chain for several sources in turn
//! - `last_lines.rs`: [`LastLines`], the last N lines of a forward-only
//!   input (a pipe, a FIFO, `/proc`)
//! - `literal.rs`: [`Literal`], that fast path: `memchr::memmem` for long
//!   haystacks, a direct scan for short lines
//! - `position.rs`: [`LineAt`], a line with its file's id and byte offset
//!   ([`SourceFile`]), for checkpoints and message ids
//! - `logsim.rs`: [`LogSim`], a deterministic generator of Apache combined
//!   access-log lines (the seed's `logsim.py`)
//!
//! Lines are bytes: invalid UTF-8 passes through unchanged. A line is sent
//! *with* its `\n` terminator (so output is byte-identical to input); the
//! last line of an input that does not end with a newline is still a line,
//! sent without one.
//!
//! # Examples
//!
//! The seed's `follow(f, grep('python', printer()))`, over a file read once:
//!
//! ```
//! use copipe::sinks::Printer;
//! use copipe::text::{Grep, Lines};
//!
//! let log = b"GET /python/ 200\nGET /ply/ 200\nGET /python/x 404";
//! let mut out = Vec::new();
//! Lines::new(&log[..]).run_blocks(Grep::new("python", Printer::new(&mut out))?)?;
//! assert_eq!(out, b"GET /python/ 200\nGET /python/x 404\n");
//! # Ok::<(), copipe::Error>(())
//! ```

mod block;
pub(crate) mod checkpoint;
pub(crate) mod follow;
mod grep;
mod keep_open;
mod last_lines;
mod linebuf;
mod lines;
mod literal;
mod logsim;
mod position;

pub use block::{line_fn, Block, BlockLines, LineFn, SplitLines};
pub use checkpoint::FINGERPRINT_LEN;
pub use follow::{Follow, FollowBuilder, FollowMode, Notice, NoticeKind, StopHandle};
pub use grep::{Grep, GrepBuilder};
pub use keep_open::KeepOpen;
pub use last_lines::LastLines;
pub use lines::{seek_last_lines, Lines, Start};
pub use literal::Literal;
pub use logsim::LogSim;
pub use position::{LineAt, SourceFile};

/// The largest line a source accepts by default: 16 MiB. A longer line is
/// an error that names its byte offset, or is skipped and reported (see
/// [`Lines::max_line_len`] and [`Lines::skip_long_lines`]), so a hostile
/// input cannot make a source grow its buffer without bound.
pub const DEFAULT_MAX_LINE_LEN: usize = 16 * 1024 * 1024;
