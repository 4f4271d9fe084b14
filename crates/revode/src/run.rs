//! Running a [`Problem`]: the forward solve and the gradient.

use std::time::Instant;

use revode_adjoint::{
    gradient_beuler_with_stimulus, gradient_continuous_fixed_with_stimulus,
    gradient_continuous_with_stimulus, gradient_fixed_with_stimulus, loss_adaptive_with_stimulus,
    loss_beuler_with_stimulus, loss_fixed_with_stimulus, validate_adaptive,
    validate_beuler_with_stimulus, validate_fixed_with_stimulus, AdaptiveProblem, BeulerProblem,
    ContinuousOptions, FixedProblem, Gradient, GradientStats, Loss,
};
use revode_checkpoint::MemoryLimit;
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_adaptive_try_observed, solve_beuler_try_observed, solve_fixed_try_observed,
    AdaptiveOptions, BeulerOptions, FixedMethod, ForwardError, NewtonStats, ParamSegments,
    SampleRoom, StepTimes, Stimulus, SwitchedPlan, TimeGrid, Trajectory,
};
use revode_model::Model;
use serde::Serialize;

use crate::problem::{AdjointMethod, Problem, SolverSpec};
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
    /// Parameters following a stimulus protocol: their gradient entry is the
    /// derivative with respect to their value in `params`, which acts only
    /// before the protocol's first switch time (docs/stimulus.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stimulated: Vec<String>,
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
    /// Rejected attempts (dopri5).
    pub rejected_steps: usize,
    pub t_final: f64,
    pub final_state: Vec<f64>,
    pub state_names: Vec<String>,
    /// A model file's `aux` outputs at the final state (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aux_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub final_aux: Vec<f64>,
    /// What Newton did (beuler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newton: Option<NewtonStats>,
    /// `[t, u…]` rows, when sampling was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Vec<f64>>,
    pub seconds: f64,
}

/// What kind of solver a problem asks for, with its grid.
enum Setup {
    /// Euler or RK4.
    Explicit(FixedMethod, TimeGrid),
    /// Backward Euler.
    Implicit(BeulerOptions, TimeGrid),
    /// dopri5 or bdf.
    Adaptive,
}

/// The grid of a fixed-step solver (euler, rk4, beuler), or None for an
/// adaptive one.
pub(crate) fn fixed_grid(problem: &Problem) -> Result<Option<TimeGrid>, Error> {
    Ok(match setup(problem)? {
        Setup::Explicit(_, grid) | Setup::Implicit(_, grid) => Some(grid),
        Setup::Adaptive => None,
    })
}

/// The method and grid of an explicit fixed-step solver (euler, rk4), or
/// None.
pub(crate) fn explicit_setup(problem: &Problem) -> Result<Option<(FixedMethod, TimeGrid)>, Error> {
    Ok(match setup(problem)? {
        Setup::Explicit(method, grid) => Some((method, grid)),
        _ => None,
    })
}

fn setup(problem: &Problem) -> Result<Setup, Error> {
    let [t0, t1] = problem.tspan;
    Ok(match problem.solver {
        SolverSpec::Euler { dt } => Setup::Explicit(FixedMethod::Euler, TimeGrid::new(t0, t1, dt)?),
        SolverSpec::Rk4 { dt } => Setup::Explicit(FixedMethod::Rk4, TimeGrid::new(t0, t1, dt)?),
        SolverSpec::Beuler { dt, .. } => {
            let options = problem.solver.beuler_options().expect("beuler");
            options.validate()?;
            Setup::Implicit(options, TimeGrid::new(t0, t1, dt)?)
        }
        SolverSpec::Dopri5 { .. } | SolverSpec::Bdf { .. } => Setup::Adaptive,
    })
}

