//! Adaptive Dormand–Prince 5(4) with FSAL, PI control and dense output.
//!
//! One call of [`Dopri5::advance`] takes one *accepted* step (retrying
//! rejected attempts inside) from a packed restart state x_k to x_{k+1}
//! (layout in [`StepLayout`]). The restart state holds everything the next
//! step depends on (t, proposed h, controller memory, target stop, u, FSAL
//! derivative), so replaying from any x_k reproduces the forward steps bit
//! for bit — what checkpointed reverse sweeps need.

mod dense;
mod dp5;
mod options;
mod solve;
mod tableau;

pub use dense::DenseStep;
pub use dp5::{initial_step, Dp5, OdeRhs, PiController, Tolerance, ERR_OLD_INIT};
pub use options::{check_tolerances, expand_atol, AdaptiveOptions, DEFAULT_MAX_STEPS};
pub(crate) use solve::keeping_grown_samples;
pub use solve::{
    solve_adaptive, solve_adaptive_observed, solve_adaptive_try_observed,
    solve_adaptive_with_stimulus, AdaptiveSolution,
};

use revode_model::Model;
use serde::Serialize;

use crate::{ForwardError, ParamSegments};

/// Offsets in a packed restart state of a model with `n` states:
/// `[t, h_next, err_old, stop, events, u (n), f(t, u) (n), r5 (n)]`, where `r5` is
/// the last dense-output coefficient of the step that *ended* at this state
/// (zero for x_0). With `r5` and both ends' `u`, `f`, the dense output of a
/// step needs no recomputation. A state just before event `e` fires (see
/// [`Dopri5::advance`]) has `err_old = −(e + 1)` ([`StepLayout::pending_event`]):
/// the next chain step is the event's reset. `events` counts the events
/// since the last step free of them (the Zeno guard), kept here so that
/// replays from checkpoints count as the forward sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLayout {
    pub n: usize,
}

impl StepLayout {
    pub const T: usize = 0;
    pub const H: usize = 1;
    pub const ERR: usize = 2;
    pub const STOP: usize = 3;
    pub const EVENTS: usize = 4;
    const HEAD: usize = 5;

    pub fn len(&self) -> usize {
        Self::HEAD + 3 * self.n
    }
    /// The event about to fire at restart state `x`, if any.
    #[inline]
    pub fn pending_event(x: &[f64]) -> Option<usize> {
        let err = x[Self::ERR];
        (err < 0.0).then(|| (-err) as usize - 1)
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    #[inline]
    pub fn u<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[Self::HEAD..Self::HEAD + self.n]
    }
    #[inline]
    pub fn f<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[Self::HEAD + self.n..Self::HEAD + 2 * self.n]
    }
    #[inline]
    pub fn r5<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[Self::HEAD + 2 * self.n..Self::HEAD + 3 * self.n]
    }
    /// `(u, f, r5)` of a restart state, writable.
    #[inline]
    pub fn parts_mut<'a>(&self, x: &'a mut [f64]) -> (&'a mut [f64], &'a mut [f64], &'a mut [f64]) {
        let (u, rest) = x[Self::HEAD..].split_at_mut(self.n);
        let (f, r5) = rest.split_at_mut(self.n);
        (u, f, r5)
    }
}

/// Accepted and rejected step counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepCounts {
    pub accepted: usize,
    pub rejected: usize,
}

/// A model's right-hand side as an [`OdeRhs`].
pub struct ModelRhs<'a, M: Model> {
    pub model: &'a M,
    pub params: &'a [f64],
    pub work: &'a mut M::Work,
}

impl<M: Model> OdeRhs for ModelRhs<'_, M> {
    #[inline]
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.model.rhs(t, y, self.params, dy, self.work);
    }
}

/// The forward Dormand–Prince solver over `[t0, t1]`, landing exactly on
/// every stop time (observation times, then t1).
#[derive(Debug, Clone)]
pub struct Dopri5 {
    layout: StepLayout,
    dp: Dp5,
    tol: Tolerance,
    /// Sorted, distinct, ending with t1.
    stops: Vec<f64>,
    t0: f64,
    t1: f64,
    max_steps: usize,
    h0: Option<f64>,
    h_min: f64,
    counts: StepCounts,
    /// Parameter segments, when a stimulus switches parameters.
    switches: Option<Switches>,
    events: EventState,
}

/// Event location: the attempt's dense output and scratch.
#[derive(Debug, Clone)]
struct EventState {
    dense: DenseStep,
    probe: Vec<f64>,
    r5: Vec<f64>,
    /// Events fired (replays included).
    fired: usize,
}

