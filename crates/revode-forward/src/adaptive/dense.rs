//! The 4th-order continuous extension of one Dormand–Prince step, built from
//! the restart states at both ends of the step (see [`StepLayout`]).

use super::StepLayout;

/// Dense output over one accepted step `[t_k, t_{k+1}]`:
/// `u(t_k + θh) = y0 + θ(Δ + (1−θ)(c3 + θ(c4 + (1−θ) c5)))` with
/// `Δ = y1 − y0`, `c3 = h f0 − Δ`, `c4 = Δ − h f1 − c3`, `c5 = h Σ d_i k_i`.
#[derive(Debug, Clone)]
pub struct DenseStep {
    t0: f64,
    h: f64,
    y0: Vec<f64>,
    delta: Vec<f64>,
    c3: Vec<f64>,
    c4: Vec<f64>,
    c5: Vec<f64>,
}

impl DenseStep {
    pub fn new(n: usize) -> Self {
        let v = || vec![0.0; n];
        DenseStep {
            t0: 0.0,
            h: 0.0,
            y0: v(),
            delta: v(),
            c3: v(),
            c4: v(),
            c5: v(),
        }
    }

    pub fn buffer_bytes(&self) -> usize {
        Self::bytes_for(self.y0.len())
    }

    /// Bytes of the buffers of a dense step of `n` states.
    pub fn bytes_for(n: usize) -> usize {
        5 * n * std::mem::size_of::<f64>()
    }

    pub fn t_start(&self) -> f64 {
        self.t0
    }

    pub fn t_end(&self) -> f64 {
        self.t0 + self.h
    }

    /// Sets up the step from restart state `lower` (x_k) to `upper` (x_{k+1}).
    #[inline]
    pub fn set(&mut self, layout: StepLayout, lower: &[f64], upper: &[f64]) {
        self.t0 = lower[StepLayout::T];
        self.h = upper[StepLayout::T] - self.t0;
        let h = self.h;
        let (y0, f0) = (layout.u(lower), layout.f(lower));
        let (y1, f1, r5) = (layout.u(upper), layout.f(upper), layout.r5(upper));
        let n = y0.len();
        let (y1, f0, f1, r5) = (&y1[..n], &f0[..n], &f1[..n], &r5[..n]);
        let (sy0, sdelta, sc3) = (&mut self.y0[..n], &mut self.delta[..n], &mut self.c3[..n]);
        let (sc4, sc5) = (&mut self.c4[..n], &mut self.c5[..n]);
        for i in 0..n {
            let delta = y1[i] - y0[i];
            let c3 = h * f0[i] - delta;
            sy0[i] = y0[i];
            sdelta[i] = delta;
            sc3[i] = c3;
            sc4[i] = delta - h * f1[i] - c3;
            sc5[i] = r5[i];
        }
    }

    /// Sets up the step of length `h` from `(t0, y0, f0)` to `(y1, f1)`
    /// with last coefficient `r5` (an attempt not yet written to a restart
    /// state: event location).
    #[allow(clippy::too_many_arguments)]
    pub fn set_parts(
        &mut self,
        t0: f64,
        h: f64,
        y0: &[f64],
        f0: &[f64],
        y1: &[f64],
        f1: &[f64],
        r5: &[f64],
    ) {
        self.t0 = t0;
        self.h = h;
        for i in 0..y0.len() {
            let delta = y1[i] - y0[i];
            let c3 = h * f0[i] - delta;
            self.y0[i] = y0[i];
            self.delta[i] = delta;
            self.c3[i] = c3;
            self.c4[i] = delta - h * f1[i] - c3;
            self.c5[i] = r5[i];
        }
    }

    /// `out ← u(t)` for t in the step.
    #[inline]
    pub fn eval(&self, t: f64, out: &mut [f64]) {
        let theta = (t - self.t0) / self.h;
        let theta1 = 1.0 - theta;
        // Re-sliced once so the loop carries no bounds checks (hot: called at
        // every stage of every adjoint step).
        let n = out.len();
        let (y0, delta, c3) = (&self.y0[..n], &self.delta[..n], &self.c3[..n]);
        let (c4, c5) = (&self.c4[..n], &self.c5[..n]);
        for i in 0..n {
            out[i] =
                y0[i] + theta * (delta[i] + theta1 * (c3[i] + theta * (c4[i] + theta1 * c5[i])));
        }
    }
}
