//! Software prefetch of the states the reverse sweep visits next.
//!
//! The reverse sweep reads the store backwards, one slot per step. Measured
//! on the seed problem under backward Euler (160-byte slots, 9.6 MB), the
//! hardware prefetcher does not follow that descending walk: the first
//! read of each slot stalled for about 50 ns, 16 % of the gradient's time
//! (docs/performance.md). Asking for the slot a few steps ahead hides it.

/// How many steps ahead of the visited one the sweep prefetches: enough
/// to cover a memory latency (≈ 100 ns) at the fastest backward step
/// (≈ 10 ns, explicit Euler on 4 states), few enough that the lines are
/// still cached when they are read (8 slots of a 400-state cable are
/// ≈ 100 KiB, a tenth of L2).
pub const STEPS_AHEAD: usize = 8;

/// Slots shorter than a cache line share lines with their neighbours, and
/// the walk through them did not stall (explicit Euler on the seed, 32-byte
/// slots: the prefetches cost 3–5 % there and saved nothing).
pub fn worth_it(slot_len: usize) -> bool {
    slot_len * std::mem::size_of::<f64>() >= LINE
}

/// At most this many bytes of a slot are prefetched: the hardware
/// prefetcher follows the ascending reads within a large slot by itself.
const MAX_BYTES: usize = 512;

const LINE: usize = 64;

/// Asks the cache for the start of `slot` (no effect on other targets).
#[inline(always)]
pub fn slot(slot: &[f64]) {
    let bytes = std::mem::size_of_val(slot).min(MAX_BYTES);
    let base = slot.as_ptr().cast::<i8>();
    let mut offset = 0;
    while offset < bytes {
        line(base.wrapping_add(offset));
        offset += LINE;
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)] // the intrinsic is `unsafe` only for its target feature (SSE, baseline x86-64)
fn line(address: *const i8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint; it never faults or changes memory, and
    // `address` lies within (or one line past the start of) a live slice.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn line(_address: *const i8) {}
