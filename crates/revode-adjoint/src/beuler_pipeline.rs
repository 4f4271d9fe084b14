//! The backward Euler adjoint of larger models, on one thread or two.
//!
//! Of a backward step's work, the Jacobian at u_{k+1} and the factors of
//! `I − hJ` depend only on the stored forward states, not on the adjoint,
//! so they can be made ahead. The states the backward sweep visits go in
//! blocks of steps; a helper thread evaluates each block's Jacobians and
//! factors the iteration matrix of every [`FACTOR_EVERY`]-th step (counted
//! from the last step) while the main thread makes the transposed solves
//! of the block before. A step between two factored ones refines on the
//! factors of the nearest later step it follows in the sweep, exactly as
//! [`crate::BeulerAdjoint`] refines (and refactors on the main thread when
//! refinement would be slow).
//!
//! Which steps are factored depends only on their index, so the arithmetic
//! is the same whether the helper's work runs on its own thread or inline
//! before each block: the gradient is bitwise the same on one thread and
//! on two, and for every checkpoint schedule.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use revode_forward::{IterationMatrix, LinearSolver, MatrixShape, SingularMatrix};
use revode_model::{JacobianEval, Model, SparsityPattern};
use serde::Serialize;

use crate::beuler_adjoint::{
    accepted, jacobian_residual, refactor_after, settles, too_slow, BackwardSolveStats, Residual,
    TransposedSolve,
};
use crate::GradientError;

/// Every this many steps of the backward sweep the iteration matrix is
/// factored afresh, starting with the last step (16 against 8: fewer
/// factorisations for a few more corrections, since solves by rows made
/// corrections cheaper; docs/stiff.md).
pub const FACTOR_EVERY: usize = 16;
/// Models with at least this many states, and a Jacobian of their own,
/// take the scheduled factorisations (and may use two threads); smaller
/// ones refactor when refinement is slow ([`crate::BeulerAdjoint`]).
pub const SCHEDULED_MIN_STATES: usize = 32;
/// The main thread refactors on its own only when refinement is predicted
/// to take this many times the corrections a factorisation costs: the
/// scheduled factors are at most [`FACTOR_EVERY`] − 1 steps away, and a
/// factorisation on the main thread holds up the sweep (on the cable,
/// factoring every 4th step, 3 took the main thread's own factorisations
/// from 651 to 0 and the gradient from 84 to 80 ms).
const MAIN_REFACTOR_SLACK: f64 = 3.0;
/// How long a thread waits for a block on its core before sleeping.
const SPIN: Duration = Duration::from_micros(50);
/// The main thread counts as having waited for the helper when a block
/// took longer than this to arrive (a block already there takes well
/// under a microsecond).
const HELPER_LATE: Duration = Duration::from_micros(5);
/// About the bytes of one block's Jacobians, states and parameters (16
/// steps on the 100-compartment cable; a third more, 32 steps, made no
/// difference, and with factors every 8th step 24-step blocks beat larger
/// and smaller ones there, docs/stiff.md).
const BLOCK_BYTES: usize = 3 << 17;
/// At most this many steps a block (one synchronisation each).
const BLOCK_STEPS_MAX: usize = 64;
/// At most this many parameter vectors a block: a step with another one
/// starts the next block. Parameters change only at stimulus switches, so
/// blocks are rarely cut, and a model with millions of parameters keeps a
/// few rows of them instead of one a step.
const BLOCK_PARAM_ROWS: usize = 4;

/// How many threads the backward sweep of a larger backward Euler model
/// uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackwardThreads {
    /// Two when the machine has two cores or more and the call is not
    /// already running on a rayon pool's thread (batch members side by
    /// side), else one.
    #[default]
    Auto,
    One,
    Two,
}

impl BackwardThreads {
    fn count(self) -> usize {
        match self {
            BackwardThreads::One => 1,
            BackwardThreads::Two => 2,
            BackwardThreads::Auto => {
                // Read once: on Linux the count comes from cgroup files.
                static CORES: OnceLock<usize> = OnceLock::new();
                let cores = *CORES
                    .get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
                if cores > 1 && rayon::current_thread_index().is_none() {
                    2
                } else {
                    1
                }
            }
        }
    }
}

/// Whether `model`'s backward Euler adjoint takes the scheduled
/// factorisations of this module.
pub(crate) fn takes_scheduled<M: Model>(model: &M, mode: TransposedSolve) -> bool {
    mode == TransposedSolve::Auto
        && model.n_events() == 0
        && model.dims().n_states >= SCHEDULED_MIN_STATES
        && model.jacobian_pattern().is_some()
}

