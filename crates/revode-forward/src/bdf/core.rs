//! One accepted step of variable-step, variable-order BDF on any implicit
//! corrector: prediction, corrector, local error test, step size and order
//! for the next step, failure handling (docs/stiff.md, "BDF"). Shared by
//! the forward solver and the backward (adjoint) integration.
//!
//! The *history* ([`BdfHistory`]) is everything the next step depends on;
//! the forward solver packs it into its restart states. The rest of
//! [`BdfCore`] is scratch, made once.

use super::coefficients::{lower_order, raise_order, StepCoefficients, MAX_ORDER, TAU_LEN};
use super::nordsieck::{self as nd, col, col_mut};
use crate::{StepCounts, Tolerance};

/// Why the implicit equation of a step could not be solved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CorrectorFailure {
    /// The iteration did not converge (even with a fresh Jacobian).
    Diverged,
    /// The iteration matrix has no usable pivot.
    Singular { index: usize },
}

/// The implicit equation of a BDF step, `y = ψ + γ g(t, y)`.
pub trait Corrector {
    /// Solves for y (which holds the predictor on entry). `ewt` are the
    /// inverse error scales, `tol` the tolerance on the weighted RMS norm
    /// of the remaining correction.
    fn solve(
        &mut self,
        t: f64,
        gamma: f64,
        psi: &[f64],
        y: &mut [f64],
        ewt: &[f64],
        tol: f64,
    ) -> Result<(), CorrectorFailure>;

    /// `out ← g(t, y)`.
    fn rhs(&mut self, t: f64, y: &[f64], out: &mut [f64]);
}

/// Why a step could not be taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepFailure {
    /// The error test failed with |h| at the smallest step allowed.
    StepSizeTooSmall { h: f64, h_min: f64 },
    /// The corrector failed [`MAX_CORRECTOR_FAILURES`] times in a row, or
    /// at the smallest step.
    Corrector { failure: CorrectorFailure, h: f64 },
}

/// Largest growth of h after the first step (CVODE's default).
pub const ETA_MAX: f64 = 10.0;
/// Largest growth of h after the very first step (the initial h is a guess).
pub const ETA_MAX_FIRST: f64 = 1e4;
/// h is kept unless it may grow by this factor (CVODE's default).
const ETA_KEEP_BELOW: f64 = 1.5;
/// Shrink of h after a corrector failure.
const ETA_CORRECTOR_FAIL: f64 = 0.25;
/// Bounds of the shrink after an error-test failure.
const ETA_MIN_ERROR_FAIL: f64 = 0.1;
const ETA_MAX_REPEATED_ERROR_FAIL: f64 = 0.2;
/// Bias of the step ratio estimates at orders q − 1, q, q + 1.
const BIAS_LOWER: f64 = 6.0;
const BIAS_SAME: f64 = 6.0;
const BIAS_HIGHER: f64 = 10.0;
const ADDON: f64 = 1e-6;
/// Corrector failures in one step before giving up.
pub const MAX_CORRECTOR_FAILURES: usize = 10;
/// Error-test failures before the order is forced down.
const ERROR_FAILS_BEFORE_ORDER_DROP: usize = 3;
/// Steps to wait before considering an order change after a restart at q = 1.
const LONG_WAIT: usize = 10;
/// A step may end this much beyond a landing point's distance and still
/// land on it (no sliver steps).
pub const STRETCH: f64 = 1.01;
/// |h| ≤ h_min · this counts as at the minimum.
const AT_MIN: f64 = 1.000001;

/// The scalar part of the history (the Nordsieck columns are beside it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BdfHistory {
    /// Order of the Nordsieck array.
    pub q: usize,
    /// Order of the next step.
    pub q_next: usize,
    /// Steps until an order change is considered.
    pub qwait: usize,
    /// The step the Nordsieck array is scaled to (the last step taken).
    pub hscale: f64,
    /// The next step.
    pub h_next: f64,
    /// Largest growth of h at the end of the next step.
    pub eta_max: f64,
    /// `tq[5]` of the step whose Δ is saved in the last column.
    pub saved_tq5: f64,
    /// `tau[i]`: the i-th last step (i = 1..=TAU_LEN).
    pub tau: [f64; TAU_LEN + 1],
}

impl BdfHistory {
    /// The history of a start at order 1 with step h.
    pub fn start(h: f64) -> Self {
        BdfHistory {
            q: 1,
            q_next: 1,
            qwait: 2,
            hscale: h,
            h_next: h,
            eta_max: ETA_MAX_FIRST,
            saved_tq5: 0.0,
            tau: [0.0; TAU_LEN + 1],
        }
    }
}

