//! The continuous adjoint ODE and its adaptive backward integration.
//!
//! With z = (λ, μ): dλ/dt = −(∂f/∂u)ᵀλ, dμ/dt = −(∂f/∂p)ᵀλ, integrated from
//! t1 to t0 with the same Dormand–Prince core as the forward solve. The
//! forward state u(t) at every stage comes from the 4th-order dense output of
//! the forward step covering t ([`DenseStep`]). The dense outputs of the
//! last few forward steps visited are kept in a [`DenseRing`], so one adjoint
//! step may span several forward steps.

use revode_forward::{
    check_tolerances, expand_atol, DenseStep, Dp5, ForwardError, OdeRhs, PiController, StepCounts,
    StepLayout, Tolerance,
};
use revode_model::Model;
use serde::{Deserialize, Serialize};

use crate::GradientError;

/// Which part of z = (λ, μ) enters the adjoint error norm (as CVODES's
/// `errconQB`: μ is a quadrature that may be left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorControl {
    #[default]
    Lambda,
    LambdaAndMu,
}

/// Options of the adaptive continuous adjoint; `None` falls back to the
/// forward solver's tolerances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContinuousOptions {
    pub rtol: Option<f64>,
    /// 1 value, one per state (μ then gets their minimum) or one per state
    /// and parameter (λ then μ).
    pub atol: Option<Vec<f64>>,
    pub error_control: ErrorControl,
    /// Bytes the caller holds for the run outside the sweep (its
    /// parameter-sized buffers, an implicit solver's matrices), counted with
    /// the checkpoint store against a memory limit set in code or in
    /// `REVODE_MEMORY_LIMIT` at the store's first allocation and every
    /// growth (`revode_checkpoint::OnlineStore::with_memory_limit_beside`).
    pub held_outside_store: usize,
}

impl ContinuousOptions {
    /// The tolerance on z = (λ, μ), given the forward `rtol` and expanded `atol`.
    pub fn tolerance(
        &self,
        forward: &Tolerance,
        n_states: usize,
        n_params: usize,
    ) -> Result<Tolerance, GradientError> {
        let rtol = self.rtol.unwrap_or(forward.rtol);
        let atol = self.atol.as_deref().unwrap_or(&forward.atol);
        let full = n_states + n_params;
        let mut expanded = if atol.len() == full {
            check_tolerances(rtol, atol, full)?;
            atol.to_vec()
        } else {
            check_tolerances(rtol, atol, n_states).map_err(|e| match e {
                ForwardError::AtolLength { got, .. } => GradientError::AdjointAtolLength {
                    got,
                    n_states,
                    full,
                },
                other => other.into(),
            })?;
            let mut v = expand_atol(atol, n_states);
            let smallest = v.iter().copied().fold(f64::INFINITY, f64::min);
            v.resize(full, smallest);
            v
        };
        expanded.shrink_to_fit();
        Ok(Tolerance {
            rtol,
            atol: expanded,
            controlled: match self.error_control {
                ErrorControl::Lambda => n_states,
                ErrorControl::LambdaAndMu => full,
            },
        })
    }
}

/// The dense outputs of the last (at most `capacity`) forward steps visited
/// backwards: contiguous intervals, the newest lowest in time. Allocated once.
#[derive(Debug, Clone)]
pub(crate) struct DenseRing {
    steps: Vec<DenseStep>,
    /// Slot the next push writes.
    next: usize,
    len: usize,
}

impl DenseRing {
    pub fn new(n: usize, capacity: usize) -> Self {
        assert!(capacity > 0);
        DenseRing {
            steps: (0..capacity).map(|_| DenseStep::new(n)).collect(),
            next: 0,
            len: 0,
        }
    }

    pub fn buffer_bytes(&self) -> usize {
        self.steps.iter().map(DenseStep::buffer_bytes).sum()
    }

    pub fn is_full(&self) -> bool {
        self.len == self.steps.len()
    }

    /// Slot of the i-th newest step.
    #[inline]
    fn slot(&self, i: usize) -> usize {
        let m = self.steps.len();
        let back = self.next + m - 1 - i;
        if back >= m {
            back - m
        } else {
            back
        }
    }

    /// Start of the newest step: the lower end of the buffered span.
    pub fn bottom(&self) -> f64 {
        self.steps[self.slot(0)].t_start()
    }

    /// Drops the oldest steps that lie wholly at or above `t`.
    pub fn retire(&mut self, t: f64) {
        while self.len > 0 && self.steps[self.slot(self.len - 1)].t_start() >= t {
            self.len -= 1;
        }
    }

    /// Adds the step from restart state `lower` to `upper` (below the others);
    /// the oldest is overwritten when full.
    pub fn push(&mut self, layout: StepLayout, lower: &[f64], upper: &[f64]) {
        self.steps[self.next].set(layout, lower, upper);
        self.next = if self.next + 1 == self.steps.len() {
            0
        } else {
            self.next + 1
        };
        self.len = (self.len + 1).min(self.steps.len());
    }

