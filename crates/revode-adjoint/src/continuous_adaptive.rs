//! The continuous adjoint of an adaptive Dormand–Prince solve.
//!
//! Forward: each accepted step is one deterministic [`Chain`] step between
//! packed restart states (`revode_forward::StepLayout`), kept or dropped by
//! the online checkpoint store. Backward: visiting x_k (with x_{k+1} kept
//! from the previous visit), the dense output of forward step k is pushed
//! into a ring of the last few steps' dense outputs, and the adjoint ODE is
//! advanced with its own adaptive steps as far as the ring reaches, so an
//! adjoint step may span several forward steps. It lands exactly on the
//! observation times (where the forward solve landed too) for their jumps,
//! and on t0.

use std::time::Instant;

use log::{debug, info};
use revode_checkpoint::{Chain, CheckpointError, MemoryLimit, OnlineStore, OpenChain, Schedule};
use revode_forward::{AdaptiveOptions, DenseStep, Dopri5, ParamSegments, StepLayout, Stimulus};
use revode_model::Model;

use crate::adjoint_ode::{AdjointRhs, BackwardIntegrator, ContinuousOptions, DenseRing};
use crate::error::check_vector;
use crate::event_jump::EventJump;
use crate::forward_terms::ForwardTerms;
use crate::{Gradient, GradientError, GradientStats, Loss};

/// Forward steps whose dense output the backward sweep keeps at once: an
/// adjoint step may span up to this many forward steps.
const DENSE_RING_STEPS: usize = 8;

/// The adjoint right-hand side over the buffered dense outputs.
fn adjoint_rhs<'a, M: Model>(
    model: &'a M,
    params: &'a [f64],
    work: &'a mut M::Work,
    dense: &'a DenseRing,
    u: &'a mut [f64],
) -> AdjointRhs<'a, M> {
    AdjointRhs {
        model,
        params,
        work,
        dense,
        u,
    }
}

/// An adaptive problem: initial state, parameters, span and solver options.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveProblem<'a> {
    pub u0: &'a [f64],
    pub params: &'a [f64],
    pub t0: f64,
    pub t1: f64,
    pub options: &'a AdaptiveOptions,
}

/// One accepted Dormand–Prince step as a checkpointable chain.
struct Dopri5Chain<'a, M: Model> {
    model: &'a M,
    params: &'a [f64],
    solver: Dopri5,
    work: M::Work,
}

impl<M: Model> Chain for Dopri5Chain<'_, M> {
    type Error = GradientError;

    fn state_len(&self) -> usize {
        self.solver.layout().len()
    }

    #[inline]
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), GradientError> {
        self.solver
            .advance(self.model, self.params, &mut self.work, k, x, next)?;
        Ok(())
    }
}

impl<M: Model> OpenChain for Dopri5Chain<'_, M> {
    fn is_last(&self, _k: usize, x: &[f64]) -> bool {
        self.solver.is_last(x)
    }
}

/// How a byte budget of [`gradient_continuous`] is spent for a model of
/// `n_states` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveBudget {
    /// f64s of one kept restart state (a slot of the store holds one and
    /// its step number).
    pub state_len: usize,
    /// Bytes held besides the store's slots: the dense-output ring and the
    /// upper restart state of the backward sweep.
    pub beside_bytes: usize,
    /// The smallest valid budget (three slots and the rest), for runs of at
    /// least three steps.
    pub min_bytes: usize,
}

impl AdaptiveBudget {
    /// Restart states of `state_len` f64s with `ring_bytes` of dense output
    /// beside them, and the backward sweep's upper restart state.
    pub(crate) fn new(state_len: usize, ring_bytes: usize) -> AdaptiveBudget {
        let beside_bytes = ring_bytes + state_len * std::mem::size_of::<f64>();
        AdaptiveBudget {
            state_len,
            beside_bytes,
            min_bytes: 3 * revode_checkpoint::binomial::slot_bytes(state_len) + beside_bytes,
        }
    }
}