/// Models with events run only where events are located: euler, rk4 and
/// beuler (gradients by the discrete adjoint), dopri5 and bdf (by the continuous
/// adjoint); docs/events.md.
pub(crate) fn check_events<M: Model>(
    model: &M,
    problem: &Problem,
    gradient: bool,
) -> Result<(), Error> {
    if model.n_events() == 0 {
        return Ok(());
    }
    let solver = problem.solver.name();
    if !matches!(solver, "euler" | "rk4" | "beuler" | "dopri5" | "bdf") {
        return Err(invalid(format!(
            "the model has events ('global' lines), which only euler, rk4, beuler, dopri5 and bdf \
             locate; {solver} would ignore them"
        )));
    }
    if gradient
        && matches!(solver, "euler" | "rk4")
        && problem.adjoint.method == AdjointMethod::Continuous
    {
        return Err(invalid(
            "the model has events ('global' lines): with euler or rk4 use the discrete \
             adjoint (the continuous adjoint on a fixed grid does not apply their jumps)",
        ));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid {
        origin: "problem".to_string(),
        message: message.into(),
    }
}

/// The continuous adjoint's own options (dopri5 and bdf).
fn continuous_options<M: Model>(model: &M, problem: &Problem) -> ContinuousOptions {
    let a = &problem.adjoint;
    ContinuousOptions {
        rtol: a.rtol,
        atol: a.atol.as_ref().map(|a| a.to_vec()),
        error_control: a.error_control.unwrap_or_default(),
        held_outside_store: crate::memory::held_outside(model, problem, true),
    }
}

/// Runs the gradient the solver and adjoint blocks ask for.
fn run_gradient<M: Model>(
    model: &M,
    problem: &Problem,
    u0: &[f64],
    params: &[f64],
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<(Gradient, Schedule), Error> {
    let adjoint = &problem.adjoint;
    let setup = setup(problem)?;
    if !matches!(setup, Setup::Adaptive)
        && (adjoint.rtol.is_some() || adjoint.atol.is_some() || adjoint.error_control.is_some())
    {
        return Err(invalid(
            "adjoint rtol, atol and error_control apply to the adaptive solvers (dopri5, bdf) only",
        ));
    }
    match (setup, adjoint.method) {
        (Setup::Explicit(method, grid), method_kind) => {
            let schedule =
                problem.schedule_for(grid.n_steps(), model.dims().n_states, model.n_events());
            let fixed = FixedProblem {
                u0,
                params,
                grid,
                method,
            };
            let g = match method_kind {
                AdjointMethod::Discrete => {
                    gradient_fixed_with_stimulus(model, &fixed, stimulus, loss, schedule)?
                }
                AdjointMethod::Continuous => gradient_continuous_fixed_with_stimulus(
                    model, &fixed, stimulus, loss, schedule,
                )?,
            };
            Ok((g, schedule))
        }
        (Setup::Implicit(_, _), AdjointMethod::Continuous) => Err(invalid(
            "the continuous adjoint is not available for beuler: its discrete adjoint is \
             the exact gradient of the computed solution at about the same cost; use \
             \"adjoint\": {\"method\": \"discrete\"}",
        )),
        (Setup::Implicit(options, grid), AdjointMethod::Discrete) => {
            let schedule =
                problem.schedule_for(grid.n_steps(), model.dims().n_states, model.n_events());
            let beuler = BeulerProblem {
                u0,
                params,
                grid,
                options,
            };
            let g = gradient_beuler_with_stimulus(model, &beuler, stimulus, loss, schedule)?;
            Ok((g, schedule))
        }
        (Setup::Adaptive, AdjointMethod::Discrete) => Err(invalid(
            "the discrete adjoint needs a fixed-step solver (euler, rk4 or beuler); \
             use \"adjoint\": {\"method\": \"continuous\"} with dopri5 or bdf",
        )),
        (Setup::Adaptive, AdjointMethod::Continuous) => {
            // The step count is unknown before the run: keep every state
            // unless a schedule is given.
            let schedule = adjoint.checkpoints.unwrap_or(Schedule::All);
            if let Some(options) = problem.solver.bdf_options() {
                let g = crate::run_bdf::gradient(
                    model,
                    problem,
                    &options,
                    (u0, params),
                    stimulus,
                    loss,
                    &continuous_options(model, problem),
                    schedule,
                )?;
                return Ok((g, schedule));
            }
            let options = problem.solver.adaptive_options().expect("dopri5");
            let [t0, t1] = problem.tspan;
            let adaptive = AdaptiveProblem {
                u0,
                params,
                t0,
                t1,
                options: &options,
            };
            let g = gradient_continuous_with_stimulus(
                model,
                &adaptive,
                stimulus,
                loss,
                &continuous_options(model, problem),
                schedule,
            )?;
            Ok((g, schedule))
        }
    }
}

struct GradientRun<'a>(&'a Problem);

impl ModelVisitor for GradientRun<'_> {
    type Output = Result<GradientReport, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let problem = self.0;
        crate::memory::check_run(MemoryLimit::FromSystem, model, problem, true)?;
        check_events(model, problem, true)?;
        let (u0, params, loss) = problem.resolved_inputs(model);
        let stimulus = problem.stimulus_for(model)?;
        let (g, schedule) = run_gradient(model, problem, &u0, &params, &stimulus, &loss)?;
        let param_names = model.param_names();
        let stimulated = stimulus
            .stimulated()
            .map(|i| param_names[i].clone())
            .collect();
        Ok(GradientReport {
            model: model.name().to_string(),
            solver: problem.solver.name().to_string(),
            loss_kind: loss.name().to_string(),
            loss: g.loss,
            gradient: g.gradient,
            gradient_u0: g.gradient_u0,
            param_names,
            state_names: model.state_names(),
            stimulated,
            checkpoints: schedule,
            stats: g.stats,
        })
    }
}

