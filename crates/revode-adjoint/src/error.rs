use revode_checkpoint::CheckpointError;
use revode_forward::ForwardError;
use revode_model::num::Num;
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
    #[error("{what}[{index}] is not finite ({value})", value = Num(*.value))]
    NonFiniteInput {
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("gradient with respect to parameter {index} is not finite")]
    NonFiniteGradient { index: usize },
    #[error("trace_mse component {component} is out of range: the model has {n_states} states")]
    ObservedComponent { component: usize, n_states: usize },
    #[error("trace_mse needs as many values as times and at least one: got {times} times, {values} values")]
    ObservationLengths { times: usize, values: usize },
    #[error("observation time {index} = {t} is outside the time span ({t0}, {t1}]", t = Num(*.t), t0 = Num(*.t0), t1 = Num(*.t1))]
    ObservationOutside {
        index: usize,
        t: f64,
        t0: f64,
        t1: f64,
    },
    #[error("observation times must be strictly increasing: time {index} = {t} follows {prev}", t = Num(*.t), prev = Num(*.prev))]
    ObservationsUnsorted { index: usize, t: f64, prev: f64 },
    #[error("observation time {index} = {t} is not on the fixed grid of dt = {dt}; choose dt so every observation time is a multiple of it, or use dopri5", t = Num(*.t), dt = Num(*.dt))]
    ObservationOffGrid { index: usize, t: f64, dt: f64 },
    #[error("the {loss} loss needs a fixed-step solver (euler, rk4 or beuler)")]
    LossNeedsFixedSteps { loss: &'static str },
    #[error("the model has events ('global' lines), which {what} does not handle: use euler or rk4 (discrete adjoint), or dopri5 or bdf (continuous adjoint)")]
    EventsNeedFixedSteps { what: &'static str },
    #[error("the event_times loss names event {event}, but the model has {n_events} event(s) ('global' lines, counted from 0 in file order)")]
    NoSuchEvent { event: usize, n_events: usize },
    #[error("adjoint step size {h:e} fell below the minimum {h_min:e} at t = {t}", t = Num(*.t))]
    AdjointStepTooSmall { t: f64, h: f64, h_min: f64 },
    #[error("adjoint iteration matrix I + gamma*J^T is singular at t = {t} (step {h:e}, pivot {index}); is the Jacobian finite there?", t = Num(*.t))]
    AdjointSingular { t: f64, h: f64, index: usize },
    #[error("adjoint linear solve failed to converge at t = {t} (step {h:e}, after repeated step reductions)", t = Num(*.t))]
    AdjointDiverged { t: f64, h: f64 },
    #[error("adjoint atol has {got} entries, expected 1, {n_states} (one per state) or {full} (states then parameters)")]
    AdjointAtolLength {
        got: usize,
        n_states: usize,
        full: usize,
    },
    #[error("adjoint became non-finite at t = {t} (step {step})", t = Num(*.t))]
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
