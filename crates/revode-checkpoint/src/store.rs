//! The checkpoint store: one allocation of state slots, a forward sweep that
//! fills it, and a reverse sweep that replays segments from it.

use serde::Serialize;

use crate::memory::MemoryError;
use crate::pool::{slot_pair, SlotPool};
use crate::prefetch;
use crate::{spare, CheckpointError, MemoryLimit, Schedule, StateShape};

/// A deterministic chain of fixed-length states.
pub trait Chain {
    type Error;
    /// Length (in f64s) of one state.
    fn state_len(&self) -> usize;
    /// `next ← step_k(x)`, where `x` is state k.
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), Self::Error>;
}

/// What a sweep did and held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Steps in the chain (N).
    pub steps: usize,
    /// Checkpoint slots kept by the forward sweep.
    pub checkpoints_kept: usize,
    /// Steps recomputed during the reverse sweep.
    pub recomputed_steps: usize,
    /// States handed to the reverse visitor.
    pub backward_steps: usize,
    /// Largest number of bytes of state the store held at once.
    pub peak_bytes: usize,
    /// Steps taken by the forward sweep (N; not counted as recomputed).
    pub forward_steps: usize,
    /// State slots the store allocated.
    pub slots: usize,
    /// Of those, the slots holding only the front of their states that the
    /// reverse sweep reads (slim stores' segment slots; 0 otherwise).
    pub slim_slots: usize,
}

/// Holds the kept states of one chain.
///
/// [`Schedule::All`] and [`Schedule::Every`]: one `Vec<f64>` of `C + K − 1`
/// slots: C checkpoints (states 0, K, 2K, …) followed by K − 1 segment slots
/// (states s+1 … s+K−1 of the segment being replayed). The forward sweep
/// writes intermediate states straight into the segment slots, so the last
/// segment needs no recomputation.
///
/// With slim states ([`StateShape::slim`]) the segment slots hold only
/// the first `kept` f64s of their states, the part the reverse visitor
/// reads; checkpoints stay whole, and the sweeps step through two whole
/// states held beside the slots. [`Schedule::All`] then keeps x_0 whole
/// and every later state slim (one segment, never replayed).
///
/// [`Schedule::BudgetBytes`]: a pool of slots filled by the binomial rule
/// (see [`crate::binomial`]), the fewest recomputed steps for the slots the
/// budget buys.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    schedule: Schedule,
    n_steps: usize,
    state_len: usize,
    /// f64s kept of a segment state (`state_len` unless slim).
    kept_len: usize,
    /// Slim stores: the two whole states the sweeps step through.
    rolling: Vec<f64>,
    interval: usize,
    n_checkpoints: usize,
    slots: spare::Block,
    binomial: Option<SlotPool>,
    stats: StoreStats,
}

impl CheckpointStore {
    /// Allocates every slot the schedule needs for `n_steps` steps, after
    /// checking them against the memory available ([`MemoryLimit::FromSystem`]).
    pub fn new(
        schedule: Schedule,
        n_steps: usize,
        state_len: usize,
    ) -> Result<Self, CheckpointError> {
        Self::with_memory_limit(schedule, n_steps, state_len, MemoryLimit::FromSystem)
    }

    /// [`CheckpointStore::new`] with the memory available given: a store
    /// that needs more is [`CheckpointError::OutOfMemory`], before anything
    /// is allocated. The slots of `all` and `every` come from this thread's
    /// spare when it is large enough ([`crate::spare`]).
    pub fn with_memory_limit(
        schedule: Schedule,
        n_steps: usize,
        state_len: usize,
        limit: MemoryLimit,
    ) -> Result<Self, CheckpointError> {
        Self::with_shape(schedule, n_steps, StateShape::whole(state_len), limit)
    }

