//! A plain forward solve on a fixed grid (the `revode solve` path).

use revode_checkpoint::MemoryLimit;
use revode_model::Model;

use crate::{
    all_finite, EventStepper, FixedMethod, FixedStepper, ForwardError, ParamSegments, SampleRoom,
    StepPlan, Stimulus, SwitchedPlan, TimeGrid, Trajectory, UniformPlan,
};

/// Result of a forward solve: the final state and, if asked, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedSolution {
    pub n_steps: usize,
    pub t_final: f64,
    pub final_state: Vec<f64>,
    /// `(t, u)` every `sample_every` steps (and at the end), if asked.
    pub samples: Trajectory,
}

/// Integrates `u0` over `grid`. `sample_every = Some(s)` records every s-th
/// state (and the last); `None` keeps only the final state. The samples are
/// checked against the memory available ([`MemoryLimit::FromSystem`])
/// before any step: too many is [`ForwardError::SamplesTooLarge`], naming an
/// interval that fits.
pub fn solve_fixed<M: Model>(
    model: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    sample_every: Option<usize>,
) -> Result<FixedSolution, ForwardError> {
    solve_fixed_with_stimulus(model, method, grid, u0, p, &Stimulus::none(), sample_every)
}

/// [`solve_fixed`] with the parameters following `stimulus` (checked against
/// `p` and the grid's span); the grid is split at every switch time.
pub fn solve_fixed_with_stimulus<M: Model>(
    model: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
) -> Result<FixedSolution, ForwardError> {
    if stimulus.is_empty() {
        let plan = UniformPlan {
            grid: *grid,
            params: p,
        };
        return solve_fixed_plan(model, method, &plan, u0, sample_every);
    }
    let segments = ParamSegments::new(p, stimulus, grid.t0, grid.t1)?;
    let plan = SwitchedPlan::new(*grid, &segments);
    solve_fixed_plan(model, method, &plan, u0, sample_every)
}

/// [`solve_fixed_with_stimulus`] handing `observe(t, u)` every s-th state
/// (u_0 first, and always the last) for `sample_every = Some(s)` as the solve
/// goes, so a trajectory can be streamed out without being held. The
/// returned solution has no samples. With a stimulus, "every s-th" counts
/// lattice steps (times t0 + j·s·dt); a switch time that cut a step is
/// sampled only with s = 1.
#[allow(clippy::too_many_arguments)]
pub fn solve_fixed_observed<M: Model>(
    model: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]),
) -> Result<FixedSolution, ForwardError> {
    solve_fixed_try_observed(
        model,
        method,
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

/// [`solve_fixed_observed`] with an observer that may stop the solve: its
/// first error is returned as the solve's.
#[allow(clippy::too_many_arguments)]
pub fn solve_fixed_try_observed<M: Model>(
    model: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<FixedSolution, ForwardError> {
    if stimulus.is_empty() {
        let plan = UniformPlan {
            grid: *grid,
            params: p,
        };
        return solve_on_plan(model, method, &plan, u0, sample_every, observe);
    }
    let segments = ParamSegments::new(p, stimulus, grid.t0, grid.t1)?;
    let plan = SwitchedPlan::new(*grid, &segments);
    solve_on_plan(model, method, &plan, u0, sample_every, observe)
}

/// Integrates `u0` along the steps of `plan`; samples as [`solve_fixed`]
/// (memory checked before the first step, then reserved at once).
pub fn solve_fixed_plan<M: Model, P: StepPlan>(
    model: &M,
    method: FixedMethod,
    plan: &P,
    u0: &[f64],
    sample_every: Option<usize>,
) -> Result<FixedSolution, ForwardError> {
    let mut samples = Trajectory::with_capacity(0, u0.len());
    if let Some(every) = sample_every {
        let rows = reserve_fixed_samples(plan.n_steps(), every, u0.len(), MemoryLimit::FromSystem)?;
        samples.reserve_rows(rows);
    }
    let mut solution = solve_on_plan(model, method, plan, u0, sample_every, |t, u| {
        samples.push(t, u);
        Ok(())
    })?;
    solution.samples = samples;
    Ok(solution)
}

/// The samples an `n_steps`-step solve keeps when sampling every `every`-th
/// state (at most: every lattice step, u_0 and the last), checked against
/// `limit`; returns the row count to reserve.
pub fn reserve_fixed_samples(
    n_steps: usize,
    every: usize,
    n_states: usize,
    limit: MemoryLimit,
) -> Result<usize, ForwardError> {
    let every = every.max(1);
    let rows = Trajectory::rows_for(n_steps, every);
    let room = SampleRoom::for_trajectory(limit, n_states)?;
    room.check(rows)
        .map_err(|too_large| ForwardError::SamplesTooLarge {
            every,
            n_steps,
            rows,
            fits: room.fitting_interval(n_steps),
            too_large,
        })?;
    Ok(rows)
}

/// The solve loop: `observe` sees u_0, the states on every s-th lattice time
/// t0 + j·s·dt, and the last; with s = 1 every state (switch times too).
fn solve_on_plan<M: Model, P: StepPlan>(
    model: &M,
    method: FixedMethod,
    plan: &P,
    u0: &[f64],
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<FixedSolution, ForwardError> {
    let n = plan.n_steps();
    let mut stepper = FixedStepper::new(method, u0.len());
    // Models without events keep the plain step.
    let mut events = (model.n_events() > 0).then(|| EventStepper::new(method, model));
    let mut work = model.new_work();
    let mut u = u0.to_vec();
    let mut next = vec![0.0; u0.len()];
    let every = sample_every.map(|s| s.max(1));
    if every.is_some() {
        observe(plan.time(0), &u)?;
    }
    for k in 0..n {
        let (t, h, p) = plan.step(k);
        match events.as_mut() {
            None => stepper.step(model, t, h, &u, p, &mut next, &mut work),
            Some(ev) => ev.step(model, t, h, &u, p, &mut next, &mut work)?,
        }
        if !all_finite(&next) {
            return Err(ForwardError::non_finite(plan.time(k + 1), k + 1, &next));
        }
        std::mem::swap(&mut u, &mut next);
        if let Some(s) = every {
            let on_sample = match plan.lattice_index(k + 1) {
                Some(j) => j % s == 0,
                None => s == 1,
            };
            if on_sample || k + 1 == n {
                observe(plan.time(k + 1), &u)?;
            }
        }
    }
    Ok(FixedSolution {
        n_steps: n,
        t_final: plan.time(n),
        final_state: u,
        samples: Trajectory::with_capacity(0, 0),
    })
}