/// The parameter switches of a solve (see [`Dopri5::with_switches`]).
#[derive(Debug, Clone)]
struct Switches {
    segments: ParamSegments,
    /// The segment of the steps heading for each stop.
    segment_of_stop: Vec<usize>,
    /// Whether each stop is a switch time.
    switch_stop: Vec<bool>,
}

/// A step is stretched to a stop when it would end within 1 % of its length
/// before it (no sliver steps).
const STRETCH: f64 = 1.01;

impl Dopri5 {
    /// Checks options and stop times; allocates every buffer of the solve.
    pub fn new(
        options: &AdaptiveOptions,
        n: usize,
        t0: f64,
        t1: f64,
        observation_times: &[f64],
    ) -> Result<Self, ForwardError> {
        if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
            return Err(ForwardError::InvalidSpan { t0, t1 });
        }
        let tol = options.tolerance(n)?;
        let mut stops = Vec::with_capacity(observation_times.len() + 1);
        for (index, &t) in observation_times.iter().enumerate() {
            if !(t.is_finite() && t > t0 && t <= t1) {
                return Err(ForwardError::StopTimeOutside { index, t, t0, t1 });
            }
            if let Some(&prev) = stops.last() {
                if t <= prev {
                    return Err(ForwardError::StopTimesUnsorted { index, t, prev });
                }
            }
            stops.push(t);
        }
        if stops.last() != Some(&t1) {
            stops.push(t1);
        }
        Ok(Dopri5 {
            layout: StepLayout { n },
            dp: Dp5::new(n),
            tol,
            stops,
            t0,
            t1,
            max_steps: options.max_steps,
            h0: options.h0,
            h_min: options.h_min.unwrap_or(1e-12 * (t1 - t0)),
            counts: StepCounts::default(),
            switches: None,
            events: EventState {
                dense: DenseStep::new(n),
                probe: vec![0.0; n],
                r5: vec![0.0; n],
                fired: 0,
            },
        })
    }

    /// Makes the parameters piecewise constant: the solver then stops at
    /// every switch time, and each step uses its segment's parameters in
    /// place of the `params` passed to [`Dopri5::advance`] and
    /// [`Dopri5::initial_state`]. The restart state at a switch time holds
    /// f(τ, u, p) of the segment that *starts* there (the next step's first
    /// stage); the step that ended there used the previous segment's.
    pub fn with_switches(mut self, segments: ParamSegments) -> Self {
        self.stops.extend_from_slice(segments.switch_times());
        self.stops.sort_by(f64::total_cmp);
        self.stops.dedup();
        let times = segments.switch_times();
        let segment_of_stop = (0..self.stops.len())
            .map(|i| segments.segment_at(if i == 0 { self.t0 } else { self.stops[i - 1] }))
            .collect();
        let switch_stop = self
            .stops
            .iter()
            .map(|t| times.binary_search_by(|x| x.total_cmp(t)).is_ok())
            .collect();
        self.switches = Some(Switches {
            segments,
            segment_of_stop,
            switch_stop,
        });
        self
    }

    /// The parameter segments given to [`Dopri5::with_switches`].
    pub fn segments(&self) -> Option<&ParamSegments> {
        self.switches.as_ref().map(|s| &s.segments)
    }

    pub fn layout(&self) -> StepLayout {
        self.layout
    }

    pub fn tolerance(&self) -> &Tolerance {
        &self.tol
    }

    pub fn counts(&self) -> StepCounts {
        self.counts
    }

    pub fn reset_counts(&mut self) {
        self.counts = StepCounts::default();
    }

    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    pub fn t1(&self) -> f64 {
        self.t1
    }

    pub fn buffer_bytes(&self) -> usize {
        self.dp.buffer_bytes()
    }

    /// `true` when `x` is the state at t1.
    #[inline]
    pub fn is_last(&self, x: &[f64]) -> bool {
        x[StepLayout::T] == self.t1
    }

    /// Writes x_0 for `u0`: f(t0, u0) and the initial step (`h0` or
    /// Hairer's guess).
    pub fn initial_state<M: Model>(
        &mut self,
        model: &M,
        params: &[f64],
        work: &mut M::Work,
        u0: &[f64],
        x0: &mut [f64],
    ) -> Result<(), ForwardError> {
        let layout = self.layout;
        let params = match &self.switches {
            Some(sw) => sw.segments.params(0),
            None => params,
        };
        let mut rhs = ModelRhs {
            model,
            params,
            work,
        };
        let (u, f, r5) = layout.parts_mut(x0);
        u.copy_from_slice(u0);
        rhs.eval(self.t0, u0, f);
        r5.fill(0.0);
        if !crate::all_finite(f) {
            return Err(ForwardError::non_finite(self.t0, 0, f));
        }
        let span = self.t1 - self.t0;
        let h = match self.h0 {
            Some(h) => h.min(span),
            None => {
                let [y1, f1, ..] = &mut self.dp.k;
                initial_step(&mut rhs, self.t0, u0, f, &self.tol, span, 1.0, y1, f1)
            }
        };
        x0[StepLayout::T] = self.t0;
        x0[StepLayout::H] = h;
        x0[StepLayout::ERR] = ERR_OLD_INIT;
        x0[StepLayout::STOP] = 0.0;
        x0[StepLayout::EVENTS] = 0.0;
        Ok(())
    }

    /// One accepted step: `next ← x_{k+1}` from `x` = x_k.
    #[inline]
    pub fn advance<M: Model>(
        &mut self,
        model: &M,
        params: &[f64],
        work: &mut M::Work,
        k: usize,
        x: &[f64],
        next: &mut [f64],
    ) -> Result<(), ForwardError> {
        let layout = self.layout;
        let t = x[StepLayout::T];
        if k >= self.max_steps {
            return Err(ForwardError::MaxStepsExceeded {
                t,
                max_steps: self.max_steps,
            });
        }
        let mut h = x[StepLayout::H];
        let mut controller = PiController {
            err_old: x[StepLayout::ERR],
        };
        let stop = x[StepLayout::STOP] as usize;
        let t_stop = self.stops[stop];
        let u = layout.u(x);
        let params = match &self.switches {
            Some(sw) => sw.segments.params(sw.segment_of_stop[stop]),
            None => params,
        };
        if let Some(e) = StepLayout::pending_event(x) {
            return reset(
                &mut self.events,
                layout,
                model,
                params,
                work,
                [k, e],
                x,
                next,
            );
        }
        let mut rhs = ModelRhs {
            model,
            params,
            work,
        };
        self.dp.k[0].copy_from_slice(layout.f(x));
        let mut after_reject = false;
        loop {
            if h < self.h_min || h.is_nan() {
                return Err(ForwardError::StepSizeTooSmall {
                    t,
                    h,
                    h_min: self.h_min,
                });
            }
            let lands = t + STRETCH * h >= t_stop;
            let h_try = if lands { t_stop - t } else { h };
            let err = self.dp.attempt(&mut rhs, t, h_try, u, &self.tol);
            let (accepted, h_new) = controller.judge(err, h_try, after_reject);
            if accepted {
                self.counts.accepted += 1;
                let t_end = if lands { t_stop } else { t + h_try };
                if model.n_events() > 0 {
                    let ev = &mut self.events;
                    if let Some((sigma, e)) =
                        first_event(ev, &self.dp, model, params, rhs.work, t, h_try, u)
                    {
                        let lengths = [sigma, h_try, h_new, t_end];
                        let t_stop = self.stops[stop];
                        return cut_at_event(
                            &mut self.dp,
                            &self.tol,
                            t_stop,
                            layout,
                            &mut rhs,
                            k,
                            x,
                            lengths,
                            e,
                            next,
                        );
                    }
                }
                next[StepLayout::T] = t_end;
                next[StepLayout::H] = h_new;
                next[StepLayout::ERR] = controller.err_old;
                next[StepLayout::STOP] = (stop + lands as usize) as f64;
                next[StepLayout::EVENTS] = 0.0;
                let (u1, f1, r5) = layout.parts_mut(next);
                u1.copy_from_slice(&self.dp.y_new);
                f1.copy_from_slice(&self.dp.k[6]);
                self.dp.dense_r5(h_try, r5);
                if let Some(sw) = &self.switches {
                    if lands && sw.switch_stop[stop] {
                        // The next step starts in the next segment: its
                        // first stage is f with the new parameters.
                        let params = sw.segments.params(sw.segment_of_stop[stop + 1]);
                        model.rhs(t_stop, u1, params, f1, rhs.work);
                        if !crate::all_finite(f1) {
                            return Err(ForwardError::non_finite(t_stop, k + 1, f1));
                        }
                    }
                }
                return Ok(());
            }
            log::debug!("dopri5: rejected h = {h_try:e} at t = {t} (error {err:e})");
            self.counts.rejected += 1;
            after_reject = true;
            h = h_new;
        }
    }

    /// Events fired since the solver was made (replays included).
    pub fn events_fired(&self) -> usize {
        self.events.fired
    }
}