    /// [`CheckpointStore::new`] for states of which the reverse visitor
    /// reads only the first `shape.kept` f64s: the store keeps only those
    /// of the states it never replays from, and hands the visitor those.
    pub fn new_shaped(
        schedule: Schedule,
        n_steps: usize,
        shape: StateShape,
    ) -> Result<Self, CheckpointError> {
        Self::with_shape(schedule, n_steps, shape, MemoryLimit::FromSystem)
    }

    /// [`CheckpointStore::new_shaped`] with the memory available given.
    pub fn with_shape(
        schedule: Schedule,
        n_steps: usize,
        shape: StateShape,
        limit: MemoryLimit,
    ) -> Result<Self, CheckpointError> {
        let state_len = shape.len;
        debug_assert!(shape.kept <= state_len);
        schedule.validate_for(n_steps, state_len)?;
        // Budgets keep whole states: a binomial replay may start anywhere.
        let slim = shape.slim() && !matches!(schedule, Schedule::BudgetBytes(_));
        let kept_len = if slim { shape.kept } else { state_len };
        let (n_checkpoints, segment, interval) = schedule.slots_shaped(n_steps, shape);
        let slot_len = match schedule {
            Schedule::BudgetBytes(_) => 0,
            _ => n_checkpoints
                .saturating_mul(state_len)
                .saturating_add(segment.saturating_mul(kept_len)),
        };
        let needed = schedule.bytes_needed_shaped(n_steps, shape);
        let checked = if spare::covers(slot_len) {
            limit.check_held(needed)
        } else {
            limit.check(needed)
        };
        checked.map_err(|e| match e {
            MemoryError::TooLarge(too_large) => CheckpointError::OutOfMemory {
                schedule,
                steps: Some(n_steps),
                held_beside: 0,
                fits: Schedule::fitting(n_steps, state_len, too_large.available),
                too_large,
            },
            MemoryError::BadLimit(bad) => CheckpointError::BadMemoryLimit(bad),
        })?;
        let (slots, binomial) = match schedule {
            Schedule::BudgetBytes(_) => (
                spare::Block::Empty,
                Some(SlotPool::new(n_checkpoints, state_len)),
            ),
            _ => (spare::take(slot_len), None),
        };
        let rolling = if slim {
            vec![0.0; 2 * state_len]
        } else {
            Vec::new()
        };
        let peak_bytes = match &binomial {
            Some(pool) => pool.bytes(),
            None => (slots.len() + rolling.len()) * std::mem::size_of::<f64>(),
        };
        let stats = StoreStats {
            steps: n_steps,
            checkpoints_kept: n_checkpoints,
            peak_bytes,
            slots: n_checkpoints + segment,
            slim_slots: if slim { segment } else { 0 },
            ..StoreStats::default()
        };
        Ok(CheckpointStore {
            schedule,
            n_steps,
            state_len,
            kept_len,
            rolling,
            interval,
            n_checkpoints,
            slots,
            binomial,
            stats,
        })
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// Slot holding the state at `offset` within segment `c` (offset 0 is
    /// the checkpoint). Segment-relative, so the step loops need no integer
    /// division.
    #[inline]
    fn slot(&self, c: usize, offset: usize) -> usize {
        if offset == 0 {
            c
        } else {
            self.n_checkpoints + offset - 1
        }
    }

    /// Prefetches the slot the reverse sweep reads for step `ahead`: in
    /// segment `c` (which starts at `start`) its own slot, in an earlier
    /// segment that segment's checkpoint, where its replay starts (with
    /// one step per segment, the slot itself).
    #[inline(always)]
    fn prefetch_step(&self, c: usize, start: usize, ahead: usize) {
        let s = if ahead >= start {
            self.slot(c, ahead - start)
        } else {
            ahead / self.interval
        };
        let len = self.state_len;
        if let Some(slot) = self.slots.get(s * len..(s + 1) * len) {
            prefetch::slot(slot);
        }
    }

    /// Runs the chain from `x0` for N steps, keeping the schedule's states.
    /// `observe(k, x_k)` sees every state k = 0..=N in order; the final state
    /// is left in `last`.
    pub fn forward<C, F>(
        &mut self,
        chain: &mut C,
        x0: &[f64],
        last: &mut [f64],
        mut observe: F,
    ) -> Result<(), C::Error>
    where
        C: Chain,
        F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let len = self.state_len;
        debug_assert_eq!(x0.len(), len);
        debug_assert_eq!(chain.state_len(), len);
        self.stats.forward_steps = self.n_steps;
        if let Some(pool) = &mut self.binomial {
            let kept = binomial_forward(pool, self.n_steps, chain, x0, last, observe)?;
            self.stats.checkpoints_kept = kept;
            return Ok(());
        }
        if !self.rolling.is_empty() {
            return self.forward_slim(chain, x0, last, observe);
        }
        self.slots[..len].copy_from_slice(x0);
        observe(0, x0)?;
        if self.n_steps == 0 {
            last.copy_from_slice(x0);
            return Ok(());
        }
        for c in 0..self.n_checkpoints {
            let start = c * self.interval;
            let end = (start + self.interval).min(self.n_steps);
            for k in start..end {
                let from = self.slot(c, k - start);
                if k + 1 == self.n_steps {
                    let x = &self.slots[from * len..(from + 1) * len];
                    chain.advance(k, x, last)?;
                    observe(k + 1, last)?;
                } else {
                    // The segment's last step writes the next checkpoint.
                    let to = if k + 1 == end {
                        c + 1
                    } else {
                        self.slot(c, k + 1 - start)
                    };
                    let (x, next) = slot_pair(&mut self.slots, len, from, to);
                    chain.advance(k, x, next)?;
                    observe(k + 1, next)?;
                }
            }
        }
        Ok(())
    }

