use thiserror::Error;

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
}

fn beside_text(beside_bytes: usize) -> String {
    if beside_bytes == 0 {
        String::new()
    } else {
        format!(", plus {beside_bytes} bytes of solver buffers")
    }
}
