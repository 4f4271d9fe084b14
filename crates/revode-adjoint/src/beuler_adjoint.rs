//! The exact discrete adjoint of one backward Euler step.
//!
//! Step k solved `u_{k+1} = u_k + h f(t_{k+1}, u_{k+1}, p)`. By the implicit
//! function theorem at the converged u_{k+1}, with `A = I − h J(t_{k+1},
//! u_{k+1})`: `∂u_{k+1}/∂u_k = A⁻¹` and `∂u_{k+1}/∂p = A⁻¹ h ∂f/∂p`, so
//! with `w = A⁻ᵀ λ_{k+1}`:
//!
//! ```text
//! λ_k = w,    ∂L/∂p += h (∂f/∂p)(t_{k+1}, u_{k+1})ᵀ w.
//! ```
//!
//! The transposed solve must use J at u_{k+1} exactly. It is done by
//! iterative refinement: factors `M = I − h_b J(t_b, u_b)` from an earlier
//! visited point are the preconditioner, the residual `λ − Aᵀw` is exact,
//! and corrections stop when its componentwise backward error is at
//! rounding level. The residual comes from the Jacobian at u_{k+1} when the
//! model computes its own or is small (a sparse product per correction;
//! small models' Jacobians are assembled from n VJPs), otherwise from one
//! VJP per correction. When more corrections are predicted than a refactorisation costs, M
//! is refactored at u_{k+1}, after which one correction is a direct solve.
//! Derivation, costs and accuracy: docs/stiff.md.

use revode_forward::{IterationMatrix, LinearSolver, SingularMatrix};
use revode_model::{JacobianEval, JacobianSource, Model, SparsityPattern};
use serde::Serialize;

/// Componentwise backward error at which a refined `w` is accepted: what
/// the residual's own rounding allows for a few entries a row.
pub const ACCEPT_BACKWARD_ERROR: f64 = 8.0 * f64::EPSILON;
/// A backward error this small that stops improving by half per
/// correction is the rounding floor of the residual itself: accepted too.
pub const FLOOR_BACKWARD_ERROR: f64 = 64.0 * f64::EPSILON;

/// A correction is taken as the last one when, at the rate the backward
/// error fell by in the correction before, it would end this many times
/// below [`ACCEPT_BACKWARD_ERROR`].
pub const PREDICTION_MARGIN: f64 = 16.0;

/// Whether the correction after one that took the backward error from
/// `previous` to `berr` brings it below [`ACCEPT_BACKWARD_ERROR`] with
/// [`PREDICTION_MARGIN`] to spare, if the error keeps falling at that rate
/// (refinement on fixed factors contracts its residual by the same
/// operator at every correction).
#[inline]
pub(crate) fn settles(berr: f64, previous: f64) -> bool {
    berr * (berr / previous) * PREDICTION_MARGIN <= ACCEPT_BACKWARD_ERROR
}

/// How the backward pass solves with `(I − hJ(u_{k+1}))ᵀ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransposedSolve {
    /// [`TransposedSolve::Refactor`] for small dense systems (n ≤
    /// [`revode_forward::linear::SMALL_DENSE_MAX`]), whose LU is cheap next
    /// to the corrections refinement takes; for models with a Jacobian of
    /// their own and at least [`crate::SCHEDULED_MIN_STATES`] states (and
    /// no events), refinement on factors made every
    /// [`crate::FACTOR_EVERY`] steps, ahead on a second thread where there
    /// is one ([`crate::BackwardThreads`]); [`TransposedSolve::Refine`]
    /// otherwise (the default).
    #[default]
    Auto,
    /// Iterative refinement with the last factors as preconditioner and an
    /// exact residual; refactor when it would converge slowly (one thread).
    Refine,
    /// Evaluate J and refactor at every step (for comparison).
    Refactor,
}

