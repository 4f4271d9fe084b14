//! Which states a forward sweep keeps.

use serde::{Deserialize, Serialize};

use crate::binomial::{min_slots, slot_bytes};
use crate::CheckpointError;

/// A checkpointing schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Keep every state: no recomputation, N + 1 slots.
    All,
    /// Keep every K-th state; on the way back, recompute each segment of K
    /// steps from its checkpoint into one reused buffer of K − 1 slots.
    Every(usize),
    /// Never hold more than this many bytes (slots and their bookkeeping);
    /// place checkpoints by the optimal binomial (revolve) rule.
    BudgetBytes(usize),
}

/// How a chain's states sit in a store: `len` f64s each, of which the
/// reverse sweep reads the first `kept` ([`crate::CheckpointStore::new_shaped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateShape {
    pub len: usize,
    pub kept: usize,
}

impl StateShape {
    /// States read whole.
    pub fn whole(len: usize) -> StateShape {
        StateShape { len, kept: len }
    }

    /// Whether the states between checkpoints keep only their first
    /// `kept` f64s (replays start from whole checkpoints and step through
    /// two whole states held beside the slots).
    pub fn slim(&self) -> bool {
        self.kept < self.len
    }
}

impl Schedule {
    /// Checks the schedule's own parameters.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        match *self {
            Schedule::Every(0) => Err(CheckpointError::ZeroInterval { every: 0 }),
            _ => Ok(()),
        }
    }

    /// Checks the schedule for a chain of `n_steps` steps of `state_len`
    /// f64s: a budget must hold at least [`Schedule::min_budget_bytes`].
    pub fn validate_for(&self, n_steps: usize, state_len: usize) -> Result<(), CheckpointError> {
        self.validate()?;
        if let Schedule::BudgetBytes(budget) = *self {
            let minimum = Self::min_budget_bytes(n_steps, state_len);
            if budget < minimum {
                return Err(CheckpointError::BudgetTooSmall {
                    budget,
                    minimum,
                    slots: min_slots(n_steps),
                    slot_bytes: slot_bytes(state_len),
                    beside_bytes: 0,
                });
            }
        }
        Ok(())
    }

    /// Smallest budget that can reverse `n_steps` steps (3 slots for N ≥ 3).
    pub fn min_budget_bytes(n_steps: usize, state_len: usize) -> usize {
        min_slots(n_steps) * slot_bytes(state_len)
    }

    /// The checkpoint interval K (1 for [`Schedule::All`]; budgets have none).
    pub(crate) fn interval(&self, n_steps: usize) -> usize {
        match *self {
            Schedule::All | Schedule::BudgetBytes(_) => 1,
            Schedule::Every(k) => k.clamp(1, n_steps.max(1)),
        }
    }

    /// `(checkpoint slots, segment slots)` for a chain of `n_steps` steps of
    /// `state_len` f64s. A budget's slots are one pool, reported as
    /// checkpoint slots: as many as fit (at least the minimum), at most one
    /// per state.
    pub fn slots(&self, n_steps: usize, state_len: usize) -> (usize, usize) {
        if let Schedule::BudgetBytes(budget) = *self {
            let fit = budget / slot_bytes(state_len);
            return (fit.clamp(min_slots(n_steps), n_steps.max(1)), 0);
        }
        let k = self.interval(n_steps);
        let checkpoints = if n_steps == 0 {
            1
        } else {
            (n_steps - 1) / k + 1
        };
        (checkpoints, k - 1)
    }

    /// A schedule whose store for `n_steps` steps fits in `available`
    /// bytes: every ⌈√N⌉-th state (each step recomputed at most once) if it
    /// fits, else the largest power-of-two byte budget that does.
    pub fn fitting(n_steps: usize, state_len: usize, available: usize) -> Option<Schedule> {
        let k = ((n_steps as f64).sqrt().ceil() as usize).max(1);
        let every = Schedule::Every(k);
        if every.bytes_needed(n_steps, state_len) <= available {
            return Some(every);
        }
        Self::fitting_budget(Self::min_budget_bytes(n_steps, state_len), available)
    }

    /// The largest power-of-two budget within `available` and at least
    /// `minimum` bytes.
    pub fn fitting_budget(minimum: usize, available: usize) -> Option<Schedule> {
        if available < minimum.max(1) {
            return None;
        }
        let pow2 = 1usize << (usize::BITS - 1 - available.leading_zeros());
        Some(Schedule::BudgetBytes(if pow2 >= minimum {
            pow2
        } else {
            available
        }))
    }

    /// The checkpoint interval of a store of slim states: [`Schedule::All`]
    /// keeps one whole checkpoint (x_0) and every later state slim.
    pub(crate) fn slim_interval(&self, n_steps: usize) -> usize {
        match self {
            Schedule::All => n_steps.max(1),
            _ => self.interval(n_steps),
        }
    }

    /// `(checkpoints, segment slots, interval)` of a store of `n_steps`
    /// steps of states shaped `shape` (budgets: as [`Schedule::slots`]).
    pub(crate) fn slots_shaped(&self, n_steps: usize, shape: StateShape) -> (usize, usize, usize) {
        if !shape.slim() || matches!(self, Schedule::BudgetBytes(_)) {
            let (c, s) = self.slots(n_steps, shape.len);
            return (c, s, self.interval(n_steps));
        }
        let k = self.slim_interval(n_steps);
        let checkpoints = if n_steps == 0 {
            1
        } else {
            (n_steps - 1) / k + 1
        };
        (checkpoints, k - 1, k)
    }

    /// [`Schedule::bytes_needed`] for states shaped `shape`: with slim
    /// states, whole checkpoints, slim segment slots and the two whole
    /// states a replay steps through.
    pub fn bytes_needed_shaped(&self, n_steps: usize, shape: StateShape) -> usize {
        if !shape.slim() || matches!(self, Schedule::BudgetBytes(_)) {
            return self.bytes_needed(n_steps, shape.len);
        }
        let (c, s, _) = self.slots_shaped(n_steps, shape);
        c.saturating_add(2)
            .saturating_mul(shape.len)
            .saturating_add(s.saturating_mul(shape.kept))
            .saturating_mul(std::mem::size_of::<f64>())
    }

    /// Exact bytes the store will hold for `n_steps` steps of states of
    /// `state_len` f64s (for a budget: at most the budget, if it is valid).
    pub fn bytes_needed(&self, n_steps: usize, state_len: usize) -> usize {
        let (c, s) = self.slots(n_steps, state_len);
        // Saturating: an absurd request must reach the memory check, not overflow.
        match self {
            Schedule::BudgetBytes(_) => c.saturating_mul(slot_bytes(state_len)),
            _ => (c.saturating_add(s))
                .saturating_mul(state_len)
                .saturating_mul(std::mem::size_of::<f64>()),
        }
    }
}

