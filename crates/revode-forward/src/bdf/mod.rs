//! Variable-step, variable-order BDF (orders 1–5) for stiff problems, in
//! the fixed-leading-coefficient Nordsieck form of CVODE (docs/stiff.md).
//!
//! One call of [`Bdf::advance`] takes one *accepted* step (retrying failed
//! attempts inside) from a packed restart state x_k to x_{k+1} (layout in
//! [`BdfLayout`]). The restart state holds everything the next step depends
//! on — the Nordsieck history, the step sizes it was built with, the order
//! and step chosen for the next step, the target stop and the Newton
//! solver's memory (where its Jacobian was evaluated, γ of its factors) —
//! so replaying from any x_k reproduces the forward steps bit for bit.
//! The Nordsieck array of x_{k+1} is also the dense output of step k.

mod coefficients;
mod core;
mod events;
mod initial;
mod nordsieck;
mod solve;
mod stops;

pub use self::core::{
    error_weights, wrms, BdfCore, BdfHistory, Corrector, CorrectorFailure, StepFailure, ETA_MAX,
    ETA_MAX_FIRST, MAX_CORRECTOR_FAILURES, STRETCH,
};
pub use coefficients::{StepCoefficients, MAX_ORDER, TAU_LEN};
pub use initial::{initial_step, InitialStepWork};
pub use nordsieck::eval as nordsieck_eval;
pub use solve::{solve_bdf, solve_bdf_observed, solve_bdf_try_observed};

use revode_model::Model;

use crate::{
    AdaptiveOptions, ForwardError, LinearSolver, Newton, NewtonFailure, NewtonMemory, NewtonStats,
    ParamSegments, StepCounts, Tolerance,
};
use stops::Stops;

/// Options of [`Bdf`].
#[derive(Debug, Clone, PartialEq)]
pub struct BdfOptions {
    /// rtol, atol, max_steps, h0 and h_min as for dopri5, except that
    /// `h_min: None` means no minimum besides rounding: a failed step is
    /// retried down to 16 ε |t|.
    pub adaptive: AdaptiveOptions,
    /// Highest order used, 1 to 5.
    pub max_order: usize,
    pub linear_solver: LinearSolver,
}

impl BdfOptions {
    /// Orders up to 5, the linear solver chosen by size and sparsity.
    pub fn new(rtol: f64, atol: f64) -> Self {
        BdfOptions {
            adaptive: AdaptiveOptions::new(rtol, atol),
            max_order: MAX_ORDER,
            linear_solver: LinearSolver::Auto,
        }
    }

    /// Checks the options and expands `atol` to `n` components.
    pub fn tolerance(&self, n: usize) -> Result<Tolerance, ForwardError> {
        if !(1..=MAX_ORDER).contains(&self.max_order) {
            return Err(ForwardError::InvalidOption {
                what: "max_order",
                value: self.max_order as f64,
                expected: "an integer from 1 to 5",
            });
        }
        self.adaptive.tolerance(n)
    }
}

/// Offsets in a packed restart state of a model with `n` states and
/// orders up to `q_max`:
/// `[t, h, h_next, q, q_next, qwait, eta_max, saved_tq5, stop, restart,
///   events, tau[1..=6], newton memory (4 + n), Nordsieck array ((q_max + 1) · n)]`.
/// `h` is the step the Nordsieck array is scaled to (the step that ended
/// here); `restart` = 1 at a parameter switch and just after an event's
/// reset: the next step restarts at order 1 (with the new parameters or
/// state); `restart` = −(e + 1) just before event e fires
/// ([`BdfLayout::pending_event`]): the next chain step is its reset.
/// `events` counts the events since the last step free of them (the Zeno
/// guard; kept here so that replays count as the forward sweep did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BdfLayout {
    pub n: usize,
    pub q_max: usize,
}

