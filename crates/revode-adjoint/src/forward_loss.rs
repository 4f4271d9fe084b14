//! The loss alone: one forward sweep, no store, no adjoint.
//!
//! Finite-difference checks and the `tune` baseline need the loss as a
//! function of the inputs. It is accumulated term by term in the order
//! [`crate::gradient_fixed`] uses, over bitwise the same states, so the two
//! loss values are equal to the last bit.

use revode_forward::{all_finite, FixedStepper, ForwardError};
use revode_model::Model;

use crate::{validate_fixed, FixedProblem, GradientError, Loss};

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
    let mut value = loss.term(0, n, &u);
    for k in 0..n {
        let (t, h) = (grid.time(k), grid.step_len(k));
        stepper.step(model, t, h, &u, problem.params, &mut next, &mut work);
        if !all_finite(&next) {
            return Err(ForwardError::non_finite(grid.time(k + 1), k + 1, &next).into());
        }
        std::mem::swap(&mut u, &mut next);
        value += loss.term(k + 1, n, &u);
    }
    Ok(value)
}