    /// `out ← u(t)` from the buffered step covering t (the newest one below
    /// the span).
    #[inline]
    pub fn eval(&self, t: f64, out: &mut [f64]) {
        for i in (1..self.len).rev() {
            let s = &self.steps[self.slot(i)];
            if t >= s.t_start() {
                return s.eval(t, out);
            }
        }
        self.steps[self.slot(0)].eval(t, out)
    }
}

/// g(t, z) = −((∂f/∂u)ᵀλ, (∂f/∂p)ᵀλ) at u(t) from the dense output.
pub(crate) struct AdjointRhs<'a, M: Model> {
    pub model: &'a M,
    pub params: &'a [f64],
    pub work: &'a mut M::Work,
    pub dense: &'a DenseRing,
    /// Scratch for u(t).
    pub u: &'a mut [f64],
}

impl<M: Model> OdeRhs for AdjointRhs<'_, M> {
    #[inline]
    fn eval(&mut self, t: f64, z: &[f64], dz: &mut [f64]) {
        let n = self.u.len();
        self.dense.eval(t, self.u);
        let (dl, dmu) = dz.split_at_mut(n);
        dmu.fill(0.0);
        self.model
            .vjp(t, self.u, self.params, &z[..n], dl, -1.0, dmu, self.work);
        // Each stage needs its own μ-derivative: collect what the model deferred.
        self.model.flush_vjp(dmu, self.work);
        for d in dl.iter_mut() {
            *d = -*d;
        }
    }
}

/// The backward integrator's state: t, z, its FSAL derivative, step and
/// controller memory, carried across the forward steps.
#[derive(Debug, Clone)]
pub(crate) struct BackwardIntegrator {
    dp: Dp5,
    tol: Tolerance,
    controller: PiController,
    /// Current time of z.
    pub t: f64,
    pub z: Vec<f64>,
    /// Signed (negative) next step; 0 before the first step.
    pub h: f64,
    /// `dp.k[0]` holds g(t, z) for the current (t, z).
    fsal_valid: bool,
    h_min: f64,
    pub counts: StepCounts,
}

/// Stretch a step to a landing point when it would stop within 1 % short.
/// (Longer stretches were measured on HH: fewer accepted steps, but more
/// rejections than they save.)
const STRETCH: f64 = 1.01;

impl BackwardIntegrator {
    pub fn new(tol: Tolerance, h_min: f64, t: f64) -> Self {
        let len = tol.atol.len();
        BackwardIntegrator {
            dp: Dp5::new(len),
            tol,
            controller: PiController::new(),
            t,
            z: vec![0.0; len],
            h: 0.0,
            fsal_valid: false,
            h_min,
            counts: StepCounts::default(),
        }
    }

    /// z changed outside the ODE (an observation jump): g must be recomputed.
    pub fn invalidate_fsal(&mut self) {
        self.fsal_valid = false;
    }

    /// Integrates z down from `self.t` towards `t_floor`, evaluating `rhs`
    /// only in `[t_floor, self.t]`. With `land`, ends exactly at `t_floor`;
    /// otherwise stops (before attempting it) at the first proposed step
    /// that would pass `t_floor`, to go on once more is known below.
    pub fn advance<R: OdeRhs>(
        &mut self,
        rhs: &mut R,
        t_floor: f64,
        land: bool,
    ) -> Result<(), GradientError> {
        let mut after_reject = false;
        loop {
            let t = self.t;
            if t == t_floor {
                return Ok(());
            }
            let h = self.h;
            let remaining = t_floor - t;
            if !land && t + h < t_floor {
                return Ok(());
            }
            if h.abs() < self.h_min || h.is_nan() {
                return Err(GradientError::AdjointStepTooSmall {
                    t,
                    h: h.abs(),
                    h_min: self.h_min,
                });
            }
            // After a rejection only ever shorten (a stretched retry could
            // repeat the same rejected attempt forever).
            let stretch = if after_reject { 1.0 } else { STRETCH };
            let lands = land && remaining.abs() <= stretch * h.abs();
            let h_try = if lands { remaining } else { h };
            if !self.fsal_valid {
                rhs.eval(t, &self.z, &mut self.dp.k[0]);
                self.fsal_valid = true;
            }
            let err_old = self.controller.err_old;
            let (accepted, h_new) = {
                let err = self.dp.attempt(rhs, t, h_try, &self.z, &self.tol);
                self.controller.judge(err, h_try, after_reject)
            };
            self.h = h_new;
            if accepted && lands && h_try.abs() < h.abs() {
                // A step cut short to land says little about the step size
                // the solution needs: keep the proposal and memory.
                self.h = if h_new.abs() > h.abs() { h_new } else { h };
                self.controller.err_old = err_old;
            }
            if accepted {
                self.counts.accepted += 1;
                self.z.copy_from_slice(&self.dp.y_new);
                let [k1, .., k7] = &mut self.dp.k;
                std::mem::swap(k1, k7);
                self.t = if lands { t_floor } else { t + h_try };
                after_reject = false;
            } else {
                self.counts.rejected += 1;
                after_reject = true;
            }
        }
    }
}
