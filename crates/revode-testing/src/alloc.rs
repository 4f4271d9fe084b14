//! A global allocator that counts allocations per thread, for tests that
//! prove a loop allocates nothing. In the test file:
//!
//! ```text
//! use revode_testing::alloc::{allocations_during, CountingAllocator};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAllocator = CountingAllocator;
//!
//! assert_eq!(allocations_during(|| hot_loop()), 0);
//! ```
//!
//! Without the `#[global_allocator]` line nothing is counted, so each such
//! test should also check that the counter sees a known allocation
//! ([`counting_is_active`]).
#![allow(unsafe_code)] // a global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting `alloc` and `realloc` calls.
pub struct CountingAllocator;

thread_local! {
    // Per thread, so tests running in parallel do not see each other.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a
// thread-local `Cell` with a const initialiser, which does not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) made by this thread while `f` ran.
pub fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Whether [`CountingAllocator`] is this program's global allocator: a
/// `Vec` made here is counted.
pub fn counting_is_active() -> bool {
    allocations_during(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(1));
    }) > 0
}