/// The earliest event crossing in the accepted attempt of length `h`
/// from `(t, u)` (in `self.dp`), located to rounding on its dense
/// output: `(σ, event)`; ties go to the lower index.
#[allow(clippy::too_many_arguments)]
fn first_event<M: Model>(
    ev: &mut EventState,
    dp: &Dp5,
    model: &M,
    params: &[f64],
    work: &mut M::Work,
    t: f64,
    h: f64,
    u: &[f64],
) -> Option<(f64, usize)> {
    let mut first: Option<(f64, usize)> = None;
    let mut dense_ready = false;
    for e in 0..model.n_events() {
        let a = model.event_value(e, u, params, work);
        let b = model.event_value(e, &dp.y_new, params, work);
        if !crate::events::crosses(model.event_direction(e), a, b) {
            continue;
        }
        if !dense_ready {
            dp.dense_r5(h, &mut ev.r5);
            let [k1, .., k7] = &dp.k;
            ev.dense.set_parts(t, h, u, k1, &dp.y_new, k7, &ev.r5);
            dense_ready = true;
        }
        let dense = &ev.dense;
        let probe = &mut ev.probe;
        let sigma = crate::events::illinois(h, [a, b], |s| {
            dense.eval(t + s, probe);
            model.event_value(e, probe, params, work)
        });
        if first.is_none_or(|(s, _)| sigma < s) {
            first = Some((sigma, e));
        }
    }
    first
}

