//! A plain adaptive forward solve (the `revode solve` path).

use revode_checkpoint::MemoryLimit;
use revode_model::Model;

use super::{AdaptiveOptions, Dopri5, StepCounts, StepLayout};
use crate::trajectory::growing_sampler;
use crate::{ForwardError, ParamSegments, SampleRoom, Stimulus, Trajectory};

/// Result of an adaptive forward solve.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveSolution {
    pub counts: StepCounts,
    pub t_final: f64,
    pub final_state: Vec<f64>,
    /// `(t, u)` every `sample_every` accepted steps (and at the end), if asked.
    pub samples: Trajectory,
}

/// Integrates `u0` over `[t0, t1]` with Dormand–Prince 5(4). With
/// `sample_every = Some(s)` the samples grow geometrically as the solve
/// goes, each growth checked first against the memory available
/// ([`MemoryLimit::FromSystem`]): samples that outgrow it stop the solve
/// with [`ForwardError::SamplesOutgrewMemory`].
pub fn solve_adaptive<M: Model>(
    model: &M,
    options: &AdaptiveOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    sample_every: Option<usize>,
) -> Result<AdaptiveSolution, ForwardError> {
    solve_adaptive_with_stimulus(
        model,
        options,
        t0,
        t1,
        u0,
        p,
        &Stimulus::none(),
        sample_every,
    )
}

/// [`solve_adaptive`] with the parameters following `stimulus`: the solver
/// stops at every switch time and restarts with the new parameters.
#[allow(clippy::too_many_arguments)]
pub fn solve_adaptive_with_stimulus<M: Model>(
    model: &M,
    options: &AdaptiveOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
) -> Result<AdaptiveSolution, ForwardError> {
    keeping_grown_samples(u0.len(), options.max_steps, sample_every, |sampler| {
        solve_adaptive_try_observed(
            model,
            options,
            t0,
            t1,
            u0,
            p,
            stimulus,
            sample_every,
            sampler,
        )
    })
}

/// Runs `solve`, a `*_try_observed` solve, with an observer that keeps
/// what it is handed, and returns its solution with those samples. With
/// `sample_every = Some(s)` they grow geometrically (at most to the rows of
/// `max_steps` accepted steps sampled every s), each growth checked first
/// against the memory available: samples that outgrow it stop the solve
/// with [`ForwardError::SamplesOutgrewMemory`].
pub(crate) fn keeping_grown_samples(
    n_states: usize,
    max_steps: usize,
    sample_every: Option<usize>,
    solve: impl FnOnce(
        &mut dyn FnMut(f64, &[f64]) -> Result<(), ForwardError>,
    ) -> Result<AdaptiveSolution, ForwardError>,
) -> Result<AdaptiveSolution, ForwardError> {
    let mut samples = Trajectory::with_capacity(0, n_states);
    let room = match sample_every {
        Some(_) => Some(SampleRoom::for_trajectory(
            MemoryLimit::FromSystem,
            n_states,
        )?),
        None => None,
    };
    let every = sample_every.unwrap_or(1).max(1);
    let mut solution = {
        let mut sampler = growing_sampler(&mut samples, room, max_steps, every);
        solve(&mut sampler)?
    };
    solution.samples = samples;
    Ok(solution)
}

/// [`solve_adaptive_with_stimulus`] handing `observe(t, u)` every s-th
/// accepted state (u_0 first, and always the last) as the solve goes; the
/// returned solution has no samples.
#[allow(clippy::too_many_arguments)]
pub fn solve_adaptive_observed<M: Model>(
    model: &M,
    options: &AdaptiveOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]),
) -> Result<AdaptiveSolution, ForwardError> {
    solve_adaptive_try_observed(
        model,
        options,
        t0,
        t1,
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

/// [`solve_adaptive_observed`] with an observer that may stop the solve:
/// its first error is returned as the solve's.
#[allow(clippy::too_many_arguments)]
pub fn solve_adaptive_try_observed<M: Model>(
    model: &M,
    options: &AdaptiveOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<AdaptiveSolution, ForwardError> {
    let n = u0.len();
    let mut solver = Dopri5::new(options, n, t0, t1, &[])?;
    if !stimulus.is_empty() {
        solver = solver.with_switches(ParamSegments::new(p, stimulus, t0, t1)?);
    }
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = vec![0.0; layout.len()];
    solver.initial_state(model, p, &mut work, u0, &mut x)?;
    let every = sample_every.map(|s| s.max(1));
    if every.is_some() {
        observe(t0, u0)?;
    }
    let mut k = 0;
    while !solver.is_last(&x) {
        solver.advance(model, p, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
        if let Some(s) = every {
            if k % s == 0 || solver.is_last(&x) {
                observe(x[StepLayout::T], layout.u(&x))?;
            }
        }
    }
    Ok(AdaptiveSolution {
        counts: solver.counts(),
        t_final: x[StepLayout::T],
        final_state: layout.u(&x).to_vec(),
        samples: Trajectory::with_capacity(0, 0),
    })
}
