//! One Dormand–Prince 5(4) attempt on any right-hand side, the weighted RMS
//! error norm and the PI step-size controller. Shared by the forward solver
//! and the continuous adjoint (which runs the same core backwards in time).

use super::tableau::{A21, A3, A4, A5, A6, B, C, D, E};

/// A right-hand side `dy ← g(t, y)`.
pub trait OdeRhs {
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]);
}

/// Error tolerances: `sc_i = atol_i + rtol · max(|y_i|, |ŷ_i|)`; only the
/// first `controlled` components enter the error norm.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    /// One entry per component of y.
    pub atol: Vec<f64>,
    pub controlled: usize,
}

/// Stage buffers of one Dormand–Prince attempt.
///
/// `k[0]` holds f(t, y) on entry (first same as last: the previous accepted
/// step's `k[6]`); after [`Dp5::attempt`], `y_new` is the 5th-order solution
/// and `k[6]` = f(t + h, y_new).
#[derive(Debug, Clone)]
pub struct Dp5 {
    pub k: [Vec<f64>; 7],
    pub y_new: Vec<f64>,
    stage: Vec<f64>,
}

impl Dp5 {
    pub fn new(len: usize) -> Self {
        let v = || vec![0.0; len];
        Dp5 {
            k: [v(), v(), v(), v(), v(), v(), v()],
            y_new: v(),
            stage: v(),
        }
    }

    /// Bytes of the stage buffers.
    pub fn buffer_bytes(&self) -> usize {
        (9 * self.stage.len()) * std::mem::size_of::<f64>()
    }

    /// One attempt from `(t, y)` with step `h` (negative: backwards).
    /// Returns the scaled RMS error norm (∞ if anything is non-finite).
    #[inline]
    pub fn attempt<R: OdeRhs>(
        &mut self,
        rhs: &mut R,
        t: f64,
        h: f64,
        y: &[f64],
        tol: &Tolerance,
    ) -> f64 {
        let Dp5 { k, y_new, stage } = self;
        let n = y.len();
        // Re-sliced to the common length `n` once, so the stage loops below
        // carry no bounds checks (measured: a tenth of a step's instructions).
        let [k1, k2, k3, k4, k5, k6, k7] = k;
        let (k1, k2, k3) = (&mut k1[..n], &mut k2[..n], &mut k3[..n]);
        let (k4, k5, k6, k7) = (&mut k4[..n], &mut k5[..n], &mut k6[..n], &mut k7[..n]);
        let (stage, y_new) = (&mut stage[..n], &mut y_new[..n]);
        let controlled = tol.controlled.min(n);
        let atol = &tol.atol[..controlled];
        for i in 0..n {
            stage[i] = y[i] + h * A21 * k1[i];
        }
        rhs.eval(t + C[1] * h, stage, k2);
        for i in 0..n {
            stage[i] = y[i] + h * (A3[0] * k1[i] + A3[1] * k2[i]);
        }
        rhs.eval(t + C[2] * h, stage, k3);
        for i in 0..n {
            stage[i] = y[i] + h * (A4[0] * k1[i] + A4[1] * k2[i] + A4[2] * k3[i]);
        }
        rhs.eval(t + C[3] * h, stage, k4);
        for i in 0..n {
            stage[i] = y[i] + h * (A5[0] * k1[i] + A5[1] * k2[i] + A5[2] * k3[i] + A5[3] * k4[i]);
        }
        rhs.eval(t + C[4] * h, stage, k5);
        for i in 0..n {
            stage[i] = y[i]
                + h * (A6[0] * k1[i]
                    + A6[1] * k2[i]
                    + A6[2] * k3[i]
                    + A6[3] * k4[i]
                    + A6[4] * k5[i]);
        }
        rhs.eval(t + h, stage, k6);
        for i in 0..n {
            y_new[i] = y[i]
                + h * (B[0] * k1[i] + B[2] * k3[i] + B[3] * k4[i] + B[4] * k5[i] + B[5] * k6[i]);
        }
        rhs.eval(t + h, y_new, k7);
        let mut sum = 0.0;
        for i in 0..controlled {
            let err = h
                * (E[0] * k1[i]
                    + E[2] * k3[i]
                    + E[3] * k4[i]
                    + E[4] * k5[i]
                    + E[5] * k6[i]
                    + E[6] * k7[i]);
            let sc = atol[i] + tol.rtol * y[i].abs().max(y_new[i].abs());
            let r = err / sc.max(f64::MIN_POSITIVE);
            sum += r * r;
        }
        let norm = (sum / tol.controlled.max(1) as f64).sqrt();
        // A NaN or ∞ in y_new (not only in the controlled part) rejects the step.
        if norm.is_finite() && crate::all_finite(y_new) {
            norm
        } else {
            f64::INFINITY
        }
    }