/// Computes the loss and its gradient for a problem.
pub fn gradient(problem: &Problem) -> Result<GradientReport, Error> {
    problem.model.visit(GradientRun(problem))?
}

/// Receives `(t, u)` of sampled states.
type Observer<'o> = &'o mut dyn FnMut(f64, &[f64]);

/// Where sampled states go: every `every`-th state to `sink`.
struct Sampling<'o> {
    every: usize,
    sink: Sink<'o>,
}

enum Sink<'o> {
    /// Handed to the caller as the solve goes.
    Stream(Observer<'o>),
    /// Kept as `[t, u…]` rows, reserved or grown only after a memory check.
    Keep(&'o mut Vec<Vec<f64>>),
}

/// The observer a solve calls: `sink` streamed or kept, or nothing.
fn observer<'o>(
    sink: Option<Sink<'o>>,
    room: Option<SampleRoom>,
    max_rows: usize,
    every: Option<usize>,
) -> impl FnMut(f64, &[f64]) -> Result<(), ForwardError> + 'o {
    let (mut stream, mut keep) = match (sink, room) {
        (Some(Sink::Stream(observe)), _) => (Some(observe), None),
        (Some(Sink::Keep(rows)), Some(room)) => (
            None,
            Some(keep_rows(rows, room, max_rows, every.unwrap_or(1))),
        ),
        _ => (None, None),
    };
    move |t, u| {
        if let Some(observe) = stream.as_mut() {
            observe(t, u);
        }
        match keep.as_mut() {
            Some(keep) => keep(t, u),
            None => Ok(()),
        }
    }
}

/// An observer keeping `[t, u…]` rows in `rows`: whenever they are full,
/// grown geometrically (at most to `max_rows`) after `room` says it fits.
fn keep_rows<'r>(
    rows: &'r mut Vec<Vec<f64>>,
    room: SampleRoom,
    max_rows: usize,
    every: usize,
) -> impl FnMut(f64, &[f64]) -> Result<(), ForwardError> + 'r {
    move |t, u| {
        if rows.len() == rows.capacity() {
            let grown = room.grow(rows.len(), max_rows).map_err(|too_large| {
                ForwardError::SamplesOutgrewMemory {
                    every,
                    rows: rows.len(),
                    t,
                    held_beside: room.held_beside(),
                    too_large,
                }
            })?;
            rows.reserve_exact(grown - rows.len());
        }
        rows.push(std::iter::once(t).chain(u.iter().copied()).collect());
        Ok(())
    }
}

struct SolveRun<'a, 'o>(&'a Problem, Option<Sampling<'o>>);

