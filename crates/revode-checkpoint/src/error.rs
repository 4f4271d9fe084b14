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
        "checkpoints {schedule} over {}{}: {too_large}; {}",
        steps_text(*.steps),
        held_text(*.held_beside),
        fits_text(.fits, *.held_beside)
    )]
    OutOfMemory {
        schedule: Schedule,
        /// Steps of the chain (`None`: not known before the run).
        steps: Option<usize>,
        /// Bytes the run holds outside the store, counted with it in
        /// `too_large.needed` ([`crate::OnlineStore::with_memory_limit_beside`]).
        held_beside: usize,
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

fn held_text(held_beside: usize) -> String {
    if held_beside == 0 {
        String::new()
    } else {
        format!(
            ", beside {} the run holds outside the store (parameters, solver and adjoint buffers)",
            crate::memory::human_bytes(held_beside)
        )
    }
}

fn fits_text(fits: &Option<Schedule>, held_beside: usize) -> String {
    match (fits, held_beside) {
        (Some(s), 0) => format!("use \"checkpoints\": {s}, which fits"),
        (Some(s), _) => format!("use \"checkpoints\": {s}, which fits beside them"),
        (None, 0) => "no checkpoint schedule fits".to_string(),
        (None, _) => "no checkpoint schedule fits beside them".to_string(),
    }
}

fn beside_text(beside_bytes: usize) -> String {
    if beside_bytes == 0 {
        String::new()
    } else {
        format!(", plus {beside_bytes} bytes of solver buffers")
    }
}