/// Steps of the backward sweep in the order visited: their times, steps,
/// parameters and states, the Jacobians at their u_{k+1}, and the factors
/// at every [`FACTOR_EVERY`]-th of them (positions 0, 16, 32, …; a block
/// holds a multiple of [`FACTOR_EVERY`] steps, so its first step is one).
pub(crate) struct Block {
    n: usize,
    nnz: usize,
    n_params: usize,
    len: usize,
    steps: Vec<usize>,
    t: Vec<f64>,
    h: Vec<f64>,
    /// Which row of `params` each step's parameters are in: a new row only
    /// where the plan hands out another parameter vector (a switch).
    param_row: Vec<usize>,
    /// [`BLOCK_PARAM_ROWS`] rows at most (fewer when the block is shorter).
    params: Vec<f64>,
    param_rows: usize,
    param_rows_cap: usize,
    /// Address of the parameter vector of the last step pushed.
    last_params: usize,
    /// u_{k+1} of the first step, then u_k of each step: the state after
    /// step j is state j, the one before it state j + 1.
    states: Vec<f64>,
    jac: Vec<f64>,
    /// Positions from here on that are not factored get their Jacobians
    /// on the main thread ([`Pipeline`] moves the split to balance the
    /// threads), the others on the preparing thread.
    jac_from: usize,
    factors: Vec<IterationMatrix>,
    /// The first position whose factorisation failed (none after it is
    /// prepared).
    singular: Option<(usize, SingularMatrix)>,
}

impl Block {
    fn new(
        cap: usize,
        n: usize,
        n_params: usize,
        pattern: &SparsityPattern,
        linear: LinearSolver,
    ) -> Block {
        let nnz = pattern.nnz();
        let param_rows_cap = cap.min(BLOCK_PARAM_ROWS);
        Block {
            n,
            nnz,
            n_params,
            len: 0,
            steps: vec![0; cap],
            t: vec![0.0; cap],
            h: vec![0.0; cap],
            param_row: vec![0; cap],
            params: vec![0.0; param_rows_cap * n_params],
            param_rows: 0,
            param_rows_cap,
            last_params: 0,
            states: vec![0.0; (cap + 1) * n],
            jac: vec![0.0; cap * nnz],
            jac_from: cap,
            factors: (0..cap / FACTOR_EVERY)
                .map(|_| IterationMatrix::new(pattern, linear))
                .collect(),
            singular: None,
        }
    }

    fn cap(&self) -> usize {
        self.steps.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Step index at position j.
    pub(crate) fn step(&self, j: usize) -> usize {
        self.steps[j]
    }

    /// `(t_{k+1}, h_k)` of the step at position j.
    pub(crate) fn time_and_width(&self, j: usize) -> (f64, f64) {
        (self.t[j], self.h[j])
    }

    /// u_k of the step at position j.
    pub(crate) fn u(&self, j: usize) -> &[f64] {
        self.state(j + 1)
    }

    /// State i of the block (u_{k+1} of the step at position i).
    fn state(&self, i: usize) -> &[f64] {
        &self.states[i * self.n..(i + 1) * self.n]
    }

    fn params_of(&self, j: usize) -> &[f64] {
        let row = self.param_row[j];
        &self.params[row * self.n_params..(row + 1) * self.n_params]
    }

    /// Whether a step with parameters `p` fits: a block full of parameter
    /// rows takes only steps with the last one.
    fn takes(&self, p: &[f64]) -> bool {
        self.len == 0
            || p.as_ptr() as usize == self.last_params
            || self.param_rows < self.param_rows_cap
    }

    /// Appends step k (from u_k to u_{k+1} = `u_next`, width h, ending at
    /// t); `true` when the block is full. It must take `p` ([`Block::takes`]).
    fn push(&mut self, k: usize, t: f64, h: f64, p: &[f64], u_next: &[f64], u: &[f64]) -> bool {
        let (j, n) = (self.len, self.n);
        let address = p.as_ptr() as usize;
        if j == 0 || address != self.last_params {
            let row = self.param_rows;
            self.params[row * self.n_params..(row + 1) * self.n_params].copy_from_slice(p);
            self.param_rows += 1;
            self.last_params = address;
        }
        self.param_row[j] = self.param_rows - 1;
        self.steps[j] = k;
        self.t[j] = t;
        self.h[j] = h;
        if j == 0 {
            self.states[..n].copy_from_slice(u_next);
        }
        self.states[(j + 1) * n..(j + 2) * n].copy_from_slice(u);
        self.len += 1;
        self.len == self.cap()
    }

    /// Whether the main thread evaluates the Jacobian at position j: an
    /// unfactored step from `jac_from` on.
    fn jacobian_on_main(&self, j: usize) -> bool {
        j >= self.jac_from && !j.is_multiple_of(FACTOR_EVERY)
    }

    /// Evaluates the Jacobian of the step at position j (at its u_{k+1}).
    fn evaluate_jacobian<M: Model>(&mut self, jac: &mut JacobianEval<'_, M>, j: usize) {
        let (n, nnz, n_params) = (self.n, self.nnz, self.n_params);
        let row = self.param_row[j];
        let p = &self.params[row * n_params..(row + 1) * n_params];
        let values = &mut self.jac[j * nnz..(j + 1) * nnz];
        jac.eval(self.t[j], &self.states[j * n..(j + 1) * n], p, values);
    }

    fn clear(&mut self) {
        self.len = 0;
        self.param_rows = 0;
        self.jac_from = self.cap();
        self.singular = None;
    }
}

/// The helper's part: the Jacobians of a block's steps, and the scheduled
/// factors.
struct Preparer<'m, M: Model> {
    jac: JacobianEval<'m, M>,
    /// The first factors made: later blocks' matrices start as copies of
    /// them, so that they take its ordering and reserved room at once
    /// instead of trying the orderings again (~0.7 ms each on the cable).
    template: Option<IterationMatrix>,
}

