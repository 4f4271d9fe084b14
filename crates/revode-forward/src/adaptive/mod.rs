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
pub use solve::{
    solve_adaptive, solve_adaptive_observed, solve_adaptive_try_observed,
    solve_adaptive_with_stimulus, AdaptiveSolution,
};

use revode_model::Model;
use serde::Serialize;

use crate::{ForwardError, ParamSegments};

/// Offsets in a packed restart state of a model with `n` states:
/// `[t, h_next, err_old, stop, u (n), f(t, u) (n), r5 (n)]`, where `r5` is
/// the last dense-output coefficient of the step that *ended* at this state
/// (zero for x_0). With `r5` and both ends' `u`, `f`, the dense output of a
/// step needs no recomputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLayout {
    pub n: usize,
}

impl StepLayout {
    pub const T: usize = 0;
    pub const H: usize = 1;
    pub const ERR: usize = 2;
    pub const STOP: usize = 3;
    const HEAD: usize = 4;

    pub fn len(&self) -> usize {
        Self::HEAD + 3 * self.n
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
                next[StepLayout::T] = if lands { t_stop } else { t + h_try };
                next[StepLayout::H] = h_new;
                next[StepLayout::ERR] = controller.err_old;
                next[StepLayout::STOP] = (stop + lands as usize) as f64;
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
}
