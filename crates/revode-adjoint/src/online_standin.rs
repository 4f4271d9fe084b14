//! STAND-IN for `revode_checkpoint::OnlineStore` (a store for chains of
//! unknown length, being built in parallel on another branch). Same methods
//! and meaning, simplest implementation: a checkpoint every K states (every
//! state for `All`) in one buffer reserved up front for `max_steps` steps,
//! and K − 1 segment slots replayed on the way back. To be replaced by the
//! real store when it lands on main.

use revode_checkpoint::{Chain, CheckpointError, Schedule, StoreStats};

/// A chain whose last state is recognised when reached.
pub trait OpenChain: Chain {
    fn is_last(&self, k: usize, x: &[f64]) -> bool;
}

#[derive(Debug, Clone)]
pub struct StandInOnlineStore {
    interval: usize,
    state_len: usize,
    /// States 0, K, 2K, … (capacity reserved for `max_steps` steps).
    checkpoints: Vec<f64>,
    /// States s+1 … s+K−1 of the segment being replayed.
    segment: Vec<f64>,
    cur: Vec<f64>,
    next: Vec<f64>,
    n_steps: usize,
    stats: StoreStats,
}

impl StandInOnlineStore {
    pub fn new(
        schedule: Schedule,
        state_len: usize,
        max_steps: usize,
    ) -> Result<Self, CheckpointError> {
        schedule.validate()?;
        let interval = match schedule {
            Schedule::All => 1,
            Schedule::Every(k) => k.clamp(1, max_steps.max(1)),
        };
        let v = || vec![0.0; state_len];
        Ok(StandInOnlineStore {
            interval,
            state_len,
            checkpoints: Vec::with_capacity((max_steps / interval + 1) * state_len),
            segment: vec![0.0; (interval - 1) * state_len],
            cur: v(),
            next: v(),
            n_steps: 0,
            stats: StoreStats::default(),
        })
    }

    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// Bytes of kept states (checkpoints used plus segment slots).
    fn bytes_held(&self) -> usize {
        (self.checkpoints.len() + self.segment.len()) * std::mem::size_of::<f64>()
    }

    fn state(&self, k: usize) -> &[f64] {
        let len = self.state_len;
        let offset = k % self.interval;
        if offset == 0 {
            let c = k / self.interval;
            &self.checkpoints[c * len..(c + 1) * len]
        } else {
            &self.segment[(offset - 1) * len..offset * len]
        }
    }

    /// Runs the chain from `x0` until `is_last`; returns N. `observe(k, x_k)`
    /// sees every state k = 0..=N; the final state is left in `last`.
    pub fn forward<C, F>(
        &mut self,
        chain: &mut C,
        x0: &[f64],
        last: &mut [f64],
        mut observe: F,
    ) -> Result<usize, C::Error>
    where
        C: OpenChain,
        F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let len = self.state_len;
        self.checkpoints.clear();
        self.checkpoints.extend_from_slice(x0);
        self.cur.copy_from_slice(x0);
        self.stats = StoreStats::default();
        observe(0, x0)?;
        let mut k = 0;
        while !chain.is_last(k, &self.cur) {
            chain.advance(k, &self.cur, &mut self.next)?;
            k += 1;
            observe(k, &self.next)?;
            if !chain.is_last(k, &self.next) {
                let offset = k % self.interval;
                if offset == 0 {
                    self.checkpoints.extend_from_slice(&self.next);
                } else {
                    self.segment[(offset - 1) * len..offset * len].copy_from_slice(&self.next);
                }
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        last.copy_from_slice(&self.cur);
        self.n_steps = k;
        self.stats.steps = k;
        self.stats.checkpoints_kept = self.checkpoints.len() / len;
        self.stats.peak_bytes = self.bytes_held();
        Ok(k)
    }

    /// Visits `x_{N−1}, …, x_0`, replaying each segment from its checkpoint.
    pub fn reverse<C, V>(&mut self, chain: &mut C, mut visit: V) -> Result<(), C::Error>
    where
        C: Chain,
        V: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let len = self.state_len;
        let n = self.n_steps;
        let k_int = self.interval;
        let n_checkpoints = self.checkpoints.len() / len;
        for c in (0..n_checkpoints).rev() {
            let start = c * k_int;
            let end = (start + k_int).min(n);
            if c + 1 < n_checkpoints {
                for k in start..end - 1 {
                    let mut next = std::mem::take(&mut self.next);
                    chain.advance(k, self.state(k), &mut next)?;
                    let offset = k + 1 - start;
                    self.segment[(offset - 1) * len..offset * len].copy_from_slice(&next);
                    self.next = next;
                }
                self.stats.recomputed_steps += end - 1 - start;
            }
            for k in (start..end).rev() {
                visit(k, self.state(k))?;
                self.stats.backward_steps += 1;
            }
        }
        Ok(())
    }
}
