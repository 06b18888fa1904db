//! `SeqCheck`: a stage that checks u64 items count up from 0, for tests of
//! the bridges and the wire (the thread bridge's tests, and the
//! `wire_worker seq` example that plays a process bridge's child). Clones
//! share their counters, so a test keeps one and gives the other away.
//!
//! ```ignore
//! #[path = "common/seq_check.rs"]
//! mod seq_check;
//! use seq_check::SeqCheck;
//! ```

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use copipe::{Error, ErrorKind, Flow, Lifecycle, Result, Stage};

/// Checks that items count up from 0: an item out of order or lost is an
/// error ([`ErrorKind::Bridge`]) naming the item it expected.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqCheck {
    next: Arc<AtomicU64>,
    closes: Arc<AtomicU64>,
}

impl SeqCheck {
    /// How many items came in order.
    pub(crate) fn count(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// How many times it was closed.
    pub(crate) fn closes(&self) -> u64 {
        self.closes.load(Ordering::Relaxed)
    }
}

impl Stage<u64> for SeqCheck {
    fn send(&mut self, item: u64) -> Result<Flow> {
        let want = self.next.load(Ordering::Relaxed);
        if item != want {
            return Err(Error::new(ErrorKind::Bridge(format!(
                "item {want} is {item}: out of order or lost"
            ))));
        }
        self.next.store(want + 1, Ordering::Relaxed);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for SeqCheck {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.closes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
