//! A reader that hands out at most `.1` bytes of `.0` per read, so a test
//! can drive a decoder through every way its input may be split.
//!
//! ```ignore
//! #[path = "common/chunked.rs"]
//! mod chunked;
//! use chunked::Chunked;
//! ```

use std::io::{self, Read};

/// Reads at most `.1` bytes at a time from `.0`.
pub(crate) struct Chunked<'a>(pub(crate) &'a [u8], pub(crate) usize);

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