/// The [`AdaptiveBudget`] of a model with `n_states` states.
pub fn adaptive_budget(n_states: usize) -> AdaptiveBudget {
    let state_len = StepLayout { n: n_states }.len();
    AdaptiveBudget::new(state_len, DENSE_RING_STEPS * DenseStep::bytes_for(n_states))
}

/// Checks what the adaptive adjoints (dopri5, BDF) share: the lengths of
/// `u0` and `params`, and a loss they can take over `[t0, t1]`.
pub(crate) fn validate_adaptive_loss<M: Model>(
    model: &M,
    (u0, params): (&[f64], &[f64]),
    (t0, t1): (f64, f64),
    loss: &Loss,
) -> Result<(), GradientError> {
    let dims = model.dims();
    check_vector("u0", u0, dims.n_states)?;
    check_vector("params", params, dims.n_params)?;
    if let Loss::AllSteps { .. } = loss {
        return Err(GradientError::LossNeedsFixedSteps { loss: loss.name() });
    }
    crate::fixed_driver::check_event_loss(model, loss)?;
    loss.validate(dims.n_states, t0, t1)
}

/// Checks an adaptive problem and its loss.
pub fn validate_adaptive<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    loss: &Loss,
) -> Result<(), GradientError> {
    let dims = model.dims();
    validate_adaptive_loss(
        model,
        (problem.u0, problem.params),
        (problem.t0, problem.t1),
        loss,
    )?;
    Dopri5::new(
        problem.options,
        dims.n_states,
        problem.t0,
        problem.t1,
        loss.observation_times(),
    )?;
    Ok(())
}

/// The forward solver of `problem`, stopping at the observation times and
/// at the stimulus's switch times.
pub(crate) fn adaptive_solver(
    problem: &AdaptiveProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<Dopri5, GradientError> {
    let (t0, t1) = (problem.t0, problem.t1);
    let times = loss.observation_times();
    let solver = Dopri5::new(problem.options, problem.u0.len(), t0, t1, times)?;
    if stimulus.is_empty() {
        return Ok(solver);
    }
    let segments = ParamSegments::new(problem.params, stimulus, t0, t1)?;
    Ok(solver.with_switches(segments))
}

/// dL/dp and dL/du0 of the ODE solution by the continuous adjoint, the
/// forward solved by Dormand–Prince 5(4).
///
/// Identical (bit for bit) for every [`Schedule`]: replayed restart states
/// are the forward's, and the backward sweep does the same arithmetic.
pub fn gradient_continuous<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    loss: &Loss,
    adjoint: &ContinuousOptions,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    gradient_continuous_with_stimulus(model, problem, &Stimulus::none(), loss, adjoint, schedule)
}

