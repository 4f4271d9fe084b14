//! A plain forward solve on a fixed grid (the `revode solve` path).

use revode_model::Model;

use crate::{
    all_finite, FixedMethod, FixedStepper, ForwardError, ParamSegments, StepPlan, Stimulus,
    SwitchedPlan, TimeGrid, UniformPlan,
};

/// Result of a forward solve: the final state and, if asked, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedSolution {
    pub n_steps: usize,
    pub t_final: f64,
    pub final_state: Vec<f64>,
    /// `(t, u)` every `sample_every` steps (and at the end), if asked.
    pub samples: Vec<(f64, Vec<f64>)>,
}

/// Integrates `u0` over `grid`. `sample_every = Some(s)` records every s-th
/// state (and the last); `None` keeps only the final state.
pub fn solve_fixed<M: Model>(
    model: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    sample_every: Option<usize>,
) -> Result<FixedSolution, ForwardError> {
    let plan = UniformPlan {
        grid: *grid,
        params: p,
    };
    solve_fixed_plan(model, method, &plan, u0, sample_every)
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
        return solve_fixed(model, method, grid, u0, p, sample_every);
    }
    let segments = ParamSegments::new(p, stimulus, grid.t0, grid.t1)?;
    let plan = SwitchedPlan::new(*grid, &segments);
    solve_fixed_plan(model, method, &plan, u0, sample_every)
}

/// Integrates `u0` along the steps of `plan`.
pub fn solve_fixed_plan<M: Model, P: StepPlan>(
    model: &M,
    method: FixedMethod,
    plan: &P,
    u0: &[f64],
    sample_every: Option<usize>,
) -> Result<FixedSolution, ForwardError> {
    let n = plan.n_steps();
    let mut stepper = FixedStepper::new(method, u0.len());
    let mut work = model.new_work();
    let mut u = u0.to_vec();
    let mut next = vec![0.0; u0.len()];
    let mut samples = Vec::new();
    let every = sample_every.map(|s| s.max(1));
    if every.is_some() {
        samples.push((plan.time(0), u.clone()));
    }
    for k in 0..n {
        let (t, h, p) = plan.step(k);
        stepper.step(model, t, h, &u, p, &mut next, &mut work);
        if !all_finite(&next) {
            return Err(ForwardError::non_finite(plan.time(k + 1), k + 1, &next));
        }
        std::mem::swap(&mut u, &mut next);
        if let Some(s) = every {
            if (k + 1) % s == 0 || k + 1 == n {
                samples.push((plan.time(k + 1), u.clone()));
            }
        }
    }
    Ok(FixedSolution {
        n_steps: n,
        t_final: plan.time(n),
        final_state: u,
        samples,
    })
}
