//! The continuous adjoint ODE integrated backwards with BDF.
//!
//! z = (λ, μ): dλ/dt = −Jᵀλ is as stiff as the forward problem, so it is
//! integrated with the same variable-order BDF core ([`BdfCore`]), backwards
//! (h < 0). The implicit equation of a step is *linear*,
//! `(I + γ J(t_n)ᵀ) λ_n = ψ`, J at the forward state u(t_n) from the
//! forward's Nordsieck polynomials ([`NordsieckRing`]). It is solved with a
//! factored `I + γ_M J_Mᵀ` that may be stale (J from an earlier t, γ_M from
//! an earlier step): modified Newton on a linear problem is iterative
//! refinement, its residuals computed exactly with the model's VJP. μ is a
//! quadrature: `μ_n = ψ_μ + γ (−(∂f/∂p)ᵀ λ_n)` once λ_n is known; it enters
//! the error test only with `error_control: lambda_and_mu`.

use revode_forward::bdf::{
    initial_step, step_floor, BdfCore, Corrector, CorrectorFailure, InitialStepWork, StepFailure,
};
use revode_forward::newton::{GAMMA_RATIO, MAX_ITERATIONS, MAX_JACOBIAN_AGE};
use revode_forward::{
    BdfLayout, IterationMatrix, LinearSolver, NewtonStats, SingularMatrix, StepCounts, Tolerance,
};
use revode_model::{JacobianEval, Model};

use crate::GradientError;

/// The dense outputs (Nordsieck polynomials) of the last few forward steps
/// visited backwards: contiguous intervals, the newest lowest in time.
/// Entry: `[t_lo, t_hi, h, q, z (q_max + 1 columns)]`. Allocated once.
#[derive(Debug, Clone)]
pub(crate) struct NordsieckRing {
    layout: BdfLayout,
    entry: usize,
    data: Vec<f64>,
    capacity: usize,
    next: usize,
    len: usize,
}

const LO: usize = 0;
const HI: usize = 1;
const H: usize = 2;
const Q: usize = 3;
const Z: usize = 4;

impl NordsieckRing {
    pub fn new(layout: BdfLayout, capacity: usize) -> Self {
        assert!(capacity > 0);
        let entry = Self::entry_len(layout);
        NordsieckRing {
            layout,
            entry,
            data: vec![0.0; entry * capacity],
            capacity,
            next: 0,
            len: 0,
        }
    }

    fn entry_len(layout: BdfLayout) -> usize {
        Z + (layout.q_max + 1) * layout.n
    }

    /// Bytes of a ring of `capacity` steps.
    pub fn bytes_for(layout: BdfLayout, capacity: usize) -> usize {
        Self::entry_len(layout) * capacity * std::mem::size_of::<f64>()
    }

    pub fn buffer_bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f64>()
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Slot of the i-th newest step.
    #[inline]
    fn slot(&self, i: usize) -> usize {
        let back = self.next + self.capacity - 1 - i;
        if back >= self.capacity {
            back - self.capacity
        } else {
            back
        }
    }

    #[inline]
    fn entry(&self, slot: usize) -> &[f64] {
        &self.data[slot * self.entry..(slot + 1) * self.entry]
    }

    /// Start of the newest step: the lower end of the buffered span.
    pub fn bottom(&self) -> f64 {
        self.entry(self.slot(0))[LO]
    }

    /// Drops the oldest steps that lie wholly at or above `t`.
    pub fn retire(&mut self, t: f64) {
        while self.len > 0 && self.entry(self.slot(self.len - 1))[LO] >= t {
            self.len -= 1;
        }
    }

    /// Adds the forward step from restart state `lower` to `upper` (its
    /// polynomial is `upper`'s); the oldest is overwritten when full.
    pub fn push(&mut self, lower: &[f64], upper: &[f64]) {
        let slot = self.next;
        let e = self.entry;
        let dst = &mut self.data[slot * e..(slot + 1) * e];
        dst[LO] = lower[BdfLayout::T];
        dst[HI] = upper[BdfLayout::T];
        dst[H] = upper[BdfLayout::H];
        dst[Q] = upper[BdfLayout::Q];
        dst[Z..].copy_from_slice(self.layout.zn(upper));
        self.next = if slot + 1 == self.capacity {
            0
        } else {
            slot + 1
        };
        self.len = (self.len + 1).min(self.capacity);
    }

