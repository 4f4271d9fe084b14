use revode_checkpoint::memory::{BadLimit, TooLarge};
use revode_model::num::Num;
use thiserror::Error;

/// What can go wrong while integrating forward.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("time step dt must be positive and finite, got {dt}", dt = Num(*.dt))]
    InvalidStep { dt: f64 },
    #[error("time span must satisfy t0 < t1 with both finite, got [{t0}, {t1}]", t0 = Num(*.t0), t1 = Num(*.t1))]
    InvalidSpan { t0: f64, t1: f64 },
    #[error("time span [{t0}, {t1}] with dt = {dt} needs {steps} steps, more than the limit {limit}", t0 = Num(*.t0), t1 = Num(*.t1), dt = Num(*.dt), steps = Num(*.steps))]
    TooManySteps {
        t0: f64,
        t1: f64,
        dt: f64,
        steps: f64,
        limit: usize,
    },
    #[error("{what} = {value} is invalid: must be {expected}", value = Num(*.value))]
    InvalidOption {
        what: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("atol has {got} entries, expected 1 or {expected} (one per state)")]
    AtolLength { got: usize, expected: usize },
    #[error("observation time {index} = {t} is outside the time span ({t0}, {t1}]", t = Num(*.t), t0 = Num(*.t0), t1 = Num(*.t1))]
    StopTimeOutside {
        index: usize,
        t: f64,
        t0: f64,
        t1: f64,
    },
    #[error("observation times must be strictly increasing: time {index} = {t} follows {prev}", t = Num(*.t), prev = Num(*.prev))]
    StopTimesUnsorted { index: usize, t: f64, prev: f64 },
    #[error("max_steps = {max_steps} accepted steps exceeded at t = {t}", t = Num(*.t))]
    MaxStepsExceeded { t: f64, max_steps: usize },
    #[error("step size {h:e} fell below the minimum {h_min:e} at t = {t}", t = Num(*.t))]
    StepSizeTooSmall { t: f64, h: f64, h_min: f64 },
    #[error("Newton iteration failed to converge at t = {t} (step {h:e}, after repeated step reductions)", t = Num(*.t))]
    NewtonDiverged { t: f64, h: f64 },
    #[error("iteration matrix I - gamma*J is singular at t = {t} (step {h:e}, pivot {index}); is the Jacobian finite there?", t = Num(*.t))]
    BdfSingularMatrix { t: f64, h: f64, index: usize },
    #[error("stimulus of parameter {param}: {fault}")]
    Stimulus {
        param: usize,
        fault: crate::StimulusFault,
    },
    #[error("Newton's iteration did not converge at t = {t} (step {step}) in {iterations} iterations (last correction {norm} × newton_tol); try a smaller dt (this step was {h} long)", t = Num(*.t), norm = Num(*.norm), h = Num(*.h))]
    NewtonFailed {
        t: f64,
        step: usize,
        iterations: usize,
        /// The last correction's norm over the tolerance.
        norm: f64,
        h: f64,
    },
    #[error("the iteration matrix I − h·J is singular at t = {t} (step {step}; no usable pivot at {index}); try a smaller dt (this step was {h} long)", t = Num(*.t), h = Num(*.h))]
    SingularIterationMatrix {
        t: f64,
        step: usize,
        index: usize,
        h: f64,
    },
    #[error("state became non-finite at t = {t} (step {step}); component {component} = {value}", t = Num(*.t), value = Num(*.value))]
    NonFiniteState {
        t: f64,
        step: usize,
        component: usize,
        value: f64,
    },
    /// The samples a fixed-step solve was asked to keep would not fit in
    /// memory; checked before any step.
    #[error("sampling every {every} of {n_steps} steps keeps {rows} states{}: {too_large}; {}", held_text(*.held_beside), interval_text(*.fits))]
    SamplesTooLarge {
        every: usize,
        n_steps: usize,
        rows: usize,
        /// Bytes the run holds besides the samples, counted with them in
        /// `too_large.needed` (`SampleRoom::beside`).
        held_beside: usize,
        too_large: TooLarge,
        /// The smallest interval whose samples fit, if any.
        fits: Option<usize>,
    },
    /// The samples an adaptive solve keeps outgrew the memory available
    /// (checked before each growth, so nothing was allocated for them).
    #[error("sampling every {every} accepted steps keeps {rows} states by t = {t}, and more do not fit{}: {too_large}; sample less often, or stream the samples instead of keeping them", held_text(*.held_beside), t = Num(*.t))]
    SamplesOutgrewMemory {
        every: usize,
        rows: usize,
        t: f64,
        /// As in [`ForwardError::SamplesTooLarge`].
        held_beside: usize,
        too_large: TooLarge,
    },
    /// Events accumulating in finite time (Zeno behaviour), or a reset that
    /// leaves the state on its own event's threshold.
    #[error("more than {limit} events in one step at t = {t}: the events accumulate (Zeno behaviour); check that each reset moves the state away from its threshold", t = Num(*.t))]
    TooManyEvents { t: f64, limit: usize },
    /// The memory limit in the environment is malformed.
    #[error("{0}")]
    MemoryLimit(#[from] BadLimit),
}

fn held_text(held_beside: usize) -> String {
    if held_beside == 0 {
        String::new()
    } else {
        format!(
            " beside {} the run holds (parameters, solver matrices)",
            revode_checkpoint::memory::human_bytes(held_beside)
        )
    }
}

fn interval_text(fits: Option<usize>) -> String {
    match fits {
        Some(s) => format!("sampling every {s} steps fits"),
        None => "no sampling fits".to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::ForwardError;

    #[test]
    fn tiny_and_huge_numbers_print_short() {
        let e = ForwardError::InvalidStep { dt: -1e-300 }.to_string();
        assert_eq!(e, "time step dt must be positive and finite, got -1e-300");
        let e = ForwardError::TooManySteps {
            t0: 0.0,
            t1: 1e300,
            dt: 1e-300,
            steps: f64::MAX,
            limit: 10,
        }
        .to_string();
        assert!(
            e.starts_with(
                "time span [0, 1e300] with dt = 1e-300 needs 1.7976931348623157e308 steps"
            ),
            "{e}"
        );
        assert!(e.len() < 120, "{e}");
        let e = ForwardError::non_finite(0.5, 3, &[1.0, f64::NAN]).to_string();
        assert!(e.ends_with("component 1 = NaN"), "{e}");
    }
}