/// Where the exact residual `Aᵀw = w − h J(u_{k+1})ᵀ w` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residual {
    /// The model's Jacobian, evaluated at every step: `Jᵀw` and `|J|ᵀ|w|`
    /// by sparse products, the parameter sum by one VJP at the end.
    Jacobian,
    /// One VJP per correction; by linearity the parameter sums of the
    /// corrections add up to that of `w`, so no VJP is spent twice.
    Vjp,
}

/// Counters of a backward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackwardSolveStats {
    pub jacobian_evaluations: usize,
    pub factorizations: usize,
    /// Transposed solves with the factors (corrections included).
    pub transposed_solves: usize,
    /// Model VJPs (residuals and parameter sums).
    pub vjps: usize,
    /// Steps that accepted a refined `w` without refactoring.
    pub refined_steps: usize,
    /// Of those, steps accepted on the backward error their last
    /// correction was predicted to reach, without its residual (the
    /// scheduled sweep of larger models; docs/stiff.md).
    pub predicted_steps: usize,
    /// Jacobians the main thread evaluated while a helper ran, taken over
    /// because the helper was the slower (0 on one thread).
    pub jacobians_moved_to_main: usize,
    /// Threads of the backward sweep (two: Jacobians and scheduled factors
    /// made ahead on a helper, [`crate::BackwardThreads`]).
    pub threads: usize,
}

/// The buffers and factors of the backward Euler adjoint, made once per
/// solve.
pub struct BeulerAdjoint<'m, M: Model> {
    jac: JacobianEval<'m, M>,
    jac_values: Vec<f64>,
    /// Small models: J as a dense column-major n × n matrix (the sparse
    /// products' index work costs more than the arithmetic), and where
    /// each entry of the pattern goes in it.
    jac_dense: Vec<f64>,
    dense_position: Vec<usize>,
    matrix: IterationMatrix,
    factored: bool,
    mode: TransposedSolve,
    residual: Residual,
    /// Refactor when more corrections than this are predicted.
    refactor_after: f64,
    w: Vec<f64>,
    /// `J(u_{k+1})ᵀ w` (accumulated over corrections in VJP mode).
    v: Vec<f64>,
    /// `|J|ᵀ|w|` (Jacobian mode; `|v|` stands in for it in VJP mode).
    a: Vec<f64>,
    r: Vec<f64>,
    out: Vec<f64>,
    /// Solves made through [`IterationMatrix::small_dense`] (not counted there).
    small_solves: usize,
    stats: BackwardSolveStats,
}

impl<'m, M: Model> BeulerAdjoint<'m, M> {
    pub fn new(model: &'m M, linear: LinearSolver, mode: TransposedSolve) -> Self {
        let jac = JacobianEval::new(model);
        let n = model.dims().n_states;
        let matrix = IterationMatrix::new(jac.pattern(), linear);
        let mode = match mode {
            TransposedSolve::Auto
                if matrix.kind() == LinearSolver::Dense
                    && n <= revode_forward::linear::SMALL_DENSE_MAX =>
            {
                TransposedSolve::Refactor
            }
            TransposedSolve::Auto => TransposedSolve::Refine,
            other => other,
        };
        // A Jacobian assembled from n VJPs is worth evaluating at every step
        // only for small n (corrections average ~5 VJPs otherwise).
        let residual = match jac.source() {
            JacobianSource::Model => Residual::Jacobian,
            JacobianSource::AssembledFromVjps if n <= DENSE_PRODUCTS_MAX => Residual::Jacobian,
            JacobianSource::AssembledFromVjps => Residual::Vjp,
        };
        let refactor_after = refactor_after(residual, &matrix, jac.pattern().nnz(), n);
        let small = residual == Residual::Jacobian && n <= DENSE_PRODUCTS_MAX;
        let dense_position = if small {
            jac.pattern().entries().map(|(r, c)| c * n + r).collect()
        } else {
            Vec::new()
        };
        let v = || vec![0.0; n];
        BeulerAdjoint {
            jac_dense: vec![0.0; if small { n * n } else { 0 }],
            dense_position,
            jac_values: vec![0.0; jac.pattern().nnz()],
            jac,
            matrix,
            factored: false,
            mode,
            residual,
            refactor_after,
            w: v(),
            v: v(),
            a: v(),
            r: v(),
            out: v(),
            small_solves: 0,
            stats: BackwardSolveStats::default(),
        }
    }

