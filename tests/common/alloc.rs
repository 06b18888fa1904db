//! A global allocator that counts the allocations of each thread, for the
//! tests that prove a hot path allocates nothing. Per thread, so tests
//! running in parallel do not disturb each other's counts.
//!
//! A test file installs it with
//!
//! ```ignore
//! #[path = "common/alloc.rs"]
//! mod alloc;
//! #[global_allocator]
//! static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts, then defers to the system allocator.
pub(crate) struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Allocations (and reallocations) this thread has made so far.
pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method delegates to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is a
// const-initialised thread-local `Cell` without a destructor, which never
// allocates and is skipped (`try_with`) while the thread is torn down.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as received; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc*` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as received; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
