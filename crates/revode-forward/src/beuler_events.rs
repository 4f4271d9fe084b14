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

use crate::events::{crosses, locate, EndValues, Piece, Recorder, Segment, MAX_EVENTS_PER_STEP};
use crate::{BackwardEuler, ForwardError, StepPlan};

/// The event buffers of a backward Euler solve (made once; a step
/// allocates nothing). The implicit solves belong to the [`BackwardEuler`]
/// each step is given.
#[derive(Debug, Clone)]
pub struct BeulerEvents {
    n: usize,
    n_events: usize,
    segments: Vec<Segment>,
    /// `starts[j]`: the state piece j starts from (after the reset of piece
    /// j − 1).
    starts: Vec<Vec<f64>>,
    /// `ends[j]`: piece j's implicit solution over its whole length.
    ends: Vec<Vec<f64>>,
    /// `before[j]`: the state just before piece j's event.
    before: Vec<Vec<f64>>,
    /// g at the piece's ends, and the last plain step's end.
    g: EndValues,
    probe: Vec<f64>,
    /// Events fired since these buffers were made (replays included).
    pub fired: usize,
    recorder: Option<Recorder>,
}

impl BeulerEvents {
    pub fn new<M: Model>(model: &M) -> Self {
        let n = model.dims().n_states;
        let m = model.n_events();
        let states = |k: usize| (0..k).map(|_| vec![0.0; n]).collect::<Vec<_>>();
        BeulerEvents {
            n,
            n_events: m,
            segments: Vec::with_capacity(MAX_EVENTS_PER_STEP + 1),
            starts: states(MAX_EVENTS_PER_STEP + 1),
            ends: states(MAX_EVENTS_PER_STEP + 1),
            before: states(MAX_EVENTS_PER_STEP),
            g: EndValues::new(n, m),
            probe: vec![0.0; n],
            fired: 0,
            recorder: None,
        }
    }

    /// From now on, records the times of `event`: the first `keep` of them
    /// and how many there were.
    pub fn record_times(&mut self, event: usize, keep: usize) {
        self.recorder = Some(Recorder::new(event, keep));
    }

    /// Stops recording; returns the first recorded times and the count.
    pub fn stop_recording(&mut self) -> Option<(Vec<f64>, usize)> {
        self.recorder.take().map(Recorder::finish)
    }

    /// The pieces of the last step, in time order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The state piece `j` of the last step started from.
    pub fn start_state(&self, j: usize) -> &[f64] {
        &self.starts[j]
    }

    /// Piece `j`'s implicit solution over its whole length.
    pub fn end_state(&self, j: usize) -> &[f64] {
        &self.ends[j]
    }

    /// The state just before piece `j`'s event.
    pub fn state_before(&self, j: usize) -> &[f64] {
        &self.before[j]
    }

    /// Events in the last step.
    pub fn events_in_step(&self) -> usize {
        self.segments.iter().filter(|s| s.event.is_some()).count()
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
        self.segments.clear();
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
            self.segments.push(Segment {
                tau: t,
                h,
                sigma: h,
                event: None,
            });
            return Ok(());
        }
        self.starts[0].copy_from_slice(u);
        self.ends[0].copy_from_slice(y);
        // Piece lengths as on the explicit grids; the implicit solves are
        // all at the grid time t_next (τ_j + H_j).
        let t_end = t + h;
        let (mut tau, mut len) = (t, h);
        loop {
            let j = self.segments.len();
            if j > 0 {
                // Piece 0's solve and event values are the ones above.
                let (starts, ends) = (&self.starts[j], &mut self.ends[j]);
                stepper.solve_piece(model, t_next, len, starts, p, ends, k + 1, work)?;
                any = self.g.piece(model, starts, ends, p, work);
            }
            let piece = Piece::chord(&self.starts[j], &self.ends[j], len);
            let mut first: Option<(f64, usize)> = None;
            if any {
                for e in 0..self.n_events {
                    let ends = self.g.of(e);
                    if !crosses(model.event_direction(e), ends[0], ends[1]) {
                        continue;
                    }
                    let sigma = locate(model, e, &piece, &mut self.probe, ends, p, work);
                    // Ties go to the lower index (docs/events.md).
                    if first.is_none_or(|(s, _)| sigma < s) {
                        first = Some((sigma, e));
                    }
                }
            }
            let Some((sigma, e)) = first else {
                next[..n].copy_from_slice(&self.ends[j]);
                self.g.remember(&self.ends[j]);
                self.segments.push(Segment {
                    tau,
                    h: len,
                    sigma: len,
                    event: None,
                });
                break;
            };
            if j == MAX_EVENTS_PER_STEP {
                return Err(ForwardError::TooManyEvents {
                    t: tau + sigma,
                    limit: MAX_EVENTS_PER_STEP,
                });
            }
            piece.at(sigma, &mut self.before[j]);
            model.event_reset(e, &self.before[j], p, &mut self.starts[j + 1], work);
            self.segments.push(Segment {
                tau,
                h: len,
                sigma,
                event: Some(e),
            });
            self.fired += 1;
            tau += sigma;
            if let Some(r) = self.recorder.as_mut() {
                r.record(e, tau);
            }
            len = t_end - tau;
            if sigma >= self.segments[j].h || len <= 0.0 {
                // The event ends the step: u_{k+1} is the reset state.
                next[..n].copy_from_slice(&self.starts[j + 1]);
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
