//! Explicit Euler and classical RK4, one step per call.

use revode_model::Model;

/// A fixed-step explicit method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedMethod {
    Euler,
    Rk4,
}

impl FixedMethod {
    pub fn name(self) -> &'static str {
        match self {
            FixedMethod::Euler => "euler",
            FixedMethod::Rk4 => "rk4",
        }
    }

    /// Right-hand-side evaluations per step.
    pub fn stages(self) -> usize {
        match self {
            FixedMethod::Euler => 1,
            FixedMethod::Rk4 => 4,
        }
    }
}

/// A fixed-step stepper owning its stage buffers.
///
/// The RK4 stages are exposed ([`FixedStepper::rk4_stages`]) so the discrete
/// adjoint recomputes exactly the stage states the forward step used.
#[derive(Debug, Clone)]
pub struct FixedStepper {
    method: FixedMethod,
    /// `k[i]` = f(U_i) for stage i.
    k: [Vec<f64>; 4],
    /// Stage states U_2, U_3, U_4 (U_1 = u).
    stage_u: [Vec<f64>; 3],
}

impl FixedStepper {
    pub fn new(method: FixedMethod, n_states: usize) -> Self {
        let v = || vec![0.0; n_states];
        FixedStepper {
            method,
            k: [v(), v(), v(), v()],
            stage_u: [v(), v(), v()],
        }
    }

    pub fn method(&self) -> FixedMethod {
        self.method
    }

    /// `next ← u + step(t, h)`.
    #[inline(always)]
    pub fn step<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) {
        match self.method {
            FixedMethod::Euler => {
                let k1 = &mut self.k[0];
                model.rhs(t, u, p, k1, work);
                for ((x, &u), &k) in next.iter_mut().zip(u).zip(k1.iter()) {
                    *x = u + h * k;
                }
            }
            FixedMethod::Rk4 => {
                self.rk4_stages(model, t, h, u, p, work);
                let k4 = &mut self.k[3];
                model.rhs(t + h, &self.stage_u[2], p, k4, work);
                let [k1, k2, k3, k4] = &self.k;
                let h6 = h / 6.0;
                for i in 0..u.len() {
                    next[i] = u[i] + h6 * (k1[i] + 2.0 * (k2[i] + k3[i]) + k4[i]);
                }
            }
        }
    }

    /// Computes the RK4 stage states U_2, U_3, U_4 (and k_1..k_3) from `u`.
    /// Returns `[U_2, U_3, U_4]`; the forward step and its adjoint share this.
    #[inline]
    pub fn rk4_stages<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        work: &mut M::Work,
    ) -> &[Vec<f64>; 3] {
        let half = 0.5 * h;
        let [k1, k2, k3, _] = &mut self.k;
        let [u2, u3, u4] = &mut self.stage_u;
        model.rhs(t, u, p, k1, work);
        for i in 0..u.len() {
            u2[i] = u[i] + half * k1[i];
        }
        model.rhs(t + half, u2, p, k2, work);
        for i in 0..u.len() {
            u3[i] = u[i] + half * k2[i];
        }
        model.rhs(t + half, u3, p, k3, work);
        for i in 0..u.len() {
            u4[i] = u[i] + h * k3[i];
        }
        &self.stage_u
    }

    /// Stage slopes `[k_1, k_2, k_3, k_4]` of the last [`FixedStepper::step`]
    /// (Euler fills `k_1` only).
    pub fn slopes(&self) -> &[Vec<f64>; 4] {
        &self.k
    }

    /// Stage states `[U_2, U_3, U_4]` of the last [`FixedStepper::rk4_stages`] call.
    pub fn stage_states(&self) -> &[Vec<f64>; 3] {
        &self.stage_u
    }

    /// Bytes held by the stage buffers.
    pub fn buffer_bytes(&self) -> usize {
        let f = std::mem::size_of::<f64>();
        (self.k.iter().map(Vec::capacity).sum::<usize>()
            + self.stage_u.iter().map(Vec::capacity).sum::<usize>())
            * f
    }
}