    /// `r5 ← h Σ d_i k_i`, the last coefficient of the dense output of the
    /// step just attempted (see [`super::DenseStep`]).
    #[inline]
    pub fn dense_r5(&self, h: f64, r5: &mut [f64]) {
        let n = r5.len();
        let [k1, _, k3, k4, k5, k6, k7] = &self.k;
        let (k1, k3, k4) = (&k1[..n], &k3[..n], &k4[..n]);
        let (k5, k6, k7) = (&k5[..n], &k6[..n], &k7[..n]);
        for i in 0..n {
            r5[i] = h
                * (D[0] * k1[i]
                    + D[2] * k3[i]
                    + D[3] * k4[i]
                    + D[4] * k5[i]
                    + D[5] * k6[i]
                    + D[6] * k7[i]);
        }
    }
}

/// PI step-size control (Hairer & Wanner's `dopri5` constants, β = 0.04).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PiController {
    /// Error norm of the last accepted step (clamped below at 1e-4): the
    /// controller's memory, part of every restart state.
    pub err_old: f64,
}

const SAFETY: f64 = 0.9;
const BETA: f64 = 0.04;
const EXPO: f64 = 0.2 - BETA * 0.75;
/// Largest shrink (1/0.2) and growth (10) of one step.
const FAC_MIN: f64 = 0.2;
const FAC_MAX: f64 = 10.0;
/// Initial (and smallest) remembered error.
pub const ERR_OLD_INIT: f64 = 1e-4;

impl PiController {
    pub fn new() -> Self {
        PiController {
            err_old: ERR_OLD_INIT,
        }
    }

    /// Judges an attempt of length `h` with error norm `err`. Returns
    /// `(accepted, next h)`; on acceptance the memory is updated.
    /// `after_reject` forbids growth right after a rejection.
    #[inline]
    pub fn judge(&mut self, err: f64, h: f64, after_reject: bool) -> (bool, f64) {
        if err <= 1.0 {
            let fac = err.powf(EXPO) / self.err_old.powf(BETA) / SAFETY;
            let fac = fac.clamp(1.0 / FAC_MAX, 1.0 / FAC_MIN);
            self.err_old = err.max(ERR_OLD_INIT);
            let mut h_new = h / fac;
            if after_reject && h_new.abs() > h.abs() {
                h_new = h;
            }
            (true, h_new)
        } else if err.is_finite() {
            let fac = (err.powf(EXPO) / SAFETY).min(1.0 / FAC_MIN);
            (false, h / fac)
        } else {
            (false, h * FAC_MIN)
        }
    }
}

impl Default for PiController {
    fn default() -> Self {
        Self::new()
    }
}

/// Hairer's initial step guess for a method of order 5 (Hairer, Nørsett &
/// Wanner, *Solving ODEs I*, II.4): `f0 = g(t, y)` given; costs one more
/// evaluation. `dir` is +1 (forward) or −1; the result has its sign.
pub fn initial_step<R: OdeRhs>(
    rhs: &mut R,
    t: f64,
    y: &[f64],
    f0: &[f64],
    tol: &Tolerance,
    h_max: f64,
    dir: f64,
    y1: &mut [f64],
    f1: &mut [f64],
) -> f64 {
    let m = tol.controlled.max(1) as f64;
    let sc = |i: usize| (tol.atol[i] + tol.rtol * y[i].abs()).max(f64::MIN_POSITIVE);
    let rms = |v: &dyn Fn(usize) -> f64| {
        ((0..tol.controlled).map(|i| v(i) * v(i)).sum::<f64>() / m).sqrt()
    };
    let d0 = rms(&|i| y[i] / sc(i));
    let d1 = rms(&|i| f0[i] / sc(i));
    let mut h = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h = h.min(h_max);
    for i in 0..y.len() {
        y1[i] = y[i] + dir * h * f0[i];
    }
    rhs.eval(t + dir * h, y1, f1);
    let d2 = rms(&|i| (f1[i] - f0[i]) / sc(i)) / h;
    let d12 = d1.max(d2);
    let h1 = if d12 <= 1e-15 {
        (h * 1e-3).max(1e-6)
    } else {
        (0.01 / d12).powf(1.0 / 5.0)
    };
    let h = (100.0 * h).min(h1).min(h_max);
    if h.is_finite() && h > 0.0 {
        dir * h
    } else {
        dir * h_max.min(1e-6)
    }
}