    /// `out ← u(t)` from the buffered step covering t (the newest one below
    /// the span).
    #[inline]
    pub fn eval(&self, t: f64, out: &mut [f64]) {
        let mut s = self.slot(0);
        for i in (1..self.len).rev() {
            let slot = self.slot(i);
            if t >= self.entry(slot)[LO] {
                s = slot;
                break;
            }
        }
        let e = self.entry(s);
        let theta = (t - e[HI]) / e[H];
        revode_forward::bdf::nordsieck_eval(&e[Z..], self.layout.n, e[Q] as usize, theta, out);
    }
}

/// The linear algebra of the adjoint steps: J at u(t) (the model's own or
/// assembled from VJPs), the factored `I + γ_M Jᵀ`, and the rules for
/// reusing them (as the forward Newton's: J re-evaluated after
/// `MAX_JACOBIAN_AGE` steps, after a failed refinement with an old J and
/// after a parameter switch; refactored when γ/γ_M drifts by more than
/// `GAMMA_RATIO`).
struct AdjointLinear<'m, M: Model> {
    n: usize,
    jac: JacobianEval<'m, M>,
    jac_values: Vec<f64>,
    matrix: IterationMatrix,
    has_jacobian: bool,
    age: usize,
    gamma_m: f64,
    rate: f64,
    /// u(t_n), Jᵀλ, the residual, the predictor and a parameter scratch.
    u: Vec<f64>,
    jtl: Vec<f64>,
    r: Vec<f64>,
    predictor: Vec<f64>,
    acc: Vec<f64>,
    stats: NewtonStats,
}

impl<'m, M: Model> AdjointLinear<'m, M> {
    fn new(model: &'m M, linear: LinearSolver) -> Self {
        let dims = model.dims();
        let n = dims.n_states;
        let jac = JacobianEval::new(model);
        let matrix = IterationMatrix::new(jac.pattern(), linear);
        AdjointLinear {
            n,
            jac_values: vec![0.0; jac.pattern().nnz()],
            jac,
            matrix,
            has_jacobian: false,
            age: 0,
            gamma_m: f64::NAN,
            rate: 1.0,
            u: vec![0.0; n],
            jtl: vec![0.0; n],
            r: vec![0.0; n],
            predictor: vec![0.0; n],
            acc: vec![0.0; dims.n_params],
            stats: NewtonStats::default(),
        }
    }

    fn stats(&self) -> NewtonStats {
        NewtonStats {
            jacobian_evaluations: self.jac.evaluations(),
            factorizations: self.matrix.factorizations(),
            ..self.stats
        }
    }

    /// Factors `I + γ J` (its transpose is the adjoint's matrix).
    fn refactor(&mut self, gamma: f64) -> Result<(), CorrectorFailure> {
        self.gamma_m = gamma;
        self.rate = 1.0;
        self.matrix
            .factor(-gamma, &self.jac_values)
            .map_err(|SingularMatrix { index }| {
                self.has_jacobian = false;
                CorrectorFailure::Singular { index }
            })
    }

    /// J at `(t, self.u)`, then the factors.
    fn refresh(&mut self, t: f64, p: &[f64], gamma: f64) -> Result<(), CorrectorFailure> {
        self.jac.eval(t, &self.u, p, &mut self.jac_values);
        self.has_jacobian = true;
        self.age = 0;
        self.refactor(gamma)
    }
}

/// The adjoint's implicit equation over the buffered forward polynomials.
struct AdjointCorrector<'a, 'm, M: Model> {
    lin: &'a mut AdjointLinear<'m, M>,
    model: &'m M,
    params: &'a [f64],
    work: &'a mut M::Work,
    ring: &'a NordsieckRing,
}