/// The BDF machinery of one integration over `len`-long vectors, of
/// which the first `tol.controlled` enter the error norms.
#[derive(Debug, Clone)]
pub struct BdfCore {
    len: usize,
    /// Components in the error norms (the first ones).
    controlled: usize,
    q_max: usize,
    /// Nordsieck array, `q_max + 1` columns (the last also keeps the Δ saved
    /// for an order increase while q < q_max).
    pub zn: Vec<f64>,
    pub hist: BdfHistory,
    coef: StepCoefficients,
    adjust: [f64; 7],
    ewt: Vec<f64>,
    psi: Vec<f64>,
    y: Vec<f64>,
    acor: Vec<f64>,
    temp: Vec<f64>,
    pub counts: StepCounts,
    /// Corrector failures (each retried with a smaller step).
    pub corrector_failures: usize,
}

/// The weighted RMS norm of `v` over its first `controlled` components.
#[inline]
pub fn wrms(v: &[f64], ewt: &[f64], controlled: usize) -> f64 {
    let m = controlled.min(v.len());
    let (v, w) = (&v[..m], &ewt[..m]);
    let mut sum = 0.0;
    for i in 0..m {
        let x = v[i] * w[i];
        sum += x * x;
    }
    (sum / m.max(1) as f64).sqrt()
}

/// `ewt_i ← 1/(rtol |y_i| + atol_i)`.
#[inline]
pub fn error_weights(y: &[f64], tol: &Tolerance, ewt: &mut [f64]) {
    for ((w, &yi), &a) in ewt.iter_mut().zip(y).zip(&tol.atol) {
        *w = 1.0 / (tol.rtol * yi.abs() + a).max(f64::MIN_POSITIVE);
    }
}

