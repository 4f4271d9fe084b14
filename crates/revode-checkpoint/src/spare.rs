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
use std::ops::{Deref, DerefMut};

/// Blocks larger than this are freed when their store is dropped, not kept.
pub const MAX_SPARE_BYTES: usize = 256 << 20;

/// Blocks from this size on are mapped on their own and backed by
/// transparent huge pages where the system allows (Linux, THP `madvise` or
/// `always`): a new 1.9 MB store is then first-touched with one fault of a
/// 2 MiB page instead of about 470 faults of 4 KiB pages (measured on the
/// seed problem's VM: 0.05 ms instead of 0.6 ms), which is what a fresh
/// process pays for its first store.
pub const HUGE_PAGE_FROM_BYTES: usize = 1 << 20;

/// Transparent huge pages are 2 MiB on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// A store's slots: a heap vector, or a mapping of its own (large blocks).
#[derive(Default)]
pub(crate) enum Block {
    #[default]
    Empty,
    Heap(Vec<f64>),
    #[cfg(target_os = "linux")]
    Mapped {
        map: memmap2::MmapMut,
        /// Byte offset of the first f64 (a huge-page boundary).
        offset: usize,
        /// f64s in use.
        len: usize,
        /// f64s the mapping holds from `offset` on.
        capacity: usize,
    },
}

impl Block {
    /// A zeroed block of `len` f64s.
    fn new(len: usize) -> Block {
        #[cfg(target_os = "linux")]
        if len * std::mem::size_of::<f64>() >= HUGE_PAGE_FROM_BYTES {
            if let Some(block) = Block::mapped(len) {
                return block;
            }
        }
        Block::Heap(vec![0.0; len])
    }

    /// An anonymous mapping (zeroed by the system) with its f64s starting on
    /// a huge-page boundary, advised to use huge pages; `None` if the system
    /// refuses the mapping.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<Block> {
        let bytes = (len * std::mem::size_of::<f64>()).next_multiple_of(HUGE_PAGE);
        // One huge page of slack to find the boundary in; never touched.
        let map = memmap2::MmapOptions::new()
            .len(bytes + HUGE_PAGE)
            .map_anon()
            .ok()?;
        let offset = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
        // Advice only: without huge pages the block works with small ones.
        let _ = map.advise_range(memmap2::Advice::HugePage, offset, bytes);
        Some(Block::Mapped {
            map,
            offset,
            len,
            capacity: bytes / std::mem::size_of::<f64>(),
        })
    }

    /// f64s the block can hold without a new allocation.
    pub fn capacity(&self) -> usize {
        match self {
            Block::Empty => 0,
            Block::Heap(v) => v.capacity(),
            #[cfg(target_os = "linux")]
            Block::Mapped { capacity, .. } => *capacity,
        }
    }

    /// Uses the first `len` f64s (at most the capacity); contents stale.
    fn set_len(&mut self, new_len: usize) {
        match self {
            Block::Empty => *self = Block::Heap(vec![0.0; new_len]),
            Block::Heap(v) if v.len() > new_len => v.truncate(new_len),
            Block::Heap(v) => v.resize(new_len, 0.0),
            #[cfg(target_os = "linux")]
            Block::Mapped { len, capacity, .. } => {
                debug_assert!(new_len <= *capacity);
                *len = new_len;
            }
        }
    }
}

impl Deref for Block {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        match self {
            Block::Empty => &[],
            Block::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Block::Mapped {
                map, offset, len, ..
            } => &bytemuck::cast_slice(&map[*offset..])[..*len],
        }
    }
}

impl DerefMut for Block {
    fn deref_mut(&mut self) -> &mut [f64] {
        match self {
            Block::Empty => &mut [],
            Block::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Block::Mapped {
                map, offset, len, ..
            } => &mut bytemuck::cast_slice_mut(&mut map[*offset..])[..*len],
        }
    }
}

impl Clone for Block {
    fn clone(&self) -> Block {
        Block::Heap(self.to_vec())
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({} f64s)", self.len())
    }
}

thread_local! {
    static SPARE: Cell<Block> = const { Cell::new(Block::Empty) };
}

/// A block of `len` f64s: this thread's spare if it is large enough (its
/// contents are stale), else a new zeroed one (the spare, too small, is freed
/// first, so the two are never held at once).
pub(crate) fn take(len: usize) -> Block {
    let mut block = SPARE.with(Cell::take);
    if block.capacity() < len {
        drop(block);
        return Block::new(len);
    }
    block.set_len(len);
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
pub(crate) fn give_back(block: Block) {
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
        give_back(Block::Heap(Vec::with_capacity(MAX_SPARE_BYTES / 8 + 1)));
        assert_eq!(spare_bytes(), 0);
    }

    #[test]
    fn a_large_block_is_mapped_on_a_huge_page_boundary_and_reused() {
        release_spare();
        let len = 300_000; // 2.4 MB
        let mut a = take(len);
        assert_eq!(a.len(), len);
        assert!(a.iter().all(|&x| x == 0.0), "a new block is zeroed");
        #[cfg(target_os = "linux")]
        {
            assert!(matches!(a, Block::Mapped { .. }));
            assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0);
            assert_eq!(a.capacity() * 8 % HUGE_PAGE, 0);
        }
        for (i, x) in a.iter_mut().enumerate() {
            *x = i as f64;
        }
        let copy = a.clone();
        assert_eq!(&copy[..], &a[..]);
        let ptr = a.as_ptr();
        give_back(a);
        let b = take(len - 1000);
        assert_eq!((b.len(), b.as_ptr()), (len - 1000, ptr));
        give_back(b);
        release_spare();
    }
}
