use thiserror::Error;

use crate::memory::{BadLimit, TooLarge};
use crate::Schedule;

/// Errors of the checkpoint store itself (the chain's own errors pass through
/// [`crate::CheckpointStore`] methods unchanged).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("checkpoint interval must be at least 1, got {every}")]
    ZeroInterval { every: usize },
    #[error(
        "memory budget of {budget} bytes is too small: at least {minimum} bytes are needed \
         ({slots} state slots of {slot_bytes} bytes{})",
        beside_text(*.beside_bytes)
    )]
    BudgetTooSmall {
        budget: usize,
        minimum: usize,
        slots: usize,
        slot_bytes: usize,
        /// Bytes the budget must also cover besides the slots (e.g. an
        /// adaptive adjoint's dense output); part of `minimum`.
        beside_bytes: usize,
    },
    /// An [`crate::OpenChain`] did not reach its last state within the bound
    /// given to [`crate::OnlineStore::new`].
    #[error("the chain did not end within {max_steps} steps")]
    TooManySteps { max_steps: usize },
    /// The store would need more memory than is available
    /// ([`crate::memory`]); nothing was allocated.
    #[error(
        "checkpoints {schedule} over {}: {too_large}; {}",
        steps_text(*.steps),
        fits_text(.fits)
    )]
    OutOfMemory {
        schedule: Schedule,
        /// Steps of the chain (`None`: not known before the run).
        steps: Option<usize>,
        too_large: TooLarge,
        /// A schedule whose store fits, if any.
        fits: Option<Schedule>,
    },
    /// The memory limit in the environment is malformed; nothing was allocated.
    #[error("{0}")]
    BadMemoryLimit(#[from] BadLimit),
}

fn steps_text(steps: Option<usize>) -> String {
    match steps {
        Some(n) => format!("{n} steps"),
        None => "an adaptive run".to_string(),
    }
}

fn fits_text(fits: &Option<Schedule>) -> String {
    match fits {
        Some(s) => format!("use \"checkpoints\": {s}, which fits"),
        None => "no checkpoint schedule fits".to_string(),
    }
}

fn beside_text(beside_bytes: usize) -> String {
    if beside_bytes == 0 {
        String::new()
    } else {
        format!(", plus {beside_bytes} bytes of solver buffers")
    }
}
