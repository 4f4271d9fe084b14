//! The continuous adjoint of a BDF solve (docs/stiff.md, "The BDF
//! continuous adjoint").
//!
//! Forward: each accepted BDF step is one deterministic [`Chain`] step
//! between packed restart states ([`BdfLayout`]), kept or dropped by the
//! online checkpoint store. Backward: visiting x_k (with x_{k+1} kept from
//! the previous visit), the Nordsieck polynomial of x_{k+1} — the forward's
//! own dense output of step k — is pushed into a ring, and the adjoint ODE
//! is advanced with backward BDF steps as far as the ring reaches. It lands
//! exactly on the observation times (jumps of λ), on the switch times of a
//! stimulus (jumps of the right-hand side), on event times (the EventProp
//! jump, docs/events.md) and on t0, and restarts at order 1 after each.

use std::time::Instant;

use log::{debug, info};
use revode_checkpoint::{Chain, OpenChain, Schedule};
use revode_forward::{
    newton_bytes_needed, Bdf, BdfLayout, BdfOptions, LinearSolver, MatrixShape, ParamSegments,
    Stimulus,
};
use revode_model::Model;

use crate::adjoint_bdf::{BdfBackward, NordsieckRing};
use crate::continuous_adaptive::{store_beside, validate_adaptive_loss, AdaptiveBudget};
use crate::event_jump::EventJump;
use crate::forward_terms::ForwardTerms;
use crate::{BdfNewtonStats, ContinuousOptions, Gradient, GradientError, GradientStats, Loss};

/// Forward steps whose polynomials the backward sweep keeps at once: an
/// adjoint step may span up to this many forward steps.
const RING_STEPS: usize = 8;

/// A BDF problem: initial state, parameters, span and solver options.
#[derive(Debug, Clone, Copy)]
pub struct BdfProblem<'a> {
    pub u0: &'a [f64],
    pub params: &'a [f64],
    pub t0: f64,
    pub t1: f64,
    pub options: &'a BdfOptions,
}

/// One accepted BDF step as a checkpointable chain.
struct BdfChain<'a, 'm, M: Model> {
    params: &'a [f64],
    solver: Bdf<'m, M>,
    work: M::Work,
}

impl<M: Model> Chain for BdfChain<'_, '_, M> {
    type Error = GradientError;

    fn state_len(&self) -> usize {
        self.solver.layout().len()
    }

    #[inline]
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), GradientError> {
        self.solver
            .advance(self.params, &mut self.work, k, x, next)?;
        Ok(())
    }
}

impl<M: Model> OpenChain for BdfChain<'_, '_, M> {
    fn is_last(&self, _k: usize, x: &[f64]) -> bool {
        self.solver.is_last(x)
    }
}

/// How a byte budget of [`gradient_continuous_bdf`] is spent for a model
/// of `n_states` states and orders up to `max_order`: the store's slots
/// hold restart states; beside them the ring of forward polynomials and the
/// upper restart state of the backward sweep.
pub fn bdf_budget(n_states: usize, max_order: usize) -> AdaptiveBudget {
    let layout = BdfLayout {
        n: n_states,
        q_max: max_order,
    };
    AdaptiveBudget::new(layout.len(), NordsieckRing::bytes_for(layout, RING_STEPS))
}

/// Checks a BDF problem and its loss.
pub fn validate_bdf<M: Model>(
    model: &M,
    problem: &BdfProblem<'_>,
    loss: &Loss,
) -> Result<(), GradientError> {
    validate_adaptive_loss(
        model,
        (problem.u0, problem.params),
        (problem.t0, problem.t1),
        loss,
    )?;
    problem.options.tolerance(model.dims().n_states)?;
    Ok(())
}

/// About the bytes a BDF gradient of `model` allocates besides its
/// checkpoint store, which grow with the model: the forward's Newton
/// solver and the backward BDF's (for a memory check before a run), for
/// Jacobians of this shape.
pub fn bdf_gradient_bytes(shape: MatrixShape, linear: LinearSolver) -> usize {
    newton_bytes_needed(shape, linear).saturating_mul(2)
}

/// The forward solver of `problem`, stopping at the observation times and
/// at the stimulus's switch times.
pub(crate) fn bdf_solver<'m, M: Model>(
    model: &'m M,
    problem: &BdfProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<Bdf<'m, M>, GradientError> {
    let (t0, t1) = (problem.t0, problem.t1);
    let solver = Bdf::new(model, problem.options, t0, t1, loss.observation_times())?;
    if stimulus.is_empty() {
        return Ok(solver);
    }
    let segments = ParamSegments::new(problem.params, stimulus, t0, t1)?;
    Ok(solver.with_switches(segments))
}

