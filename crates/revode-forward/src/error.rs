use thiserror::Error;

/// What can go wrong while integrating forward.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("time step dt must be positive and finite, got {dt}")]
    InvalidStep { dt: f64 },
    #[error("time span must satisfy t0 < t1 with both finite, got [{t0}, {t1}]")]
    InvalidSpan { t0: f64, t1: f64 },
    #[error(
        "time span [{t0}, {t1}] with dt = {dt} needs {steps} steps, more than the limit {limit}"
    )]
    TooManySteps {
        t0: f64,
        t1: f64,
        dt: f64,
        steps: f64,
        limit: usize,
    },
    #[error("{what} = {value} is invalid: must be {expected}")]
    InvalidOption {
        what: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("atol has {got} entries, expected 1 or {expected} (one per state)")]
    AtolLength { got: usize, expected: usize },
    #[error("observation time {index} = {t} is outside the time span ({t0}, {t1}]")]
    StopTimeOutside {
        index: usize,
        t: f64,
        t0: f64,
        t1: f64,
    },
    #[error("observation times must be strictly increasing: time {index} = {t} follows {prev}")]
    StopTimesUnsorted { index: usize, t: f64, prev: f64 },
    #[error("max_steps = {max_steps} accepted steps exceeded at t = {t}")]
    MaxStepsExceeded { t: f64, max_steps: usize },
    #[error("step size {h:e} fell below the minimum {h_min:e} at t = {t}")]
    StepSizeTooSmall { t: f64, h: f64, h_min: f64 },
    #[error("stimulus of parameter {param}: {fault}")]
    Stimulus {
        param: usize,
        fault: crate::StimulusFault,
    },
    #[error("state became non-finite at t = {t} (step {step}); component {component} = {value}")]
    NonFiniteState {
        t: f64,
        step: usize,
        component: usize,
        value: f64,
    },
}

impl ForwardError {
    /// Builds [`ForwardError::NonFiniteState`] naming the first bad component.
    pub fn non_finite(t: f64, step: usize, u: &[f64]) -> Self {
        let (component, value) = u
            .iter()
            .copied()
            .enumerate()
            .find(|(_, x)| !x.is_finite())
            .unwrap_or((0, f64::NAN));
        ForwardError::NonFiniteState {
            t,
            step,
            component,
            value,
        }
    }
}
