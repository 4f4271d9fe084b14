//! Backward (implicit) Euler, one step per call:
//! `u_{k+1} = u_k + h f(t_{k+1}, u_{k+1}, p)`, solved by modified Newton
//! ([`Newton`]) from a quadratic-extrapolation predictor.
//!
//! The stepper works on a *chain state* ([`BeulerLayout`]):
//! `[u_k, s_k, c_k, Newton memory]`, where `s_k = (u_k − u_{k−1})/h_{k−1}`
//! is the slope of the last step, `c_k = (s_k − s_{k−1})/(h_{k−1} + h_{k−2})`
//! the second divided difference of the last three states (the predictor of
//! step k is the quadratic through them, `u_k + h s_k + h (h + h_{k−1}) c_k`),
//! and the memory says which Jacobian and factors the next step starts
//! from.
//! Everything step k does depends on this state, the plan and the model
//! only, so a step replayed from a checkpointed state reproduces the
//! forward's `u_{k+1}` bit for bit (docs/stiff.md).

use revode_model::Model;

use crate::StepPlan;
use crate::{ForwardError, LinearSolver, Newton, NewtonFailure, NewtonMemory, NewtonStats};

/// The options of `{"method": "beuler", …}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeulerOptions {
    /// Newton stops when its error estimate `‖δ‖·min(1, ρ)` is at most
    /// this, in the weighted RMS norm `√(mean_i (δ_i / (1 + |u_{k,i}|))²)`
    /// (relative for components above 1 in magnitude, absolute below).
    pub newton_tol: f64,
    /// Dense or sparse LU of `I − hJ`.
    pub linear_solver: LinearSolver,
}

impl BeulerOptions {
    /// Default Newton tolerance (docs/stiff.md: why this value).
    pub const DEFAULT_NEWTON_TOL: f64 = 1e-10;

    /// Checks the options: `0 < newton_tol < 1`.
    pub fn validate(&self) -> Result<(), ForwardError> {
        let tol = self.newton_tol;
        if !(tol.is_finite() && tol > 0.0 && tol < 1.0) {
            return Err(ForwardError::InvalidOption {
                what: "newton_tol",
                value: tol,
                expected: "a number between 0 and 1 (exclusive)",
            });
        }
        Ok(())
    }
}

impl Default for BeulerOptions {
    fn default() -> Self {
        BeulerOptions {
            newton_tol: Self::DEFAULT_NEWTON_TOL,
            linear_solver: LinearSolver::Auto,
        }
    }
}

/// Offsets in the chain state of backward Euler for n states:
/// `[u (n), s (n), c (n), Newton memory ([`NewtonMemory`], 4 + n)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeulerLayout {
    pub n: usize,
}

impl BeulerLayout {
    /// f64s in one chain state: `4n + 4`.
    pub fn len(&self) -> usize {
        3 * self.n + self.memory().len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn memory(&self) -> NewtonMemory {
        NewtonMemory { n: self.n }
    }

    pub fn u<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[..self.n]
    }

    pub fn slope<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[self.n..2 * self.n]
    }

    pub fn curvature<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[2 * self.n..3 * self.n]
    }

    pub fn newton_memory<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        &x[3 * self.n..]
    }

    /// The chain state of `u0` at `t0`: the first step's predictor is an
    /// explicit Euler step (`s_0 = f(t0, u0, p)`, `c_0 = 0`), and there is
    /// no Jacobian yet.
    pub fn initial_state<M: Model>(
        &self,
        model: &M,
        t0: f64,
        u0: &[f64],
        p: &[f64],
        work: &mut M::Work,
        x: &mut [f64],
    ) {
        let n = self.n;
        x[..n].copy_from_slice(u0);
        let (head, mem) = x.split_at_mut(3 * n);
        model.rhs(t0, u0, p, &mut head[n..2 * n], work);
        head[2 * n..].fill(0.0);
        self.memory().init(mem);
    }
}

/// The backward Euler stepper of one model: its Newton solver and the
/// buffers of a step, made once per solve.
pub struct BackwardEuler<'m, M: Model> {
    newton: Newton<'m, M>,
    layout: BeulerLayout,
    options: BeulerOptions,
    /// Inverse scales of the Newton norm, `1/(1 + |u_k|)`.
    weights: Vec<f64>,
    /// A memory with no Jacobian: what a step that starts a new parameter
    /// segment loads.
    no_jacobian: Vec<f64>,
}

impl<'m, M: Model> BackwardEuler<'m, M> {
    /// Sets up the Newton solver (Jacobian pattern, symbolic analysis of
    /// the sparse LU) and every buffer. `options` must be valid.
    pub fn new(model: &'m M, options: BeulerOptions) -> Self {
        let n = model.dims().n_states;
        let layout = BeulerLayout { n };
        let mut no_jacobian = vec![0.0; layout.memory().len()];
        layout.memory().init(&mut no_jacobian);
        BackwardEuler {
            newton: Newton::new(model, options.linear_solver),
            layout,
            options,
            weights: vec![0.0; n],
            no_jacobian,
        }
    }

    pub fn layout(&self) -> BeulerLayout {
        self.layout
    }

    pub fn options(&self) -> BeulerOptions {
        self.options
    }

    /// Newton counters since the stepper was made.
    pub fn stats(&self) -> NewtonStats {
        self.newton.stats()
    }