/// The problem-file form: `"all"`, `{"every": K}`, `{"budget_bytes": B}`.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::All => write!(f, "\"all\""),
            Schedule::Every(k) => write!(f, "{{\"every\": {k}}}"),
            Schedule::BudgetBytes(b) => write!(f, "{{\"budget_bytes\": {b}}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_forms() {
        let s: Schedule = serde_json::from_str(r#"{"budget_bytes": 65536}"#).unwrap();
        assert_eq!(s, Schedule::BudgetBytes(65536));
        assert_eq!(
            serde_json::to_string(&Schedule::BudgetBytes(7)).unwrap(),
            r#"{"budget_bytes":7}"#
        );
        let s: Schedule = serde_json::from_str(r#""all""#).unwrap();
        assert_eq!(s, Schedule::All);
    }

    #[test]
    fn display_is_the_problem_file_form() {
        for s in [
            Schedule::All,
            Schedule::Every(7),
            Schedule::BudgetBytes(65536),
        ] {
            let back: Schedule = serde_json::from_str(&s.to_string()).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn fitting_schedules_fit() {
        let n = 1_000_000_000;
        // every 31623: 31623 checkpoints + 31622 segment slots of 4 f64.
        let s = Schedule::fitting(n, 4, 1 << 30).unwrap();
        assert_eq!(s, Schedule::Every(31_623));
        assert!(s.bytes_needed(n, 4) <= 1 << 30);
        let s = Schedule::fitting(n, 4, 100_000).unwrap();
        assert_eq!(s, Schedule::BudgetBytes(65_536));
        assert_eq!(
            Schedule::fitting(n, 4, 130),
            Some(Schedule::BudgetBytes(128))
        );
        let s = Schedule::fitting(n, 4, 125).unwrap();
        assert_eq!(s, Schedule::BudgetBytes(125));
        assert!(s.validate_for(n, 4).is_ok());
        assert_eq!(Schedule::fitting(n, 4, 119), None);
    }

    #[test]
    fn budget_slots_and_bytes() {
        // 4 f64s + step number = 40 bytes a slot.
        assert_eq!(Schedule::BudgetBytes(65536).slots(6_000_000, 4), (1638, 0));
        assert_eq!(
            Schedule::BudgetBytes(65536).bytes_needed(6_000_000, 4),
            65520
        );
        // Never more slots than states.
        assert_eq!(Schedule::BudgetBytes(1 << 30).slots(10, 4), (10, 0));
        assert_eq!(Schedule::min_budget_bytes(1000, 4), 120);
        assert_eq!(Schedule::min_budget_bytes(2, 4), 80);
        assert!(Schedule::BudgetBytes(120).validate_for(1000, 4).is_ok());
        assert_eq!(
            Schedule::BudgetBytes(119).validate_for(1000, 4),
            Err(CheckpointError::BudgetTooSmall {
                budget: 119,
                minimum: 120,
                slots: 3,
                slot_bytes: 40,
                beside_bytes: 0
            })
        );
    }
}