impl<'m, M: Model> Preparer<'m, M> {
    fn new(model: &'m M) -> Self {
        Preparer {
            jac: JacobianEval::new(model),
            template: None,
        }
    }

    fn prepare(&mut self, block: &mut Block) {
        let nnz = block.nnz;
        for j in 0..block.len {
            if block.jacobian_on_main(j) {
                continue;
            }
            block.evaluate_jacobian(&mut self.jac, j);
            if !j.is_multiple_of(FACTOR_EVERY) {
                continue;
            }
            let values = &block.jac[j * nnz..(j + 1) * nnz];
            let matrix = &mut block.factors[j / FACTOR_EVERY];
            if let (true, Some(template)) = (matrix.gamma().is_nan(), &self.template) {
                *matrix = template.clone();
            }
            if let Err(e) = matrix.factor(block.h[j], values) {
                block.singular = Some((j, e));
                return;
            }
            // The main thread's solves are with Aᵀ.
            matrix.prepare_transposed_solves();
            if self.template.is_none() {
                self.template = Some(matrix.clone());
            }
        }
    }
}

/// Steps a block holds for a model of these sizes: a multiple of
/// [`FACTOR_EVERY`], about [`BLOCK_BYTES`] of data.
fn block_steps(n: usize, nnz: usize, n_params: usize) -> usize {
    // A step's Jacobian, its state, a row of parameters at most, and t,
    // h, k and the row's index.
    let per_step = (nnz + n + n_params + 4) * std::mem::size_of::<f64>();
    let fit = (BLOCK_BYTES / per_step).clamp(FACTOR_EVERY, BLOCK_STEPS_MAX);
    fit / FACTOR_EVERY * FACTOR_EVERY
}

/// About the bytes the scheduled sweep of a model with Jacobians of this
/// shape allocates, for the memory check before it starts: two blocks
/// (their Jacobians, states, parameter rows and factors), the main
/// thread's own matrix and the template factors.
pub(crate) fn pipeline_bytes(shape: MatrixShape, n_params: usize, linear: LinearSolver) -> usize {
    let f = std::mem::size_of::<f64>();
    let (n, nnz) = (shape.n, shape.jacobian_nnz);
    let cap = block_steps(n, nnz, n_params);
    let matrix = IterationMatrix::bytes_needed(shape, linear);
    let block = cap
        .saturating_mul(nnz.saturating_add(8))
        .saturating_add((cap + 1).saturating_mul(n))
        .saturating_add(cap.min(BLOCK_PARAM_ROWS).saturating_mul(n_params))
        .saturating_mul(f)
        .saturating_add((cap / FACTOR_EVERY).saturating_mul(matrix));
    let solver = matrix.saturating_add(n.saturating_mul(4 * f));
    block
        .saturating_mul(2)
        .saturating_add(solver)
        .saturating_add(matrix)
}

