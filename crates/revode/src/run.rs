//! Running a [`Problem`]: the forward solve and the gradient.

use std::time::Instant;

use revode_adjoint::{gradient_fixed, loss_fixed, validate_fixed, FixedProblem, GradientStats};
use revode_forward::{solve_fixed, FixedMethod, TimeGrid};
use revode_model::Model;
use serde::Serialize;

use crate::problem::{Problem, SolverSpec};
use crate::{Error, ModelVisitor};

/// What `revode grad` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradientReport {
    pub model: String,
    pub solver: String,
    pub loss_kind: String,
    pub loss: f64,
    /// dL/dp in parameter order.
    pub gradient: Vec<f64>,
    /// dL/du0 in state order.
    pub gradient_u0: Vec<f64>,
    pub param_names: Vec<String>,
    pub state_names: Vec<String>,
    /// The checkpoint schedule used, in problem-file form.
    pub checkpoints: revode_checkpoint::Schedule,
    pub stats: GradientStats,
}

/// What `revode solve` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolveReport {
    pub model: String,
    pub solver: String,
    pub steps: usize,
    pub t_final: f64,
    pub final_state: Vec<f64>,
    pub state_names: Vec<String>,
    /// `[t, u…]` rows, when sampling was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Vec<f64>>,
    pub seconds: f64,
}

fn fixed_setup(problem: &Problem) -> Result<(FixedMethod, TimeGrid), Error> {
    let (method, dt) = match problem.solver {
        SolverSpec::Euler { dt } => (FixedMethod::Euler, dt),
        SolverSpec::Rk4 { dt } => (FixedMethod::Rk4, dt),
    };
    let [t0, t1] = problem.tspan;
    Ok((method, TimeGrid::new(t0, t1, dt)?))
}

struct GradientRun<'a>(&'a Problem);

impl ModelVisitor for GradientRun<'_> {
    type Output = Result<GradientReport, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let problem = self.0;
        let (method, grid) = fixed_setup(problem)?;
        let (u0, params) = (
            problem.u0_or_default(model),
            problem.params_or_default(model),
        );
        let loss = problem.loss_for(model);
        let schedule = problem.schedule_for(grid.n_steps(), model.dims().n_states);
        let fixed = FixedProblem {
            u0: &u0,
            params: &params,
            grid,
            method,
        };
        let g = gradient_fixed(model, &fixed, &loss, schedule)?;
        Ok(GradientReport {
            model: model.name().to_string(),
            solver: method.name().to_string(),
            loss_kind: loss.name().to_string(),
            loss: g.loss,
            gradient: g.gradient,
            gradient_u0: g.gradient_u0,
            param_names: model.param_names(),
            state_names: model.state_names(),
            checkpoints: schedule,
            stats: g.stats,
        })
    }
}

/// Computes the loss and its gradient for a problem.
pub fn gradient(problem: &Problem) -> Result<GradientReport, Error> {
    problem.model.visit(GradientRun(problem))
}

struct SolveRun<'a>(&'a Problem, Option<usize>);

impl ModelVisitor for SolveRun<'_> {
    type Output = Result<SolveReport, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let SolveRun(problem, sample_every) = self;
        let (method, grid) = fixed_setup(problem)?;
        let (u0, params) = (
            problem.u0_or_default(model),
            problem.params_or_default(model),
        );
        let loss = problem.loss_for(model);
        validate_fixed(
            model,
            &FixedProblem {
                u0: &u0,
                params: &params,
                grid,
                method,
            },
            &loss,
        )?;
        let started = Instant::now();
        let sol = solve_fixed(model, method, &grid, &u0, &params, sample_every)?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(SolveReport {
            model: model.name().to_string(),
            solver: method.name().to_string(),
            steps: sol.n_steps,
            t_final: sol.t_final,
            final_state: sol.final_state,
            state_names: model.state_names(),
            samples: sol
                .samples
                .into_iter()
                .map(|(t, u)| std::iter::once(t).chain(u).collect())
                .collect(),
            seconds,
        })
    }
}

/// Solves a problem forward; `sample_every = Some(s)` also returns every
/// s-th state.
pub fn solve(problem: &Problem, sample_every: Option<usize>) -> Result<SolveReport, Error> {
    problem.model.visit(SolveRun(problem, sample_every))
}

struct LossRun<'a>(&'a Problem);

impl ModelVisitor for LossRun<'_> {
    type Output = Result<f64, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let problem = self.0;
        let (method, grid) = fixed_setup(problem)?;
        let (u0, params) = (
            problem.u0_or_default(model),
            problem.params_or_default(model),
        );
        let fixed = FixedProblem {
            u0: &u0,
            params: &params,
            grid,
            method,
        };
        Ok(loss_fixed(model, &fixed, &problem.loss_for(model))?)
    }
}

/// The loss alone (one forward solve, nothing stored): bitwise equal to
/// [`GradientReport::loss`] for the same problem. Finite differences call it
/// with `params` or `u0` perturbed.
pub fn loss(problem: &Problem) -> Result<f64, Error> {
    problem.model.visit(LossRun(problem))
}
