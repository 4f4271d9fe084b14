use revode_checkpoint::CheckpointError;
use revode_forward::ForwardError;
use thiserror::Error;

/// What can go wrong while computing a gradient.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GradientError {
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{what} has length {got}, expected {expected}")]
    WrongLength {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{what}[{index}] is not finite ({value})")]
    NonFiniteInput {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("gradient with respect to parameter {index} is not finite")]
    NonFiniteGradient { index: usize },
    #[error("adjoint became non-finite at t = {t} (step {step})")]
    NonFiniteAdjoint { t: f64, step: usize },
}

/// Checks a vector's length and that every entry is finite.
pub fn check_vector(what: &'static str, v: &[f64], expected: usize) -> Result<(), GradientError> {
    if v.len() != expected {
        return Err(GradientError::WrongLength {
            what,
            got: v.len(),
            expected,
        });
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(GradientError::NonFiniteInput { what, index, value });
    }
    Ok(())
}