impl BdfLayout {
    pub const T: usize = 0;
    pub const H: usize = 1;
    pub const H_NEXT: usize = 2;
    pub const Q: usize = 3;
    const Q_NEXT: usize = 4;
    const QWAIT: usize = 5;
    const ETA_MAX: usize = 6;
    const SAVED_TQ5: usize = 7;
    pub const STOP: usize = 8;
    pub const RESTART: usize = 9;
    const EVENTS: usize = 10;
    const TAU: usize = 11;
    const HEAD: usize = Self::TAU + TAU_LEN;

    pub fn len(&self) -> usize {
        self.zn_start() + (self.q_max + 1) * self.n
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn newton_range(&self) -> std::ops::Range<usize> {
        Self::HEAD..Self::HEAD + NewtonMemory { n: self.n }.len()
    }

    fn zn_start(&self) -> usize {
        self.newton_range().end
    }

    /// The Newton memory of a restart state.
    pub fn newton<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[self.newton_range()]
    }

    fn newton_mut<'a>(&self, x: &'a mut [f64]) -> &'a mut [f64] {
        &mut x[self.newton_range()]
    }

    /// The Nordsieck array (all `q_max + 1` columns).
    pub fn zn<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[self.zn_start()..]
    }

    /// The state u at the restart state's time.
    pub fn u<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[self.zn_start()..self.zn_start() + self.n]
    }

    /// The Nordsieck array, writable.
    fn zn_mut<'a>(&self, x: &'a mut [f64]) -> &'a mut [f64] {
        &mut x[self.zn_start()..]
    }

    /// The event about to fire at restart state `x`, if any.
    #[inline]
    pub fn pending_event(x: &[f64]) -> Option<usize> {
        let flag = x[Self::RESTART];
        (flag < 0.0).then(|| (-flag) as usize - 1)
    }

    /// Order of the Nordsieck array of `x`.
    pub fn order(x: &[f64]) -> usize {
        x[Self::Q] as usize
    }

    /// `out ← u(t)` from the Nordsieck polynomial of `x` (the dense output of
    /// the step that ended at `x`, for t in that step).
    #[inline]
    pub fn dense(&self, x: &[f64], t: f64, out: &mut [f64]) {
        let theta = (t - x[Self::T]) / x[Self::H];
        nordsieck::eval(self.zn(x), self.n, Self::order(x), theta, out);
    }

    /// Copies the history of `x` into `core`.
    pub fn unpack(&self, x: &[f64], core: &mut BdfCore) {
        let mut tau = [0.0; TAU_LEN + 1];
        tau[1..].copy_from_slice(&x[Self::TAU..Self::TAU + TAU_LEN]);
        core.hist = BdfHistory {
            q: x[Self::Q] as usize,
            q_next: x[Self::Q_NEXT] as usize,
            qwait: x[Self::QWAIT] as usize,
            hscale: x[Self::H],
            h_next: x[Self::H_NEXT],
            eta_max: x[Self::ETA_MAX],
            saved_tq5: x[Self::SAVED_TQ5],
            tau,
        };
        core.zn.copy_from_slice(self.zn(x));
    }

    /// Writes the history of `core` into `x` (t, stop, restart and the
    /// Newton memory are the caller's).
    pub fn pack(&self, core: &BdfCore, x: &mut [f64]) {
        let h = &core.hist;
        x[Self::Q] = h.q as f64;
        x[Self::Q_NEXT] = h.q_next as f64;
        x[Self::QWAIT] = h.qwait as f64;
        x[Self::H] = h.hscale;
        x[Self::H_NEXT] = h.h_next;
        x[Self::ETA_MAX] = h.eta_max;
        x[Self::SAVED_TQ5] = h.saved_tq5;
        x[Self::TAU..Self::TAU + TAU_LEN].copy_from_slice(&h.tau[1..]);
        let start = self.zn_start();
        x[start..].copy_from_slice(&core.zn);
    }
}

/// The model's implicit equation `u = ψ + γ f(t, u, p)`, solved by the
/// shared modified Newton.
struct NewtonCorrector<'a, 'm, M: Model> {
    newton: &'a mut Newton<'m, M>,
    model: &'m M,
    params: &'a [f64],
    work: &'a mut M::Work,
}

