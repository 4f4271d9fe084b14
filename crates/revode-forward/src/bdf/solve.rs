//! A plain BDF forward solve (the `revode solve` path).

use revode_model::Model;

use super::{Bdf, BdfLayout, BdfOptions};
use crate::adaptive::keeping_grown_samples;
use crate::{AdaptiveSolution, ForwardError, ParamSegments, Stimulus, Trajectory};

/// Integrates `u0` over `[t0, t1]` with BDF; `sample_every = Some(s)` keeps
/// every s-th accepted state (and the first and last), grown as the solve
/// goes only after a memory check (as [`crate::solve_adaptive`]).
#[allow(clippy::too_many_arguments)]
pub fn solve_bdf<M: Model>(
    model: &M,
    options: &BdfOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
) -> Result<AdaptiveSolution, ForwardError> {
    let max_steps = options.adaptive.max_steps;
    keeping_grown_samples(u0.len(), max_steps, sample_every, |sampler| {
        solve_bdf_try_observed(
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

/// [`solve_bdf`] handing `observe(t, u)` every s-th accepted state (u_0
/// first, and always the last) as the solve goes; the returned solution has
/// no samples.
#[allow(clippy::too_many_arguments)]
pub fn solve_bdf_observed<M: Model>(
    model: &M,
    options: &BdfOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]),
) -> Result<AdaptiveSolution, ForwardError> {
    solve_bdf_try_observed(
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

/// [`solve_bdf_observed`] with an observer that may stop the solve: its
/// first error is returned as the solve's.
#[allow(clippy::too_many_arguments)]
pub fn solve_bdf_try_observed<M: Model>(
    model: &M,
    options: &BdfOptions,
    t0: f64,
    t1: f64,
    u0: &[f64],
    p: &[f64],
    stimulus: &Stimulus,
    sample_every: Option<usize>,
    mut observe: impl FnMut(f64, &[f64]) -> Result<(), ForwardError>,
) -> Result<AdaptiveSolution, ForwardError> {
    let mut solver = Bdf::new(model, options, t0, t1, &[])?;
    if !stimulus.is_empty() {
        solver = solver.with_switches(ParamSegments::new(p, stimulus, t0, t1)?);
    }
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = vec![0.0; layout.len()];
    solver.initial_state(p, &mut work, u0, &mut x)?;
    let every = sample_every.map(|s| s.max(1));
    if every.is_some() {
        observe(t0, u0)?;
    }
    let mut k = 0;
    while !solver.is_last(&x) {
        solver.advance(p, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
        if let Some(s) = every {
            if k % s == 0 || solver.is_last(&x) {
                observe(x[BdfLayout::T], layout.u(&x))?;
            }
        }
    }
    Ok(AdaptiveSolution {
        counts: solver.counts(),
        t_final: x[BdfLayout::T],
        final_state: layout.u(&x).to_vec(),
        samples: Trajectory::with_capacity(0, 0),
    })
}
