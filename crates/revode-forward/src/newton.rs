//! Modified Newton for the implicit equation of one step,
//! `u = ψ + γ f(t, u, p)`, shared by backward Euler and BDF.
//!
//! The iteration matrix `M = I − γ_M J(t_J, u_J)` is reused across
//! iterations and steps (CVODES's rules, docs/stiff.md):
//! * M is refactored with the current γ when γ/γ_M leaves
//!   `[1 − GAMMA_RATIO, 1 + GAMMA_RATIO]`;
//! * J is re-evaluated at the current predictor when it is
//!   [`MAX_JACOBIAN_AGE`] steps old, when the parameters change
//!   ([`Newton::invalidate`]), and when an iteration with an older J fails to
//!   converge (then the step is retried once from its predictor);
//! * convergence: with the rate estimate `ρ = max(0.3 ρ, ‖δ_m‖/‖δ_{m−1}‖)`
//!   (kept from step to step), the iteration stops when
//!   `‖δ_m‖ · min(1, ρ) ≤ tol` in the weighted RMS norm the caller gives;
//!   it fails after [`MAX_ITERATIONS`] iterations or when `‖δ‖` more than
//!   doubles.
//!
//! Everything the result depends on besides the step's inputs (where J was
//! evaluated, its age, γ_M, ρ) is the *memory* ([`Newton::store`],
//! [`Newton::load`]): a stepper keeps it in its checkpointed state, so a
//! step replayed from a checkpoint re-evaluates the same J, factors the same
//! M and reproduces the forward's iterates bit for bit.

use revode_model::{JacobianEval, Model};

use crate::{IterationMatrix, LinearSolver, MatrixShape, SingularMatrix};

/// Most Newton iterations per attempt.
pub const MAX_ITERATIONS: usize = 4;
/// M is refactored when γ/γ_M − 1 exceeds this in magnitude (CVODES's dgmax).
pub const GAMMA_RATIO: f64 = 0.3;
/// J is re-evaluated after this many steps (CVODES's msbj).
pub const MAX_JACOBIAN_AGE: usize = 50;
/// Most iterations of full Newton (J at every iterate), the last resort.
pub const MAX_FULL_ITERATIONS: usize = 12;
/// A new iterate more than this times the previous correction diverges.
const DIVERGENCE_RATIO: f64 = 2.0;

/// Offsets in the packed memory of a Newton solver for n states:
/// `[t_J, age, γ_M, ρ, u_J (n)]` (t_J = NaN: no Jacobian yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewtonMemory {
    pub n: usize,
}

impl NewtonMemory {
    pub const T_J: usize = 0;
    pub const AGE: usize = 1;
    pub const GAMMA: usize = 2;
    pub const RATE: usize = 3;
    const HEAD: usize = 4;

    pub fn len(&self) -> usize {
        Self::HEAD + self.n
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The memory of a solver with no Jacobian yet.
    pub fn init(&self, mem: &mut [f64]) {
        mem.fill(0.0);
        mem[Self::T_J] = f64::NAN;
        mem[Self::RATE] = 1.0;
    }

    pub fn u_j<'a>(&self, mem: &'a [f64]) -> &'a [f64] {
        &mem[Self::HEAD..Self::HEAD + self.n]
    }
}

/// About the bytes [`Newton::new`] allocates for Jacobians of this
/// shape, worked out without making them: the iteration matrix
/// ([`IterationMatrix::bytes_needed`]), the Jacobian's values and
/// pattern, and the iteration's vectors.
pub fn newton_bytes_needed(shape: MatrixShape, linear: LinearSolver) -> usize {
    let f = std::mem::size_of::<f64>();
    let jacobian = shape
        .jacobian_nnz
        .saturating_mul(2)
        .saturating_add(shape.n + 1)
        .saturating_mul(f);
    IterationMatrix::bytes_needed(shape, linear)
        .saturating_add(jacobian)
        .saturating_add(shape.n.saturating_mul(8 * f))
}

