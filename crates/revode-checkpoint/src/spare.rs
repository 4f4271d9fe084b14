//! A per-thread spare for the slots of a [`crate::CheckpointStore`].
//!
//! A store's slots are one large block (1.9 MB for the seed problem with
//! every state kept). Whether the allocator keeps a freed block of that size
//! resident or hands it back to the system depends on what else the heap
//! holds at that moment (glibc trims the top of the heap past a threshold),
//! so a loop of gradients on one thread could map and first-touch its store
//! again on some calls and not on others: about 470 page faults, 0.6 ms, on
//! the seed problem. So a store takes its block from this thread's spare and
//! leaves it there when it is dropped: a gradient computed again on the same
//! thread (a loop, a fit, a batch worker) finds its slots resident.
//!
//! At most one block is kept per thread, and none larger than
//! [`MAX_SPARE_BYTES`]; [`release_spare`] frees it at once. A reused block
//! is not cleared: a store writes every slot in its forward sweep before its
//! reverse sweep reads it (debug builds fill a reused block with NaN, so a
//! read before a write shows up as a non-finite adjoint in tests).

use std::cell::Cell;

/// Blocks larger than this are freed when their store is dropped, not kept.
pub const MAX_SPARE_BYTES: usize = 256 << 20;

thread_local! {
    static SPARE: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// A block of `len` f64s: this thread's spare if it is large enough (its
/// contents are stale), else a new zeroed one (the spare, too small, is freed
/// first, so the two are never held at once).
pub(crate) fn take(len: usize) -> Vec<f64> {
    let mut block = SPARE.with(Cell::take);
    if block.capacity() < len {
        drop(block);
        return vec![0.0; len];
    }
    if block.len() > len {
        block.truncate(len);
    } else {
        block.resize(len, 0.0);
    }
    if cfg!(debug_assertions) {
        block.fill(f64::NAN);
    }
    block
}

/// Whether a [`take`] of `len` f64s would reuse this thread's spare.
pub(crate) fn covers(len: usize) -> bool {
    SPARE.with(|s| {
        let block = s.take();
        let fits = len > 0 && block.capacity() >= len;
        s.set(block);
        fits
    })
}

/// Keeps `block` as this thread's spare (the larger of it and the current
/// one, if both exist), unless it is larger than [`MAX_SPARE_BYTES`].
pub(crate) fn give_back(block: Vec<f64>) {
    if block.capacity() == 0 || block.capacity() * std::mem::size_of::<f64>() > MAX_SPARE_BYTES {
        return;
    }
    // `try_with`: a store dropped while the thread exits frees its block.
    let _ = SPARE.try_with(|s| {
        let current = s.take();
        s.set(if current.capacity() >= block.capacity() {
            current
        } else {
            block
        });
    });
}

/// Bytes this thread's spare holds (0 when it holds none).
pub fn spare_bytes() -> usize {
    SPARE.with(|s| {
        let block = s.take();
        let bytes = block.capacity() * std::mem::size_of::<f64>();
        s.set(block);
        bytes
    })
}

/// Frees this thread's spare now.
pub fn release_spare() {
    SPARE.with(|s| drop(s.take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_reused_and_the_larger_one_kept() {
        release_spare();
        assert_eq!(spare_bytes(), 0);
        let a = take(1000);
        assert_eq!(a.len(), 1000);
        let ptr = a.as_ptr();
        give_back(a);
        assert_eq!(spare_bytes(), 8000);
        assert!(covers(1000) && covers(10) && !covers(1001));
        // A smaller request reuses the block.
        let b = take(10);
        assert_eq!((b.len(), b.as_ptr()), (10, ptr));
        // Meanwhile a second store gets a block of its own.
        let c = take(500);
        assert_ne!(c.as_ptr(), ptr);
        give_back(c);
        give_back(b);
        assert_eq!(spare_bytes(), 8000, "the larger block is kept");
        // A larger request frees the spare and allocates anew.
        let d = take(2000);
        assert_eq!(d.len(), 2000);
        assert_eq!(spare_bytes(), 0);
        give_back(d);
        assert_eq!(spare_bytes(), 16000);
        release_spare();
        assert_eq!(spare_bytes(), 0);
    }

    #[test]
    fn blocks_over_the_cap_are_not_kept() {
        release_spare();
        give_back(Vec::with_capacity(MAX_SPARE_BYTES / 8 + 1));
        assert_eq!(spare_bytes(), 0);
    }
}