    /// Visits `x_{N−1}, …, x_0` in that order, recomputing each segment from
    /// its checkpoint with `chain`. Must follow [`CheckpointStore::forward`].
    pub fn reverse<C, V>(&mut self, chain: &mut C, mut visit: V) -> Result<(), C::Error>
    where
        C: Chain,
        V: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        if let Some(pool) = &mut self.binomial {
            if self.n_steps > 0 {
                let recomputed = pool.reverse_from(chain, self.n_steps - 1, |k, x| {
                    visit(k, x)?;
                    self.stats.backward_steps += 1;
                    Ok(())
                })?;
                self.stats.recomputed_steps += recomputed;
            }
            return Ok(());
        }
        if !self.rolling.is_empty() {
            return self.reverse_slim(chain, visit);
        }
        let len = self.state_len;
        let prefetching = prefetch::worth_it(len);
        for c in (0..self.n_checkpoints).rev() {
            let start = c * self.interval;
            let end = (start + self.interval).min(self.n_steps);
            // The forward sweep left the last segment in place.
            if c + 1 < self.n_checkpoints {
                for k in start..end - 1 {
                    let (from, to) = (self.slot(c, k - start), self.slot(c, k + 1 - start));
                    let (x, next) = slot_pair(&mut self.slots, len, from, to);
                    chain.advance(k, x, next)?;
                }
                self.stats.recomputed_steps += end - 1 - start;
            }
            for k in (start..end).rev() {
                if prefetching {
                    self.prefetch_step(c, start, k.saturating_sub(prefetch::STEPS_AHEAD));
                }
                let s = self.slot(c, k - start);
                visit(k, &self.slots[s * len..(s + 1) * len])?;
            }
            self.stats.backward_steps += end - start;
        }
        Ok(())
    }
}

/// The sweeps of a store of slim states.
impl CheckpointStore {
    /// Where segment slot `offset` (≥ 1) of a slim store starts.
    #[inline]
    fn slim_segment(&self, offset: usize) -> usize {
        self.n_checkpoints * self.state_len + (offset - 1) * self.kept_len
    }