    /// The factorisation in use (dense or sparse).
    pub fn linear_solver(&self) -> LinearSolver {
        self.newton.linear_solver()
    }

    /// Bytes held by the stepper's buffers (Newton's included).
    pub fn buffer_bytes(&self) -> usize {
        self.newton.buffer_bytes()
            + (self.weights.len() + self.no_jacobian.len()) * std::mem::size_of::<f64>()
    }

    /// Step k of `plan`: `next ← ` the chain state k + 1 from `x` (state k).
    /// A step that starts a new parameter segment evaluates a fresh
    /// Jacobian with its segment's parameters.
    #[inline]
    pub fn step<P: StepPlan>(
        &mut self,
        model: &M,
        plan: &P,
        k: usize,
        x: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), ForwardError> {
        let n = self.layout.n;
        let (_, h, p) = plan.step(k);
        let t_next = plan.time(k + 1);
        let (u, rest) = x.split_at(n);
        let (slope, rest) = rest.split_at(n);
        let (curv, memory) = rest.split_at(n);
        let (u_next, rest) = next.split_at_mut(n);
        let (slope_next, rest) = rest.split_at_mut(n);
        let (curv_next, memory_next) = rest.split_at_mut(n);
        // The step before (the first step's s_0 is a tangent: taken as if
        // the step before had the same length).
        let h_prev = if k > 0 { plan.step(k - 1).1 } else { h };
        let hc = h * (h + h_prev);
        let memory = if plan.switches_at(k) {
            &self.no_jacobian[..]
        } else {
            memory
        };
        let fail = |e: NewtonFailure| newton_error(e, t_next, k + 1, h);
        self.newton.load(memory, p).map_err(fail)?;
        // Zipped, so that no index is bounds-checked and the loop
        // vectorises (its divisions above all).
        let predict = u_next.iter_mut().zip(self.weights.iter_mut());
        for ((((un, w), &ui), &si), &ci) in predict.zip(u).zip(slope).zip(curv) {
            *un = ui + h * si + hc * ci;
            *w = 1.0 / (1.0 + ui.abs());
        }
        self.newton
            .solve(
                model,
                t_next,
                h,
                u,
                p,
                u_next,
                &self.weights,
                self.options.newton_tol,
                work,
            )
            .map_err(fail)?;
        if !crate::all_finite(u_next) {
            return Err(ForwardError::non_finite(t_next, k + 1, u_next));
        }
        // Reciprocals, off the critical path: the next step's predictor
        // waits for these, and a division is several multiplies of latency.
        let (inv_h, inv_span) = (1.0 / h, 1.0 / (h + h_prev));
        for i in 0..n {
            slope_next[i] = (u_next[i] - u[i]) * inv_h;
            curv_next[i] = (slope_next[i] - slope[i]) * inv_span;
        }
        self.newton.store(memory_next);
        Ok(())
    }
}

impl<M: Model> BackwardEuler<'_, M> {
    /// One piece of a step cut by an event: `y ← x + len f(t_next, y, p)`,
    /// Newton going on from where the step's earlier pieces left it (its
    /// memory is part of the step, so replays repeat it), from the explicit
    /// Euler predictor `x + len f(t_next, x)`. `step` is the grid index of
    /// the state being computed (for errors).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn solve_piece(
        &mut self,
        model: &M,
        t_next: f64,
        len: f64,
        x: &[f64],
        p: &[f64],
        y: &mut [f64],
        step: usize,
        work: &mut M::Work,
    ) -> Result<(), ForwardError> {
        model.rhs(t_next, x, p, y, work);
        for i in 0..x.len() {
            y[i] = x[i] + len * y[i];
            self.weights[i] = 1.0 / (1.0 + x[i].abs());
        }
        self.newton
            .solve(
                model,
                t_next,
                len,
                x,
                p,
                y,
                &self.weights,
                self.options.newton_tol,
                work,
            )
            .map_err(|e| newton_error(e, t_next, step, len))?;
        if !crate::all_finite(y) {
            return Err(ForwardError::non_finite(t_next, step, y));
        }
        Ok(())
    }

    /// Completes the chain state `next` (its `u` set) of a step that held
    /// an event: the reset breaks the quadratic through the last states, so
    /// the next predictor starts over as at t0 (`s = f(t_next, u)`,
    /// `c = 0`), and Newton's memory is the one after the step's last piece.
    pub(crate) fn restart_after_event(
        &mut self,
        model: &M,
        t_next: f64,
        p: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) {
        let n = self.layout.n;
        let (u, rest) = next.split_at_mut(n);
        let (slope, rest) = rest.split_at_mut(n);
        let (curv, memory) = rest.split_at_mut(n);
        model.rhs(t_next, u, p, slope, work);
        curv.fill(0.0);
        self.newton.store(memory);
    }
}

/// The error of a failed Newton solve at `t` (state `step`), step length `h`.
fn newton_error(e: NewtonFailure, t: f64, step: usize, h: f64) -> ForwardError {
    match e {
        NewtonFailure::Diverged { iterations, norm } => ForwardError::NewtonFailed {
            t,
            step,
            iterations,
            norm,
            h,
        },
        NewtonFailure::Singular { index } => {
            ForwardError::SingularIterationMatrix { t, step, index, h }
        }
    }
}