/// Why a step's Newton iteration failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NewtonFailure {
    /// No convergence within [`MAX_ITERATIONS`], or the corrections grew,
    /// with a Jacobian evaluated for this step. `norm`: the last correction's
    /// weighted norm relative to the tolerance.
    Diverged { iterations: usize, norm: f64 },
    /// `I − γJ` has no usable pivot.
    Singular { index: usize },
}

/// Counters of a Newton solver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NewtonStats {
    pub iterations: usize,
    pub jacobian_evaluations: usize,
    pub factorizations: usize,
    /// Attempts that did not converge (each retried with a fresh Jacobian or
    /// reported).
    pub convergence_failures: usize,
}

/// The modified-Newton solver of one model: its Jacobian evaluator, the
/// factored iteration matrix, and the buffers of an iteration.
pub struct Newton<'m, M: Model> {
    jac: JacobianEval<'m, M>,
    jac_values: Vec<f64>,
    matrix: IterationMatrix,
    layout: NewtonMemory,
    /// The memory the current J and M belong to.
    mem: Vec<f64>,
    /// J and M match `mem` (false: `load` must rebuild them).
    built: bool,
    predictor: Vec<f64>,
    f: Vec<f64>,
    delta: Vec<f64>,
    stats: NewtonStats,
}

impl<'m, M: Model> Newton<'m, M> {
    /// Sets up the Jacobian evaluation and the iteration matrix (symbolic
    /// analysis included); allocates every buffer of the solve.
    pub fn new(model: &'m M, linear: LinearSolver) -> Self {
        let jac = JacobianEval::new(model);
        let n = model.dims().n_states;
        let matrix = IterationMatrix::new(jac.pattern(), linear);
        let layout = NewtonMemory { n };
        let mut mem = vec![0.0; layout.len()];
        layout.init(&mut mem);
        Newton {
            jac_values: vec![0.0; jac.pattern().nnz()],
            jac,
            matrix,
            layout,
            mem,
            built: true,
            predictor: vec![0.0; n],
            f: vec![0.0; n],
            delta: vec![0.0; n],
            stats: NewtonStats::default(),
        }
    }

    pub fn layout(&self) -> NewtonMemory {
        self.layout
    }

    pub fn stats(&self) -> NewtonStats {
        NewtonStats {
            jacobian_evaluations: self.jac.evaluations(),
            factorizations: self.matrix.factorizations(),
            ..self.stats
        }
    }

    /// The factored iteration matrix (e.g. for an adjoint's transposed solves).
    pub fn matrix(&mut self) -> &mut IterationMatrix {
        &mut self.matrix
    }

    /// Which factorisation is in use.
    pub fn linear_solver(&self) -> LinearSolver {
        self.matrix.kind()
    }

    /// Bytes held by the solver's buffers (Jacobian, factors, scratch).
    pub fn buffer_bytes(&self) -> usize {
        let f = std::mem::size_of::<f64>();
        self.matrix.buffer_bytes()
            + (self.jac_values.len() + self.mem.len() + 3 * self.predictor.len()) * f
    }

    /// Forgets the Jacobian: the next step evaluates a fresh one (after the
    /// parameters changed).
    pub fn invalidate(&mut self) {
        self.layout.init(&mut self.mem);
    }

    /// Writes the memory of the solver into `mem` (`layout().len()` long).
    pub fn store(&self, mem: &mut [f64]) {
        mem.copy_from_slice(&self.mem);
    }

    /// Takes the memory a stepper kept: if it is not what the solver holds,
    /// re-evaluates J at the stored point with `p` (the parameters J was
    /// evaluated with) and refactors M with the stored γ_M.
    pub fn load(&mut self, mem: &[f64], p: &[f64]) -> Result<(), NewtonFailure> {
        let same = self.built && same_bits(mem, &self.mem);
        if same {
            return Ok(());
        }
        self.mem.copy_from_slice(mem);
        self.built = false;
        let t_j = mem[NewtonMemory::T_J];
        if !t_j.is_nan() {
            let u_j = &mem[NewtonMemory::HEAD..];
            self.jac.eval(t_j, u_j, p, &mut self.jac_values);
            self.matrix
                .factor(mem[NewtonMemory::GAMMA], &self.jac_values)
                .map_err(|SingularMatrix { index }| NewtonFailure::Singular { index })?;
        }
        self.built = true;
        Ok(())
    }