/// dL/dp and dL/du0 of the ODE solution by the continuous adjoint, the
/// forward solved by BDF.
///
/// Identical (bit for bit) for every [`Schedule`]: replayed restart states
/// are the forward's, and the backward sweep does the same arithmetic.
pub fn gradient_continuous_bdf<M: Model>(
    model: &M,
    problem: &BdfProblem<'_>,
    loss: &Loss,
    adjoint: &ContinuousOptions,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    gradient_continuous_bdf_with_stimulus(
        model,
        problem,
        &Stimulus::none(),
        loss,
        adjoint,
        schedule,
    )
}

/// [`gradient_continuous_bdf`] with parameters following `stimulus`. The
/// forward solve stops at every switch time and restarts there; so does the
/// backward integration (λ is continuous across a switch, its derivative
/// is not). The entry of a stimulated parameter is the derivative with
/// respect to its value in `params`, which acts only before its protocol's
/// first switch time.
pub fn gradient_continuous_bdf_with_stimulus<M: Model>(
    model: &M,
    problem: &BdfProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    adjoint: &ContinuousOptions,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    validate_bdf(model, problem, loss)?;
    let dims = model.dims();
    let n = dims.n_states;
    let times = loss.observation_times();
    let solver = bdf_solver(model, problem, stimulus, loss)?;
    let segments = solver
        .segments()
        .cloned()
        .unwrap_or_else(|| ParamSegments::constant(problem.params, problem.t0));
    let adjoint_tol = adjoint.tolerance(solver.tolerance(), n, dims.n_params)?;
    let layout = solver.layout();
    let max_steps = solver.max_steps();
    let h_min = solver.h_min();
    let linear = solver.linear_solver();
    let mut chain = BdfChain {
        params: problem.params,
        solver,
        work: model.new_work(),
    };
    // A byte budget covers all the sweep holds that depends on the schedule
    // and the step count: the store's slots, the ring of forward
    // polynomials and the upper restart state. The store gets the rest.
    let mut ring = NordsieckRing::new(layout, RING_STEPS);
    let beside_store = bdf_budget(n, layout.q_max).beside_bytes;
    debug_assert_eq!(
        beside_store,
        ring.buffer_bytes() + layout.len() * std::mem::size_of::<f64>()
    );
    // One more than the solver's own limit, so the solver's error (which
    // names t) is the one reported.
    let mut store = store_beside(
        schedule,
        layout.len(),
        max_steps + 1,
        beside_store,
        adjoint.held_outside_store,
    )?;

    let started = Instant::now();
    let mut x0 = vec![0.0; layout.len()];
    chain
        .solver
        .initial_state(problem.params, &mut chain.work, problem.u0, &mut x0)?;
    let mut last = vec![0.0; layout.len()];
    let t1 = problem.t1;
    let final_weights = loss.final_weights();
    let mut terms = ForwardTerms::new(loss, t1);
    let n_steps = store.forward(&mut chain, &x0, &mut last, |_, x| {
        let t = x[BdfLayout::T];
        // An event located exactly at t1 ends the solve unapplied: it is not
        // a firing (as a missing one, it counts at t1 anyway).
        let firing = BdfLayout::pending_event(x).filter(|_| t < t1);
        terms.observe(t, layout.u(x), firing);
        Ok(())
    })?;
    let forward_counts = chain.solver.counts();
    let forward_newton = chain.solver.newton_stats();
    let events_fired = (model.n_events() > 0).then(|| chain.solver.events_fired());
    let (loss_value, mut event_loss) = terms.finish();
    let mut jump = EventJump::new(model);
    let forward_seconds = started.elapsed().as_secs_f64();
    debug!("bdf forward: {forward_counts:?}, {forward_newton:?} in {forward_seconds:.6} s");

    let started = Instant::now();
    let mut back = BdfBackward::new(model, adjoint_tol, layout.q_max, linear, h_min, t1);
    let mut upper = last;
    let mut adj_work = model.new_work();
    let mut obs = times.len();
    // The segment of the forward step being visited; switches above it passed.
    let switch_times = segments.switch_times();
    let mut seg = switch_times.len();
    store.reverse(&mut chain, |_, x| {
        if let Some(e) = BdfLayout::pending_event(x) {
            // The reset step: x just before event e, `upper` just after,
            // both at t*. z is brought to t* and jumps (docs/events.md);
            // below t* the forward state and, at a switch, f differ: restart.
            let t_event = x[BdfLayout::T];
            let params = segments.params(seg);
            back.advance(model, params, &mut adj_work, &ring, t_event, true)?;
            let at_switch = seg > 0 && switch_times[seg - 1] == t_event;
            let before = segments.params(seg - at_switch as usize);
            let seed = event_loss.as_mut().map_or(0.0, |l| l.seed(e));
            jump.apply_at(
                model,
                [before, params],
                t_event,
                e,
                [layout.u(x), layout.u(&upper)],
                seed,
                back.z_mut(),
                &mut adj_work,
            );
            back.switch();
            upper.copy_from_slice(x);
            return Ok(());
        }
        // Jumps at the upper end t_{k+1} of this forward step: z is first
        // brought there exactly (from the steps buffered above it).
        let t_hi = upper[BdfLayout::T];
        let final_jump = final_weights.is_some() && t_hi == t1;
        let obs_jump = obs > 0 && times[obs - 1] == t_hi;
        let switch = seg > 0 && switch_times[seg - 1] == t_hi;
        if final_jump || obs_jump || switch {
            let params = segments.params(seg);
            back.advance(model, params, &mut adj_work, &ring, t_hi, true)?;
            if final_jump || obs_jump {
                let lambda = &mut back.z_mut()[..n];
                if let (Some(w), true) = (final_weights, final_jump) {
                    for (l, wi) in lambda.iter_mut().zip(w) {
                        *l += wi;
                    }
                }
                if obs_jump {
                    obs -= 1;
                    loss.add_observation_seed(obs, layout.u(&upper), lambda);
                }
            }
            if switch {
                // What μ gathered above t_hi for a protocol beginning there
                // belongs to the protocol's values, not to `params`.
                let z = back.z_mut();
                for &i in segments.begins(seg) {
                    z[n + i] = 0.0;
                }
                back.switch();
                seg -= 1;
            }
        }
        let params = segments.params(seg);
        ring.retire(back.t);
        if ring.is_full() {
            // The pending step spans more than the ring holds: end it at the
            // bottom of the buffered span to make room.
            let bottom = ring.bottom();
            back.advance(model, params, &mut adj_work, &ring, bottom, true)?;
            ring.retire(back.t);
        }
        ring.push(x, &upper);
        let t_lo = x[BdfLayout::T];
        back.advance(model, params, &mut adj_work, &ring, t_lo, false)?;
        upper.copy_from_slice(x);
        Ok(())
    })?;
    back.advance(
        model,
        segments.params(0),
        &mut adj_work,
        &ring,
        problem.t0,
        true,
    )?;
    let z = back.z_mut();
    for &i in segments.begins(0) {
        z[n + i] = 0.0;
    }
    if !z.iter().all(|v| v.is_finite()) {
        return Err(GradientError::NonFiniteAdjoint {
            t: problem.t0,
            step: 0,
        });
    }
    let backward_seconds = started.elapsed().as_secs_f64();

    let s = store.stats();
    let back_counts = back.counts();
    let stats = GradientStats {
        steps: n_steps,
        rejected_steps: forward_counts.rejected,
        backward_steps: back_counts.accepted,
        backward_rejected: back_counts.rejected,
        checkpoints_kept: s.checkpoints_kept,
        slim_states_kept: 0,
        recomputed_steps: s.recomputed_steps,
        // Kept states, the upper restart state and the polynomial ring:
        // at most the budget (see `beside_store`).
        peak_store_bytes: s.peak_bytes + beside_store,
        forward_steps: s.forward_steps,
        forward_seconds,
        backward_seconds,
        newton: Some(BdfNewtonStats {
            forward: forward_newton,
            backward: back.stats(),
        }),
        implicit: None,
        events: events_fired,
    };
    info!(
        "bdf continuous adjoint: {} steps forward ({} rejected), {} back ({} rejected), loss {loss_value:e}, store {} B",
        n_steps, forward_counts.rejected, back_counts.accepted, back_counts.rejected, stats.peak_store_bytes
    );
    let (lambda, mu) = back.z().split_at(n);
    Ok(Gradient {
        loss: loss_value,
        gradient: mu.to_vec(),
        gradient_u0: lambda.to_vec(),
        stats,
    })
}
