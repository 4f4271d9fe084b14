//! Events (a model's `global` lines) in the BDF solve (docs/events.md,
//! "Events in bdf").
//!
//! After an accepted step from x_k (t) to x_{k+1} (t_new), each event's
//! condition is compared at the step's ends; a crossing in its direction is
//! located on the step's Nordsieck polynomial (its dense output) by the
//! Illinois iteration, to rounding, and the earliest wins (ties: the lower
//! index). The state just before the event is that polynomial at t*:
//! x_{k+1} becomes a *pending* restart state at t*, its Nordsieck array the
//! same polynomial re-centred there (so it stays the dense output of the
//! cut step, for the adjoint). Nothing is re-solved: the interpolant is
//! BDF's solution between its steps, costs no Newton solve and cannot fail,
//! and u⁻ is exactly the point where the crossing was located. The next
//! chain step is the reset alone, u⁺ = R(u⁻) at the same t, after which the
//! solver restarts at order 1 with a fresh history and Jacobian, as at a
//! stimulus switch. All of it is a deterministic function of the restart
//! state, so checkpoint replays repeat it bitwise.

use revode_model::Model;

use super::{nordsieck, BdfLayout};
use crate::events::{crosses, illinois, MAX_EVENTS_PER_STEP};
use crate::{ForwardError, NewtonMemory};

/// Scratch of the event location and the count of events fired.
#[derive(Debug, Clone)]
pub(super) struct EventWork {
    probe: Vec<f64>,
    /// Events fired (replays included).
    pub fired: usize,
}

impl EventWork {
    pub fn new(n: usize) -> Self {
        EventWork {
            probe: vec![0.0; n],
            fired: 0,
        }
    }

    pub fn buffer_bytes(&self) -> usize {
        self.probe.len() * std::mem::size_of::<f64>()
    }

    /// The earliest event crossing in the accepted step from `x` to `next`,
    /// located on `next`'s Nordsieck polynomial: `(σ, event)` with the
    /// event at `t + σ`; ties go to the lower index.
    #[allow(clippy::too_many_arguments)]
    pub fn first_crossing<M: Model>(
        &mut self,
        model: &M,
        params: &[f64],
        work: &mut M::Work,
        layout: BdfLayout,
        x: &[f64],
        next: &[f64],
    ) -> Option<(f64, usize)> {
        let t = x[BdfLayout::T];
        let len = next[BdfLayout::T] - t;
        let mut first: Option<(f64, usize)> = None;
        for e in 0..model.n_events() {
            let a = model.event_value(e, layout.u(x), params, work);
            let b = model.event_value(e, layout.u(next), params, work);
            if !crosses(model.event_direction(e), a, b) {
                continue;
            }
            let probe = &mut self.probe;
            let sigma = illinois(len, [a, b], |s| {
                layout.dense(next, t + s, probe);
                model.event_value(e, probe, params, work)
            });
            if first.is_none_or(|(s, _)| sigma < s) {
                first = Some((sigma, e));
            }
        }
        first
    }
}

/// Cuts the step from `x` that ended at `next` at event `e`, located at
/// `t + σ`: `next` becomes the pending restart state just before it (the
/// polynomial re-centred at t*, u⁻ its value there). More than
/// [`MAX_EVENTS_PER_STEP`] events without a step free of them is Zeno
/// behaviour: an error naming t*.
pub(super) fn cut_at_event(
    layout: BdfLayout,
    x: &[f64],
    next: &mut [f64],
    sigma: f64,
    e: usize,
) -> Result<(), ForwardError> {
    let t = x[BdfLayout::T];
    let t_end = next[BdfLayout::T];
    // An event at the step's end (or rounding there) keeps its end time
    // bitwise: it may be a stop, which must then count as reached.
    let t_event = if sigma == t_end - t {
        t_end
    } else {
        (t + sigma).min(t_end)
    };
    let in_a_row = x[BdfLayout::EVENTS] as usize + 1;
    if in_a_row > MAX_EVENTS_PER_STEP {
        return Err(ForwardError::TooManyEvents {
            t: t_event,
            limit: MAX_EVENTS_PER_STEP,
        });
    }
    if t_event != t_end {
        // The same θ as the location's probes, so u⁻ is their point.
        let theta = (t_event - t_end) / next[BdfLayout::H];
        let q = BdfLayout::order(next);
        nordsieck::recentre(layout.zn_mut(next), layout.n, q, theta);
        next[BdfLayout::T] = t_event;
        next[BdfLayout::STOP] = x[BdfLayout::STOP];
    }
    next[BdfLayout::RESTART] = -(e as f64) - 1.0;
    next[BdfLayout::EVENTS] = in_a_row as f64;
    Ok(())
}

/// The reset of event `e` pending at `x`: `next` is the state just after
/// it, at the same time, marked to restart at order 1 with a fresh
/// Jacobian.
#[allow(clippy::too_many_arguments)]
pub(super) fn reset<M: Model>(
    ev: &mut EventWork,
    layout: BdfLayout,
    model: &M,
    params: &[f64],
    work: &mut M::Work,
    [k, e]: [usize; 2],
    x: &[f64],
    next: &mut [f64],
) -> Result<(), ForwardError> {
    ev.fired += 1;
    next.copy_from_slice(x);
    next[BdfLayout::RESTART] = 1.0;
    NewtonMemory { n: layout.n }.init(layout.newton_mut(next));
    let u_plus = &mut layout.zn_mut(next)[..layout.n];
    model.event_reset(e, layout.u(x), params, u_plus, work);
    if !crate::all_finite(u_plus) {
        return Err(ForwardError::non_finite(x[BdfLayout::T], k + 1, u_plus));
    }
    Ok(())
}