    /// [`CheckpointStore::forward`] through the two whole rolling states:
    /// each new state goes whole into its checkpoint or slim into its
    /// segment slot.
    fn forward_slim<C, F>(
        &mut self,
        chain: &mut C,
        x0: &[f64],
        last: &mut [f64],
        mut observe: F,
    ) -> Result<(), C::Error>
    where
        C: Chain,
        F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let (len, kept) = (self.state_len, self.kept_len);
        self.slots[..len].copy_from_slice(x0);
        observe(0, x0)?;
        if self.n_steps == 0 {
            last.copy_from_slice(x0);
            return Ok(());
        }
        let mut rolling = std::mem::take(&mut self.rolling);
        let (mut x, mut next) = rolling.split_at_mut(len);
        x.copy_from_slice(x0);
        let result = (|| {
            for c in 0..self.n_checkpoints {
                let start = c * self.interval;
                let end = (start + self.interval).min(self.n_steps);
                for k in start..end {
                    chain.advance(k, x, next)?;
                    observe(k + 1, next)?;
                    if k + 1 == self.n_steps {
                        last.copy_from_slice(next);
                    } else if k + 1 == end {
                        self.slots[(c + 1) * len..(c + 2) * len].copy_from_slice(next);
                    } else {
                        let at = self.slim_segment(k + 1 - start);
                        self.slots[at..at + kept].copy_from_slice(&next[..kept]);
                    }
                    std::mem::swap(&mut x, &mut next);
                }
            }
            Ok(())
        })();
        self.rolling = rolling;
        result
    }

    /// [`CheckpointStore::reverse`] of a slim store: each segment but the
    /// last is replayed from its whole checkpoint through the rolling
    /// states; the visitor gets the first `kept` f64s of each state.
    fn reverse_slim<C, V>(&mut self, chain: &mut C, mut visit: V) -> Result<(), C::Error>
    where
        C: Chain,
        V: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let (len, kept) = (self.state_len, self.kept_len);
        let mut rolling = std::mem::take(&mut self.rolling);
        let result = (|| {
            for c in (0..self.n_checkpoints).rev() {
                let start = c * self.interval;
                let end = (start + self.interval).min(self.n_steps);
                if c + 1 < self.n_checkpoints {
                    let (mut x, mut next) = rolling.split_at_mut(len);
                    x.copy_from_slice(&self.slots[c * len..(c + 1) * len]);
                    for k in start..end - 1 {
                        chain.advance(k, x, next)?;
                        let at = self.slim_segment(k + 1 - start);
                        self.slots[at..at + kept].copy_from_slice(&next[..kept]);
                        std::mem::swap(&mut x, &mut next);
                    }
                    self.stats.recomputed_steps += end - 1 - start;
                }
                for k in (start..end).rev() {
                    let at = if k == start {
                        c * len
                    } else {
                        self.slim_segment(k - start)
                    };
                    visit(k, &self.slots[at..at + kept])?;
                }
                self.stats.backward_steps += end - start;
            }
            Ok(())
        })();
        self.rolling = rolling;
        result
    }
}

impl Drop for CheckpointStore {
    /// Leaves the slots to this thread's next store ([`crate::spare`]).
    fn drop(&mut self) {
        spare::give_back(std::mem::take(&mut self.slots));
    }
}