/// The main thread's part: transposed solves on the scheduled factors,
/// refined to rounding level, with factors of its own when refinement
/// would be slow.
pub(crate) struct ScheduledSolver {
    pattern: SparsityPattern,
    own: IterationMatrix,
    /// Whether `own` was factored after the block's last scheduled step
    /// (and is so the nearer).
    own_current: bool,
    refactor_after: f64,
    w: Vec<f64>,
    /// `|J|ᵀ|w|` of the first correction.
    a: Vec<f64>,
    r: Vec<f64>,
    out: Vec<f64>,
    steps: usize,
    refined_steps: usize,
    /// Refined steps accepted on the predicted backward error of their last
    /// correction ([`settles`]).
    predicted_steps: usize,
}

impl ScheduledSolver {
    fn new(pattern: &SparsityPattern, linear: LinearSolver) -> ScheduledSolver {
        let n = pattern.n();
        let own = IterationMatrix::new(pattern, linear);
        let refactor_after =
            MAIN_REFACTOR_SLACK * refactor_after(Residual::Jacobian, &own, pattern.nnz(), n);
        let v = || vec![0.0; n];
        ScheduledSolver {
            pattern: pattern.clone(),
            own,
            own_current: false,
            refactor_after,
            w: v(),
            a: v(),
            r: v(),
            out: v(),
            steps: 0,
            refined_steps: 0,
            predicted_steps: 0,
        }
    }

    /// In place: `lambda ← (I − hJ)⁻ᵀ lambda` for the step at position j
    /// of a prepared block, and `grad_p += h (∂f/∂p)ᵀ` of the result.
    pub(crate) fn step_back<M: Model>(
        &mut self,
        model: &M,
        block: &mut Block,
        j: usize,
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), SingularMatrix> {
        if let Some((at, e)) = block.singular {
            if at <= j {
                return Err(e);
            }
        }
        if self.own.gamma().is_nan() {
            // The first block's first factors (made in every sweep, so the
            // allocations do not depend on whether refinement is ever
            // slow) lend their ordering and reserved room to this thread's.
            self.own = block.factors[0].clone();
        }
        self.steps += 1;
        let nnz = block.nnz;
        let (t, h) = (block.t[j], block.h[j]);
        let slot = j / FACTOR_EVERY;
        self.w.copy_from_slice(lambda);
        if j.is_multiple_of(FACTOR_EVERY) {
            // Factors at this very step: one solve is exact.
            self.own_current = false;
            block.factors[slot].solve_transpose(&mut self.w);
        } else {
            let jac = &block.jac[j * nnz..(j + 1) * nnz];
            let scheduled = &mut block.factors[slot];
            self.refine(scheduled, jac, lambda, h)?;
        }
        let (u, p) = (block.state(j), block.params_of(j));
        model.vjp_params(t, u, p, &self.w, h, grad_p, &mut self.out, work);
        lambda.copy_from_slice(&self.w);
        Ok(())
    }

    /// `w ← M⁻ᵀλ` on the nearest factors M, then corrections with the
    /// exact residual until its backward error is at rounding level.
    fn refine(
        &mut self,
        scheduled: &mut IterationMatrix,
        jac: &[f64],
        lambda: &[f64],
        h: f64,
    ) -> Result<(), SingularMatrix> {
        nearest(&mut self.own, self.own_current, scheduled, h).solve_transpose(&mut self.w);
        let mut previous = f64::INFINITY;
        for m in 0.. {
            let berr = jacobian_residual(
                &self.pattern,
                jac,
                lambda,
                &self.w,
                h,
                m == 0,
                &mut self.a,
                &mut self.r,
            );
            if accepted(berr, previous) {
                self.refined_steps += 1;
                return Ok(());
            }
            let refactor = too_slow(self.refactor_after, m, berr, previous);
            if refactor {
                self.own_current = false;
                self.own.factor(h, jac)?;
                self.own_current = true;
            }
            // At the rate observed, this correction takes the backward error
            // well below acceptance: its own residual would only confirm it.
            let last = m > 0 && settles(berr, previous);
            nearest(&mut self.own, self.own_current, scheduled, h).solve_transpose(&mut self.r);
            for (wi, di) in self.w.iter_mut().zip(&self.r) {
                *wi += di;
            }
            if refactor {
                // Exact factors: this correction was a direct solve.
                return Ok(());
            }
            if last {
                self.refined_steps += 1;
                self.predicted_steps += 1;
                return Ok(());
            }
            previous = berr;
        }
        unreachable!("the loop returns")
    }
}