    /// Evaluates J at `(t, u)` and factors `I − γJ`.
    fn refresh(&mut self, t: f64, u: &[f64], p: &[f64], gamma: f64) -> Result<(), NewtonFailure> {
        self.built = false;
        self.jac.eval(t, u, p, &mut self.jac_values);
        self.mem[NewtonMemory::T_J] = t;
        self.mem[NewtonMemory::AGE] = 0.0;
        self.mem[NewtonMemory::HEAD..].copy_from_slice(u);
        self.refactor(gamma)
    }

    fn refactor(&mut self, gamma: f64) -> Result<(), NewtonFailure> {
        self.built = false;
        self.mem[NewtonMemory::GAMMA] = gamma;
        self.mem[NewtonMemory::RATE] = 1.0;
        self.matrix
            .factor(gamma, &self.jac_values)
            .map_err(|SingularMatrix { index }| NewtonFailure::Singular { index })?;
        self.built = true;
        Ok(())
    }

    /// Solves `u = ψ + γ f(t, u, p)` for one step: `u` holds the predictor
    /// on entry and the solution on success. `weights` are the inverse error
    /// scales of the norm (`1/(rtol|u_i| + atol_i)`), `tol` the tolerance on
    /// the weighted RMS correction. Counts the step for the Jacobian's age.
    #[allow(clippy::too_many_arguments)]
    pub fn solve(
        &mut self,
        model: &M,
        t: f64,
        gamma: f64,
        psi: &[f64],
        p: &[f64],
        u: &mut [f64],
        weights: &[f64],
        tol: f64,
        work: &mut M::Work,
    ) -> Result<usize, NewtonFailure> {
        self.predictor.copy_from_slice(u);
        let age = self.mem[NewtonMemory::AGE] as usize;
        let mut fresh = false;
        if self.mem[NewtonMemory::T_J].is_nan() || age >= MAX_JACOBIAN_AGE {
            self.refresh(t, u, p, gamma)?;
            fresh = true;
        } else {
            self.mem[NewtonMemory::AGE] = (age + 1) as f64;
            if (gamma / self.mem[NewtonMemory::GAMMA] - 1.0).abs() > GAMMA_RATIO {
                self.refactor(gamma)?;
            }
        }
        loop {
            let (failure, slow) = match self.iterate(model, t, gamma, psi, p, u, weights, tol, work)
            {
                Attempt::Converged(iterations) => return Ok(iterations),
                Attempt::Slow(failure) => (failure, true),
                Attempt::Diverged(failure) => (failure, false),
            };
            self.stats.convergence_failures += 1;
            // Slow but steady corrections leave an iterate better than the
            // predictor: go on from it. Growing ones start over.
            if !slow {
                u.copy_from_slice(&self.predictor);
            }
            if fresh {
                log::debug!("newton: no convergence with a fresh Jacobian at t = {t}; full Newton");
                return self
                    .full_newton(model, t, gamma, psi, p, u, weights, tol, work)
                    .map_err(|e| match e {
                        NewtonFailure::Diverged { .. } => failure,
                        singular => singular,
                    });
            }
            log::debug!("newton: no convergence with an old Jacobian at t = {t}; refreshing");
            self.refresh(t, u, p, gamma)?;
            fresh = true;
        }
    }

    /// Newton with J re-evaluated at every iterate: the last resort when
    /// the Jacobian of the predictor is too far from the solution's (a
    /// reaction switching on within the step).
    #[allow(clippy::too_many_arguments)]
    fn full_newton(
        &mut self,
        model: &M,
        t: f64,
        gamma: f64,
        psi: &[f64],
        p: &[f64],
        u: &mut [f64],
        weights: &[f64],
        tol: f64,
        work: &mut M::Work,
    ) -> Result<usize, NewtonFailure> {
        let mut norm = f64::INFINITY;
        for m in 0..MAX_FULL_ITERATIONS {
            self.refresh(t, u, p, gamma)?;
            self.stats.iterations += 1;
            model.rhs(t, u, p, &mut self.f, work);
            residual(psi, gamma, &self.f, u, &mut self.delta);
            self.matrix.solve(&mut self.delta);
            let sum = update_and_weigh(u, &self.delta, 1.0, weights);
            norm = (sum / u.len().max(1) as f64).sqrt();
            if !norm.is_finite() {
                break;
            }
            if norm <= tol {
                return Ok(m + 1);
            }
        }
        Err(NewtonFailure::Diverged {
            iterations: MAX_FULL_ITERATIONS,
            norm: norm / tol,
        })
    }

