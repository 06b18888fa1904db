//! Large regular files mapped into memory instead of read: the one
//! `unsafe` block of the binary (the library is `#![forbid(unsafe_code)]`).
//!
//! Used for one forward pass over a file that is not expected to change:
//! a static `copipe tail` from a line on (`-n +N`, never `-f`/`-F`), and
//! `copipe buses`/`copipe records` on a FILE parsed whole.
//!
//! Why: `read` copies every byte out of the page cache into a buffer whose
//! fresh pages the kernel must also zero first. Measured on one literal in
//! a 1 GiB log (`copipe tail`): reading cost 0.27 s of system time, the
//! search itself about 0.1 s; mapped, with the page tables filled ahead by
//! a second thread ([`populate`]), it took 0.89x the CPU time of reading.
//! On the 30 MB bus feed the copy and the zeroing were 15% of a one-thread
//! `copipe buses` (perf); BENCHMARKS.md has the end-to-end figures. ripgrep
//! maps explicitly named files for the same reason.
//!
//! The risk, as in ripgrep (`--mmap`): a mapping is not a snapshot. If
//! another process truncates the file while it is being read, touching a
//! page past the new end raises SIGBUS and the process dies (exit status
//! 135; output still buffered is lost); bytes rewritten in place may be
//! seen half old, half new, and bytes appended after the map was made are
//! not seen (its length is fixed then). A file that may be truncated under
//! the reader should be read through standard input instead
//! (`copipe tail -n +1 - < FILE`, `copipe buses - < FILE`).

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

/// Smallest file [`map`] maps: below it, reading costs about the same
/// and needs no mapping.
pub(crate) const MAP_MIN: u64 = 4 << 20;

/// `file`, a regular file of at least [`MAP_MIN`] bytes, mapped into
/// memory to be read in place; `None` (read it instead) when it is small,
/// not a regular file, or cannot be mapped. The caller reads it once,
/// forward, and drops the map when done (see the module docs for the
/// risk).
pub(crate) fn map(file: &File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() < MAP_MIN {
        return None;
    }
    // SAFETY: `Mmap` hands out `&[u8]` over the file's pages. Rust's rules
    // for that slice hold as long as nobody changes the file while the map
    // lives; we cannot prevent that (no lock is taken), and a truncation
    // raises SIGBUS as described in the module docs. Every caller only
    // reads the map, for one pass, and drops (unmaps) it at the end.
    let data = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    // Read ahead: one forward pass.
    let _ = data.advise(memmap2::Advice::Sequential);
    Some(data)
}

/// Maps the pages of `data` into the page table ahead of the reader, from
/// another thread (`MADV_POPULATE_READ`, Linux 5.14; ignored elsewhere), a
/// window at a time until the end or `done`: the reader then takes no page
/// faults, and on a machine with a core to spare their cost overlaps it.
pub(crate) fn populate(data: &memmap2::Mmap, done: &AtomicBool) {
    const WINDOW: usize = 16 << 20;
    let mut at = 0;
    while at < data.len() && !done.load(Ordering::Relaxed) {
        let len = WINDOW.min(data.len() - at);
        if data
            .advise_range(memmap2::Advice::PopulateRead, at, len)
            .is_err()
        {
            return;
        }
        at += len;
    }
}