/// [`gradient_continuous`] with parameters following `stimulus`. The forward
/// solve stops at every switch time and restarts with the new parameters;
/// the backward integration lands there too, so no adjoint step straddles a
/// jump of its right-hand side (λ itself is continuous across it). The entry
/// of a stimulated parameter is the derivative with respect to its value in
/// `params`, which acts only before its protocol's first switch time.
pub fn gradient_continuous_with_stimulus<M: Model>(
    model: &M,
    problem: &AdaptiveProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    adjoint: &ContinuousOptions,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    validate_adaptive(model, problem, loss)?;
    let dims = model.dims();
    let n = dims.n_states;
    let times = loss.observation_times();
    let solver = adaptive_solver(problem, stimulus, loss)?;
    let segments = solver
        .segments()
        .cloned()
        .unwrap_or_else(|| ParamSegments::constant(problem.params, problem.t0));
    let adjoint_tol = adjoint.tolerance(solver.tolerance(), n, dims.n_params)?;
    let layout = solver.layout();
    let max_steps = solver.max_steps();
    let mut chain = Dopri5Chain {
        model,
        params: problem.params,
        solver,
        work: model.new_work(),
    };
    // A byte budget covers all the sweep holds that depends on the schedule
    // and the step count: the store's slots, the dense-output ring and the
    // upper restart state the backward sweep carries. The store gets the rest.
    let mut ring = DenseRing::new(n, DENSE_RING_STEPS);
    let beside_store = adaptive_budget(n).beside_bytes;
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
        .initial_state(model, problem.params, &mut chain.work, problem.u0, &mut x0)?;
    let mut last = vec![0.0; layout.len()];
    let t1 = problem.t1;
    let final_weights = loss.final_weights();
    let mut terms = ForwardTerms::new(loss, t1);
    let n_steps = store.forward(&mut chain, &x0, &mut last, |_, x| {
        terms.observe(x[StepLayout::T], layout.u(x), StepLayout::pending_event(x));
        Ok(())
    })?;
    let forward_counts = chain.solver.counts();
    let events_fired = (model.n_events() > 0).then(|| chain.solver.events_fired());
    let (loss_value, mut event_loss) = terms.finish();
    let mut jump = EventJump::new(model);
    let forward_seconds = started.elapsed().as_secs_f64();
    debug!("dopri5 forward: {forward_counts:?} in {forward_seconds:.6} s");

    let started = Instant::now();
    let h_min = problem
        .options
        .h_min
        .unwrap_or(1e-12 * (problem.t1 - problem.t0));
    let mut back = BackwardIntegrator::new(adjoint_tol, h_min, t1);
    let mut upper = last;
    let mut u_scratch = vec![0.0; n];
    let mut adj_work = model.new_work();
    let mut obs = times.len();
    // The segment of the forward step being visited; switches above it passed.
    let switch_times = segments.switch_times();
    let mut seg = switch_times.len();
    // The upper restart state with f at the left limit of a switch time.
    let mut upper_left = vec![0.0; layout.len()];
    store.reverse(&mut chain, |_, x| {
        if let Some(e) = StepLayout::pending_event(x) {
            // The reset step: x just before event e, `upper` just after,
            // both at t*. z is brought to t* and jumps (docs/events.md).
            let params = segments.params(seg);
            let t_event = x[StepLayout::T];
            let mut rhs = adjoint_rhs(model, params, &mut adj_work, &ring, &mut u_scratch);
            back.advance(&mut rhs, t_event, true)?;
            let seed = event_loss.as_mut().map_or(0.0, |l| l.seed(e));
            jump.apply(
                model,
                params,
                e,
                layout.u(x),
                [layout.f(x), layout.f(&upper)],
                seed,
                &mut back.z,
                &mut adj_work,
            );
            back.invalidate_fsal();
            upper.copy_from_slice(x);
            return Ok(());
        }
        // Jumps at the upper end t_{k+1} of this forward step: z is first
        // brought there exactly (from the steps buffered above it).
        let t_hi = upper[StepLayout::T];
        let final_jump = final_weights.is_some() && t_hi == t1;
        let obs_jump = obs > 0 && times[obs - 1] == t_hi;
        let switch = seg > 0 && switch_times[seg - 1] == t_hi;
        if final_jump || obs_jump || switch {
            let params = segments.params(seg);
            let mut rhs = adjoint_rhs(model, params, &mut adj_work, &ring, &mut u_scratch);
            back.advance(&mut rhs, t_hi, true)?;
            let lambda = &mut back.z[..n];
            if let (Some(w), true) = (final_weights, final_jump) {
                for (l, wi) in lambda.iter_mut().zip(w) {
                    *l += wi;
                }
            }
            if obs_jump {
                obs -= 1;
                loss.add_observation_seed(obs, layout.u(&upper), lambda);
            }
            if switch {
                // What μ gathered above t_hi for a protocol beginning there
                // belongs to the protocol's values, not to `params`.
                for &i in segments.begins(seg) {
                    back.z[n + i] = 0.0;
                }
                seg -= 1;
            }
            back.invalidate_fsal();
        }
        let params = segments.params(seg);
        ring.retire(back.t);
        if ring.is_full() {
            // The pending step spans more than the ring holds: end it at the
            // bottom of the buffered span to make room.
            let bottom = ring.bottom();
            let mut rhs = adjoint_rhs(model, params, &mut adj_work, &ring, &mut u_scratch);
            back.advance(&mut rhs, bottom, true)?;
            ring.retire(back.t);
        }
        if switch {
            // The restart state at a switch holds f with the parameters
            // that start there; this step ended with its own.
            upper_left.copy_from_slice(&upper);
            let (u_hi, f_hi, _) = layout.parts_mut(&mut upper_left);
            model.rhs(t_hi, u_hi, params, f_hi, &mut adj_work);
            ring.push(layout, x, &upper_left);
        } else {
            ring.push(layout, x, &upper);
        }
        let t_lo = x[StepLayout::T];
        if back.h == 0.0 {
            back.h = t_lo - t_hi;
        }
        let mut rhs = adjoint_rhs(model, params, &mut adj_work, &ring, &mut u_scratch);
        back.advance(&mut rhs, t_lo, false)?;
        upper.copy_from_slice(x);
        Ok(())
    })?;
    {
        let params = segments.params(0);
        let mut rhs = adjoint_rhs(model, params, &mut adj_work, &ring, &mut u_scratch);
        back.advance(&mut rhs, problem.t0, true)?;
    }
    for &i in segments.begins(0) {
        back.z[n + i] = 0.0;
    }
    if !back.z.iter().all(|v| v.is_finite()) {
        return Err(GradientError::NonFiniteAdjoint {
            t: problem.t0,
            step: 0,
        });
    }
    let backward_seconds = started.elapsed().as_secs_f64();

    let s = store.stats();
    let stats = GradientStats {
        steps: n_steps,
        rejected_steps: forward_counts.rejected,
        backward_steps: back.counts.accepted,
        backward_rejected: back.counts.rejected,
        checkpoints_kept: s.checkpoints_kept,
        slim_states_kept: 0,
        recomputed_steps: s.recomputed_steps,
        // Kept states, the upper restart state and the dense-output ring:
        // at most the budget (see `beside_store`).
        peak_store_bytes: s.peak_bytes + beside_store,
        forward_steps: s.forward_steps,
        forward_seconds,
        backward_seconds,
        newton: None,
        implicit: None,
        events: events_fired,
    };
    info!(
        "continuous adjoint: {} steps forward ({} rejected), {} back ({} rejected), loss {loss_value:e}, store {} B",
        n_steps, forward_counts.rejected, back.counts.accepted, back.counts.rejected, stats.peak_store_bytes
    );
    let (lambda, mu) = back.z.split_at(n);
    Ok(Gradient {
        loss: loss_value,
        gradient: mu.to_vec(),
        gradient_u0: lambda.to_vec(),
        stats,
    })
}

