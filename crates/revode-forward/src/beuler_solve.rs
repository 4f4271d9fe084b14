//! A plain forward solve with backward Euler (the `revode solve` path).

use revode_checkpoint::MemoryLimit;
use revode_model::Model;

use crate::{
    reserve_fixed_samples, BackwardEuler, BeulerEvents, BeulerOptions, FixedSolution, ForwardError,
    LinearSolver, NewtonStats, ParamSegments, StepPlan, Stimulus, SwitchedPlan, TimeGrid,
    Trajectory, UniformPlan,
};

/// A backward Euler solve: the solution and what Newton did.
#[derive(Debug, Clone, PartialEq)]
pub struct BeulerSolution {
    pub solution: FixedSolution,
    pub newton: NewtonStats,
    /// The factorisation used (dense or sparse).
    pub linear_solver: LinearSolver,
    /// Events fired (None: the model has none).
    pub events: Option<usize>,
}

/// Integrates `u0` over `grid` with backward Euler, parameters following
/// `stimulus`; `sample_every = Some(s)` keeps every s-th state (and the
/// last) in the solution's samples.
#[allow(clippy::too_many_arguments)]
pub fn solve_beuler<M: Model>(
    model: &M,
    options: &BeulerOptions,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
) -> Result<BeulerSolution, ForwardError> {
    options.validate()?;
    if stimulus.is_empty() {
        let plan = UniformPlan {
            grid: *grid,
            params: p,
        };
        return solve_keeping_samples(model, options, &plan, u0, sample_every);
    }
    let segments = ParamSegments::new(p, stimulus, grid.t0, grid.t1)?;
    let plan = SwitchedPlan::new(*grid, &segments);
    solve_keeping_samples(model, options, &plan, u0, sample_every)
}

/// [`solve_on_plan`] keeping the samples, checked against memory and
/// reserved before the first step (as [`crate::solve_fixed_plan`] does).
fn solve_keeping_samples<M: Model, P: StepPlan>(
    model: &M,
    options: &BeulerOptions,
    plan: &P,
    u0: &[f64],
    sample_every: Option<usize>,
) -> Result<BeulerSolution, ForwardError> {
    let mut samples = Trajectory::with_capacity(0, u0.len());
    if let Some(every) = sample_every {
        let rows = reserve_fixed_samples(plan.n_steps(), every, u0.len(), MemoryLimit::FromSystem)?;
        samples.reserve_rows(rows);
    }
    let mut solved = solve_on_plan(model, options, plan, u0, sample_every, |t, u| {
        samples.push(t, u);
        Ok(())
    })?;
    solved.solution.samples = samples;
    Ok(solved)
}

/// [`solve_beuler`] handing `observe(t, u)` the sampled states as the solve
/// goes (the same states [`crate::solve_fixed_observed`] samples); the
/// returned solution has no samples.
#[allow(clippy::too_many_arguments)]
pub fn solve_beuler_observed<M: Model>(
    model: &M,
    options: &BeulerOptions,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]),
) -> Result<BeulerSolution, ForwardError> {
    solve_beuler_try_observed(
        model,
        options,
        grid,
        u0,
        p,
        stimulus,
        sample_every,
        |t, u| {
            observe(t, u);
            Ok(())
        },
    )
}

/// [`solve_beuler_observed`] with an observer that may stop the solve (a
/// sample store that outgrew memory): its error is returned.
#[allow(clippy::too_many_arguments)]
pub fn solve_beuler_try_observed<M: Model>(
    model: &M,
    options: &BeulerOptions,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<BeulerSolution, ForwardError> {
    options.validate()?;
    if stimulus.is_empty() {
        let plan = UniformPlan {
            grid: *grid,
            params: p,
        };
        return solve_on_plan(model, options, &plan, u0, sample_every, observe);
    }
    let segments = ParamSegments::new(p, stimulus, grid.t0, grid.t1)?;
    let plan = SwitchedPlan::new(*grid, &segments);
    solve_on_plan(model, options, &plan, u0, sample_every, observe)
}

fn solve_on_plan<M: Model, P: StepPlan>(
    model: &M,
    options: &BeulerOptions,
    plan: &P,
    u0: &[f64],
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<BeulerSolution, ForwardError> {
    let n_steps = plan.n_steps();
    let mut stepper = BackwardEuler::new(model, *options);
    let mut events = (model.n_events() > 0).then(|| BeulerEvents::new(model));
    let layout = stepper.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = vec![0.0; layout.len()];
    layout.initial_state(model, plan.time(0), u0, plan.step(0).2, &mut work, &mut x);
    let every = sample_every.map(|s| s.max(1));
    if every.is_some() {
        observe(plan.time(0), u0)?;
    }
    for k in 0..n_steps {
        match events.as_mut() {
            None => stepper.step(model, plan, k, &x, &mut next, &mut work)?,
            Some(ev) => ev.step(&mut stepper, model, plan, k, &x, &mut next, &mut work)?,
        }
        std::mem::swap(&mut x, &mut next);
        if let Some(s) = every {
            let on_sample = match plan.lattice_index(k + 1) {
                Some(j) => j % s == 0,
                None => s == 1,
            };
            if on_sample || k + 1 == n_steps {
                observe(plan.time(k + 1), layout.u(&x))?;
            }
        }
    }
    Ok(BeulerSolution {
        solution: FixedSolution {
            n_steps,
            t_final: plan.time(n_steps),
            final_state: layout.u(&x).to_vec(),
            samples: Trajectory::with_capacity(0, 0),
        },
        newton: stepper.stats(),
        linear_solver: stepper.linear_solver(),
        events: events.map(|ev| ev.fired()),
    })
}