impl<M: Model> AdjointCorrector<'_, '_, M> {
    /// Refinement iterations with the current factors: λ (= `z[..n]`) from
    /// the predictor to the solution of `(I + γ Jᵀ) λ = ψ`.
    fn refine(
        &mut self,
        t: f64,
        gamma: f64,
        psi: &[f64],
        lambda: &mut [f64],
        ewt: &[f64],
        tol: f64,
    ) -> Result<(), CorrectorFailure> {
        let lin = &mut *self.lin;
        let n = lin.n;
        let ratio = gamma / lin.gamma_m;
        // As in the forward Newton (CVODES): with a stale γ_M, scaling the
        // correction by 2/(1 + γ/γ_M) makes it exact when J commutes.
        let scale = if ratio == 1.0 {
            1.0
        } else {
            2.0 / (1.0 + ratio)
        };
        let mut rate = lin.rate;
        let mut previous = 0.0;
        for m in 0..MAX_ITERATIONS {
            lin.stats.iterations += 1;
            self.model.vjp(
                t,
                &lin.u,
                self.params,
                lambda,
                &mut lin.jtl,
                0.0,
                &mut lin.acc,
                self.work,
            );
            self.model.flush_vjp(&mut lin.acc, self.work);
            for i in 0..n {
                lin.r[i] = psi[i] - lambda[i] - gamma * lin.jtl[i];
            }
            lin.matrix.solve_transpose(&mut lin.r);
            let mut sum = 0.0;
            for i in 0..n {
                let d = scale * lin.r[i];
                lambda[i] += d;
                let w = d * ewt[i];
                sum += w * w;
            }
            let norm = (sum / n.max(1) as f64).sqrt();
            if !norm.is_finite() {
                return Err(CorrectorFailure::Diverged);
            }
            if m > 0 {
                rate = (0.3 * rate).max(norm / previous);
                if norm > 2.0 * previous {
                    return Err(CorrectorFailure::Diverged);
                }
            }
            if norm * rate.min(1.0) <= tol {
                lin.rate = rate;
                return Ok(());
            }
            previous = norm;
        }
        Err(CorrectorFailure::Diverged)
    }
}

impl<M: Model> Corrector for AdjointCorrector<'_, '_, M> {
    fn solve(
        &mut self,
        t: f64,
        gamma: f64,
        psi: &[f64],
        z: &mut [f64],
        ewt: &[f64],
        tol: f64,
    ) -> Result<(), CorrectorFailure> {
        let n = self.lin.n;
        self.ring.eval(t, &mut self.lin.u);
        let mut fresh = false;
        if !self.lin.has_jacobian || self.lin.age >= MAX_JACOBIAN_AGE {
            self.lin.refresh(t, self.params, gamma)?;
            fresh = true;
        } else {
            self.lin.age += 1;
            if (gamma / self.lin.gamma_m - 1.0).abs() > GAMMA_RATIO {
                self.lin.refactor(gamma)?;
            }
        }
        self.lin.predictor.copy_from_slice(&z[..n]);
        loop {
            match self.refine(t, gamma, &psi[..n], &mut z[..n], &ewt[..n], tol) {
                Ok(()) => break,
                Err(failure) => {
                    self.lin.stats.convergence_failures += 1;
                    if fresh {
                        return Err(failure);
                    }
                    z[..n].copy_from_slice(&self.lin.predictor);
                    self.lin.refresh(t, self.params, gamma)?;
                    fresh = true;
                }
            }
        }
        // The quadrature: μ_n = ψ_μ + γ g_μ(t_n, λ_n).
        let (lambda, mu) = z.split_at_mut(n);
        mu.fill(0.0);
        self.model.vjp_params(
            t,
            &self.lin.u,
            self.params,
            lambda,
            -1.0,
            mu,
            &mut self.lin.jtl,
            self.work,
        );
        self.model.flush_vjp(mu, self.work);
        for (m, &p) in mu.iter_mut().zip(&psi[n..]) {
            *m = p + gamma * *m;
        }
        Ok(())
    }

    fn rhs(&mut self, t: f64, z: &[f64], out: &mut [f64]) {
        let n = self.lin.n;
        self.ring.eval(t, &mut self.lin.u);
        let (dl, dmu) = out.split_at_mut(n);
        dmu.fill(0.0);
        self.model.vjp(
            t,
            &self.lin.u,
            self.params,
            &z[..n],
            dl,
            -1.0,
            dmu,
            self.work,
        );
        self.model.flush_vjp(dmu, self.work);
        for d in dl.iter_mut() {
            *d = -*d;
        }
    }
}