impl<M: Model> Corrector for NewtonCorrector<'_, '_, M> {
    #[inline]
    fn solve(
        &mut self,
        t: f64,
        gamma: f64,
        psi: &[f64],
        y: &mut [f64],
        ewt: &[f64],
        tol: f64,
    ) -> Result<(), CorrectorFailure> {
        self.newton
            .solve(
                self.model,
                t,
                gamma,
                psi,
                self.params,
                y,
                ewt,
                tol,
                self.work,
            )
            .map(|_| ())
            .map_err(|e| match e {
                NewtonFailure::Diverged { .. } => CorrectorFailure::Diverged,
                NewtonFailure::Singular { index } => CorrectorFailure::Singular { index },
            })
    }

    #[inline]
    fn rhs(&mut self, t: f64, y: &[f64], out: &mut [f64]) {
        self.model.rhs(t, y, self.params, out, self.work);
    }
}

/// The smallest step a failed attempt may be retried with at t: the
/// user's `h_min`, and never below what still changes t.
#[inline]
pub fn step_floor(h_min: Option<f64>, t: f64) -> f64 {
    h_min
        .unwrap_or(0.0)
        .max(16.0 * f64::EPSILON * t.abs())
        .max(f64::MIN_POSITIVE)
}

/// Maps a failed step at t to the error users see.
pub fn step_error(failure: StepFailure, t: f64) -> ForwardError {
    match failure {
        StepFailure::StepSizeTooSmall { h, h_min } => ForwardError::StepSizeTooSmall {
            t,
            h: h.abs(),
            h_min,
        },
        StepFailure::Corrector {
            failure: CorrectorFailure::Diverged,
            h,
        } => ForwardError::NewtonDiverged { t, h: h.abs() },
        StepFailure::Corrector {
            failure: CorrectorFailure::Singular { index },
            h,
        } => ForwardError::BdfSingularMatrix {
            t,
            h: h.abs(),
            index,
        },
    }
}

/// The first step from `(t, y_n)` of `core` with `f0 = f(t, y_n)`,
/// towards `t_out`: `h0` if given (at t0 only), else the estimate of
/// [`initial_step`]; never below `h_min`.
#[allow(clippy::too_many_arguments)]
fn first_step<M: Model>(
    corrector: &mut NewtonCorrector<'_, '_, M>,
    core: &BdfCore,
    f0: &[f64],
    tol: &Tolerance,
    initial: &mut InitialStepWork,
    h0: Option<f64>,
    h_min: Option<f64>,
    t: f64,
    t_out: f64,
) -> f64 {
    let h = match h0 {
        Some(h) => h,
        None => initial_step(
            corrector,
            t,
            t_out,
            core.y(),
            f0,
            tol,
            f64::INFINITY,
            initial,
        ),
    };
    h.max(h_min.unwrap_or(0.0))
}

/// The forward BDF solver of one model over `[t0, t1]`, landing exactly on
/// every stop time (observation times, switch times, then t1).
pub struct Bdf<'m, M: Model> {
    model: &'m M,
    layout: BdfLayout,
    core: BdfCore,
    newton: Newton<'m, M>,
    initial: InitialStepWork,
    f0: Vec<f64>,
    tol: Tolerance,
    stops: Stops,
    t0: f64,
    t1: f64,
    max_steps: usize,
    h0: Option<f64>,
    h_min: Option<f64>,
    events: events::EventWork,
}