/// The factors a step of width h refines on: the main thread's own when
/// factored after the block's last scheduled step, else the scheduled
/// ones; but factors of width h before those of another (after a step cut
/// short at a switch, the scheduled factors fit the steps that follow it).
fn nearest<'s>(
    own: &'s mut IterationMatrix,
    own_current: bool,
    scheduled: &'s mut IterationMatrix,
    h: f64,
) -> &'s mut IterationMatrix {
    let own_fits = own.gamma() == h || scheduled.gamma() != h;
    if own_current && own_fits {
        own
    } else {
        scheduled
    }
}

/// Where blocks are prepared: inline, or on the helper thread.
enum Link<'m, M: Model> {
    Inline(Box<Preparer<'m, M>>),
    Helper {
        to: SyncSender<Block>,
        from: Receiver<Block>,
    },
}

/// The blocks in turn: filled by the sweep, prepared, then handed to the
/// main thread's solves in the order filled.
pub(crate) struct Pipeline<'m, M: Model> {
    free: Vec<Block>,
    filling: Option<Block>,
    in_flight: usize,
    link: Link<'m, M>,
    solver: ScheduledSolver,
    /// With a helper: the main thread's Jacobians (of the positions from
    /// `jac_split` on, when the helper is the slower), and where the next
    /// block is split.
    main_jac: Option<JacobianEval<'m, M>>,
    jac_split: usize,
    /// Jacobians the main thread evaluated.
    main_jacobians: usize,
}

impl<'m, M: Model> Pipeline<'m, M> {
    /// Sets up the blocks and the solver (inline: one block).
    fn new(model: &'m M, linear: LinearSolver, link: Link<'m, M>) -> Self {
        let dims = model.dims();
        let pattern = model
            .jacobian_pattern()
            .expect("scheduled factorisations need the model's Jacobian");
        let cap = block_steps(dims.n_states, pattern.nnz(), dims.n_params);
        let blocks = match link {
            Link::Inline(_) => 1,
            Link::Helper { .. } => 2,
        };
        log::debug!(
            "beuler backward: {blocks} block(s) of {cap} steps, {} factored each",
            cap / FACTOR_EVERY
        );
        let mut free = Vec::with_capacity(blocks);
        for _ in 0..blocks {
            free.push(Block::new(
                cap,
                dims.n_states,
                dims.n_params,
                &pattern,
                linear,
            ));
        }
        let main_jac = match link {
            Link::Inline(_) => None,
            Link::Helper { .. } => Some(JacobianEval::new(model)),
        };
        Pipeline {
            free,
            filling: None,
            in_flight: 0,
            link,
            solver: ScheduledSolver::new(&pattern, linear),
            main_jac,
            jac_split: cap,
            main_jacobians: 0,
        }
    }

