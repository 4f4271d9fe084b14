//! A pool of state slots holding a stack of checkpoints, and the binomial
//! reverse sweep over it.
//!
//! Invariant: checkpoint `i` of the stack (state number `held[i]`, numbers
//! increasing) lives in slot `i`. Slots above the stack are free; stepping
//! ping-pongs between the two slots just above the top, with the parity
//! chosen so that the state that becomes the next checkpoint lands in the
//! first free slot. So no slot ids are stored and no state is copied.

use crate::binomial::split;
use crate::Chain;

#[derive(Debug, Clone)]
pub(crate) struct SlotPool {
    state_len: usize,
    n_slots: usize,
    buf: Vec<f64>,
    /// State numbers of the checkpoints; `held[i]` is in slot `i`.
    held: Vec<usize>,
}

impl SlotPool {
    pub fn new(n_slots: usize, state_len: usize) -> Self {
        SlotPool {
            state_len,
            n_slots,
            buf: vec![0.0; n_slots * state_len],
            held: Vec::with_capacity(n_slots),
        }
    }

    /// Bytes allocated: the slots and the step numbers of the checkpoints.
    pub fn bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<f64>()
            + self.held.capacity() * std::mem::size_of::<usize>()
    }

    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    /// Grows to `n_slots` slots (for unbounded schedules only; the caller
    /// grows geometrically). Exactly: the bytes checked before are the
    /// bytes allocated (a plain `resize` would round the capacity up to
    /// twice the old one, past a limit the caller checked).
    pub fn grow_to(&mut self, n_slots: usize) {
        if n_slots > self.n_slots {
            let len = n_slots * self.state_len;
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0.0);
            self.held.reserve_exact(n_slots - self.held.len());
            self.n_slots = n_slots;
        }
    }

    pub fn held(&self) -> &[usize] {
        &self.held
    }

    pub fn top(&self) -> usize {
        *self.held.last().expect("the pool holds a checkpoint")
    }

    pub fn slot(&self, i: usize) -> &[f64] {
        &self.buf[i * self.state_len..(i + 1) * self.state_len]
    }

    pub fn slot_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.buf[i * self.state_len..(i + 1) * self.state_len]
    }

    pub fn copy_slot(&mut self, from: usize, to: usize) {
        if from != to {
            let len = self.state_len;
            self.buf.copy_within(from * len..(from + 1) * len, to * len);
        }
    }

    /// Makes slot `self.held().len()` checkpoint `k` (its state is already there).
    pub fn push(&mut self, k: usize) {
        debug_assert!(self.held.len() < self.n_slots);
        self.held.push(k);
    }

    pub fn pop(&mut self) {
        self.held.pop();
    }

    /// Empties the stack (keeps the allocation).
    pub fn clear(&mut self) {
        self.held.clear();
    }

    /// Keeps the checkpoints at even stack positions (state numbers that are
    /// multiples of twice the interval), moved down to keep the invariant.
    pub fn keep_even_positions(&mut self) {
        let kept = self.held.len().div_ceil(2);
        for j in 1..kept {
            self.copy_slot(2 * j, j);
            self.held[j] = self.held[2 * j];
        }
        self.held.truncate(kept);
    }

    /// `chain.advance(k, slot from, slot to)`.
    #[inline]
    pub fn advance<C: Chain>(
        &mut self,
        chain: &mut C,
        k: usize,
        from: usize,
        to: usize,
    ) -> Result<(), C::Error> {
        let (x, next) = slot_pair(&mut self.buf, self.state_len, from, to);
        chain.advance(k, x, next)
    }

    /// From the top checkpoint `x_a`, steps `d ≥ 1` times and pushes
    /// `x_{a+d}`; `observe(k, x_k)` sees every new state. Needs one free
    /// slot for `d = 1`, two otherwise.
    #[inline]
    pub fn step_and_push<C, F>(
        &mut self,
        chain: &mut C,
        d: usize,
        mut observe: F,
    ) -> Result<(), C::Error>
    where
        C: Chain,
        F: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let h = self.held.len();
        let a = self.top();
        debug_assert!(h + usize::from(d > 1) < self.n_slots);
        let mut from = h - 1;
        for j in 1..=d {
            // The last step (j = d) writes slot h.
            let to = if (d - j) & 1 == 0 { h } else { h + 1 };
            self.advance(chain, a + j - 1, from, to)?;
            observe(a + j, self.slot(to))?;
            from = to;
        }
        self.held.push(a + d);
        Ok(())
    }

    /// Visits `x_v, x_{v−1}, …` down to the bottom checkpoint, placing
    /// checkpoints by the binomial rule in the free slots. Returns the number
    /// of recomputed steps. The top checkpoint must be at most `v`.
    pub fn reverse_from<C, V>(
        &mut self,
        chain: &mut C,
        mut v: usize,
        mut visit: V,
    ) -> Result<usize, C::Error>
    where
        C: Chain,
        V: FnMut(usize, &[f64]) -> Result<(), C::Error>,
    {
        let mut recomputed = 0;
        while let Some(&a) = self.held.last() {
            let h = self.held.len();
            if a == v {
                visit(v, self.slot(h - 1))?;
                self.held.pop();
                if v == 0 {
                    break;
                }
                v -= 1;
            } else {
                let d = split(v - a + 1, self.n_slots - h);
                self.step_and_push(chain, d, |_, _| Ok(()))?;
                recomputed += d;
            }
        }
        Ok(recomputed)
    }
}

/// `(&slot[a], &mut slot[b])` for distinct slots of one buffer.
#[inline(always)]
pub(crate) fn slot_pair(buf: &mut [f64], len: usize, a: usize, b: usize) -> (&[f64], &mut [f64]) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = buf.split_at_mut(b * len);
        (&lo[a * len..(a + 1) * len], &mut hi[..len])
    } else {
        let (lo, hi) = buf.split_at_mut(a * len);
        (&hi[..len], &mut lo[b * len..(b + 1) * len])
    }
}
