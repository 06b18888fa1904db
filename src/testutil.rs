//! Test helpers shared by the unit tests of every module.

use crate::Lifecycle;
use std::fmt::Write as _;

use crate::error::Result;
use crate::stage::{Flow, Stage};

/// Logs every `send`, `flush` and `close` as a line of text, so tests
/// compare one string instead of poking at state.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    log: String,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder::default()
    }

    pub(crate) fn log(&self) -> String {
        self.log.clone()
    }
}

impl Stage<&str> for Recorder {
    fn send(&mut self, item: &str) -> Result<Flow> {
        // Writing to a String cannot fail.
        let _ = writeln!(self.log, "send {item}");
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Recorder {
    fn flush(&mut self) -> Result<()> {
        self.log.push_str("flush\n");
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.log.push_str("close\n");
        Ok(())
    }
}

// One copy of `Chunked`, shared with the integration tests.
#[path = "../tests/common/chunked.rs"]
mod chunked;
pub(crate) use chunked::Chunked;