    /// Appends step k; a full block is prepared (or sent to be), and
    /// `process` takes every prepared block in turn.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        k: usize,
        t: f64,
        h: f64,
        p: &[f64],
        u_next: &[f64],
        u: &[f64],
        process: &mut impl FnMut(&mut ScheduledSolver, &mut Block) -> Result<(), GradientError>,
    ) -> Result<(), GradientError> {
        if self.filling.is_none() {
            self.filling = self.free.pop();
        }
        if !self.filling.as_ref().expect("a free block").takes(p) {
            // Cut where the plan switches: the same steps on any thread
            // count and schedule, so the gradient's bits do not change.
            self.dispatch(process)?;
            self.filling = self.free.pop();
        }
        let block = self.filling.as_mut().expect("a free block");
        if block.push(k, t, h, p, u_next, u) {
            self.dispatch(process)?;
        }
        Ok(())
    }

    /// Prepares and processes what is left.
    pub(crate) fn finish(
        &mut self,
        process: &mut impl FnMut(&mut ScheduledSolver, &mut Block) -> Result<(), GradientError>,
    ) -> Result<(), GradientError> {
        if self.filling.as_ref().is_some_and(|b| b.len() > 0) {
            self.dispatch(process)?;
        }
        while self.in_flight > 0 {
            self.receive(process)?;
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        process: &mut impl FnMut(&mut ScheduledSolver, &mut Block) -> Result<(), GradientError>,
    ) -> Result<(), GradientError> {
        let mut block = self.filling.take().expect("a block being filled");
        match &mut self.link {
            Link::Inline(preparer) => {
                preparer.prepare(&mut block);
                self.solve(block, process)
            }
            Link::Helper { to, .. } => {
                block.jac_from = self.jac_split;
                to.send(block)
                    .expect("the helper thread runs until the sweep ends");
                self.in_flight += 1;
                if self.free.is_empty() {
                    self.receive(process)?;
                }
                Ok(())
            }
        }
    }

    fn receive(
        &mut self,
        process: &mut impl FnMut(&mut ScheduledSolver, &mut Block) -> Result<(), GradientError>,
    ) -> Result<(), GradientError> {
        let Link::Helper { from, .. } = &self.link else {
            unreachable!("inline blocks are processed when filled")
        };
        let started = Instant::now();
        let mut block = receive_spinning(from).expect("the helper thread returns every block");
        // Waiting for the helper: the main thread takes one more of the
        // next block's Jacobians; not waiting: one fewer. Who evaluates a
        // Jacobian does not change its value, so neither does the gradient.
        self.jac_split = if started.elapsed() > HELPER_LATE {
            self.jac_split.saturating_sub(1)
        } else {
            (self.jac_split + 1).min(block.cap())
        };
        self.in_flight -= 1;
        if let Some(jac) = self.main_jac.as_mut() {
            for j in block.jac_from..block.len {
                if block.jacobian_on_main(j) {
                    block.evaluate_jacobian(jac, j);
                    self.main_jacobians += 1;
                }
            }
        }
        self.solve(block, process)
    }

    /// Hands a prepared block to the main thread's solves; it is free again
    /// after.
    fn solve(
        &mut self,
        mut block: Block,
        process: &mut impl FnMut(&mut ScheduledSolver, &mut Block) -> Result<(), GradientError>,
    ) -> Result<(), GradientError> {
        let done = process(&mut self.solver, &mut block);
        block.clear();
        self.free.push(block);
        done
    }

    /// The counters of the sweep (all blocks back).
    fn stats(&self, threads: usize) -> BackwardSolveStats {
        let matrices = self
            .free
            .iter()
            .flat_map(|b| &b.factors)
            .chain(std::iter::once(&self.solver.own));
        let (factorizations, transposed_solves) =
            matrices.fold((0, 0), |(f, s), m| (f + m.factorizations(), s + m.solves()));
        BackwardSolveStats {
            jacobian_evaluations: self.solver.steps,
            factorizations,
            transposed_solves,
            vjps: self.solver.steps,
            refined_steps: self.solver.refined_steps,
            predicted_steps: self.solver.predicted_steps,
            jacobians_moved_to_main: self.main_jacobians,
            threads,
        }
    }
}

/// Runs `sweep` with a pipeline on `threads` threads (the helper's lives
/// as long as the sweep); returns the backward counters.
pub(crate) fn with_pipeline<'m, M: Model>(
    model: &'m M,
    linear: LinearSolver,
    threads: BackwardThreads,
    sweep: impl FnOnce(&mut Pipeline<'m, M>) -> Result<(), GradientError>,
) -> Result<BackwardSolveStats, GradientError> {
    if threads.count() == 1 {
        return inline(model, linear, sweep);
    }
    std::thread::scope(|scope| {
        let (to_helper, helper_in) = sync_channel::<Block>(2);
        let (helper_out, from_helper) = sync_channel::<Block>(2);
        let helper = std::thread::Builder::new()
            .name("revode-backward".into())
            .spawn_scoped(scope, move || {
                let mut preparer = Preparer::new(model);
                while let Some(mut block) = receive_spinning(&helper_in) {
                    preparer.prepare(&mut block);
                    if helper_out.send(block).is_err() {
                        break;
                    }
                }
            });
        if helper.is_err() {
            // No thread to be had: the same arithmetic on this one.
            return inline(model, linear, sweep);
        }
        let link = Link::Helper {
            to: to_helper,
            from: from_helper,
        };
        let mut pipeline = Pipeline::new(model, linear, link);
        sweep(&mut pipeline)?;
        Ok(pipeline.stats(2))
    })
}

/// [`with_pipeline`] on this thread alone.
fn inline<'m, M: Model>(
    model: &'m M,
    linear: LinearSolver,
    sweep: impl FnOnce(&mut Pipeline<'m, M>) -> Result<(), GradientError>,
) -> Result<BackwardSolveStats, GradientError> {
    let mut pipeline = Pipeline::new(model, linear, Link::Inline(Box::new(Preparer::new(model))));
    sweep(&mut pipeline)?;
    Ok(pipeline.stats(1))
}