impl<'m, M: Model> Bdf<'m, M> {
    /// Checks options and stop times; allocates every buffer of the solve
    /// (the Newton solver's too: Jacobian, iteration matrix and its
    /// symbolic analysis).
    pub fn new(
        model: &'m M,
        options: &BdfOptions,
        t0: f64,
        t1: f64,
        observation_times: &[f64],
    ) -> Result<Self, ForwardError> {
        let n = model.dims().n_states;
        let tol = options.tolerance(n)?;
        let stops = Stops::new(t0, t1, observation_times)?;
        let layout = BdfLayout {
            n,
            q_max: options.max_order,
        };
        Ok(Bdf {
            model,
            layout,
            core: BdfCore::new(n, n, options.max_order),
            newton: Newton::new(model, options.linear_solver),
            initial: InitialStepWork::new(n),
            f0: vec![0.0; n],
            tol,
            stops,
            t0,
            t1,
            max_steps: options.adaptive.max_steps,
            h0: options.adaptive.h0,
            h_min: options.adaptive.h_min,
            events: events::EventWork::new(n),
        })
    }

    /// Makes the parameters piecewise constant: the solver then stops at
    /// every switch time and restarts there at order 1 with a fresh
    /// Jacobian; each step uses its segment's parameters in place of the
    /// `params` passed to [`Bdf::advance`] and [`Bdf::initial_state`].
    pub fn with_switches(mut self, segments: ParamSegments) -> Self {
        self.stops = self.stops.with_switches(segments);
        self
    }

    /// The parameter segments given to [`Bdf::with_switches`].
    pub fn segments(&self) -> Option<&ParamSegments> {
        self.stops.segments()
    }

    pub fn layout(&self) -> BdfLayout {
        self.layout
    }

    pub fn tolerance(&self) -> &Tolerance {
        &self.tol
    }

    /// Accepted and rejected (error test or corrector failure) attempts.
    pub fn counts(&self) -> StepCounts {
        self.core.counts
    }

    pub fn reset_counts(&mut self) {
        self.core.counts = StepCounts::default();
    }

    /// The Newton solver's counters (iterations, Jacobians, factorisations).
    pub fn newton_stats(&self) -> NewtonStats {
        self.newton.stats()
    }

    /// Which factorisation the Newton solver uses.
    pub fn linear_solver(&self) -> LinearSolver {
        self.newton.linear_solver()
    }

    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    pub fn h_min(&self) -> Option<f64> {
        self.h_min
    }

    pub fn t1(&self) -> f64 {
        self.t1
    }

    /// Bytes of the solver's buffers.
    pub fn buffer_bytes(&self) -> usize {
        self.core.buffer_bytes()
            + self.newton.buffer_bytes()
            + self.initial.buffer_bytes()
            + self.f0.len() * std::mem::size_of::<f64>()
            + self.events.buffer_bytes()
    }

    /// Events fired since the solver was made (replays included).
    pub fn events_fired(&self) -> usize {
        self.events.fired
    }

    /// `true` when `x` is the state at t1.
    #[inline]
    pub fn is_last(&self, x: &[f64]) -> bool {
        x[BdfLayout::T] == self.t1
    }

    /// Writes x_0 for `u0`: order 1, the first step (`h0` or the estimate of
    /// [`initial_step`]) and no Jacobian yet.
    pub fn initial_state(
        &mut self,
        params: &[f64],
        work: &mut M::Work,
        u0: &[f64],
        x0: &mut [f64],
    ) -> Result<(), ForwardError> {
        let layout = self.layout;
        let params = self.stops.params(0, params);
        nordsieck::col_mut(&mut self.core.zn, layout.n, 0).copy_from_slice(u0);
        self.model.rhs(self.t0, u0, params, &mut self.f0, work);
        if !crate::all_finite(&self.f0) {
            return Err(ForwardError::non_finite(self.t0, 0, &self.f0));
        }
        let mut corrector = NewtonCorrector {
            newton: &mut self.newton,
            model: self.model,
            params,
            work,
        };
        let h = first_step(
            &mut corrector,
            &self.core,
            &self.f0,
            &self.tol,
            &mut self.initial,
            self.h0,
            self.h_min,
            self.t0,
            self.stops.time(0),
        );
        self.core.start(&self.f0, h);
        layout.pack(&self.core, x0);
        x0[BdfLayout::T] = self.t0;
        x0[BdfLayout::STOP] = 0.0;
        x0[BdfLayout::RESTART] = 0.0;
        x0[BdfLayout::EVENTS] = 0.0;
        NewtonMemory { n: layout.n }.init(layout.newton_mut(x0));
        Ok(())
    }