impl ModelVisitor for SolveRun<'_, '_> {
    type Output = Result<SolveReport, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let SolveRun(problem, sampling) = self;
        crate::memory::check_run(MemoryLimit::FromSystem, model, problem, false)?;
        check_events(model, problem, false)?;
        let (u0, params, loss) = problem.resolved_inputs(model);
        let stimulus = problem.stimulus_for(model)?;
        let every = sampling.as_ref().map(|s| s.every);
        let mut sink = sampling.map(|s| s.sink);
        let room = match sink {
            Some(Sink::Keep(_)) => Some(
                SampleRoom::new(
                    MemoryLimit::FromSystem,
                    crate::memory::kept_row_bytes(model.dims().n_states),
                )?
                .beside(crate::memory::held_outside(model, problem, false)),
            ),
            _ => None,
        };
        let started = Instant::now();
        let mut newton = None;
        let (steps, rejected_steps, t_final, final_state) = match setup(problem)? {
            Setup::Explicit(method, grid) => {
                let fixed = FixedProblem {
                    u0: &u0,
                    params: &params,
                    grid,
                    method,
                };
                validate_fixed_with_stimulus(model, &fixed, &stimulus, &loss)?;
                let max_rows =
                    reserve_grid_rows(room, every, &grid, &params, &stimulus, &mut sink)?;
                let sol = solve_fixed_try_observed(
                    model,
                    method,
                    &grid,
                    &u0,
                    &params,
                    &stimulus,
                    every,
                    observer(sink, room, max_rows, every),
                )?;
                (sol.n_steps, 0, sol.t_final, sol.final_state)
            }
            Setup::Implicit(options, grid) => {
                let beuler = BeulerProblem {
                    u0: &u0,
                    params: &params,
                    grid,
                    options,
                };
                validate_beuler_with_stimulus(model, &beuler, &stimulus, &loss)?;
                let max_rows =
                    reserve_grid_rows(room, every, &grid, &params, &stimulus, &mut sink)?;
                let solved = solve_beuler_try_observed(
                    model,
                    &options,
                    &grid,
                    &u0,
                    &params,
                    &stimulus,
                    every,
                    observer(sink, room, max_rows, every),
                )?;
                newton = Some(solved.newton);
                let sol = solved.solution;
                (sol.n_steps, 0, sol.t_final, sol.final_state)
            }
            Setup::Adaptive if problem.solver.bdf_options().is_some() => {
                let options = problem.solver.bdf_options().expect("bdf");
                let max_rows = Trajectory::rows_for(options.adaptive.max_steps, every.unwrap_or(1));
                let sol = crate::run_bdf::solve(
                    model,
                    problem,
                    &options,
                    (&u0, &params),
                    &stimulus,
                    &loss,
                    every,
                    observer(sink, room, max_rows, every),
                )?;
                let c = sol.counts;
                (c.accepted, c.rejected, sol.t_final, sol.final_state)
            }
            Setup::Adaptive => {
                let options: AdaptiveOptions = problem.solver.adaptive_options().expect("dopri5");
                let [t0, t1] = problem.tspan;
                let adaptive = AdaptiveProblem {
                    u0: &u0,
                    params: &params,
                    t0,
                    t1,
                    options: &options,
                };
                validate_adaptive(model, &adaptive, &loss)?;
                // u_0, every s-th of at most max_steps accepted steps, the last.
                let max_rows = Trajectory::rows_for(options.max_steps, every.unwrap_or(1));
                let sol = solve_adaptive_try_observed(
                    model,
                    &options,
                    t0,
                    t1,
                    &u0,
                    &params,
                    &stimulus,
                    every,
                    observer(sink, room, max_rows, every),
                )?;
                let c = sol.counts;
                (c.accepted, c.rejected, sol.t_final, sol.final_state)
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let aux_names = model.aux_names();
        let mut final_aux = vec![0.0; aux_names.len()];
        // At t1 a stimulated parameter has its protocol's last value.
        let [t0, t1] = problem.tspan;
        let segments = ParamSegments::new(&params, &stimulus, t0, t1)?;
        let final_params = segments.params(segments.len() - 1);
        model.aux(t_final, &final_state, final_params, &mut final_aux);
        Ok(SolveReport {
            model: model.name().to_string(),
            solver: problem.solver.name().to_string(),
            steps,
            rejected_steps,
            t_final,
            final_state,
            state_names: model.state_names(),
            aux_names,
            final_aux,
            newton,
            samples: Vec::new(),
            seconds,
        })
    }
}

/// Solves a problem forward; `sample_every = Some(s)` also returns every
/// s-th state (the first and the last always). The samples are checked
/// against the memory available before they are reserved (fixed steps:
/// all at once, before the first step) or grown (dopri5); too many is an
/// error that names an interval that fits, or the time the samples
/// outgrew memory. [`solve_observed`] streams them instead.
pub fn solve(problem: &Problem, sample_every: Option<usize>) -> Result<SolveReport, Error> {
    let Some(every) = sample_every else {
        return problem.model.visit(SolveRun(problem, None))?;
    };
    let mut samples = Vec::new();
    let sampling = Sampling {
        every: every.max(1),
        sink: Sink::Keep(&mut samples),
    };
    let mut report = problem.model.visit(SolveRun(problem, Some(sampling)))??;
    report.samples = samples;
    Ok(report)
}

/// Samples of a fixed-grid solve: every row is known before the first
/// step, so they are checked against memory and reserved all at once. The
/// number of rows (0 without kept samples).
fn reserve_grid_rows(
    room: Option<SampleRoom>,
    every: Option<usize>,
    grid: &TimeGrid,
    params: &[f64],
    stimulus: &Stimulus,
    sink: &mut Option<Sink<'_>>,
) -> Result<usize, Error> {
    let (Some(room), Some(every)) = (room, every) else {
        return Ok(0);
    };
    let n_steps = fixed_steps(grid, params, stimulus)?;
    let max_rows = Trajectory::rows_for(n_steps, every);
    room.check(max_rows)
        .map_err(|too_large| ForwardError::SamplesTooLarge {
            every,
            n_steps,
            rows: max_rows,
            held_beside: room.held_beside(),
            fits: room.fitting_interval(n_steps),
            too_large,
        })?;
    if let Some(Sink::Keep(rows)) = sink.as_mut() {
        rows.reserve_exact(max_rows);
    }
    Ok(max_rows)
}

/// Steps of the fixed-step solve on `grid`, cut at the stimulus's switch
/// times.
fn fixed_steps(grid: &TimeGrid, params: &[f64], stimulus: &Stimulus) -> Result<usize, Error> {
    if stimulus.is_empty() {
        return Ok(grid.n_steps());
    }
    let segments = ParamSegments::new(params, stimulus, grid.t0, grid.t1)?;
    Ok(SwitchedPlan::new(*grid, &segments).n_steps())
}

/// Solves a problem forward, handing `observe(t, u)` every `every`-th state
/// (the first and the last always) while it runs, so a long trajectory can
/// be written out without being held in memory. The report has no samples.
pub fn solve_observed(
    problem: &Problem,
    every: usize,
    observe: &mut dyn FnMut(f64, &[f64]),
) -> Result<SolveReport, Error> {
    let sampling = Sampling {
        every: every.max(1),
        sink: Sink::Stream(observe),
    };
    problem.model.visit(SolveRun(problem, Some(sampling)))?
}

struct LossRun<'a>(&'a Problem);