/// The next block, waiting a little on this core before sleeping (a
/// sleeping thread takes tens of microseconds to wake, a block's work
/// about a hundred); `None` once the other side has hung up.
fn receive_spinning(from: &Receiver<Block>) -> Option<Block> {
    let started = Instant::now();
    loop {
        for _ in 0..64 {
            match from.try_recv() {
                Ok(block) => return Some(block),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if started.elapsed() > SPIN {
            return from.recv().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revode_model::Dims;

    /// `u' = a u` on `N` uncoupled states: `I − hJ = (1 − h a) I`, singular
    /// at h = 1/a.
    struct Diagonal;

    const N: usize = SCHEDULED_MIN_STATES;

    impl Model for Diagonal {
        type Work = ();
        fn name(&self) -> &str {
            "diagonal"
        }
        fn dims(&self) -> Dims {
            Dims {
                n_states: N,
                n_params: 1,
            }
        }
        fn state_names(&self) -> Vec<String> {
            (0..N).map(|i| format!("u{i}")).collect()
        }
        fn param_names(&self) -> Vec<String> {
            vec!["a".into()]
        }
        fn default_u0(&self) -> Vec<f64> {
            vec![1.0; N]
        }
        fn default_params(&self) -> Vec<f64> {
            vec![2.0]
        }
        fn new_work(&self) {}
        fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
            for (d, x) in du.iter_mut().zip(u) {
                *d = p[0] * x;
            }
        }
        fn vjp(
            &self,
            _t: f64,
            u: &[f64],
            p: &[f64],
            l: &[f64],
            out: &mut [f64],
            alpha: f64,
            acc: &mut [f64],
            _w: &mut (),
        ) {
            for i in 0..N {
                out[i] = p[0] * l[i];
                acc[0] += alpha * u[i] * l[i];
            }
        }
        fn jacobian_pattern(&self) -> Option<SparsityPattern> {
            Some(SparsityPattern::from_entries(N, (0..N).map(|i| (i, i))))
        }
        fn jacobian(&self, _t: f64, _u: &[f64], p: &[f64], values: &mut [f64], _w: &mut ()) {
            values.fill(p[0]);
        }
    }

    /// A block of `len` steps of width `h(j)`, prepared.
    fn prepared_block(len: usize, h: impl Fn(usize) -> f64) -> Block {
        let model = Diagonal;
        let pattern = model.jacobian_pattern().unwrap();
        let mut block = Block::new(len, N, 1, &pattern, LinearSolver::Sparse);
        let (p, u) = ([2.0], [1.0; N]);
        for j in 0..len {
            let k = len - 1 - j;
            let full = block.push(k, (k + 1) as f64, h(j), &p, &u, &u);
            assert_eq!(full, j + 1 == len);
        }
        Preparer::new(&model).prepare(&mut block);
        block
    }

    #[test]
    fn steps_solve_exactly_on_scheduled_and_refined_factors() {
        // Widths vary (5 % a step: refining 15 steps from the factors, not
        // refactoring), so most steps refine on factors of another width.
        let h = |j: usize| 0.01 * (1.0 + 0.05 * j as f64);
        let len = 2 * FACTOR_EVERY;
        let mut block = prepared_block(len, h);
        let mut solver =
            ScheduledSolver::new(&Diagonal.jacobian_pattern().unwrap(), LinearSolver::Sparse);
        let (mut lambda, mut grad) = (vec![1.0; N], vec![0.0]);
        let mut expected = 1.0;
        let mut expected_grad = 0.0;
        for j in 0..len {
            solver
                .step_back(&Diagonal, &mut block, j, &mut lambda, &mut grad, &mut ())
                .unwrap();
            // λ ← λ / (1 − 2h); ∂L/∂a += h Σ u λ.
            expected /= 1.0 - 2.0 * h(j);
            expected_grad += h(j) * N as f64 * expected;
            // Each step's solve is backward stable to a few ε.
            let tol = 16.0 * f64::EPSILON * (j + 1) as f64;
            for &l in &lambda {
                assert!(
                    (l - expected).abs() <= tol * expected,
                    "{j}: {l} vs {expected}"
                );
            }
        }
        assert!((grad[0] - expected_grad).abs() <= 1e-13 * expected_grad);
        assert_eq!(solver.refined_steps, len - 2, "two steps are factored");
        // Some steps end on a predicted correction (their accuracy is
        // checked above like the others').
        assert!(solver.predicted_steps > 0);
    }

    #[test]
    fn a_singular_scheduled_factorisation_fails_its_step_only() {
        // I − hJ = 0 at the second scheduled step.
        let singular = FACTOR_EVERY;
        let mut block =
            prepared_block(2 * FACTOR_EVERY, |j| if j == singular { 0.5 } else { 0.01 });
        assert!(matches!(block.singular, Some((j, _)) if j == singular));
        let mut solver =
            ScheduledSolver::new(&Diagonal.jacobian_pattern().unwrap(), LinearSolver::Sparse);
        let (mut lambda, mut grad) = (vec![1.0; N], vec![0.0]);
        for j in 0..singular {
            solver
                .step_back(&Diagonal, &mut block, j, &mut lambda, &mut grad, &mut ())
                .unwrap();
        }
        let e = solver
            .step_back(
                &Diagonal,
                &mut block,
                singular,
                &mut lambda,
                &mut grad,
                &mut (),
            )
            .unwrap_err();
        assert!(e.index < N);
    }

    /// A block keeps a few parameter rows, whatever its length: a step
    /// with one parameter vector more than it holds goes to the next block,
    /// steps with a vector it holds always fit.
    #[test]
    fn blocks_keep_a_few_parameter_rows_and_stop_at_one_more() {
        let pattern = Diagonal.jacobian_pattern().unwrap();
        let mut block = Block::new(4 * FACTOR_EVERY, N, 1, &pattern, LinearSolver::Sparse);
        assert_eq!(block.params.len(), BLOCK_PARAM_ROWS);
        let vectors: Vec<[f64; 1]> = (0..=BLOCK_PARAM_ROWS).map(|i| [i as f64]).collect();
        let u = [1.0; N];
        for (i, p) in vectors[..BLOCK_PARAM_ROWS].iter().enumerate() {
            for _ in 0..2 {
                assert!(block.takes(p), "vector {i}");
                block.push(0, 1.0, 0.01, p, &u, &u);
            }
        }
        assert!(!block.takes(&vectors[BLOCK_PARAM_ROWS]));
        assert!(block.takes(&vectors[BLOCK_PARAM_ROWS - 1]));
        for j in 0..block.len() {
            assert_eq!(block.params_of(j), &vectors[j / 2][..], "step {j}");
        }
        block.clear();
        assert!(block.takes(&vectors[BLOCK_PARAM_ROWS]));
    }

    /// The bytes worked out ahead for the sweep cover its two blocks as
    /// prepared (factors included) and the main thread's two matrices.
    #[test]
    fn pipeline_bytes_cover_the_prepared_blocks() {
        let pattern = Diagonal.jacobian_pattern().unwrap();
        let cap = block_steps(N, pattern.nnz(), 1);
        let block = prepared_block(cap, |_| 0.01);
        let f = std::mem::size_of::<f64>();
        let vectors = (block.t.len() + block.h.len() + block.params.len() + block.states.len()) * f
            + (block.steps.len() + block.param_row.len()) * std::mem::size_of::<usize>()
            + block.jac.len() * f;
        let factors: usize = block
            .factors
            .iter()
            .map(IterationMatrix::buffer_bytes)
            .sum();
        let matrix = block.factors[0].buffer_bytes();
        let held = 2 * (vectors + factors) + 2 * matrix;
        let needed = pipeline_bytes(MatrixShape::of(&pattern), 1, LinearSolver::Sparse);
        assert!(needed >= held, "{needed} < {held}");
        assert!(needed < 2 * held, "{needed} against {held}");
    }

    #[test]
    fn blocks_hold_whole_schedules_within_their_bytes() {
        for (n, nnz, n_params) in [
            (32, 32, 1),
            (400, 1_600, 300),
            (4_000, 16_000, 3_000),
            (10, 100_000, 10),
        ] {
            let steps = block_steps(n, nnz, n_params);
            assert!((FACTOR_EVERY..=BLOCK_STEPS_MAX).contains(&steps));
            assert_eq!(steps % FACTOR_EVERY, 0);
            let bytes = steps * (nnz + n + n_params + 4) * 8;
            assert!(
                steps == FACTOR_EVERY || bytes <= BLOCK_BYTES,
                "{n} {nnz}: {bytes}"
            );
        }
    }
}
