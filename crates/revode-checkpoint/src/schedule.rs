//! Which states a forward sweep keeps.

use serde::{Deserialize, Serialize};

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
}

impl Schedule {
    /// Checks the schedule's own parameters.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        match *self {
            Schedule::Every(0) => Err(CheckpointError::ZeroInterval { every: 0 }),
            _ => Ok(()),
        }
    }

    /// The checkpoint interval K (1 for [`Schedule::All`]).
    pub(crate) fn interval(&self, n_steps: usize) -> usize {
        match *self {
            Schedule::All => 1,
            Schedule::Every(k) => k.clamp(1, n_steps.max(1)),
        }
    }

    /// `(checkpoint slots, segment slots)` for a chain of `n_steps` steps.
    pub fn slots(&self, n_steps: usize) -> (usize, usize) {
        let k = self.interval(n_steps);
        let checkpoints = if n_steps == 0 {
            1
        } else {
            (n_steps - 1) / k + 1
        };
        (checkpoints, k - 1)
    }

    /// Exact bytes the store will hold for `n_steps` steps of states of
    /// `state_len` f64s.
    pub fn bytes_needed(&self, n_steps: usize, state_len: usize) -> usize {
        let (c, s) = self.slots(n_steps);
        (c + s) * state_len * std::mem::size_of::<f64>()
    }
}