    /// One accepted step: `next ← x_{k+1}` from `x` = x_k. A step that
    /// crosses an event ends just before it (a pending state, see
    /// [`BdfLayout`]); the step from a pending state is the reset alone.
    pub fn advance(
        &mut self,
        params: &[f64],
        work: &mut M::Work,
        k: usize,
        x: &[f64],
        next: &mut [f64],
    ) -> Result<(), ForwardError> {
        let layout = self.layout;
        let t = x[BdfLayout::T];
        if k >= self.max_steps {
            return Err(ForwardError::MaxStepsExceeded {
                t,
                max_steps: self.max_steps,
            });
        }
        let stop = x[BdfLayout::STOP] as usize;
        let t_stop = self.stops.time(stop);
        let params = self.stops.params(stop, params);
        if let Some(e) = BdfLayout::pending_event(x) {
            return events::reset(
                &mut self.events,
                layout,
                self.model,
                params,
                work,
                [k, e],
                x,
                next,
            );
        }
        layout.unpack(x, &mut self.core);
        if x[BdfLayout::RESTART] != 0.0 {
            // New parameters: the history and the Jacobian are stale.
            self.newton.invalidate();
            let y = nordsieck::col(&self.core.zn, layout.n, 0);
            self.model.rhs(t, y, params, &mut self.f0, work);
            if !crate::all_finite(&self.f0) {
                return Err(ForwardError::non_finite(t, k, &self.f0));
            }
            let mut corrector = NewtonCorrector {
                newton: &mut self.newton,
                model: self.model,
                params,
                work: &mut *work,
            };
            let h = first_step(
                &mut corrector,
                &self.core,
                &self.f0,
                &self.tol,
                &mut self.initial,
                None,
                self.h_min,
                t,
                t_stop,
            );
            self.core.start(&self.f0, h);
        } else {
            self.newton
                .load(layout.newton(x), params)
                .map_err(|e| match e {
                    NewtonFailure::Singular { index } => ForwardError::BdfSingularMatrix {
                        t,
                        h: x[BdfLayout::H_NEXT].abs(),
                        index,
                    },
                    NewtonFailure::Diverged { .. } => ForwardError::NewtonDiverged {
                        t,
                        h: x[BdfLayout::H_NEXT].abs(),
                    },
                })?;
        }
        self.core.prepare();
        let mut corrector = NewtonCorrector {
            newton: &mut self.newton,
            model: self.model,
            params,
            work: &mut *work,
        };
        let t_new = self
            .core
            .step(
                &mut corrector,
                t,
                Some(t_stop),
                step_floor(self.h_min, t),
                &self.tol,
            )
            .map_err(|f| step_error(f, t))?;
        let lands = t_new == t_stop;
        let restart = lands && self.stops.is_switch(stop);
        layout.pack(&self.core, next);
        next[BdfLayout::T] = t_new;
        next[BdfLayout::STOP] = (stop + lands as usize) as f64;
        next[BdfLayout::RESTART] = restart as u8 as f64;
        let mem = layout.newton_mut(next);
        if restart {
            NewtonMemory { n: layout.n }.init(mem);
        } else {
            self.newton.store(mem);
        }
        next[BdfLayout::EVENTS] = 0.0;
        let u = layout.u(next);
        if !crate::all_finite(u) {
            return Err(ForwardError::non_finite(t_new, k + 1, u));
        }
        if self.model.n_events() > 0 {
            let located = self
                .events
                .first_crossing(self.model, params, work, layout, x, next);
            if let Some((sigma, e)) = located {
                return events::cut_at_event(layout, x, next, sigma, e);
            }
        }
        Ok(())
    }
}
