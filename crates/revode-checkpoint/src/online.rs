//! A store for chains whose length is found while running (adaptive steps).
//!
//! The forward sweep keeps the states at multiples of an interval `d`:
//! `d = K` for [`Schedule::Every`] (`K = 1` for [`Schedule::All`]), and the
//! pool grows geometrically as needed. For [`Schedule::BudgetBytes`] the
//! pool is fixed; half of it takes checkpoints, and when those fill up every
//! other one is dropped and `d` doubles (so the kept states are always the
//! multiples of `d`, and `N < capacity·d`). The reverse sweep then handles
//! each segment between kept states, last first, with the binomial rule in
//! whatever slots are free (see [`crate::binomial`]).

use crate::binomial::{min_slots, slot_bytes};
use crate::memory::{check_within, Available};
use crate::pool::SlotPool;
use crate::{Chain, CheckpointError, MemoryLimit, Schedule, StoreStats};

/// A chain whose length is discovered while running (adaptive steps).
pub trait OpenChain: Chain {
    /// True when state `x` (state number k) is the last one (e.g. its t equals t1).
    fn is_last(&self, k: usize, x: &[f64]) -> bool;
}

/// Slots an online budget needs at least: one checkpoint and a stepping pair.
const MIN_ONLINE_SLOTS: usize = 3;

/// Initial pool size of the growing schedules (states), before doubling.
const INITIAL_SLOTS: usize = 1024;

/// Keeps the states of a chain of unknown length.
#[derive(Debug, Clone)]
pub struct OnlineStore {
    schedule: Schedule,
    state_len: usize,
    max_steps: usize,
    pool: SlotPool,
    /// Most checkpoints the forward sweep keeps at once (budget only).
    checkpoint_cap: Option<usize>,
    /// Interval of the kept states at the start of the forward sweep.
    first_interval: usize,
    /// Free slots the reverse sweep wants above the checkpoints.
    spare: usize,
    /// Memory available for the slots and what the run holds beside them
    /// (`None`: no limit).
    available: Option<Available>,
    /// Bytes the run holds beside the store, counted with its slots.
    beside: Beside,
    n_steps: usize,
    stats: StoreStats,
}

impl OnlineStore {
    /// Allocates what the schedule needs up front (BudgetBytes: never more
    /// than B bytes in total, everything counted; All/Every: may grow
    /// geometrically, never per step). `max_steps` bounds the chain: a chain
    /// that has not ended after `max_steps` steps stops the forward sweep
    /// with [`CheckpointError::TooManySteps`].
    pub fn new(
        schedule: Schedule,
        state_len: usize,
        max_steps: usize,
    ) -> Result<Self, CheckpointError> {
        Self::with_memory_limit(schedule, state_len, max_steps, MemoryLimit::FromSystem)
    }

    /// [`OnlineStore::new`] with the memory available given: the first
    /// allocation, and every growth of an unbounded schedule, is checked
    /// first and refused with [`CheckpointError::OutOfMemory`].
    pub fn with_memory_limit(
        schedule: Schedule,
        state_len: usize,
        max_steps: usize,
        limit: MemoryLimit,
    ) -> Result<Self, CheckpointError> {
        Self::with_memory_limit_beside(schedule, state_len, max_steps, limit, 0, 0)
    }

