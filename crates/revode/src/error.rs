use std::path::PathBuf;

use revode_adjoint::GradientError;
use revode_forward::ForwardError;
use thiserror::Error;

/// Errors of the façade: reading and checking a problem, then solving it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: invalid JSON: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// A bad argument of a library call, named as the call names it
    /// (`rel_step`, `memory_budget`, …); a front end maps the name to its
    /// own spelling, as the CLI does to its flags.
    #[error("{name}: {message}")]
    Argument { name: &'static str, message: String },
    /// A model file that cannot be read or has an error: `FILE:LINE:COL: …`.
    #[error("{0}")]
    ModelFile(#[from] revode_ode::OdeError),
    #[error("{0}")]
    Gradient(#[from] GradientError),
    /// An allocation that grows with the input would not fit in memory
    /// ([`crate::memory`]); it was not made.
    #[error("{what}: {too_large}; {advice}")]
    OutOfMemory {
        what: String,
        too_large: revode_checkpoint::memory::TooLarge,
        advice: String,
    },
    /// `REVODE_MEMORY_LIMIT` is set to something that is not a limit.
    #[error("{0}")]
    MemoryLimit(#[from] revode_checkpoint::memory::BadLimit),
}

impl Error {
    /// Process exit code: 2 for bad input, 3 for a solve that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Read { .. }
            | Error::Json { .. }
            | Error::Invalid { .. }
            | Error::Argument { .. }
            | Error::OutOfMemory { .. }
            | Error::MemoryLimit(_)
            | Error::ModelFile(_) => 2,
            Error::Gradient(e) => match e {
                GradientError::Forward(
                    ForwardError::InvalidStep { .. }
                    | ForwardError::InvalidSpan { .. }
                    | ForwardError::TooManySteps { .. }
                    | ForwardError::InvalidOption { .. }
                    | ForwardError::AtolLength { .. }
                    | ForwardError::StopTimeOutside { .. }
                    | ForwardError::StopTimesUnsorted { .. }
                    | ForwardError::Stimulus { .. }
                    | ForwardError::SamplesTooLarge { .. }
                    | ForwardError::SamplesOutgrewMemory { .. }
                    | ForwardError::MemoryLimit(_),
                )
                | GradientError::Checkpoint(_)
                | GradientError::WrongLength { .. }
                | GradientError::NonFiniteInput { .. }
                | GradientError::ObservedComponent { .. }
                | GradientError::ObservationLengths { .. }
                | GradientError::ObservationOutside { .. }
                | GradientError::ObservationsUnsorted { .. }
                | GradientError::ObservationOffGrid { .. }
                | GradientError::LossNeedsFixedSteps { .. }
                | GradientError::AdjointAtolLength { .. }
                | GradientError::EventsNeedFixedSteps { .. }
                | GradientError::NoSuchEvent { .. } => 2,
                _ => 3,
            },
        }
    }
}

impl From<ForwardError> for Error {
    fn from(e: ForwardError) -> Self {
        Error::Gradient(e.into())
    }
}