    pub fn stats(&self) -> BackwardSolveStats {
        BackwardSolveStats {
            jacobian_evaluations: self.jac.evaluations(),
            factorizations: self.matrix.factorizations(),
            transposed_solves: self.matrix.solves() + self.small_solves,
            threads: 1,
            ..self.stats
        }
    }

    /// Bytes held (factors, Jacobian values, vectors).
    pub fn buffer_bytes(&self) -> usize {
        self.matrix.buffer_bytes() + (self.jac_values.len() + 6 * self.w.len()) * 8
    }

    /// In place: `lambda ← (I − hJ)⁻ᵀ lambda` with J at `(t, u)` = (t_{k+1},
    /// u_{k+1}), and `grad_p += h (∂f/∂p)ᵀ` of the result.
    #[allow(clippy::too_many_arguments)]
    pub fn step_back(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), SingularMatrix> {
        let exact = self.mode == TransposedSolve::Refactor || !self.factored;
        match self.residual {
            Residual::Jacobian => {
                self.jac.eval(t, u, p, &mut self.jac_values);
                for (&k, &x) in self.dense_position.iter().zip(&self.jac_values) {
                    self.jac_dense[k] = x;
                }
                if exact {
                    self.factor(h)?;
                }
                self.w.copy_from_slice(lambda);
                self.matrix.solve_transpose(&mut self.w);
                if !exact {
                    if self.jac_dense.is_empty() || self.matrix.small_dense().is_none() {
                        self.refine_with_jacobian(lambda, h)?;
                    } else {
                        self.refine_small(lambda, h)?;
                    }
                }
                // The state part is not needed: only (∂f/∂p)ᵀw.
                model.vjp_params(t, u, p, &self.w, h, grad_p, &mut self.out, work);
                self.stats.vjps += 1;
            }
            Residual::Vjp => {
                if exact {
                    self.jac.eval(t, u, p, &mut self.jac_values);
                    self.factor(h)?;
                }
                self.w.copy_from_slice(lambda);
                self.matrix.solve_transpose(&mut self.w);
                model.vjp(t, u, p, &self.w, &mut self.v, h, grad_p, work);
                self.stats.vjps += 1;
                if !exact {
                    self.refine_with_vjps(model, t, h, u, p, lambda, grad_p, work)?;
                }
            }
        }
        lambda.copy_from_slice(&self.w);
        Ok(())
    }

    fn factor(&mut self, h: f64) -> Result<(), SingularMatrix> {
        self.factored = false;
        self.matrix.factor(h, &self.jac_values)?;
        self.factored = true;
        Ok(())
    }

    /// Corrections of `w` with the model's Jacobian (already evaluated at
    /// u_{k+1} into `jac_values`).
    fn refine_with_jacobian(&mut self, lambda: &[f64], h: f64) -> Result<(), SingularMatrix> {
        let mut previous = f64::INFINITY;
        for m in 0.. {
            let berr = if self.jac_dense.is_empty() {
                jacobian_residual(
                    self.jac.pattern(),
                    &self.jac_values,
                    lambda,
                    &self.w,
                    h,
                    true,
                    &mut self.a,
                    &mut self.r,
                )
            } else {
                dense_transposed_products(&self.jac_dense, &self.w, &mut self.v, &mut self.a);
                residual(lambda, &self.w, &self.v, &self.a, h, &mut self.r)
            };
            if accepted(berr, previous) {
                self.stats.refined_steps += 1;
                return Ok(());
            }
            let refactor = self.too_slow(m, berr, previous);
            if refactor {
                self.factor(h)?;
            }
            self.matrix.solve_transpose(&mut self.r);
            for (wi, di) in self.w.iter_mut().zip(&self.r) {
                *wi += di;
            }
            if refactor {
                // Exact factors: this correction was a direct solve.
                return Ok(());
            }
            previous = berr;
        }
        unreachable!("the loop returns")
    }