    /// [`OnlineStore::with_memory_limit`] for a run that holds memory beside
    /// the store: `sweep_bytes` that a byte budget also covers (an adjoint
    /// sweep's buffers; a budget proposed in an error includes them) and
    /// `held_outside` it does not (parameters, an implicit solver's
    /// matrices). Against a limit set in code or in
    /// [`crate::memory::LIMIT_ENV`] both are counted with the slots, at the
    /// first allocation and at every growth. Against `MemAvailable` they
    /// are not: memory already allocated is no longer available, so it is
    /// counted there already.
    pub fn with_memory_limit_beside(
        schedule: Schedule,
        state_len: usize,
        max_steps: usize,
        limit: MemoryLimit,
        sweep_bytes: usize,
        held_outside: usize,
    ) -> Result<Self, CheckpointError> {
        schedule.validate()?;
        let most_states = max_steps.saturating_add(1);
        let (n_slots, checkpoint_cap, first_interval, spare) = match schedule {
            Schedule::BudgetBytes(budget) => {
                let slot = slot_bytes(state_len);
                let minimum = MIN_ONLINE_SLOTS.max(min_slots(max_steps));
                if budget / slot < minimum {
                    return Err(CheckpointError::BudgetTooSmall {
                        budget,
                        minimum: minimum * slot,
                        slots: minimum,
                        slot_bytes: slot,
                        beside_bytes: 0,
                    });
                }
                // More than a checkpoint per state and a stepping pair is useless.
                let n = (budget / slot).min(most_states.saturating_add(2));
                let cap = if n >= 4 { n / 2 } else { 1 };
                (n, Some(cap), 1, 2)
            }
            Schedule::All | Schedule::Every(_) => {
                let k = schedule.interval(max_steps);
                let spare = (k - 1).max(2);
                let checkpoints = (most_states / k + 1).min(INITIAL_SLOTS);
                (checkpoints + spare, None, k, spare)
            }
        };
        // Read once: growths are checked against the memory available when
        // the store was made (and allocate nothing to find out).
        let available = limit.available()?;
        let beside = Beside {
            sweep_bytes,
            held_outside,
            counted: available.is_some_and(|a| a.bounds_what_is_held()),
        };
        check_slots(schedule, available, n_slots, state_len, beside)?;
        let pool = SlotPool::new(n_slots, state_len);
        let stats = StoreStats {
            peak_bytes: pool.bytes(),
            slots: n_slots,
            ..StoreStats::default()
        };
        Ok(OnlineStore {
            schedule,
            state_len,
            max_steps,
            pool,
            checkpoint_cap,
            first_interval,
            spare,
            available,
            beside,
            n_steps: 0,
            stats,
        })
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// Runs x0 → … until `chain.is_last`, keeping states per the schedule;
    /// `observe(k, x_k)` for every k = 0..=N in order; final state into
    /// `last`; returns N (number of steps).
    pub fn forward<C, F>(
        &mut self,
        chain: &mut C,
        x0: &[f64],
        last: &mut [f64],
        mut observe: F,
    ) -> Result<usize, C::Error>
    where
        C: OpenChain,
        C::Error: From<CheckpointError>,
        F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        debug_assert_eq!(x0.len(), self.state_len);
        debug_assert_eq!(chain.state_len(), self.state_len);
        let pool = &mut self.pool;
        pool.clear();
        pool.slot_mut(0).copy_from_slice(x0);
        pool.push(0);
        observe(0, x0)?;
        let mut interval = self.first_interval;
        // Slot of the current state x_k: the top checkpoint, or one of the
        // two slots just above it.
        let mut cur = 0;
        let mut k = 0;
        while !chain.is_last(k, pool.slot(cur)) {
            if k == self.max_steps {
                return Err(CheckpointError::TooManySteps {
                    max_steps: self.max_steps,
                }
                .into());
            }
            let mut keep = (k + 1) % interval == 0;
            if keep && Some(pool.held().len()) == self.checkpoint_cap {
                if pool.held().len() == 1 {
                    keep = false;
                } else {
                    cur = thin(pool, cur);
                    interval *= 2;
                    keep = (k + 1) % interval == 0;
                }
            }
            let h = pool.held().len();
            if self.checkpoint_cap.is_none() && h + 1 + self.spare > pool.n_slots() {
                // Doubling, or as many slots as fit if that is fewer.
                let needed = h + 1 + self.spare;
                let mut target = needed.max(2 * pool.n_slots());
                if let Some(a) = self.available {
                    let room = a.bytes.saturating_sub(self.beside.total());
                    target = target.min(room / slot_bytes(self.state_len)).max(needed);
                }
                check_slots(
                    self.schedule,
                    self.available,
                    target,
                    self.state_len,
                    self.beside,
                )?;
                pool.grow_to(target);
                self.stats.peak_bytes = self.stats.peak_bytes.max(pool.bytes());
            }
            if keep {
                if cur == h {
                    // x_k sits where x_{k+1} must go: step aside, then move.
                    pool.advance(chain, k, h, h + 1)?;
                    pool.copy_slot(h + 1, h);
                } else {
                    pool.advance(chain, k, cur, h)?;
                }
                pool.push(k + 1);
                cur = h;
            } else {
                let to = if cur == h { h + 1 } else { h };
                pool.advance(chain, k, cur, to)?;
                cur = to;
            }
            k += 1;
            observe(k, pool.slot(cur))?;
        }
        last.copy_from_slice(pool.slot(cur));
        if k > 0 && pool.top() == k {
            // x_N is never visited.
            pool.pop();
        }
        self.n_steps = k;
        self.stats.steps = k;
        self.stats.forward_steps = k;
        self.stats.checkpoints_kept = pool.held().len();
        self.stats.slots = pool.n_slots();
        self.stats.recomputed_steps = 0;
        self.stats.backward_steps = 0;
        Ok(k)
    }