    /// The iterations of one attempt with the current M.
    #[allow(clippy::too_many_arguments)]
    fn iterate(
        &mut self,
        model: &M,
        t: f64,
        gamma: f64,
        psi: &[f64],
        p: &[f64],
        u: &mut [f64],
        weights: &[f64],
        tol: f64,
        work: &mut M::Work,
    ) -> Attempt {
        // With M built for γ_M ≠ γ, the correction is scaled as in CVODES
        // (2/(1 + γ/γ_M)), which makes it exact for linear f when J commutes.
        let ratio = gamma / self.mem[NewtonMemory::GAMMA];
        let scale = if ratio == 1.0 {
            1.0
        } else {
            2.0 / (1.0 + ratio)
        };
        let mut rate = self.mem[NewtonMemory::RATE];
        let mut previous = 0.0;
        // The tests compare squares: a mispredicted convergence branch waits
        // for its condition, and a square root is ~20 cycles of it.
        let inv_len = 1.0 / u.len().max(1) as f64;
        let tol_sq = tol * tol;
        for m in 0..MAX_ITERATIONS {
            self.stats.iterations += 1;
            model.rhs(t, u, p, &mut self.f, work);
            // δ solves M δ = ψ + γ f(u) − u.
            residual(psi, gamma, &self.f, u, &mut self.delta);
            self.matrix.solve(&mut self.delta);
            let sum = update_and_weigh(u, &self.delta, scale, weights);
            let norm_sq = sum * inv_len;
            if !norm_sq.is_finite() {
                return Attempt::Diverged(NewtonFailure::Diverged {
                    iterations: m + 1,
                    norm: norm_sq.sqrt(),
                });
            }
            if m > 0 {
                let norm = norm_sq.sqrt();
                rate = (0.3 * rate).max(norm / previous);
                if norm > DIVERGENCE_RATIO * previous {
                    return Attempt::Diverged(NewtonFailure::Diverged {
                        iterations: m + 1,
                        norm: norm / tol,
                    });
                }
            }
            let settled = rate.min(1.0);
            if norm_sq * (settled * settled) <= tol_sq {
                self.mem[NewtonMemory::RATE] = rate;
                return Attempt::Converged(m + 1);
            }
            previous = norm_sq.sqrt();
        }
        Attempt::Slow(NewtonFailure::Diverged {
            iterations: MAX_ITERATIONS,
            norm: previous / tol,
        })
    }
}

/// Whether two slices of one length hold the same bits (NaN = NaN). It
/// runs once a step: four lanes of differences, or-ed without a branch (a
/// running fold over single entries cost the seed's backward Euler step
/// ~60 instructions of its ~1 150).
#[inline]
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    let (a_chunks, b_chunks) = (a.chunks_exact(4), b.chunks_exact(4));
    let mut rest = 0u64;
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        rest |= x.to_bits() ^ y.to_bits();
    }
    let mut lanes = [0u64; 4];
    for (x, y) in a_chunks.zip(b_chunks) {
        for k in 0..4 {
            lanes[k] |= x[k].to_bits() ^ y[k].to_bits();
        }
    }
    (lanes[0] | lanes[1] | lanes[2] | lanes[3] | rest) == 0
}

/// `delta ← ψ + γ f − u`, zipped so that no index is bounds-checked and
/// the loop vectorises.
#[inline(always)]
fn residual(psi: &[f64], gamma: f64, f: &[f64], u: &[f64], delta: &mut [f64]) {
    if u.len() < PARTIAL_SUMS {
        // A few states: the plain loop (the zipped one, vectorised, cost
        // the 4-state seed ~7 % of its forward solve).
        for i in 0..u.len() {
            delta[i] = psi[i] + gamma * f[i] - u[i];
        }
        return;
    }
    for (((d, &s), &fi), &ui) in delta.iter_mut().zip(psi).zip(f).zip(u) {
        *d = s + gamma * fi - ui;
    }
}