    /// [`Self::refine_with_jacobian`] for n ≤ [`DENSE_PRODUCTS_MAX`] with
    /// dense factors: one loop compiled per size, on arrays.
    fn refine_small(&mut self, lambda: &[f64], h: f64) -> Result<(), SingularMatrix> {
        match lambda.len() {
            1 => self.refine_small_n::<1>(lambda, h),
            2 => self.refine_small_n::<2>(lambda, h),
            3 => self.refine_small_n::<3>(lambda, h),
            4 => self.refine_small_n::<4>(lambda, h),
            5 => self.refine_small_n::<5>(lambda, h),
            6 => self.refine_small_n::<6>(lambda, h),
            7 => self.refine_small_n::<7>(lambda, h),
            _ => self.refine_small_n::<8>(lambda, h),
        }
    }

    fn refine_small_n<const N: usize>(
        &mut self,
        lambda: &[f64],
        h: f64,
    ) -> Result<(), SingularMatrix> {
        let lam: [f64; N] = lambda.try_into().expect("n = N");
        let mut w: [f64; N] = self.w[..].try_into().expect("n = N");
        let lu = self.matrix.small_dense().expect("dense factors");
        let j = &self.jac_dense[..N * N];
        let mut previous = f64::INFINITY;
        let mut solves = 0;
        let mut slow = None;
        for m in 0.. {
            // r = λ − w + h Jᵀw; backward error against |λ| + |w| + h|J|ᵀ|w|.
            let mut r = [0.0; N];
            let mut berr = 0.0_f64;
            for c in 0..N {
                let col = &j[c * N..(c + 1) * N];
                let (mut s, mut s_abs) = (0.0, 0.0);
                for i in 0..N {
                    let x = col[i] * w[i];
                    s += x;
                    s_abs += x.abs();
                }
                let rc = lam[c] - w[c] + h * s;
                r[c] = rc;
                if rc != 0.0 {
                    berr = berr.max(rc.abs() / (lam[c].abs() + w[c].abs() + h * s_abs));
                }
            }
            if accepted(berr, previous) {
                break;
            }
            if self.too_slow(m, berr, previous) {
                slow = Some(r);
                break;
            }
            lu.solve_transpose::<N>(&mut r);
            solves += 1;
            for i in 0..N {
                w[i] += r[i];
            }
            previous = berr;
        }
        self.small_solves += solves;
        self.w[..N].copy_from_slice(&w);
        match slow {
            None => self.stats.refined_steps += 1,
            Some(r) => {
                // Refactor at u_{k+1}: one correction is then a direct solve.
                self.factor(h)?;
                self.r[..N].copy_from_slice(&r);
                self.matrix.solve_transpose(&mut self.r);
                for (wi, di) in self.w.iter_mut().zip(&self.r) {
                    *wi += di;
                }
            }
        }
        Ok(())
    }

    /// Corrections of `w` with one VJP each; `v` holds `J(u)ᵀw` and the
    /// parameter sum of `w` is already in `grad_p`.
    #[allow(clippy::too_many_arguments)]
    fn refine_with_vjps(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), SingularMatrix> {
        let mut previous = f64::INFINITY;
        for m in 0.. {
            let berr = residual(lambda, &self.w, &self.v, &self.v, h, &mut self.r);
            if accepted(berr, previous) {
                self.stats.refined_steps += 1;
                return Ok(());
            }
            let refactor = self.too_slow(m, berr, previous);
            if refactor {
                self.jac.eval(t, u, p, &mut self.jac_values);
                self.factor(h)?;
            }
            // δ = M⁻ᵀ r; w += δ; J(u)ᵀ δ and the parameter sum of δ.
            self.matrix.solve_transpose(&mut self.r);
            for (wi, di) in self.w.iter_mut().zip(&self.r) {
                *wi += di;
            }
            model.vjp(t, u, p, &self.r, &mut self.out, h, grad_p, work);
            self.stats.vjps += 1;
            if refactor {
                return Ok(());
            }
            for (vi, oi) in self.v.iter_mut().zip(&self.out) {
                *vi += oi;
            }
            previous = berr;
        }
        unreachable!("the loop returns")
    }

