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
            held_beside: room.held_beside(),
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
    let every = sample_every.map(|s| s.max(1));
    if method == FixedMethod::Euler && model.n_events() == 0 {
        macro_rules! small {
            ($($n:literal)*) => {
                match u0.len() {
                    $($n => {
                        let u = euler_in_registers::<$n, M, P>(model, plan, u0, every, observe)?;
                        return Ok(FixedSolution {
                            n_steps: n,
                            t_final: plan.time(n),
                            final_state: u.to_vec(),
                            samples: Trajectory::with_capacity(0, 0),
                        });
                    })*
                    _ => {}
                }
            };
        }
        small!(1 2 3 4 5 6 7 8);
    }
    let mut stepper = FixedStepper::new(method, u0.len());
    // Models without events keep the plain step.
    let mut events = (model.n_events() > 0).then(|| EventStepper::new(method, model));
    let mut work = model.new_work();
    let mut u = u0.to_vec();
    let mut next = vec![0.0; u0.len()];
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
            if is_sampled(plan, s, k + 1) {
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

/// Whether state `k` (after step k − 1) is observed when sampling every
/// s-th lattice time: those, switch times only for s = 1, and the last.
#[inline(always)]
fn is_sampled<P: StepPlan>(plan: &P, s: usize, k: usize) -> bool {
    let on_sample = match plan.lattice_index(k) {
        Some(j) => j % s == 0,
        None => s == 1,
    };
    on_sample || k == plan.n_steps()
}

/// [`solve_on_plan`]'s Euler loop for N states held in arrays: the state
/// stays in registers across steps, as in a loop written by hand for the
/// model, where vectors of run-time length go through memory (the seed
/// problem's forward was 1.3–1.8× a hand-written loop). The arithmetic is
/// [`FixedStepper::step`]'s, so the states are bitwise the same.
fn euler_in_registers<const N: usize, M: Model, P: StepPlan>(
    model: &M,
    plan: &P,
    u0: &[f64],
    every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<[f64; N], ForwardError> {
    let mut work = model.new_work();
    let mut u: [f64; N] = u0.try_into().expect("N is u0's length");
    let mut slope = [0.0; N];
    if every.is_some() {
        observe(plan.time(0), &u)?;
    }
    let n = plan.n_steps();
    let mut block_start = 0;
    let mut u_block = u;
    // x·0 is NaN for a NaN or an infinity and 0 otherwise, and a NaN
    // stays NaN in the sum: a branch-free check per step, looked at once a
    // block; a block that went non-finite is replayed (bitwise) to name
    // the first non-finite step.
    let mut poison = [0.0; N];
    for k in 0..n {
        let (t, h, p) = plan.step(k);
        model.rhs(t, &u, p, &mut slope, &mut work);
        let mut next = [0.0; N];
        for i in 0..N {
            next[i] = u[i] + h * slope[i];
            poison[i] += next[i] * 0.0;
        }
        u = next;
        let sampled = every.is_some_and(|s| is_sampled(plan, s, k + 1));
        if sampled || k + 1 - block_start == FINITE_BLOCK || k + 1 == n {
            if poison.iter().sum::<f64>() != 0.0 {
                let mut x = u_block;
                for j in block_start..=k {
                    let (t, h, p) = plan.step(j);
                    model.rhs(t, &x, p, &mut slope, &mut work);
                    for i in 0..N {
                        x[i] += h * slope[i];
                    }
                    if !all_finite(&x) {
                        return Err(ForwardError::non_finite(plan.time(j + 1), j + 1, &x));
                    }
                }
            }
            if sampled {
                observe(plan.time(k + 1), &u)?;
            }
            block_start = k + 1;
            u_block = u;
        }
    }
    Ok(u)
}

/// Steps between looks at [`euler_in_registers`]'s finiteness check.
const FINITE_BLOCK: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use revode_model::Dims;

    /// `n` copies of `y' = y²` (blows up at t = 1/y0); n ≤ 8 takes the
    /// register loop, larger n the general one.
    struct Quadratic {
        n: usize,
    }

    impl Model for Quadratic {
        type Work = ();
        fn name(&self) -> &str {
            "quadratic"
        }
        fn dims(&self) -> Dims {
            Dims {
                n_states: self.n,
                n_params: 0,
            }
        }
        fn state_names(&self) -> Vec<String> {
            (0..self.n).map(|i| format!("y{i}")).collect()
        }
        fn param_names(&self) -> Vec<String> {
            Vec::new()
        }
        fn default_u0(&self) -> Vec<f64> {
            vec![1.0; self.n]
        }
        fn default_params(&self) -> Vec<f64> {
            Vec::new()
        }
        fn new_work(&self) {}
        fn rhs(&self, _t: f64, u: &[f64], _p: &[f64], du: &mut [f64], _work: &mut ()) {
            for (d, &y) in du.iter_mut().zip(u) {
                *d = y * y;
            }
        }
        fn vjp(
            &self,
            _t: f64,
            u: &[f64],
            _p: &[f64],
            lambda: &[f64],
            out_u: &mut [f64],
            _alpha: f64,
            _acc_p: &mut [f64],
            _work: &mut (),
        ) {
            for ((o, &y), &l) in out_u.iter_mut().zip(u).zip(lambda) {
                *o = 2.0 * y * l;
            }
        }
    }

    /// The step a plain loop first sees a non-finite state, and its time.
    fn first_non_finite(u0: f64, grid: &TimeGrid) -> (usize, f64) {
        let mut y = u0;
        for k in 0..grid.n_steps() {
            y += grid.step_len(k) * (y * y);
            if !y.is_finite() {
                return (k + 1, grid.time(k + 1));
            }
        }
        panic!("no blow-up on this grid");
    }

    #[test]
    fn the_register_loop_names_the_step_that_blew_up_as_the_general_one_does() {
        // Euler on y' = y² from 3 overflows within a few hundred steps of
        // dt = 0.01, not on a block boundary.
        let grid = TimeGrid::new(0.0, 50.0, 0.01).unwrap();
        let want = first_non_finite(3.0, &grid);
        assert!(!want.0.is_multiple_of(FINITE_BLOCK), "{want:?}");
        for n in [1, 4, 8, 9] {
            for every in [None, Some(1), Some(7)] {
                let m = Quadratic { n };
                let u0 = vec![3.0; n];
                let e = solve_fixed(&m, FixedMethod::Euler, &grid, &u0, &[], every).unwrap_err();
                match e {
                    ForwardError::NonFiniteState { step, t, .. } => {
                        assert_eq!((step, t), want, "n = {n}, every {every:?}")
                    }
                    other => panic!("n = {n}: {other}"),
                }
            }
        }
    }

    #[test]
    fn the_register_loop_gives_the_general_loops_states_bitwise() {
        let grid = TimeGrid::new(0.0, 0.5, 0.001).unwrap();
        let u0: Vec<f64> = (0..8).map(|i| 0.1 + 0.05 * i as f64).collect();
        let small = solve_fixed(
            &Quadratic { n: 8 },
            FixedMethod::Euler,
            &grid,
            &u0,
            &[],
            Some(3),
        )
        .unwrap();
        let mut u9 = u0.clone();
        u9.push(0.2);
        let general = solve_fixed(
            &Quadratic { n: 9 },
            FixedMethod::Euler,
            &grid,
            &u9,
            &[],
            Some(3),
        )
        .unwrap();
        assert_eq!(small.final_state[..], general.final_state[..8]);
        assert_eq!(small.samples.len(), general.samples.len());
        for (a, b) in small.samples.iter().zip(general.samples.iter()) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_vec()[..], b.1.to_vec()[..8]);
        }
    }
}