/// The online store of a continuous adjoint whose sweep holds
/// `beside_store` bytes outside it: a byte budget is shared (the store gets
/// the rest), and a budget too small is reported against the whole of it.
/// Against a memory limit, the store's slots are counted with those bytes
/// and the caller's `held_outside` (a budget proposed covers the former).
pub(crate) fn store_beside(
    schedule: Schedule,
    slot_len: usize,
    max_slots: usize,
    beside_store: usize,
    held_outside: usize,
) -> Result<OnlineStore, CheckpointError> {
    let store_schedule = match schedule {
        Schedule::BudgetBytes(b) => Schedule::BudgetBytes(b.saturating_sub(beside_store)),
        other => other,
    };
    OnlineStore::with_memory_limit_beside(
        store_schedule,
        slot_len,
        max_slots,
        MemoryLimit::FromSystem,
        beside_store,
        held_outside,
    )
    .map_err(|e| match (e, schedule) {
        (
            CheckpointError::BudgetTooSmall {
                minimum,
                slots,
                slot_bytes,
                ..
            },
            Schedule::BudgetBytes(budget),
        ) => CheckpointError::BudgetTooSmall {
            budget,
            minimum: minimum + beside_store,
            slots,
            slot_bytes,
            beside_bytes: beside_store,
        },
        // The budget as given, not the store's share of it.
        (
            CheckpointError::OutOfMemory {
                steps,
                held_beside,
                too_large,
                fits,
                ..
            },
            _,
        ) => CheckpointError::OutOfMemory {
            schedule,
            steps,
            held_beside,
            too_large,
            fits,
        },
        (other, _) => other,
    })
}