/// Ends the step at the event located at `t + σ`: the step is retaken
/// with length σ (accepted: it is shorter than an accepted one) and
/// `next` is the state just before the event, marked pending.
/// `lengths` = `[σ, h of the attempt, proposed next h, the attempt's end time]`.
#[allow(clippy::too_many_arguments)]
fn cut_at_event<R: OdeRhs>(
    dp: &mut Dp5,
    tol: &Tolerance,
    t_stop: f64,
    layout: StepLayout,
    rhs: &mut R,
    k: usize,
    x: &[f64],
    lengths: [f64; 4],
    e: usize,
    next: &mut [f64],
) -> Result<(), ForwardError> {
    let [sigma, h_try, h_new, t_end] = lengths;
    let (t, u) = (x[StepLayout::T], layout.u(x));
    let stop = x[StepLayout::STOP] as usize;
    let in_a_row = x[StepLayout::EVENTS] as usize + 1;
    if in_a_row > crate::events::MAX_EVENTS_PER_STEP {
        return Err(ForwardError::TooManyEvents {
            t: t + sigma,
            limit: crate::events::MAX_EVENTS_PER_STEP,
        });
    }
    if sigma < h_try {
        dp.attempt(rhs, t, sigma, u, tol);
    }
    // An event at the attempt's end keeps its end time bitwise (a stop).
    let t_event = if sigma == h_try { t_end } else { t + sigma };
    if !crate::all_finite(&dp.y_new) {
        return Err(ForwardError::non_finite(t_event, k + 1, &dp.y_new));
    }
    next[StepLayout::T] = t_event;
    next[StepLayout::H] = h_new;
    next[StepLayout::ERR] = -(e as f64) - 1.0;
    next[StepLayout::STOP] = (stop + (t_event == t_stop) as usize) as f64;
    next[StepLayout::EVENTS] = in_a_row as f64;
    let (u1, f1, r5) = layout.parts_mut(next);
    u1.copy_from_slice(&dp.y_new);
    f1.copy_from_slice(&dp.k[6]);
    dp.dense_r5(sigma, r5);
    Ok(())
}

/// The reset of event `e` pending at `x`: `next` is the state just
/// after it, at the same time, the controller restarted.
#[allow(clippy::too_many_arguments)]
fn reset<M: Model>(
    ev: &mut EventState,
    layout: StepLayout,
    model: &M,
    params: &[f64],
    work: &mut M::Work,
    [k, e]: [usize; 2],
    x: &[f64],
    next: &mut [f64],
) -> Result<(), ForwardError> {
    let t = x[StepLayout::T];
    ev.fired += 1;
    next[..StepLayout::HEAD].copy_from_slice(&x[..StepLayout::HEAD]);
    next[StepLayout::ERR] = ERR_OLD_INIT;
    let (u1, f1, r5) = layout.parts_mut(next);
    model.event_reset(e, layout.u(x), params, u1, work);
    model.rhs(t, u1, params, f1, work);
    r5.fill(0.0);
    if !crate::all_finite(u1) || !crate::all_finite(f1) {
        return Err(ForwardError::non_finite(t, k + 1, u1));
    }
    Ok(())
}
