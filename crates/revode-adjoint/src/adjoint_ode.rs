//! The continuous adjoint ODE and its adaptive backward integration.
//!
//! With z = (λ, μ): dλ/dt = −(∂f/∂u)ᵀλ, dμ/dt = −(∂f/∂p)ᵀλ, integrated from
//! t1 to t0 with the same Dormand–Prince core as the forward solve. The
//! forward state u(t) at every stage comes from the 4th-order dense output of
//! the forward step covering t ([`DenseStep`]); adjoint steps never cross a
//! forward step boundary, so one dense output is in use at a time.

use revode_forward::{
    check_tolerances, expand_atol, DenseStep, Dp5, ForwardError, OdeRhs, PiController, StepCounts,
    Tolerance,
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

/// g(t, z) = −((∂f/∂u)ᵀλ, (∂f/∂p)ᵀλ) at u(t) from the dense output.
pub(crate) struct AdjointRhs<'a, M: Model> {
    pub model: &'a M,
    pub params: &'a [f64],
    pub work: &'a mut M::Work,
    pub dense: &'a DenseStep,
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

/// The backward integrator's state: z, its FSAL derivative, step and
/// controller memory, carried from one forward interval to the next.
#[derive(Debug, Clone)]
pub(crate) struct BackwardIntegrator {
    dp: Dp5,
    tol: Tolerance,
    controller: PiController,
    pub z: Vec<f64>,
    /// Signed (negative) next step; 0 before the first step.
    h: f64,
    /// `dp.k[0]` holds g(t, z) for the current (t, z).
    fsal_valid: bool,
    h_min: f64,
    pub counts: StepCounts,
}

/// Stretch a step to the interval end when it would stop within 1 % short.
/// (Longer stretches were measured on HH: fewer accepted steps, but more
/// rejections than they save.)
const STRETCH: f64 = 1.01;

impl BackwardIntegrator {
    pub fn new(tol: Tolerance, h_min: f64) -> Self {
        let len = tol.atol.len();
        BackwardIntegrator {
            dp: Dp5::new(len),
            tol,
            controller: PiController::new(),
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

    /// Integrates z from `t_hi` down to `t_lo` inside one forward step.
    pub fn cross<R: OdeRhs>(
        &mut self,
        rhs: &mut R,
        t_hi: f64,
        t_lo: f64,
    ) -> Result<(), GradientError> {
        let mut t = t_hi;
        if !self.fsal_valid {
            rhs.eval(t, &self.z, &mut self.dp.k[0]);
            self.fsal_valid = true;
        }
        if self.h == 0.0 {
            self.h = t_lo - t_hi;
        }
        let mut after_reject = false;
        loop {
            let h = self.h;
            if h.abs() < self.h_min || h.is_nan() {
                return Err(GradientError::AdjointStepTooSmall {
                    t,
                    h: h.abs(),
                    h_min: self.h_min,
                });
            }
            let remaining = t_lo - t;
            // After a rejection only ever shorten (a stretched retry could
            // repeat the same rejected attempt forever).
            let stretch = if after_reject { 1.0 } else { STRETCH };
            let lands = remaining.abs() <= stretch * h.abs();
            let h_try = if lands { remaining } else { h };
            let err_old = self.controller.err_old;
            let (accepted, h_new) = {
                let err = self.dp.attempt(rhs, t, h_try, &self.z, &self.tol);
                self.controller.judge(err, h_try, after_reject)
            };
            self.h = h_new;
            if accepted && lands && h_try.abs() < h.abs() {
                // A step cut short to end the interval says little about the
                // step size the solution needs: keep the proposal and memory.
                self.h = if h_new.abs() > h.abs() { h_new } else { h };
                self.controller.err_old = err_old;
            }
            if accepted {
                self.counts.accepted += 1;
                self.z.copy_from_slice(&self.dp.y_new);
                let [k1, .., k7] = &mut self.dp.k;
                std::mem::swap(k1, k7);
                if lands {
                    return Ok(());
                }
                t += h_try;
                after_reject = false;
            } else {
                self.counts.rejected += 1;
                after_reject = true;
            }
        }
    }
}
