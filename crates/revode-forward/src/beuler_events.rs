//! Events (a model's `global` lines) in backward Euler.
//!
//! The step from u_k is first taken whole, to y. When an event function
//! changes sign (in its direction) between u_k and y, the crossing is
//! located to rounding on the step's chord `u_k + (σ/h)(y − u_k)` (the
//! Illinois iteration of [`crate::events`]), the reset is applied there,
//! and the rest of the step, `t_k + h − t*`, is a backward Euler step of its
//! own from the reset state, which may hold further events (time order,
//! ties to the lower index, at most [`MAX_EVENTS_PER_STEP`]). The implicit
//! solves of all pieces go through the stepper's Newton, whose memory is
//! part of the checkpointed chain state, so a replay of the step repeats
//! its events bitwise. After a step with an event the predictor restarts
//! ([`BackwardEuler`]). Derivation of the adjoint: docs/events.md.

use revode_model::Model;

use crate::events::{first_crossing, EndValues, Piece, Segment, StepPieces, MAX_EVENTS_PER_STEP};
use crate::{BackwardEuler, ForwardError, StepPlan};

/// The event buffers of a backward Euler solve (made once; a step
/// allocates nothing). The implicit solves belong to the [`BackwardEuler`]
/// each step is given.
#[derive(Debug, Clone)]
pub struct BeulerEvents {
    n: usize,
    pieces: StepPieces,
    /// `ends[j]`: piece j's implicit solution over its whole length.
    ends: Vec<Vec<f64>>,
    /// g at the piece's ends, and the last plain step's end.
    g: EndValues,
}

impl BeulerEvents {
    pub fn new<M: Model>(model: &M) -> Self {
        let n = model.dims().n_states;
        BeulerEvents {
            n,
            pieces: StepPieces::new(n),
            ends: (0..=MAX_EVENTS_PER_STEP).map(|_| vec![0.0; n]).collect(),
            g: EndValues::new(n, model.n_events()),
        }
    }

    /// Events fired since these buffers were made (replays included).
    pub fn fired(&self) -> usize {
        self.pieces.fired()
    }

    /// From now on, records the times of `event`: the first `keep` of them
    /// and how many there were.
    pub fn record_times(&mut self, event: usize, keep: usize) {
        self.pieces.record_times(event, keep);
    }

    /// Stops recording; returns the first recorded times and the count.
    pub fn stop_recording(&mut self) -> Option<(Vec<f64>, usize)> {
        self.pieces.stop_recording()
    }

    /// The pieces of the last step, in time order.
    pub fn segments(&self) -> &[Segment] {
        &self.pieces.segments
    }

    /// The state piece `j` of the last step started from.
    pub fn start_state(&self, j: usize) -> &[f64] {
        &self.pieces.starts[j]
    }

    /// Piece `j`'s implicit solution over its whole length.
    pub fn end_state(&self, j: usize) -> &[f64] {
        &self.ends[j]
    }

    /// The state just before piece `j`'s event.
    pub fn state_before(&self, j: usize) -> &[f64] {
        &self.pieces.before[j]
    }

    /// Events in the last step.
    pub fn events_in_step(&self) -> usize {
        self.pieces.events_in_step()
    }

    /// Step k of `plan` with its events: `next ←` the chain state k + 1
    /// from `x` ([`crate::BeulerLayout`]).
    #[allow(clippy::too_many_arguments)]
    pub fn step<M: Model, P: StepPlan>(
        &mut self,
        stepper: &mut BackwardEuler<'_, M>,
        model: &M,
        plan: &P,
        k: usize,
        x: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), ForwardError> {
        let pieces = &mut self.pieces;
        pieces.segments.clear();
        // The common case first: the plain step straight into `next`, and no
        // event function changing sign over it.
        stepper.step(model, plan, k, x, next, work)?;
        let n = self.n;
        let (t, h, p) = plan.step(k);
        let t_next = plan.time(k + 1);
        let (u, y) = (&x[..n], &next[..n]);
        let mut any = self.g.whole_step(model, u, y, p, work);
        if !any {
            self.g.remember(y);
            pieces.push_plain(t, h);
            return Ok(());
        }
        pieces.starts[0].copy_from_slice(u);
        self.ends[0].copy_from_slice(y);
        // Piece lengths as on the explicit grids; the implicit solves are
        // all at the grid time t_next (τ_j + H_j).
        let t_end = t + h;
        let (mut tau, mut len) = (t, h);
        loop {
            let j = pieces.segments.len();
            if j > 0 {
                // Piece 0's solve and event values are the ones above.
                let (starts, ends) = (&pieces.starts[j], &mut self.ends[j]);
                stepper.solve_piece(model, t_next, len, starts, p, ends, k + 1, work)?;
                any = self.g.piece(model, starts, ends, p, work);
            }
            let piece = Piece::chord(&pieces.starts[j], &self.ends[j], len);
            let first = if any {
                first_crossing(model, &self.g, &piece, &mut pieces.probe, p, work)
            } else {
                None
            };
            let Some((sigma, e)) = first else {
                next[..n].copy_from_slice(&self.ends[j]);
                self.g.remember(&self.ends[j]);
                pieces.push_plain(tau, len);
                break;
            };
            if j == MAX_EVENTS_PER_STEP {
                return Err(ForwardError::TooManyEvents {
                    t: tau + sigma,
                    limit: MAX_EVENTS_PER_STEP,
                });
            }
            piece.at(sigma, &mut pieces.before[j]);
            tau = pieces.fire(model, e, tau, len, sigma, p, work);
            let step_len = len;
            len = t_end - tau;
            if sigma >= step_len || len <= 0.0 {
                // The event ends the step: u_{k+1} is the reset state.
                next[..n].copy_from_slice(&pieces.starts[j + 1]);
                self.g.forget();
                break;
            }
        }
        if !crate::all_finite(&next[..n]) {
            return Err(ForwardError::non_finite(t_next, k + 1, &next[..n]));
        }
        stepper.restart_after_event(model, t_next, p, next, work);
        Ok(())
    }
}