    /// Whether to refactor before correction `m`: more corrections are
    /// predicted (at the observed rate; the first residual's size stands for
    /// the rate, being ~h‖J − J_b‖) than a refactorisation costs.
    fn too_slow(&self, m: usize, berr: f64, previous: f64) -> bool {
        too_slow(self.refactor_after, m, berr, previous)
    }
}

/// [`BeulerAdjoint::too_slow`] with the threshold given.
pub(crate) fn too_slow(refactor_after: f64, m: usize, berr: f64, previous: f64) -> bool {
    // Binary logarithms from the exponents: a heuristic needs no more.
    let digits_left = log2_floor(berr) - log2_floor(ACCEPT_BACKWARD_ERROR);
    let per_correction = if m == 0 {
        -log2_floor(berr)
    } else {
        log2_floor(previous) - log2_floor(berr)
    };
    if per_correction <= 0 {
        return true;
    }
    m as f64 + digits_left as f64 / per_correction as f64 > refactor_after
}

/// ⌊log₂ x⌋ of a positive normal number, from its exponent bits.
#[inline]
fn log2_floor(x: f64) -> i64 {
    ((x.to_bits() >> 52) & 0x7ff) as i64 - 1023
}

/// `w` is accepted at backward error `berr` (the previous correction's was
/// `previous`): at rounding level, or at the floor and no longer improving.
#[inline]
pub(crate) fn accepted(berr: f64, previous: f64) -> bool {
    berr <= ACCEPT_BACKWARD_ERROR || (berr <= FLOOR_BACKWARD_ERROR && berr > 0.5 * previous)
}

/// `r ← λ − w + h v` (`v = Jᵀw`); returns the largest componentwise
/// backward error `|r_i| / (|λ_i| + |w_i| + h a_i)`, `a` bounding `|Jᵀw|`.
#[inline]
fn residual(lambda: &[f64], w: &[f64], v: &[f64], a: &[f64], h: f64, r: &mut [f64]) -> f64 {
    let n = lambda.len();
    let (w, v, a, r) = (&w[..n], &v[..n], &a[..n], &mut r[..n]);
    let mut berr = 0.0_f64;
    for i in 0..n {
        let ri = lambda[i] - w[i] + h * v[i];
        r[i] = ri;
        if ri != 0.0 {
            berr = berr.max(ri.abs() / (lambda[i].abs() + w[i].abs() + h * a[i].abs()));
        }
    }
    berr
}

/// `r ← λ − w + h J(u_{k+1})ᵀw` in one pass over J's columns; returns the
/// largest componentwise backward error `|r_i| / (|λ_i| + |w_i| + h a_i)`
/// with `a = |J|ᵀ|w|`, computed when `bound` and kept from an earlier call
/// otherwise (the scheduled refinement bounds at its first correction
/// only: corrections move `w` by far less than the bound's own slack; the
/// residual itself is always exact).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn jacobian_residual(
    pattern: &SparsityPattern,
    values: &[f64],
    lambda: &[f64],
    w: &[f64],
    h: f64,
    bound: bool,
    a: &mut [f64],
    r: &mut [f64],
) -> f64 {
    let (col_ptr, rows) = (pattern.col_ptr(), pattern.row_idx());
    let n = lambda.len();
    let (w, a, r) = (&w[..n], &mut a[..n], &mut r[..n]);
    let mut berr = 0.0_f64;
    for j in 0..n {
        let range = col_ptr[j]..col_ptr[j + 1];
        let (values, rows) = (&values[range.clone()], &rows[range]);
        let mut s = 0.0;
        if bound {
            let mut s_abs = 0.0;
            for (&value, &row) in values.iter().zip(rows) {
                let x = value * w[row];
                s += x;
                s_abs += x.abs();
            }
            a[j] = s_abs;
        } else {
            for (&value, &row) in values.iter().zip(rows) {
                s += value * w[row];
            }
        }
        let rj = lambda[j] - w[j] + h * s;
        r[j] = rj;
        if rj != 0.0 {
            berr = berr.max(rj.abs() / (lambda[j].abs() + w[j].abs() + h * a[j]));
        }
    }
    berr
}

