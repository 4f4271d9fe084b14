//! The exact discrete adjoint of one Euler or RK4 step.
//!
//! For a step u_{k+1} = Φ(u_k, p) and λ_{k+1} = ∂L/∂u_{k+1}, the step's
//! adjoint produces λ_k = (∂Φ/∂u_k)ᵀ λ_{k+1} and adds (∂Φ/∂p)ᵀ λ_{k+1} to
//! the parameter gradient. Stage states are recomputed from u_k with the
//! forward stepper's own code, so they are bitwise the forward's.
//! Derivation: docs/discrete-adjoint.md.

use revode_forward::{FixedMethod, FixedStepper};
use revode_model::Model;

/// RK4 weights b_i and the sub-diagonal a_{i+1,i} (all other a_ij are 0).
const RK4_B: [f64; 4] = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];
const RK4_A_SUB: [f64; 3] = [0.5, 0.5, 1.0];
/// Stage time offsets c_i.
const RK4_C: [f64; 4] = [0.0, 0.5, 0.5, 1.0];

/// Buffers for the adjoint of one fixed step.
#[derive(Debug, Clone)]
pub struct FixedAdjointStepper {
    stepper: FixedStepper,
    /// Stage adjoint weight w_i.
    w: Vec<f64>,
    /// J(U_i)ᵀ w_i.
    v: Vec<f64>,
    /// Σ_i J(U_i)ᵀ w_i.
    sum: Vec<f64>,
}

impl FixedAdjointStepper {
    pub fn new(method: FixedMethod, n_states: usize) -> Self {
        FixedAdjointStepper {
            stepper: FixedStepper::new(method, n_states),
            w: vec![0.0; n_states],
            v: vec![0.0; n_states],
            sum: vec![0.0; n_states],
        }
    }

    /// In place: `lambda ← (∂Φ/∂u_k)ᵀ lambda`, `grad_p += (∂Φ/∂p)ᵀ lambda`,
    /// for the step from `u` (= u_k) at time `t` of length `h`.
    #[inline]
    pub fn step_back<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) {
        match self.stepper.method() {
            FixedMethod::Euler => {
                // λ_k = λ + h J(u_k)ᵀ λ ;  ∂L/∂p += h (∂f/∂p)(u_k)ᵀ λ
                model.vjp(t, u, p, lambda, &mut self.v, h, grad_p, work);
                for (l, v) in lambda.iter_mut().zip(&self.v) {
                    *l += h * v;
                }
            }
            FixedMethod::Rk4 => self.rk4_back(model, t, h, u, p, lambda, grad_p, work),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rk4_back<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) {
        self.stepper.rk4_stages(model, t, h, u, p, work);
        let FixedAdjointStepper { stepper, w, v, sum } = self;
        let stages = stepper.stage_states();
        sum.fill(0.0);
        // Stage i (0-based) from last to first:
        // w_i = h b_i λ + h a_{i+1,i} J(U_{i+1})ᵀ w_{i+1}
        for i in (0..4).rev() {
            let hb = h * RK4_B[i];
            if i == 3 {
                for (wj, l) in w.iter_mut().zip(lambda.iter()) {
                    *wj = hb * l;
                }
            } else {
                let ha = h * RK4_A_SUB[i];
                for j in 0..w.len() {
                    w[j] = hb * lambda[j] + ha * v[j];
                }
            }
            let stage_u: &[f64] = if i == 0 { u } else { &stages[i - 1] };
            model.vjp(t + RK4_C[i] * h, stage_u, p, w, v, 1.0, grad_p, work);
            for (s, vj) in sum.iter_mut().zip(v.iter()) {
                *s += vj;
            }
        }
        for (l, s) in lambda.iter_mut().zip(sum.iter()) {
            *l += s;
        }
    }
}
