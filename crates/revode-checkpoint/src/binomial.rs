//! Binomial (revolve-type) checkpointing arithmetic for a pool of
//! interchangeable state slots.
//!
//! Model: the store has `S` slots; a step writes `x_{k+1}` from the slot of
//! `x_k` into a *different* slot (steps are not in place). Reversing the
//! range `x_a … x_{a+n−1}` with `x_a` held and `m` free slots can reach at
//! most `B(m, t)` states when no state is computed more than `t` times:
//!
//! `B(m, t) = β(m−1, t) + β(m−1, t−1)` for `m ≥ 1`, `B(0, t) = 1`,
//! with `β(s, t) = C(s + t, s)` (Griewank's binomial) and `β(s, −1) = 0`.
//!
//! The fewest steps that reverse n states this way (first sweep included,
//! `t` the smallest integer with `B(m, t) ≥ n`) are
//! `F(n, m) = t·n − β(m, t−1) − β(m, t−2)`.
//! The derivation is in `docs/checkpointing.md`; the tests check it against
//! an exhaustive search.

/// Fewest slots that can reverse a chain of `n_steps` steps (visit
/// `x_{N−1} … x_0`): one per state up to 3; with 3 slots (one held state and
/// a pair to step between) any length can be reversed.
pub fn min_slots(n_steps: usize) -> usize {
    n_steps.clamp(1, 3)
}

/// Bytes of one slot of a budgeted store: the state and its step number.
pub fn slot_bytes(state_len: usize) -> usize {
    (state_len + 1) * std::mem::size_of::<f64>()
}

/// `β(s, t) = C(s + t, t)`, saturating at `u128::MAX`.
pub fn beta(s: u64, t: u64) -> u128 {
    let mut b: u128 = 1;
    for k in 1..=u128::from(t.min(s)) {
        let n = u128::from(s.max(t)) + k;
        b = match b.checked_mul(n) {
            Some(v) => v / k,
            None => return u128::MAX,
        };
    }
    b
}

/// States reversible with `m` free slots besides the held one when no state
/// is computed more than `t` times.
pub fn max_states(m: u64, t: u64) -> u128 {
    match (m, t) {
        (0, _) | (_, 0) => 1,
        _ => beta(m - 1, t).saturating_add(beta(m - 1, t - 1)),
    }
}

/// Fewest steps recomputed (beyond the forward sweep's N) to reverse
/// `n_steps` steps with `slots` slots, or `None` if the slots cannot do it.
pub fn min_recomputed(n_steps: usize, slots: usize) -> Option<u128> {
    if slots < min_slots(n_steps) {
        return None;
    }
    if n_steps <= 1 {
        return Some(0);
    }
    let (n, m) = (n_steps as u128, (slots - 1) as u64);
    let mut t = 0u64;
    while max_states(m, t) < n {
        t += 1;
    }
    // F(n, m) counts the advances that produce x_1 … x_{n−1}; the forward
    // sweep makes each once (n − 1 of them), the rest are recomputations.
    let below = beta(m, t - 1) + if t >= 2 { beta(m, t - 2) } else { 0 };
    Some(u128::from(t) * n - below - (n - 1))
}

/// Where to place the next checkpoint: reversing `n ≥ 2` states from a held
/// `x_a` with `m ≥ 1` free slots, the optimal next checkpoint is `x_{a+c}`.
///
/// `c = max(B(m, t−2), n − B(m−1, t))`: the smallest minimiser of the convex
/// cost `c + F(c, m) + F(n − c, m − 1)` (see the docs).
#[inline]
pub(crate) fn split(n: usize, m: usize) -> usize {
    debug_assert!(n >= 2 && m >= 1);
    // Enough slots for every state (t = 1), or one free slot (then n = 2).
    if n <= m + 1 || m == 1 {
        return 1;
    }
    let s = (m - 1) as u128;
    let n = n as u128;
    // b0..b3 = β(s, t), β(s, t−1), β(s, t−2), β(s, t−3), starting at t = 1.
    let (mut b0, mut b1, mut b2, mut b3) = (s + 1, 1u128, 0u128, 0u128);
    let mut t = 1u128;
    while b0 + b1 < n {
        t += 1;
        // Exact: β(s, t) = β(s, t−1)·(s + t)/t; the product fits u128
        // because β(s, t−1) < n ≤ usize::MAX and s + t ≤ 2·usize::MAX.
        let next = b0 * (s + t) / t;
        (b3, b2, b1, b0) = (b2, b1, b0, next);
    }
    let left = b2 + b3; // B(m, t−2)
    let right = b0 - b2; // B(m−1, t) = β(s, t) − β(s, t−2)
    left.max(n.saturating_sub(right)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_is_the_binomial_coefficient() {
        assert_eq!(beta(0, 5), 1);
        assert_eq!(beta(3, 2), 10);
        assert_eq!(beta(2, 3), 10);
        assert_eq!(beta(10, 10), 184_756);
        assert_eq!(beta(200, 200), u128::MAX);
    }

    #[test]
    fn max_states_follows_the_slot_recursion() {
        // B(1, t) = 2 (no room to step twice), B(m, t) = B(m, t−1) + B(m−1, t).
        for t in 1..20 {
            assert_eq!(max_states(1, t), 2);
            assert_eq!(max_states(2, t), 2 * u128::from(t) + 1);
            for m in 2..20 {
                assert_eq!(
                    max_states(m, t),
                    max_states(m, t - 1) + max_states(m - 1, t)
                );
            }
        }
    }

    /// F(n, m) by the recursion over the first checkpoint, all splits tried.
    fn cost_by_recursion(n_max: usize, m_max: usize) -> Vec<Vec<Option<u128>>> {
        let mut f = vec![vec![None; n_max + 1]; m_max + 1];
        for m in 0..=m_max {
            f[m][1] = Some(0);
            for n in 2..=n_max {
                let mut best: Option<u128> = None;
                for c in 1..n {
                    if m == 0 || (c >= 2 && m < 2) {
                        continue;
                    }
                    if let (Some(l), Some(r)) = (f[m][c], f[m - 1][n - c]) {
                        let v = c as u128 + l + r;
                        best = Some(best.map_or(v, |b: u128| b.min(v)));
                    }
                }
                f[m][n] = best;
            }
        }
        f
    }

    #[test]
    fn closed_form_and_split_match_the_recursion() {
        let (n_max, m_max) = (160, 7);
        let f = cost_by_recursion(n_max, m_max);
        for m in 1..=m_max {
            for n in 2..=n_max {
                let recomputed = min_recomputed(n, m + 1).map(|r| r + n as u128 - 1);
                assert_eq!(recomputed, f[m][n], "n={n} m={m}");
                if let Some(best) = f[m][n] {
                    let c = split(n, m);
                    let via = f[m - 1][n - c].map(|r| c as u128 + f[m][c].unwrap() + r);
                    assert_eq!(via, Some(best), "split {c} for n={n} m={m}");
                }
            }
        }
    }
}