/// Largest model whose Jacobian products are taken densely.
pub(crate) const DENSE_PRODUCTS_MAX: usize = 8;

/// `v ← Jᵀw` and `a ← |J|ᵀ|w|` for a dense column-major `j` (n ≤ 8), each size
/// compiled on its own so the loops unroll.
#[inline]
fn dense_transposed_products(j: &[f64], w: &[f64], v: &mut [f64], a: &mut [f64]) {
    match w.len() {
        1 => dense_products_n::<1>(j, w, v, a),
        2 => dense_products_n::<2>(j, w, v, a),
        3 => dense_products_n::<3>(j, w, v, a),
        4 => dense_products_n::<4>(j, w, v, a),
        5 => dense_products_n::<5>(j, w, v, a),
        6 => dense_products_n::<6>(j, w, v, a),
        7 => dense_products_n::<7>(j, w, v, a),
        _ => dense_products_n::<8>(j, w, v, a),
    }
}

#[inline(always)]
fn dense_products_n<const N: usize>(j: &[f64], w: &[f64], v: &mut [f64], a: &mut [f64]) {
    let (j, w, v, a) = (&j[..N * N], &w[..N], &mut v[..N], &mut a[..N]);
    for c in 0..N {
        let col = &j[c * N..(c + 1) * N];
        let (mut s, mut s_abs) = (0.0, 0.0);
        for r in 0..N {
            let x = col[r] * w[r];
            s += x;
            s_abs += x.abs();
        }
        v[c] = s;
        a[c] = s_abs;
    }
}

/// The most corrections worth making before refactoring, from a static cost
/// model in instructions calibrated on callgrind counts (docs/stiff.md).
/// A refactorisation also sharpens the preconditioner of the steps that
/// follow, so it pays before it costs as much as the corrections it saves
/// on its own step: the break-even is scaled by [`REFACTOR_BENEFIT`].
pub(crate) fn refactor_after(
    residual: Residual,
    matrix: &IterationMatrix,
    jac_nnz: usize,
    n: usize,
) -> f64 {
    let (n_f, nnz) = (n as f64, jac_nnz as f64);
    let (factor, solve) = match matrix.kind() {
        // faer's sparse LU: ~50 instructions an entry of A, solves ~8.
        LinearSolver::Sparse => (2_000.0 + 50.0 * (nnz + n_f), 200.0 + 8.0 * (nnz + n_f)),
        // faer's dense LU has a fixed cost of ~2 000 (4 × 4: 2 250);
        // revode's unrolled substitution ~3n².
        _ if n <= revode_forward::linear::SMALL_DENSE_MAX => {
            (2_000.0 + n_f * n_f * n_f, 3.0 * n_f * n_f)
        }
        _ => (4_000.0 + n_f * n_f * n_f, 500.0 + 2.0 * n_f * n_f),
    };
    // A VJP of an HH-like model: ~65 instructions a state and a call.
    let vjp = 50.0 + 65.0 * n_f;
    let (refactor, correction) = match residual {
        Residual::Jacobian => (factor, solve + 4.0 * nnz + 10.0 * n_f + 40.0),
        Residual::Vjp => (factor + n_f * vjp, solve + vjp + 25.0 * n_f + 40.0),
    };
    (REFACTOR_BENEFIT * refactor / correction).clamp(2.0, 16.0)
}

/// See [`refactor_after`]; 0.55 minimised the seed gradient's count.
const REFACTOR_BENEFIT: f64 = 0.55;