/// `u += scale·δ`, returning `Σ (scale·δ_i·w_i)²`. From [`PARTIAL_SUMS`]
/// states on, the sum runs in that many interleaved partial sums, added
/// pairwise at the end: a single running sum waits for each addition
/// before the next (~0.5 µs for a 400-state cable). The order is fixed by
/// `u.len()` alone, so replays repeat it bit for bit.
#[inline(always)]
fn update_and_weigh(u: &mut [f64], delta: &[f64], scale: f64, weights: &[f64]) -> f64 {
    if u.len() >= PARTIAL_SUMS {
        return update_and_weigh_wide(u, delta, scale, weights);
    }
    // A few states: one running sum, the plain loop, inlined into
    // Newton's (a call cost the 4-state seed 8 % of its forward solve).
    let mut sum = 0.0;
    for i in 0..u.len() {
        let d = scale * delta[i];
        u[i] += d;
        let x = d * weights[i];
        sum += x * x;
    }
    sum
}

fn update_and_weigh_wide(u: &mut [f64], delta: &[f64], scale: f64, weights: &[f64]) -> f64 {
    let mut sums = [0.0; PARTIAL_SUMS];
    let mut add = |k: usize, u: &mut f64, d: f64, w: f64| {
        let d = scale * d;
        *u += d;
        let x = d * w;
        sums[k] += x * x;
    };
    let (u_chunks, d_chunks, w_chunks) = (
        u.chunks_exact_mut(PARTIAL_SUMS),
        delta.chunks_exact(PARTIAL_SUMS),
        weights.chunks_exact(PARTIAL_SUMS),
    );
    let (d_rest, w_rest) = (d_chunks.remainder(), w_chunks.remainder());
    for ((uc, dc), wc) in u_chunks.zip(d_chunks).zip(w_chunks) {
        for k in 0..PARTIAL_SUMS {
            add(k, &mut uc[k], dc[k], wc[k]);
        }
    }
    let tail = u.len() - d_rest.len();
    for (k, ((ui, &d), &w)) in u[tail..].iter_mut().zip(d_rest).zip(w_rest).enumerate() {
        add(k, ui, d, w);
    }
    let [a, b, c, d, e, f, g, h] = sums;
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

/// Partial sums of the weighted norm (one vector of f64 lanes).
const PARTIAL_SUMS: usize = 8;

/// How one attempt of modified Newton ended.
enum Attempt {
    Converged(usize),
    /// [`MAX_ITERATIONS`] corrections without converging, none growing.
    Slow(NewtonFailure),
    /// A correction grew or became non-finite.
    Diverged(NewtonFailure),
}

#[cfg(test)]
mod tests {
    use super::*;
    use revode_testing::Robertson;

    /// The memory comparison tells any one flipped bit apart, at every
    /// length around its four lanes.
    #[test]
    fn same_bits_compares_every_entry_bit_for_bit() {
        for len in [0, 1, 3, 4, 5, 8, 11] {
            let a: Vec<f64> = (0..len).map(|i| i as f64 * 0.5 - 1.0).collect();
            assert!(same_bits(&a, &a.clone()), "len {len}");
            for i in 0..len {
                let mut b = a.clone();
                b[i] = f64::from_bits(b[i].to_bits() ^ 1);
                assert!(!same_bits(&a, &b), "len {len}, entry {i}");
            }
        }
        // NaN (no Jacobian yet) matches itself; 0 and −0 differ.
        assert!(same_bits(&[f64::NAN, 1.0], &[f64::NAN, 1.0]));
        assert!(!same_bits(&[0.0, 1.0], &[-0.0, 1.0]));
    }

    /// The weighted norm in partial sums: the same update of u as one
    /// running sum, bit for bit, and the same sum to rounding, for lengths
    /// around the partial-sum width.
    #[test]
    fn update_and_weigh_matches_one_running_sum() {
        for n in [1, 4, 7, 8, 9, 16, 23, 400] {
            let delta: Vec<f64> = (0..n)
                .map(|i| ((i as f64) * 0.7 + 0.3).sin() * 1e-3)
                .collect();
            let weights: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
            let u0: Vec<f64> = (0..n).map(|i| (i as f64).cos()).collect();
            let (mut u, mut expected_u) = (u0.clone(), u0.clone());
            let mut expected = 0.0;
            for i in 0..n {
                let d = 0.75 * delta[i];
                expected_u[i] += d;
                expected += (d * weights[i]).powi(2);
            }
            let sum = update_and_weigh(&mut u, &delta, 0.75, &weights);
            assert_eq!(u, expected_u, "n = {n}");
            assert!(
                (sum - expected).abs() <= 1e-14 * expected,
                "n = {n}: {sum} vs {expected}"
            );
            assert!(sum > 0.0);
        }
    }

    /// Robertson's kinetics, Jacobian assembled from VJPs.
    const ROBERTSON: Robertson = Robertson::ASSEMBLED;

    /// Backward Euler steps of Robertson with h growing from 1e-3: returns
    /// the states and the memory before each step.
    fn run(
        newton: &mut Newton<'_, Robertson>,
        from: usize,
        u0: &[f64],
        mem0: &[f64],
    ) -> Vec<(Vec<f64>, Vec<f64>)> {
        let p = ROBERTSON.default_params();
        newton.load(mem0, &p).unwrap();
        let mut u = u0.to_vec();
        let mut out = Vec::new();
        let mut mem = mem0.to_vec();
        let weights_of =
            |u: &[f64]| -> Vec<f64> { u.iter().map(|x| 1.0 / (1e-6 * x.abs() + 1e-10)).collect() };
        for k in from..40 {
            newton.load(&mem, &p).unwrap();
            let h = 1e-3 * 1.3f64.powi(k as i32);
            let t = h; // time does not enter Robertson
            let psi = u.clone();
            let w = weights_of(&u);
            if let Err(e) = newton.solve(&ROBERTSON, t, h, &psi, &p, &mut u, &w, 0.1, &mut ()) {
                panic!("step {k} h {h}: {e:?} {u:?}");
            }
            // The error left, one exact Newton correction (I − hJ)⁻¹ r of
            // the residual r, is within the tolerance.
            let mut f = [0.0; 3];
            ROBERTSON.rhs(t, &u, &p, &mut f, &mut ());
            let mut r: Vec<f64> = (0..3).map(|i| psi[i] + h * f[i] - u[i]).collect();
            let mut jac = JacobianEval::new(&ROBERTSON);
            let mut values = vec![0.0; jac.pattern().nnz()];
            jac.eval(t, &u, &p, &mut values);
            let mut exact = IterationMatrix::new(jac.pattern(), LinearSolver::Dense);
            exact.factor(h, &values).unwrap();
            exact.solve(&mut r);
            // (CVODES's test is heuristic: allow 10× the tolerance.)
            let rms = (r.iter().zip(&w).map(|(e, w)| (e * w).powi(2)).sum::<f64>() / 3.0).sqrt();
            assert!(rms < 1.0, "step {k}: error {r:?}, weighted {rms}");
            newton.store(&mut mem);
            out.push((u.clone(), mem.clone()));
        }
        out
    }

    #[test]
    fn solves_robertson_steps_and_replays_them_bitwise() {
        let mut newton = Newton::new(&ROBERTSON, LinearSolver::Auto);
        let layout = newton.layout();
        let mut mem0 = vec![0.0; layout.len()];
        layout.init(&mut mem0);
        let all = run(&mut newton, 0, &ROBERTSON.default_u0(), &mem0);
        let stats = newton.stats();
        // Modified Newton: J is reused across iterations and steps.
        assert!(
            stats.jacobian_evaluations < stats.iterations / 2,
            "{stats:?}"
        );
        // Replay from step 17 with a fresh solver: the same bits.
        let mut other = Newton::new(&ROBERTSON, LinearSolver::Dense);
        let (u17, mem17) = &all[16];
        let replay = run(&mut other, 17, u17, mem17);
        for (a, b) in all[17..].iter().zip(&replay) {
            assert_eq!(
                a.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