    /// Visits x_{N-1}, …, x_0 in that order (recomputing with
    /// `chain.advance` as needed). Must follow [`OnlineStore::forward`].
    pub fn reverse<C, V>(&mut self, chain: &mut C, mut visit: V) -> Result<(), C::Error>
    where
        C: Chain,
        V: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        if self.n_steps == 0 {
            return Ok(());
        }
        let backward = &mut self.stats.backward_steps;
        let recomputed = self.pool.reverse_from(chain, self.n_steps - 1, |k, x| {
            visit(k, x)?;
            *backward += 1;
            Ok(())
        })?;
        self.stats.recomputed_steps += recomputed;
        Ok(())
    }
}

/// Memory a run holds beside an online store.
#[derive(Debug, Clone, Copy)]
struct Beside {
    /// Covered by a byte budget too (an adjoint sweep's buffers): part of
    /// the smallest budget proposed, whatever the limit.
    sweep_bytes: usize,
    /// Not covered by a budget (parameters, solver matrices).
    held_outside: usize,
    /// Counted with the slots: against a limit set in code or in the
    /// environment, not against `MemAvailable` (which has counted them).
    counted: bool,
}

impl Beside {
    /// The bytes counted with the slots.
    fn total(self) -> usize {
        if self.counted {
            self.sweep_bytes.saturating_add(self.held_outside)
        } else {
            0
        }
    }

    /// The bytes counted with the slots that a budget does not cover.
    fn outside_budget(self) -> usize {
        if self.counted {
            self.held_outside
        } else {
            0
        }
    }
}

/// `Ok` if a pool of `n_slots` slots fits in the memory available beside
/// what the run holds; else the error proposes a byte budget that fits.
fn check_slots(
    schedule: Schedule,
    available: Option<Available>,
    n_slots: usize,
    state_len: usize,
    beside: Beside,
) -> Result<(), CheckpointError> {
    let needed = n_slots
        .saturating_mul(slot_bytes(state_len))
        .saturating_add(beside.total());
    check_within(available, needed).map_err(|too_large| CheckpointError::OutOfMemory {
        schedule,
        steps: None,
        held_beside: beside.total(),
        fits: Schedule::fitting_budget(
            MIN_ONLINE_SLOTS * slot_bytes(state_len) + beside.sweep_bytes,
            too_large.available.saturating_sub(beside.outside_budget()),
        ),
        too_large,
    })
}

/// Drops every other checkpoint (the pool is full); returns the new slot of
/// the current state, moved out of the way of the kept checkpoints.
fn thin(pool: &mut SlotPool, cur: usize) -> usize {
    let before = pool.held().len();
    let cur_stays = cur + 1 == before && cur & 1 == 0;
    pool.keep_even_positions();
    let h = pool.held().len();
    if cur_stays {
        h - 1
    } else {
        // cur ≥ h: compaction only wrote slots below h.
        pool.copy_slot(cur, h);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::LimitSource;

    /// Against `MemAvailable` what the run holds is not counted again, but
    /// a proposed budget still covers the sweep's share of it.
    #[test]
    fn a_budget_proposed_under_mem_available_covers_the_sweep() {
        let slot = slot_bytes(3);
        let system = Some(Available {
            bytes: 100 * slot,
            source: LimitSource::System,
        });
        let beside = Beside {
            sweep_bytes: 90 * slot,
            held_outside: 1_000 * slot,
            counted: false,
        };
        let Err(CheckpointError::OutOfMemory {
            held_beside,
            too_large,
            fits: Some(Schedule::BudgetBytes(b)),
            ..
        }) = check_slots(Schedule::All, system, 101, 3, beside)
        else {
            panic!("101 slots do not fit 100")
        };
        assert_eq!((held_beside, too_large.needed), (0, 101 * slot));
        assert!(
            b >= MIN_ONLINE_SLOTS * slot + 90 * slot && b <= 100 * slot,
            "{b}"
        );
        assert!(check_slots(Schedule::All, system, 100, 3, beside).is_ok());
    }
}
