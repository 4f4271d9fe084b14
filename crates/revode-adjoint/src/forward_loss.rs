//! The loss alone: one forward sweep, no store, no adjoint.
//!
//! Finite-difference checks and the `tune` baseline need the loss as a
//! function of the inputs. It is accumulated term by term in the order
//! [`crate::gradient_fixed`] uses, over bitwise the same states, so the two
//! loss values are equal to the last bit.

use revode_forward::{all_finite, Dopri5, FixedStepper, ForwardError, StepLayout};
use revode_model::Model;

use crate::loss::{dot, StepLoss};
use crate::{
    validate_adaptive, validate_fixed, AdaptiveProblem, FixedProblem, GradientError, Loss,
};

/// The loss of the fixed-step solution of `problem` (forward only).
pub fn loss_fixed<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_fixed(model, problem, loss)?;
    let n = problem.grid.n_steps();
    let grid = problem.grid;
    let mut stepper = FixedStepper::new(problem.method, problem.u0.len());
    let mut work = model.new_work();
    let mut u = problem.u0.to_vec();
    let mut next = vec![0.0; u.len()];
    let step_loss = StepLoss::new(loss, &grid)?;
    let mut value = step_loss.term(0, &u);
    for k in 0..n {
        let (t, h) = (grid.time(k), grid.step_len(k));
        stepper.step(model, t, h, &u, problem.params, &mut next, &mut work);
        if !all_finite(&next) {
            return Err(ForwardError::non_finite(grid.time(k + 1), k + 1, &next).into());
        }
        std::mem::swap(&mut u, &mut next);
        value += step_loss.term(k + 1, &u);
    }
    Ok(value)
}

/// The loss of the dopri5 solution of `problem` (forward only), accumulated
/// as [`crate::gradient_continuous`] does: bitwise equal to its loss.
pub fn loss_adaptive<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_adaptive(model, problem, loss)?;
    let times = loss.observation_times();
    let n = problem.u0.len();
    let mut solver = Dopri5::new(problem.options, n, problem.t0, problem.t1, times)?;
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver.initial_state(model, problem.params, &mut work, problem.u0, &mut x)?;
    let (mut value, mut next_obs, mut k) = (0.0, 0, 0);
    loop {
        let t = x[StepLayout::T];
        if next_obs < times.len() && t == times[next_obs] {
            value += loss.observation_term(next_obs, layout.u(&x));
            next_obs += 1;
        }
        if solver.is_last(&x) {
            if let Some(w) = loss.final_weights() {
                value += dot(w, layout.u(&x));
            }
            return Ok(value);
        }
        solver.advance(model, problem.params, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
    }
}