/// The backward BDF integration of z = (λ, μ), carried across the forward
/// steps as they are visited.
pub(crate) struct BdfBackward<'m, M: Model> {
    core: BdfCore,
    tol: Tolerance,
    lin: AdjointLinear<'m, M>,
    initial: InitialStepWork,
    g0: Vec<f64>,
    h_min: Option<f64>,
    /// Current time of z.
    pub t: f64,
    /// z changed outside the ODE (a jump) or the right-hand side did (a
    /// switch): the next step restarts at order 1.
    needs_start: bool,
}

impl<'m, M: Model> BdfBackward<'m, M> {
    /// Starts at t with z = 0; `tol` on z = (λ, μ), its `controlled`
    /// components in the error test; orders up to `q_max`.
    pub fn new(
        model: &'m M,
        tol: Tolerance,
        q_max: usize,
        linear: LinearSolver,
        h_min: Option<f64>,
        t: f64,
    ) -> Self {
        let len = tol.atol.len();
        BdfBackward {
            core: BdfCore::new(len, tol.controlled, q_max),
            lin: AdjointLinear::new(model, linear),
            initial: InitialStepWork::new(len),
            g0: vec![0.0; len],
            tol,
            h_min,
            t,
            needs_start: true,
        }
    }

    /// z at `self.t`.
    pub fn z(&self) -> &[f64] {
        self.core.y()
    }

    /// z, to apply a jump; the next step restarts at order 1.
    pub fn z_mut(&mut self) -> &mut [f64] {
        self.needs_start = true;
        self.core.y_mut()
    }

    /// The parameters (a switch) or the forward state (an event) jump
    /// below `self.t`: restart, with a fresh Jacobian.
    pub fn switch(&mut self) {
        self.needs_start = true;
        self.lin.has_jacobian = false;
    }

    pub fn counts(&self) -> StepCounts {
        self.core.counts
    }

    pub fn stats(&self) -> NewtonStats {
        NewtonStats {
            convergence_failures: self.core.corrector_failures,
            ..self.lin.stats()
        }
    }

    /// Integrates z down from `self.t` towards `t_floor`, evaluating u only
    /// in `[t_floor, self.t]` (what `ring` holds). With `land`, ends exactly
    /// at `t_floor`; otherwise stops before a step that would pass it.
    pub fn advance(
        &mut self,
        model: &'m M,
        params: &[f64],
        work: &mut M::Work,
        ring: &NordsieckRing,
        t_floor: f64,
        land: bool,
    ) -> Result<(), GradientError> {
        loop {
            let t = self.t;
            if t == t_floor {
                return Ok(());
            }
            let mut corrector = AdjointCorrector {
                lin: &mut self.lin,
                model,
                params,
                work: &mut *work,
                ring,
            };
            if self.needs_start {
                corrector.rhs(t, self.core.y(), &mut self.g0);
                let h = initial_step(
                    &mut corrector,
                    t,
                    t_floor,
                    self.core.y(),
                    &self.g0,
                    &self.tol,
                    f64::INFINITY,
                    &mut self.initial,
                );
                let h = -h.abs().max(self.h_min.unwrap_or(0.0));
                self.core.start(&self.g0, h);
                self.needs_start = false;
            }
            self.core.prepare();
            let h = self.core.hist.hscale;
            if !land && t + h < t_floor {
                return Ok(());
            }
            let t_new = self
                .core
                .step(
                    &mut corrector,
                    t,
                    if land { Some(t_floor) } else { None },
                    step_floor(self.h_min, t),
                    &self.tol,
                )
                .map_err(|f| adjoint_error(f, t))?;
            self.t = t_new;
        }
    }
}

/// A failed adjoint step at t, as users see it.
fn adjoint_error(failure: StepFailure, t: f64) -> GradientError {
    match failure {
        StepFailure::StepSizeTooSmall { h, h_min } => GradientError::AdjointStepTooSmall {
            t,
            h: h.abs(),
            h_min,
        },
        StepFailure::Corrector {
            failure: CorrectorFailure::Singular { index },
            h,
        } => GradientError::AdjointSingular {
            t,
            h: h.abs(),
            index,
        },
        StepFailure::Corrector {
            failure: CorrectorFailure::Diverged,
            h,
        } => GradientError::AdjointDiverged { t, h: h.abs() },
    }
}