impl ModelVisitor for LossRun<'_> {
    type Output = Result<f64, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let problem = self.0;
        crate::memory::check_run(MemoryLimit::FromSystem, model, problem, false)?;
        check_events(model, problem, false)?;
        let (u0, params, loss) = problem.resolved_inputs(model);
        let stimulus = problem.stimulus_for(model)?;
        match setup(problem)? {
            Setup::Explicit(method, grid) => {
                let fixed = FixedProblem {
                    u0: &u0,
                    params: &params,
                    grid,
                    method,
                };
                Ok(loss_fixed_with_stimulus(model, &fixed, &stimulus, &loss)?)
            }
            Setup::Implicit(options, grid) => {
                let beuler = BeulerProblem {
                    u0: &u0,
                    params: &params,
                    grid,
                    options,
                };
                Ok(loss_beuler_with_stimulus(model, &beuler, &stimulus, &loss)?)
            }
            Setup::Adaptive if problem.solver.bdf_options().is_some() => {
                let options = problem.solver.bdf_options().expect("bdf");
                crate::run_bdf::loss(model, problem, &options, (&u0, &params), &stimulus, &loss)
            }
            Setup::Adaptive => {
                let options = problem.solver.adaptive_options().expect("dopri5");
                let [t0, t1] = problem.tspan;
                let adaptive = AdaptiveProblem {
                    u0: &u0,
                    params: &params,
                    t0,
                    t1,
                    options: &options,
                };
                Ok(loss_adaptive_with_stimulus(
                    model, &adaptive, &stimulus, &loss,
                )?)
            }
        }
    }
}

/// The loss alone (one forward solve, nothing stored): bitwise equal to
/// [`GradientReport::loss`] for the same problem. Finite differences call it
/// with `params` or `u0` perturbed.
pub fn loss(problem: &Problem) -> Result<f64, Error> {
    problem.model.visit(LossRun(problem))?
}