/// The forward sweep of a budgeted store: checkpoints placed by the
/// binomial rule; returns how many it kept.
fn binomial_forward<C, F>(
    pool: &mut SlotPool,
    n_steps: usize,
    chain: &mut C,
    x0: &[f64],
    last: &mut [f64],
    mut observe: F,
) -> Result<usize, C::Error>
where
    C: Chain,
    F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
{
    pool.clear();
    pool.slot_mut(0).copy_from_slice(x0);
    pool.push(0);
    observe(0, x0)?;
    if n_steps == 0 {
        last.copy_from_slice(x0);
        return Ok(1);
    }
    loop {
        let (a, h) = (pool.top(), pool.held().len());
        if a + 1 == n_steps {
            chain.advance(a, pool.slot(h - 1), last)?;
            observe(n_steps, last)?;
            return Ok(h);
        }
        let d = crate::binomial::split(n_steps - a, pool.n_slots() - h);
        pool.step_and_push(chain, d, &mut observe)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x_{k+1} = 3 x_k + k (mod a large prime, in f64 exactly), 2 components.
    struct Affine {
        advances: usize,
    }

    impl Chain for Affine {
        type Error = String;
        fn state_len(&self) -> usize {
            2
        }
        fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), String> {
            self.advances += 1;
            next[0] = (3.0 * x[0] + k as f64) % 1_000_003.0;
            next[1] = x[1] + 1.0;
            Ok(())
        }
    }

    fn reference(n: usize) -> Vec<[f64; 2]> {
        let mut xs = vec![[1.0, 0.0]];
        for k in 0..n {
            let x = xs[k];
            xs.push([(3.0 * x[0] + k as f64) % 1_000_003.0, x[1] + 1.0]);
        }
        xs
    }

    fn sweep(schedule: Schedule, n: usize) -> (Vec<[f64; 2]>, Vec<[f64; 2]>, StoreStats, usize) {
        let mut store = CheckpointStore::new(schedule, n, 2).unwrap();
        let mut chain = Affine { advances: 0 };
        let mut seen = Vec::new();
        let mut last = [0.0; 2];
        store
            .forward(&mut chain, &[1.0, 0.0], &mut last, |_, x| {
                seen.push([x[0], x[1]]);
                Ok(())
            })
            .unwrap();
        assert_eq!(chain.advances, n);
        let mut visited = Vec::new();
        store
            .reverse(&mut chain, |k, x| {
                assert_eq!(x[1], k as f64, "visited state must be x_k");
                visited.push([x[0], x[1]]);
                Ok(())
            })
            .unwrap();
        (seen, visited, store.stats(), chain.advances - n)
    }

    #[test]
    fn every_schedule_visits_all_states_in_reverse() {
        for n in [1usize, 2, 7, 10, 64, 101] {
            let reference = reference(n);
            for schedule in [
                Schedule::All,
                Schedule::Every(1),
                Schedule::Every(3),
                Schedule::Every(7),
                Schedule::Every(n),
                Schedule::Every(n + 5),
            ] {
                let (seen, visited, stats, recomputed) = sweep(schedule, n);
                assert_eq!(seen, reference, "{schedule:?} n={n}");
                let mut expected: Vec<_> = reference[..n].to_vec();
                expected.reverse();
                assert_eq!(visited, expected, "{schedule:?} n={n}");
                assert_eq!(stats.recomputed_steps, recomputed);
                assert_eq!(stats.backward_steps, n);
                assert_eq!(stats.peak_bytes, schedule.bytes_needed(n, 2));
            }
        }
    }

    #[test]
    fn a_reused_block_with_stale_contents_sweeps_the_same() {
        for n in [7usize, 101, 3, 64] {
            let reference = reference(n);
            for schedule in [Schedule::All, Schedule::Every(3), Schedule::Every(n)] {
                // This thread's spare, larger than any store here, full of NaN.
                let mut block = spare::take(1000);
                block.fill(f64::NAN);
                spare::give_back(block);
                let (seen, visited, stats, _) = sweep(schedule, n);
                assert_eq!(seen, reference, "{schedule:?} n={n}");
                let mut expected: Vec<_> = reference[..n].to_vec();
                expected.reverse();
                assert_eq!(visited, expected, "{schedule:?} n={n}");
                // The store's own slots are counted, not the spare's size.
                assert_eq!(stats.peak_bytes, schedule.bytes_needed(n, 2));
                assert_eq!(spare::spare_bytes(), 8000, "the block went back");
            }
        }
    }

    #[test]
    fn a_store_on_a_mapped_block_sweeps_the_same() {
        // 150 000 states of 2: 2.4 MB, above spare::HUGE_PAGE_FROM_BYTES.
        let n = 150_000;
        let reference = reference(n);
        for _ in 0..2 {
            let (seen, visited, stats, _) = sweep(Schedule::All, n);
            assert_eq!(seen, reference);
            assert!(visited.iter().rev().eq(reference[..n].iter()));
            assert_eq!(stats.peak_bytes, Schedule::All.bytes_needed(n, 2));
        }
    }

    #[test]
    fn recomputation_counts_match_the_segment_arithmetic() {
        // N = 100, K = 10: 10 checkpoints; every segment but the last is
        // replayed, 9 steps each.
        let (_, _, stats, _) = sweep(Schedule::Every(10), 100);
        assert_eq!(stats.checkpoints_kept, 10);
        assert_eq!(stats.recomputed_steps, 9 * 9);
        assert_eq!(stats.peak_bytes, (10 + 9) * 2 * 8);
        let (_, _, stats, _) = sweep(Schedule::All, 100);
        assert_eq!(stats.recomputed_steps, 0);
        assert_eq!(stats.checkpoints_kept, 100);
    }

    #[test]
    fn slim_stores_visit_the_kept_part_of_every_state_with_the_same_replays() {
        // The visitor reads x[0] only: segment states keep 1 f64 of 2.
        let shape = StateShape { len: 2, kept: 1 };
        for n in [0usize, 1, 2, 7, 10, 64, 101] {
            let reference = reference(n);
            for schedule in [
                Schedule::All,
                Schedule::Every(1),
                Schedule::Every(3),
                Schedule::Every(7),
                Schedule::Every(n.max(1)),
                Schedule::Every(n + 5),
                Schedule::BudgetBytes(1000),
            ] {
                let mut store = CheckpointStore::new_shaped(schedule, n, shape).unwrap();
                let mut chain = Affine { advances: 0 };
                let (mut seen, mut last) = (Vec::new(), [0.0; 2]);
                store
                    .forward(&mut chain, &[1.0, 0.0], &mut last, |_, x| {
                        seen.push([x[0], x[1]]);
                        Ok(())
                    })
                    .unwrap();
                assert_eq!(seen, reference, "{schedule:?} n={n}");
                assert_eq!(last, reference[n], "{schedule:?} n={n}");
                let mut visited = Vec::new();
                store
                    .reverse(&mut chain, |k, x| {
                        let budget = matches!(schedule, Schedule::BudgetBytes(_));
                        assert_eq!(x.len(), if budget { 2 } else { 1 });
                        visited.push((k, x[0]));
                        Ok(())
                    })
                    .unwrap();
                let expected: Vec<_> = (0..n).rev().map(|k| (k, reference[k][0])).collect();
                assert_eq!(visited, expected, "{schedule:?} n={n}");
                let stats = store.stats();
                // The same recomputation as a store of whole states.
                let (_, _, whole, _) = sweep(schedule, n);
                assert_eq!(
                    stats.recomputed_steps, whole.recomputed_steps,
                    "{schedule:?}"
                );
                assert_eq!(chain.advances, n + stats.recomputed_steps);
                assert_eq!(stats.peak_bytes, schedule.bytes_needed_shaped(n, shape));
            }
        }
        // Every state but x_0 slim, and two whole states rolling.
        let n = 1000;
        let bytes = Schedule::All.bytes_needed_shaped(n, StateShape { len: 40, kept: 4 });
        assert_eq!(bytes, (3 * 40 + (n - 1) * 4) * 8);
        assert!(bytes < Schedule::All.bytes_needed(n, 40) / 9);
    }

    #[test]
    fn zero_interval_is_an_error() {
        assert_eq!(
            CheckpointStore::new(Schedule::Every(0), 10, 2).unwrap_err(),
            CheckpointError::ZeroInterval { every: 0 }
        );
    }
}
