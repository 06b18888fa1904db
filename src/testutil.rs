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

/// Reads at most `.1` bytes of `.0` at a time, so a test can drive a
/// reader-fed decoder through every way its input may be split.
pub(crate) struct Chunked<'a>(pub(crate) &'a [u8], pub(crate) usize);

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
