//! Running a problem with the `bdf` solver: gradient, forward solve and
//! loss (kept apart from `run.rs`, which dispatches here).

use revode_adjoint::{
    gradient_continuous_bdf_with_stimulus, loss_bdf_with_stimulus, validate_bdf, BdfProblem,
    ContinuousOptions, Gradient, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_bdf_try_observed, AdaptiveSolution, BdfOptions, ForwardError, Stimulus,
};
use revode_model::Model;

use crate::{Error, Problem};

fn bdf_problem<'a>(
    problem: &Problem,
    options: &'a BdfOptions,
    (u0, params): (&'a [f64], &'a [f64]),
) -> BdfProblem<'a> {
    let [t0, t1] = problem.tspan;
    BdfProblem {
        u0,
        params,
        t0,
        t1,
        options,
    }
}

/// The continuous-adjoint gradient of a bdf problem.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradient<M: Model>(
    model: &M,
    problem: &Problem,
    options: &BdfOptions,
    inputs: (&[f64], &[f64]),
    stimulus: &Stimulus,
    loss: &Loss,
    adjoint: &ContinuousOptions,
    schedule: Schedule,
) -> Result<Gradient, Error> {
    let bdf = bdf_problem(problem, options, inputs);
    Ok(gradient_continuous_bdf_with_stimulus(
        model, &bdf, stimulus, loss, adjoint, schedule,
    )?)
}

/// The forward solve of a bdf problem, sampled every `every` steps.
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve<M: Model>(
    model: &M,
    problem: &Problem,
    options: &BdfOptions,
    inputs: (&[f64], &[f64]),
    stimulus: &Stimulus,
    loss: &Loss,
    every: Option<usize>,
    observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<AdaptiveSolution, Error> {
    let bdf = bdf_problem(problem, options, inputs);
    validate_bdf(model, &bdf, loss)?;
    let (u0, params) = inputs;
    Ok(solve_bdf_try_observed(
        model, options, bdf.t0, bdf.t1, u0, params, stimulus, every, observe,
    )?)
}

/// The loss alone of a bdf problem (bitwise the gradient's).
pub(crate) fn loss<M: Model>(
    model: &M,
    problem: &Problem,
    options: &BdfOptions,
    inputs: (&[f64], &[f64]),
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<f64, Error> {
    let bdf = bdf_problem(problem, options, inputs);
    Ok(loss_bdf_with_stimulus(model, &bdf, stimulus, loss)?)
}