impl BdfCore {
    /// A core over `len`-long vectors whose first `controlled` components
    /// enter the error norms, with orders up to `q_max`.
    pub fn new(len: usize, controlled: usize, q_max: usize) -> Self {
        assert!((1..=MAX_ORDER).contains(&q_max));
        let v = || vec![0.0; len];
        BdfCore {
            len,
            controlled: controlled.min(len),
            q_max,
            zn: vec![0.0; (q_max + 1) * len],
            hist: BdfHistory::start(0.0),
            coef: StepCoefficients::default(),
            adjust: [0.0; 7],
            ewt: v(),
            psi: v(),
            y: v(),
            acor: v(),
            temp: v(),
            counts: StepCounts::default(),
            corrector_failures: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn q_max(&self) -> usize {
        self.q_max
    }

    /// Bytes of the buffers.
    pub fn buffer_bytes(&self) -> usize {
        (self.zn.len() + 5 * self.len) * std::mem::size_of::<f64>()
    }

    /// The current solution `y_n` (the first Nordsieck column).
    pub fn y(&self) -> &[f64] {
        col(&self.zn, self.len, 0)
    }

    /// The current solution, writable (a jump; follow with [`Self::start`]).
    pub fn y_mut(&mut self) -> &mut [f64] {
        col_mut(&mut self.zn, self.len, 0)
    }

    /// Restarts at order 1 from y_n = `self.y()` with derivative `f` and step h.
    pub fn start(&mut self, f: &[f64], h: f64) {
        self.hist = BdfHistory::start(h);
        for (z, &fi) in col_mut(&mut self.zn, self.len, 1).iter_mut().zip(f) {
            *z = h * fi;
        }
    }

    /// Applies the order and step chosen for the next step to the history
    /// (idempotent): after it, `hist.q`, `hist.hscale` are the next step's.
    pub fn prepare(&mut self) {
        let len = self.len;
        let (q, q_next) = (self.hist.q, self.hist.q_next);
        if q_next != q {
            if q_next > q {
                let h = &self.hist;
                let a = raise_order(q, h.hscale, &h.tau, &mut self.adjust);
                let qm = self.q_max;
                if q + 1 != qm {
                    let (lo, hi) = self.zn.split_at_mut(qm * len);
                    let dst = col_mut(lo, len, q + 1);
                    for (d, s) in dst.iter_mut().zip(&hi[..len]) {
                        *d = a * s;
                    }
                } else {
                    for v in col_mut(&mut self.zn, len, qm) {
                        *v *= a;
                    }
                }
                nd::add_multiples(&mut self.zn, len, 2..=q, &self.adjust, q + 1);
            } else if q > 2 {
                self.lower_history();
            }
            self.hist.q = q_next;
            self.hist.qwait = q_next + 1;
        }
        self.rescale_to(self.hist.h_next);
    }

    /// z_j −= c_j z_q for an order decrease from q.
    fn lower_history(&mut self) {
        let q = self.hist.q;
        lower_order(q, self.hist.hscale, &self.hist.tau, &mut self.adjust);
        for c in &mut self.adjust[2..q] {
            *c = -*c;
        }
        nd::add_multiples(&mut self.zn, self.len, 2..=q - 1, &self.adjust, q);
    }

    /// Rescales the history to step `h`.
    fn rescale_to(&mut self, h: f64) {
        let hist = &mut self.hist;
        if h != hist.hscale {
            nd::rescale(&mut self.zn, self.len, hist.q, h / hist.hscale);
            hist.hscale = h;
            hist.h_next = h;
        }
    }

    /// Takes one accepted step from t (retrying failed attempts with smaller
    /// steps), landing exactly on `land_at` when it is within
    /// [`STRETCH`] steps. Returns the new time. `h_min` is the smallest
    /// step a failed attempt may be retried with; it should follow
    /// [`Self::prepare`].
    pub fn step<C: Corrector>(
        &mut self,
        corrector: &mut C,
        t: f64,
        land_at: Option<f64>,
        h_min: f64,
        tol: &Tolerance,
    ) -> Result<f64, StepFailure> {
        let len = self.len;
        let controlled = self.controlled;
        error_weights(col(&self.zn, len, 0), tol, &mut self.ewt);
        let mut eta_max = self.hist.eta_max;
        let (mut corrector_fails, mut error_fails) = (0, 0);
        loop {
            let mut t_new = t + self.hist.hscale;
            if let Some(stop) = land_at {
                if (stop - t).abs() <= STRETCH * self.hist.hscale.abs() {
                    self.rescale_to(stop - t);
                    t_new = stop;
                }
            }
            let h = self.hist.hscale;
            let q = self.hist.q;
            if t_new == t {
                return Err(StepFailure::StepSizeTooSmall { h, h_min });
            }
            nd::predict(&mut self.zn, len, q);
            self.coef.set(q, h, &self.hist.tau, self.hist.qwait);
            let rl1 = 1.0 / self.coef.l[1];
            let gamma = h * rl1;
            {
                let (z0, z1) = (col(&self.zn, len, 0), col(&self.zn, len, 1));
                for i in 0..len {
                    self.psi[i] = z0[i] - rl1 * z1[i];
                }
                self.y.copy_from_slice(z0);
            }
            let solved = corrector.solve(
                t_new,
                gamma,
                &self.psi,
                &mut self.y,
                &self.ewt,
                self.coef.tq[4],
            );
            if let Err(failure) = solved {
                nd::unpredict(&mut self.zn, len, q);
                self.counts.rejected += 1;
                self.corrector_failures += 1;
                corrector_fails += 1;
                eta_max = 1.0;
                if h.abs() <= h_min * AT_MIN || corrector_fails == MAX_CORRECTOR_FAILURES {
                    return Err(StepFailure::Corrector { failure, h });
                }
                let eta = ETA_CORRECTOR_FAIL.max(h_min / h.abs());
                self.rescale_to(h * eta);
                continue;
            }
            {
                let z0 = col(&self.zn, len, 0);
                for i in 0..len {
                    self.acor[i] = self.y[i] - z0[i];
                }
            }
            let dsm = wrms(&self.acor, &self.ewt, controlled) * self.coef.tq[2];
            if dsm > 1.0 || dsm.is_nan() {
                nd::unpredict(&mut self.zn, len, q);
                self.counts.rejected += 1;
                error_fails += 1;
                if h.abs() <= h_min * AT_MIN {
                    return Err(StepFailure::StepSizeTooSmall { h, h_min });
                }
                eta_max = 1.0;
                let floor = ETA_MIN_ERROR_FAIL.max(h_min / h.abs());
                if error_fails <= ERROR_FAILS_BEFORE_ORDER_DROP {
                    let l = (q + 1) as f64;
                    let mut eta = 1.0 / ((BIAS_SAME * dsm).powf(1.0 / l) + ADDON);
                    if !eta.is_finite() {
                        eta = floor;
                    }
                    eta = eta.max(floor);
                    if error_fails >= 2 {
                        eta = eta.min(ETA_MAX_REPEATED_ERROR_FAIL);
                    }
                    self.rescale_to(h * eta);
                } else if q > 1 {
                    // Repeated failures: the history may be unreliable.
                    if q > 2 {
                        self.lower_history();
                    }
                    self.hist.q = q - 1;
                    self.hist.q_next = q - 1;
                    self.hist.qwait = q;
                    self.rescale_to(h * floor);
                } else {
                    // At order 1: restart the history from y_n.
                    let h = h * floor;
                    corrector.rhs(t, col(&self.zn, len, 0), &mut self.temp);
                    for (z, f) in col_mut(&mut self.zn, len, 1).iter_mut().zip(&self.temp) {
                        *z = h * f;
                    }
                    self.hist.hscale = h;
                    self.hist.h_next = h;
                    self.hist.qwait = LONG_WAIT;
                }
                continue;
            }
            self.counts.accepted += 1;
            self.complete(h);
            self.choose_next(dsm, eta_max);
            self.hist.eta_max = ETA_MAX;
            return Ok(t_new);
        }
    }

    /// Updates the history with the accepted correction Δ = `acor`.
    fn complete(&mut self, h: f64) {
        let len = self.len;
        let hist = &mut self.hist;
        let q = hist.q;
        for i in (2..=q).rev() {
            hist.tau[i] = hist.tau[i - 1];
        }
        if q == 1 {
            hist.tau[2] = hist.tau[1];
        }
        hist.tau[1] = h;
        for j in 0..=q {
            let lj = self.coef.l[j];
            for (z, a) in col_mut(&mut self.zn, len, j).iter_mut().zip(&self.acor) {
                *z += lj * a;
            }
        }
        hist.qwait -= 1;
        if hist.qwait == 1 && q != self.q_max {
            col_mut(&mut self.zn, len, self.q_max).copy_from_slice(&self.acor);
            hist.saved_tq5 = self.coef.tq[5];
        }
    }

    /// Chooses the order and step of the next step from the error estimates
    /// at orders q − 1, q, q + 1.
    fn choose_next(&mut self, dsm: f64, eta_max: f64) {
        let len = self.len;
        let controlled = self.controlled;
        let q = self.hist.q;
        let h = self.hist.hscale;
        let l = (q + 1) as f64;
        if eta_max == 1.0 {
            // A failure in this step: keep h and q for one more step.
            self.hist.qwait = self.hist.qwait.max(2);
            self.hist.q_next = q;
            self.hist.h_next = h;
            return;
        }
        let eta_q = 1.0 / ((BIAS_SAME * dsm).powf(1.0 / l) + ADDON);
        let (mut eta, mut q_next) = (eta_q, q);
        if self.hist.qwait == 0 {
            self.hist.qwait = 2;
            let eta_lower = if q > 1 {
                let ddn = wrms(col(&self.zn, len, q), &self.ewt, controlled) * self.coef.tq[1];
                1.0 / ((BIAS_LOWER * ddn).powf(1.0 / q as f64) + ADDON)
            } else {
                0.0
            };
            let eta_higher = if q != self.q_max && self.hist.saved_tq5 != 0.0 {
                let cquot = (self.coef.tq[5] / self.hist.saved_tq5)
                    * (h / self.hist.tau[2]).powi(q as i32 + 1);
                let saved = col(&self.zn, len, self.q_max);
                for i in 0..len {
                    self.temp[i] = self.acor[i] - cquot * saved[i];
                }
                let dup = wrms(&self.temp, &self.ewt, controlled) * self.coef.tq[3];
                1.0 / ((BIAS_HIGHER * dup).powf(1.0 / (l + 1.0)) + ADDON)
            } else {
                0.0
            };
            let best = eta_lower.max(eta_q).max(eta_higher);
            if best < ETA_KEEP_BELOW {
                (eta, q_next) = (1.0, q);
            } else if best == eta_q {
                (eta, q_next) = (eta_q, q);
            } else if best == eta_lower {
                (eta, q_next) = (eta_lower, q - 1);
            } else {
                (eta, q_next) = (eta_higher, q + 1);
                col_mut(&mut self.zn, len, self.q_max).copy_from_slice(&self.acor);
            }
        }
        let eta = if eta < ETA_KEEP_BELOW {
            1.0
        } else {
            eta.min(eta_max)
        };
        self.hist.q_next = q_next;
        self.hist.h_next = if eta == 1.0 { h } else { h * eta };
    }
}
