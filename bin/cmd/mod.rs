//! The subcommands, one file each.
//!
//! - `tail.rs`: `copipe tail`, tail -f | grep
//! - `tail_grep.rs`: grep's output options for `copipe tail` (-c -o -w -m, line
//!   numbers, context, color, JSON)
//! - `durable.rs`: `copipe tail -F --checkpoint` and globs: the checkpointed
//!   follow on stdout
//! - `buses.rs`: `copipe buses`, the CTA bus XML pipeline
//! - `records.rs`: `copipe records`, any record-shaped XML as CSV/TSV/JSON
//! - `gen.rs`: `copipe gen log|buses`, data generators, dispatching to
//!   `gen_log.rs` and `gen_buses.rs`
//! - `consume.rs`: `copipe consume`, a NATS JetStream durable consumer
//! - `echo.rs`: `copipe echo`, the scheduler's echo server
//! - `serve_log.rs`: `copipe serve-log`, tail -f | grep over TCP
//! - `select.rs`: the line selection options shared by `tail` and `serve-log`
//! - `completions.rs`: `copipe completions SHELL` and `copipe man`, from
//!   the clap definitions
//! - `worker.rs`: the hidden downstream half of a process bridge
//! - `xml_input.rs`: how `copipe buses` chooses and opens its input

pub(crate) mod buses;
pub(crate) mod completions;
#[cfg(feature = "nats")]
pub(crate) mod consume;
pub(crate) mod durable;
pub(crate) mod echo;
pub(crate) mod gen;
pub(crate) mod gen_buses;
pub(crate) mod gen_log;
pub(crate) mod mapped;
pub(crate) mod records;
pub(crate) mod select;
pub(crate) mod serve_log;
pub(crate) mod tail;
pub(crate) mod tail_grep;
pub(crate) mod worker;
pub(crate) mod xml_input;

/// True when the error chain holds a broken pipe: the reader of our output
/// went away, which ends the command quietly with status 0.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io.kind() == std::io::ErrorKind::BrokenPipe
        } else if let Some(ce) = e.downcast_ref::<copipe::Error>() {
            ce.is_broken_pipe()
        } else {
            false
        }
    })
}
