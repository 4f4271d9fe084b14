//! The loss alone: one forward sweep, no store, no adjoint.
//!
//! Finite-difference checks and the `tune` baseline need the loss as a
//! function of the inputs. It is accumulated term by term in the order
//! [`crate::gradient_fixed`] uses, over bitwise the same states, so the two
//! loss values are equal to the last bit.

use revode_forward::{
    all_finite, solve_fixed_plan, BdfLayout, EventStepper, FixedStepper, ForwardError, StepLayout,
    StepPlan, Stimulus,
};
use revode_model::Model;

use crate::continuous_adaptive::adaptive_solver;
use crate::continuous_bdf::{bdf_solver, validate_bdf, BdfProblem};
use crate::fixed_pass::{on_plan, PlanVisitor};
use crate::loss::{dot, EventTimeLoss, StepLoss};
use crate::{
    validate_adaptive, validate_fixed_with_stimulus, AdaptiveProblem, FixedProblem, GradientError,
    Loss,
};

/// The loss of the fixed-step solution of `problem` (forward only).
pub fn loss_fixed<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    loss: &Loss,
) -> Result<f64, GradientError> {
    loss_fixed_with_stimulus(model, problem, &Stimulus::none(), loss)
}

/// [`loss_fixed`] with parameters following `stimulus`.
pub fn loss_fixed_with_stimulus<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_fixed_with_stimulus(model, problem, stimulus, loss)?;
    on_plan(
        problem,
        stimulus,
        FixedLoss {
            model,
            problem,
            loss,
        },
    )
}

struct FixedLoss<'a, M> {
    model: &'a M,
    problem: &'a FixedProblem<'a>,
    loss: &'a Loss,
}

impl<M: Model> PlanVisitor for FixedLoss<'_, M> {
    type Output = f64;

    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<f64, GradientError> {
        let FixedLoss {
            model,
            problem,
            loss,
        } = self;
        let step_loss = StepLoss::new(loss, &plan)?;
        if model.n_events() == 0 && step_loss.final_only() {
            // The plain solve's loop (its states in registers for small
            // models): the terms before the last are all +0.0, so the sum
            // is bitwise the same.
            let first = step_loss.term(0, problem.u0);
            let n = plan.n_steps();
            if n == 0 {
                return Ok(first);
            }
            let solved = solve_fixed_plan(model, problem.method, &plan, problem.u0, None)?;
            return Ok(first + step_loss.term(n, &solved.final_state));
        }
        let mut stepper = FixedStepper::new(problem.method, problem.u0.len());
        let mut events = (model.n_events() > 0).then(|| EventStepper::new(problem.method, model));
        if let (Loss::EventTimes { event, times }, Some(ev)) = (loss, events.as_mut()) {
            ev.record_times(*event, times.len());
        }
        let mut work = model.new_work();
        let mut u = problem.u0.to_vec();
        let mut next = vec![0.0; u.len()];
        let mut value = step_loss.term(0, &u);
        for k in 0..plan.n_steps() {
            let (t, h, p) = plan.step(k);
            match events.as_mut() {
                None => stepper.step(model, t, h, &u, p, &mut next, &mut work),
                Some(ev) => ev.step(model, t, h, &u, p, &mut next, &mut work)?,
            }
            if !all_finite(&next) {
                return Err(ForwardError::non_finite(plan.time(k + 1), k + 1, &next).into());
            }
            std::mem::swap(&mut u, &mut next);
            value += step_loss.term(k + 1, &u);
        }
        if let (Loss::EventTimes { event, times }, Some(ev)) = (loss, events.as_mut()) {
            if let Some(recorded) = ev.stop_recording() {
                value += EventTimeLoss::new(*event, times, recorded, plan.t1()).1;
            }
        }
        Ok(value)
    }
}

/// The loss of the dopri5 solution of `problem` (forward only), accumulated
/// as [`crate::gradient_continuous`] does: bitwise equal to its loss.
pub fn loss_adaptive<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    loss: &Loss,
) -> Result<f64, GradientError> {
    loss_adaptive_with_stimulus(model, problem, &Stimulus::none(), loss)
}

/// [`loss_adaptive`] with parameters following `stimulus`, accumulated as
/// [`crate::gradient_continuous_with_stimulus`] does.
pub fn loss_adaptive_with_stimulus<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_adaptive(model, problem, loss)?;
    let mut solver = adaptive_solver(problem, stimulus, loss)?;
    let times = loss.observation_times();
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver.initial_state(model, problem.params, &mut work, problem.u0, &mut x)?;
    let (mut value, mut next_obs, mut k) = (0.0, 0, 0);
    let (watched, targets) = match loss {
        Loss::EventTimes { event, times } => (Some(*event), times.as_slice()),
        _ => (None, &[][..]),
    };
    let mut fired_times = Vec::with_capacity(targets.len());
    let mut fired = 0;
    loop {
        let t = x[StepLayout::T];
        if next_obs < times.len() && t == times[next_obs] {
            value += loss.observation_term(next_obs, layout.u(&x));
            next_obs += 1;
        }
        if let (Some(e), Some(w)) = (StepLayout::pending_event(&x), watched) {
            if e == w {
                if fired_times.len() < targets.len() {
                    fired_times.push(t);
                }
                fired += 1;
            }
        }
        if solver.is_last(&x) {
            if let Some(w) = loss.final_weights() {
                value += dot(w, layout.u(&x));
            }
            if let Some(e) = watched {
                value += EventTimeLoss::new(e, targets, (fired_times, fired), problem.t1).1;
            }
            return Ok(value);
        }
        solver.advance(model, problem.params, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
    }
}

/// The loss of the BDF solution of `problem` (forward only), accumulated as
/// [`crate::gradient_continuous_bdf_with_stimulus`] does: bitwise equal to
/// its loss.
pub fn loss_bdf_with_stimulus<M: Model>(
    model: &M,
    problem: &BdfProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_bdf(model, problem, loss)?;
    let mut solver = bdf_solver(model, problem, stimulus, loss)?;
    let times = loss.observation_times();
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver.initial_state(problem.params, &mut work, problem.u0, &mut x)?;
    let (mut value, mut next_obs, mut k) = (0.0, 0, 0);
    let (watched, targets) = match loss {
        Loss::EventTimes { event, times } => (Some(*event), times.as_slice()),
        _ => (None, &[][..]),
    };
    let mut fired_times = Vec::with_capacity(targets.len());
    let mut fired = 0;
    loop {
        let t = x[BdfLayout::T];
        if next_obs < times.len() && t == times[next_obs] {
            value += loss.observation_term(next_obs, layout.u(&x));
            next_obs += 1;
        }
        // As the gradient counts them: an event exactly at t1 is not applied.
        if let (Some(e), Some(w), true) = (BdfLayout::pending_event(&x), watched, t < problem.t1) {
            if e == w {
                if fired_times.len() < targets.len() {
                    fired_times.push(t);
                }
                fired += 1;
            }
        }
        if solver.is_last(&x) {
            if let Some(w) = loss.final_weights() {
                value += dot(w, layout.u(&x));
            }
            if let Some(e) = watched {
                value += EventTimeLoss::new(e, targets, (fired_times, fired), problem.t1).1;
            }
            return Ok(value);
        }
        solver.advance(problem.params, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
    }
}
