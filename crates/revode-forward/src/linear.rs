//! The iteration matrix `A = I − γJ` of implicit steppers, factored by faer.
//!
//! Dense LU with partial pivoting for small or dense Jacobians; sparse LU
//! (AMD column ordering, partial pivoting of A or Aᵀ, faer's simplicial
//! left-looking factorisation: crate::sparse_lu) for large sparse ones,
//! with the ordering done once in [`IterationMatrix::new`]. Every buffer (the
//! matrix, the factors' scratch, faer's work stack) is made there, so
//! refactoring and solving allocate nothing, except that the sparse factors
//! may grow the first time a pivot sequence produces more fill than any
//! before (they never shrink). Which to use: [`LinearSolver`].
//!
//! The factorisations are always faer's. The solves are plain forward and
//! back substitution over faer's factors for small dense systems (n ≤
//! [`SMALL_DENSE_MAX`]) and for sparse ones: faer's generic solves permute
//! through its work stack and dispatch per call, which for n = 4 costs
//! several times the arithmetic, and for a 400-state cable (1 200 entries)
//! made a solve ~35 000 instructions where the substitution takes ~7 000
//! (callgrind, docs/stiff.md). Implicit steppers solve once per Newton
//! iteration and several times per adjoint step.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::lu::partial_pivoting::{factor as dense_factor, solve as dense_solve};
use faer::{Conj, MatMut, MatRef, Par};
use revode_model::SparsityPattern;

use crate::sparse_lu::SparseLu;
use serde::{Deserialize, Serialize};

/// Which factorisation an implicit stepper uses (problem files:
/// `"linear_solver": "auto" | "dense" | "sparse"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearSolver {
    /// Sparse when the matrix has at least [`SPARSE_MIN_STATES`] rows and at
    /// most [`SPARSE_MAX_DENSITY`] of its entries are present; dense otherwise.
    #[default]
    Auto,
    Dense,
    Sparse,
}

/// Smallest size [`LinearSolver::Auto`] factors sparsely.
pub const SPARSE_MIN_STATES: usize = 48;
/// Largest fraction of entries [`LinearSolver::Auto`] factors sparsely.
pub const SPARSE_MAX_DENSITY: f64 = 0.2;
/// Largest dense size solved by revode's own substitution over faer's
/// factors (larger ones use faer's blocked triangular solves).
pub const SMALL_DENSE_MAX: usize = 16;

impl LinearSolver {
    /// The factorisation this choice gives for `pattern` (the pattern of
    /// `I − γJ`): [`LinearSolver::Dense`] or [`LinearSolver::Sparse`].
    pub fn resolve(self, pattern: &SparsityPattern) -> LinearSolver {
        MatrixShape::of(pattern).resolve(self)
    }

    pub fn name(self) -> &'static str {
        match self {
            LinearSolver::Auto => "auto",
            LinearSolver::Dense => "dense",
            LinearSolver::Sparse => "sparse",
        }
    }
}

/// The size of an iteration matrix `I − γJ`: what its memory and the
/// [`LinearSolver::Auto`] choice depend on, known without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixShape {
    pub n: usize,
    /// Entries of J's pattern.
    pub jacobian_nnz: usize,
    /// Entries of `I − γJ`'s pattern: J's and the whole diagonal.
    pub nnz: usize,
}

impl MatrixShape {
    /// The shape for Jacobians of pattern `jacobian`.
    pub fn of(jacobian: &SparsityPattern) -> MatrixShape {
        let n = jacobian.n();
        let missing_diagonal = (0..n)
            .filter(|&d| jacobian.position(d, d).is_none())
            .count();
        MatrixShape {
            n,
            jacobian_nnz: jacobian.nnz(),
            nnz: jacobian.nnz() + missing_diagonal,
        }
    }

    /// A full n × n Jacobian (one assembled from VJPs), without making
    /// its n² pattern.
    pub fn dense(n: usize) -> MatrixShape {
        let nnz = n.saturating_mul(n);
        MatrixShape {
            n,
            jacobian_nnz: nnz,
            nnz,
        }
    }

    /// The shape of the Jacobians `JacobianEval` gives for `model`: the
    /// model's pattern, or a full one when it has none.
    pub fn of_model<M: revode_model::Model>(model: &M) -> MatrixShape {
        match model.jacobian_pattern() {
            Some(p) => MatrixShape::of(&p),
            None => MatrixShape::dense(model.dims().n_states),
        }
    }

    /// [`LinearSolver::Dense`] or [`LinearSolver::Sparse`], as
    /// [`LinearSolver::resolve`] picks for this shape.
    pub fn resolve(self, choice: LinearSolver) -> LinearSolver {
        let density = self.nnz as f64 / (self.n as f64 * self.n as f64);
        match choice {
            LinearSolver::Auto if self.n >= SPARSE_MIN_STATES && density <= SPARSE_MAX_DENSITY => {
                LinearSolver::Sparse
            }
            LinearSolver::Auto => LinearSolver::Dense,
            other => other,
        }
    }
}

/// `I − γJ` could not be factored: a zero (or non-finite) pivot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingularMatrix {
    /// The elimination step that found no usable pivot (for sparse LU, the
    /// first component of a probe solve that came out non-finite).
    pub index: usize,
}

#[derive(Clone)]
enum Factors {
    Dense {
        /// A, then its LU factors in place: column-major n × n (entry
        /// (i, j) at `j·n + i`), unit L below the diagonal, U on and above.
        lu: Vec<f64>,
        /// Row permutation: row i of P·A is row `perm[i]` of A.
        perm: Vec<usize>,
        perm_inv: Vec<usize>,
        /// 1/U's diagonal: the small solves multiply (a division on the
        /// substitution's critical path costs several multiplies).
        diag_inv: Vec<f64>,
        /// `(row, col)` of each Jacobian entry.
        jac_rc: Vec<(usize, usize)>,
        /// A⁻¹ (column-major) for n ≤ [`INVERSE_MAX`], made from the
        /// factors at each factorisation; empty for larger n.
        inverse: Vec<f64>,
        /// Whether solves with A multiply by `inverse`: only when A is well
        /// conditioned (see [`INVERSE_MAX_CONDITION`]). Decided at the first
        /// solve with A after a factorisation: adjoints that factor at every
        /// step and solve only with Aᵀ never make it.
        inverse_state: InverseState,
    },
    Sparse {
        /// A's values in its pattern's order.
        values: Vec<f64>,
        lu: Box<SparseLu>,
    },
}

/// `A = I − γJ` for a fixed Jacobian pattern, its LU factors, and solves
/// with `A` and `Aᵀ`.
pub struct IterationMatrix {
    /// The pattern of A (the Jacobian's with the whole diagonal).
    pattern: SparsityPattern,
    /// For each Jacobian entry, its entry number in `pattern`.
    jac_to_a: Vec<usize>,
    /// Entry number of each diagonal entry in `pattern`.
    diag: Vec<usize>,
    factors: Factors,
    kind: LinearSolver,
    stack: MemBuffer,
    stack_req: StackReq,
    /// γ of the current factors (NaN before the first).
    gamma: f64,
    factorizations: usize,
    solves: usize,
}

impl std::fmt::Debug for IterationMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IterationMatrix")
            .field("n", &self.pattern.n())
            .field("nnz", &self.pattern.nnz())
            .field("kind", &self.kind)
            .field("gamma", &self.gamma)
            .finish()
    }
}

/// A copy with the same factors and, for sparse ones, the same ordering
/// and reserved room: copies of one factored matrix factor later matrices
/// alike, without trying the orderings again, and allocate nothing then.
impl Clone for IterationMatrix {
    fn clone(&self) -> Self {
        IterationMatrix {
            pattern: self.pattern.clone(),
            jac_to_a: self.jac_to_a.clone(),
            diag: self.diag.clone(),
            factors: self.factors.clone(),
            kind: self.kind,
            stack: MemBuffer::new(self.stack_req),
            stack_req: self.stack_req,
            gamma: self.gamma,
            factorizations: 0,
            solves: 0,
        }
    }
}

impl IterationMatrix {
    /// Sets up `I − γJ` for Jacobians with `jacobian` pattern: chooses the
    /// factorisation, does the sparse symbolic analysis, and allocates
    /// every buffer.
    pub fn new(jacobian: &SparsityPattern, choice: LinearSolver) -> Self {
        let (pattern, jac_to_a, diag) = jacobian.with_diagonal();
        let n = pattern.n();
        let kind = choice.resolve(&pattern);
        let (factors, req) = match kind {
            LinearSolver::Sparse => (
                Factors::Sparse {
                    values: vec![0.0; pattern.nnz()],
                    lu: Box::new(SparseLu::new(&pattern)),
                },
                StackReq::EMPTY,
            ),
            _ => {
                let req = dense_stack_req(n);
                (
                    Factors::Dense {
                        lu: vec![0.0; n * n],
                        perm: vec![0; n],
                        perm_inv: vec![0; n],
                        diag_inv: vec![0.0; n],
                        jac_rc: jacobian.entries().collect(),
                        inverse: vec![0.0; if n <= INVERSE_MAX { n * n } else { 0 }],
                        inverse_state: InverseState::Skip,
                    },
                    req,
                )
            }
        };
        let kind = match factors {
            Factors::Dense { .. } => LinearSolver::Dense,
            Factors::Sparse { .. } => LinearSolver::Sparse,
        };
        IterationMatrix {
            pattern,
            jac_to_a,
            diag,
            factors,
            kind,
            stack: MemBuffer::new(req),
            stack_req: req,
            gamma: f64::NAN,
            factorizations: 0,
            solves: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.pattern.n()
    }

    /// [`LinearSolver::Dense`] or [`LinearSolver::Sparse`].
    pub fn kind(&self) -> LinearSolver {
        self.kind
    }

    /// γ of the current factors (NaN before the first factorisation).
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    pub fn factorizations(&self) -> usize {
        self.factorizations
    }

    pub fn solves(&self) -> usize {
        self.solves
    }

    /// Factors `I − γJ`, `jac` holding J's values in its pattern's order.
    pub fn factor(&mut self, gamma: f64, jac: &[f64]) -> Result<(), SingularMatrix> {
        debug_assert_eq!(jac.len(), self.jac_to_a.len());
        self.factorizations += 1;
        self.gamma = gamma;
        let stack = MemStack::new(&mut self.stack);
        match &mut self.factors {
            Factors::Dense {
                lu,
                perm,
                perm_inv,
                diag_inv,
                jac_rc,
                inverse,
                inverse_state,
            } => {
                let n = self.pattern.n();
                lu.fill(0.0);
                for j in 0..n {
                    lu[j * n + j] = 1.0;
                }
                for (&(r, c), &v) in jac_rc.iter().zip(jac) {
                    lu[c * n + r] -= gamma * v;
                }
                dense_factor::lu_in_place(
                    MatMut::from_column_major_slice_mut(lu, n, n),
                    perm,
                    perm_inv,
                    Par::Seq,
                    stack,
                    Default::default(),
                );
                for i in 0..n {
                    let d = lu[i * n + i];
                    if d == 0.0 || !d.is_finite() {
                        self.gamma = f64::NAN;
                        return Err(SingularMatrix { index: i });
                    }
                    diag_inv[i] = 1.0 / d;
                }
                *inverse_state = if inverse.is_empty() {
                    InverseState::Skip
                } else {
                    InverseState::Undecided
                };
                Ok(())
            }
            Factors::Sparse { values, lu } => {
                values.fill(0.0);
                for &d in &self.diag {
                    values[d] = 1.0;
                }
                for (&a, &v) in self.jac_to_a.iter().zip(jac) {
                    values[a] -= gamma * v;
                }
                lu.factor(&self.pattern, values).inspect_err(|_| {
                    self.gamma = f64::NAN;
                })
            }
        }
    }

    /// `b ← A⁻¹ b` with the current factors.
    pub fn solve(&mut self, b: &mut [f64]) {
        self.solve_with(b, false);
    }

    /// `b ← A⁻ᵀ b` with the current factors (adjoint solves).
    pub fn solve_transpose(&mut self, b: &mut [f64]) {
        self.solve_with(b, true);
    }

    /// Readies the factors for solves with `Aᵀ` now rather than at the
    /// first one: sparse factors whose `Aᵀ` solves run by rows copy them
    /// (a thread that factors ahead of another's solves). A no-op for
    /// dense factors and before a successful factorisation.
    pub fn prepare_transposed_solves(&mut self) {
        if let (Factors::Sparse { lu, .. }, false) = (&mut self.factors, self.gamma.is_nan()) {
            lu.prepare_transposed_solves();
        }
    }

    fn solve_with(&mut self, b: &mut [f64], transpose: bool) {
        debug_assert!(!self.gamma.is_nan(), "solve before a successful factor");
        self.solves += 1;
        let stack = MemStack::new(&mut self.stack);
        match &mut self.factors {
            Factors::Dense {
                lu,
                perm,
                perm_inv,
                diag_inv,
                inverse,
                inverse_state,
                ..
            } => {
                let n = self.pattern.n();
                if !transpose && *inverse_state != InverseState::Skip {
                    if *inverse_state == InverseState::Undecided {
                        *inverse_state = invert(lu, diag_inv, perm, inverse);
                    }
                    if *inverse_state == InverseState::Use {
                        multiply(inverse, b);
                        return;
                    }
                }
                if n <= SMALL_DENSE_MAX {
                    if transpose {
                        small_solve_transpose(lu, diag_inv, perm_inv, b);
                    } else {
                        small_solve(lu, diag_inv, perm, b);
                    }
                    return;
                }
                let lu = MatRef::from_column_major_slice(lu, n, n);
                // Both are stored in `perm`/`perm_inv` by the factorisation.
                let p = faer::perm::PermRef::new_checked(perm, perm_inv, n);
                if transpose {
                    dense_solve::solve_transpose_in_place_with_conj(
                        lu,
                        lu,
                        p,
                        Conj::No,
                        column(b),
                        Par::Seq,
                        stack,
                    );
                } else {
                    dense_solve::solve_in_place_with_conj(
                        lu,
                        lu,
                        p,
                        Conj::No,
                        column(b),
                        Par::Seq,
                        stack,
                    );
                }
            }
            Factors::Sparse { lu, .. } => lu.solve(b, transpose),
        }
    }

    /// The current dense factors when n ≤ [`SMALL_DENSE_MAX`], for callers
    /// that run many solves inside loops compiled for one size (None for
    /// sparse or larger matrices, and before a successful factorisation).
    /// Solves through it are not counted in [`IterationMatrix::solves`].
    pub fn small_dense(&self) -> Option<SmallDenseLu<'_>> {
        match &self.factors {
            Factors::Dense {
                lu,
                perm,
                perm_inv,
                diag_inv,
                ..
            } if self.pattern.n() <= SMALL_DENSE_MAX && !self.gamma.is_nan() => {
                Some(SmallDenseLu {
                    lu,
                    diag_inv,
                    perm,
                    perm_inv,
                })
            }
            _ => None,
        }
    }

    /// About the bytes an iteration matrix for Jacobians of this shape
    /// holds once set up, worked out without making one, so that a run can
    /// check them against the memory available first. Dense: the n²
    /// matrix, its permutations, the Jacobian's positions and faer's
    /// scratch (all [`IterationMatrix::buffer_bytes`] counts, and more).
    /// Sparse: every pattern-sized buffer, and factors of at least A's own
    /// entries (their fill is known only once ordered, and the room
    /// reserved for it is capped, see `sparse_lu`).
    pub fn bytes_needed(shape: MatrixShape, choice: LinearSolver) -> usize {
        let (f, i) = (std::mem::size_of::<f64>(), std::mem::size_of::<usize>());
        let MatrixShape {
            n,
            jacobian_nnz,
            nnz,
        } = shape;
        // A's pattern, the Jacobian's positions in it and the diagonal's.
        let pattern = nnz
            .saturating_add(jacobian_nnz)
            .saturating_add(2 * n + 1)
            .saturating_mul(i);
        let held = match shape.resolve(choice) {
            LinearSolver::Sparse => nnz
                .saturating_mul(f)
                .saturating_add(SparseLu::bytes_needed(n, nnz)),
            _ => n
                .saturating_mul(n)
                .saturating_mul(f)
                .saturating_add(n.saturating_mul(3 * i + f))
                .saturating_add(jacobian_nnz.saturating_mul(2 * i))
                .saturating_add(dense_stack_req(n).unaligned_bytes_required())
                .saturating_add(if n <= INVERSE_MAX { n * n * f } else { 0 }),
        };
        pattern.saturating_add(held)
    }

    /// Bytes held: the matrix or factors, and faer's scratch.
    pub fn buffer_bytes(&self) -> usize {
        let f = std::mem::size_of::<f64>();
        let n = self.pattern.n();
        let factors = match &self.factors {
            Factors::Dense { inverse, .. } => {
                (n * n + inverse.len()) * f + 2 * n * std::mem::size_of::<usize>()
            }
            // The factors' own size depends on the fill; count the input.
            Factors::Sparse { values, lu } => values.len() * f + lu.buffer_bytes(),
        };
        factors + self.stack.len()
    }
}

/// faer's scratch for factoring and solving dense n × n matrices.
fn dense_stack_req(n: usize) -> StackReq {
    StackReq::any_of(&[
        dense_factor::lu_in_place_scratch::<usize, f64>(n, n, Par::Seq, Default::default()),
        dense_solve::solve_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
        dense_solve::solve_transpose_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
    ])
}

/// Largest dense size whose solves with A may multiply by A⁻¹.
pub const INVERSE_MAX: usize = 8;
/// Solves with A multiply by A⁻¹ only when `‖A‖₁‖A⁻¹‖₁` is at most this.
/// A product with a computed inverse is not backward stable: its error
/// grows with the condition number, where substitution's does not (on
/// Robertson's BDF matrices, γ·3·10⁷ entries, an inverse made the
/// gradient's error 5× larger). At this bound both are within ~10⁻¹² of
/// the exact correction, far below any Newton tolerance, and the seed's
/// `I − hJ` (h = 0.01) is conditioned near 1. The choice depends on the
/// factors alone, so replays make the same one.
pub const INVERSE_MAX_CONDITION: f64 = 1e4;

/// Whether solves with a small dense A multiply by its inverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InverseState {
    /// Not for this size (or before the first factorisation).
    Skip,
    /// Factored, not yet solved with.
    Undecided,
    Use,
    /// Too ill-conditioned: substitution.
    Substitute,
}

/// The 1-norm (largest column sum of magnitudes) of the column-major
/// n × n matrix `a`, counting only rows `rows(j)` of column j.
fn norm_1(a: &[f64], n: usize, rows: impl Fn(usize) -> std::ops::Range<usize>) -> f64 {
    a.chunks_exact(n)
        .enumerate()
        .map(|(j, col)| col[rows(j)].iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// `inverse ← A⁻¹`, column by column from the factors `P·A = L·U`; used
/// when it is finite and `‖L‖₁‖U‖₁‖A⁻¹‖₁` (at least A's condition number,
/// as ‖A‖₁ = ‖L·U‖₁) is at most [`INVERSE_MAX_CONDITION`].
fn invert(lu: &[f64], diag_inv: &[f64], perm: &[usize], inverse: &mut [f64]) -> InverseState {
    let n = diag_inv.len();
    for (j, col) in inverse.chunks_exact_mut(n).enumerate() {
        col.fill(0.0);
        col[j] = 1.0;
        small_solve(lu, diag_inv, perm, col);
    }
    // L's unit diagonal is not stored.
    let norm_l = 1.0 + norm_1(lu, n, |j| j + 1..n);
    let norm_u = norm_1(lu, n, |j| 0..j + 1);
    let condition = norm_l * norm_u * norm_1(inverse, n, |_| 0..n);
    if condition.is_finite() && condition <= INVERSE_MAX_CONDITION {
        InverseState::Use
    } else {
        InverseState::Substitute
    }
}

/// `b ← A⁻¹ b` by the stored inverse: rows are independent dot products,
/// where substitution chains each unknown to the ones before.
#[inline]
fn multiply(inverse: &[f64], b: &mut [f64]) {
    match b.len() {
        1 => b[0] *= inverse[0],
        2 => multiply_n::<2>(inverse, b),
        3 => multiply_n::<3>(inverse, b),
        4 => multiply_n::<4>(inverse, b),
        5 => multiply_n::<5>(inverse, b),
        6 => multiply_n::<6>(inverse, b),
        7 => multiply_n::<7>(inverse, b),
        _ => multiply_n::<INVERSE_MAX>(inverse, b),
    }
}

/// [`multiply`] for n = N: `x = Σ_j b_j · column j`, unrolled.
#[inline(always)]
fn multiply_n<const N: usize>(inverse: &[f64], b: &mut [f64]) {
    let (inverse, b) = (&inverse[..N * N], &mut b[..N]);
    let mut x = [0.0; N];
    for (j, col) in inverse.chunks_exact(N).enumerate() {
        let bj = b[j];
        for i in 0..N {
            x[i] += col[i] * bj;
        }
    }
    b.copy_from_slice(&x);
}

/// Borrowed small dense factors `P·A = L·U` ([`IterationMatrix::small_dense`]).
#[derive(Debug, Clone, Copy)]
pub struct SmallDenseLu<'a> {
    lu: &'a [f64],
    diag_inv: &'a [f64],
    perm: &'a [usize],
    perm_inv: &'a [usize],
}

impl SmallDenseLu<'_> {
    /// `b ← A⁻¹ b` for n = N (compiled for N: unrolled, no bounds checks).
    #[inline(always)]
    pub fn solve<const N: usize>(&self, b: &mut [f64; N]) {
        solve_n::<N>(self.lu, self.diag_inv, self.perm, b);
    }

    /// `b ← A⁻ᵀ b` for n = N.
    #[inline(always)]
    pub fn solve_transpose<const N: usize>(&self, b: &mut [f64; N]) {
        solve_transpose_n::<N>(self.lu, self.diag_inv, self.perm_inv, b);
    }
}

/// `b ← A⁻¹ b` for `P·A = L·U` (column-major `lu`): `y = P b`, then
/// `L z = y` forward and `U x = z` backward. Sizes up to 8 run a copy
/// compiled for their size (fully unrolled, no bounds checks).
#[inline]
fn small_solve(lu: &[f64], d: &[f64], perm: &[usize], b: &mut [f64]) {
    match b.len() {
        1 => b[0] *= d[0],
        2 => solve_n::<2>(lu, d, perm, b),
        3 => solve_n::<3>(lu, d, perm, b),
        4 => solve_n::<4>(lu, d, perm, b),
        5 => solve_n::<5>(lu, d, perm, b),
        6 => solve_n::<6>(lu, d, perm, b),
        7 => solve_n::<7>(lu, d, perm, b),
        8 => solve_n::<8>(lu, d, perm, b),
        _ => solve_dyn(lu, d, perm, b),
    }
}

/// `b ← A⁻ᵀ b` for `P·A = L·U`: `Uᵀ z = b` forward, `Lᵀ y = z` backward,
/// then `x = Pᵀ y`.
#[inline]
fn small_solve_transpose(lu: &[f64], d: &[f64], perm_inv: &[usize], b: &mut [f64]) {
    match b.len() {
        1 => b[0] *= d[0],
        2 => solve_transpose_n::<2>(lu, d, perm_inv, b),
        3 => solve_transpose_n::<3>(lu, d, perm_inv, b),
        4 => solve_transpose_n::<4>(lu, d, perm_inv, b),
        5 => solve_transpose_n::<5>(lu, d, perm_inv, b),
        6 => solve_transpose_n::<6>(lu, d, perm_inv, b),
        7 => solve_transpose_n::<7>(lu, d, perm_inv, b),
        8 => solve_transpose_n::<8>(lu, d, perm_inv, b),
        _ => solve_transpose_dyn(lu, d, perm_inv, b),
    }
}

/// [`small_solve`] for n = N (compiled per size: unrolled, no bounds checks).
#[inline(always)]
fn solve_n<const N: usize>(lu: &[f64], d: &[f64], perm: &[usize], b: &mut [f64]) {
    solve_within::<N>(N, lu, d, perm, b);
}

/// [`small_solve_transpose`] for n = N (compiled per size: unrolled, no
/// bounds checks).
#[inline(always)]
fn solve_transpose_n<const N: usize>(lu: &[f64], d: &[f64], perm_inv: &[usize], b: &mut [f64]) {
    solve_transpose_within::<N>(N, lu, d, perm_inv, b);
}

/// [`small_solve`] for n = 9 ..= SMALL_DENSE_MAX.
#[inline(always)]
fn solve_dyn(lu: &[f64], d: &[f64], perm: &[usize], b: &mut [f64]) {
    solve_within::<SMALL_DENSE_MAX>(b.len(), lu, d, perm, b);
}

/// [`small_solve_transpose`] for n = 9 ..= SMALL_DENSE_MAX.
#[inline(always)]
fn solve_transpose_dyn(lu: &[f64], d: &[f64], perm_inv: &[usize], b: &mut [f64]) {
    solve_transpose_within::<SMALL_DENSE_MAX>(b.len(), lu, d, perm_inv, b);
}

/// The substitutions of [`small_solve`] for n ≤ CAP, in a stack buffer of
/// CAP. Always inlined: where n is a constant, the loops unroll.
#[inline(always)]
fn solve_within<const CAP: usize>(n: usize, lu: &[f64], d: &[f64], perm: &[usize], b: &mut [f64]) {
    let (lu, d, perm, b) = (&lu[..n * n], &d[..n], &perm[..n], &mut b[..n]);
    let mut x = [0.0; CAP];
    for i in 0..n {
        x[i] = b[perm[i]];
    }
    for j in 0..n {
        let xj = x[j];
        for i in j + 1..n {
            x[i] -= lu[j * n + i] * xj;
        }
    }
    for j in (0..n).rev() {
        let xj = x[j] * d[j];
        x[j] = xj;
        for i in 0..j {
            x[i] -= lu[j * n + i] * xj;
        }
    }
    b.copy_from_slice(&x[..n]);
}

/// The substitutions of [`small_solve_transpose`] for n ≤ CAP: each step is
/// a dot product with a column of the factors.
#[inline(always)]
fn solve_transpose_within<const CAP: usize>(
    n: usize,
    lu: &[f64],
    d: &[f64],
    perm_inv: &[usize],
    b: &mut [f64],
) {
    let (lu, d, perm_inv, b) = (&lu[..n * n], &d[..n], &perm_inv[..n], &mut b[..n]);
    let mut y = [0.0; CAP];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= lu[i * n + k] * y[k];
        }
        y[i] = s * d[i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= lu[i * n + k] * y[k];
        }
        y[i] = s;
    }
    for i in 0..n {
        b[i] = y[perm_inv[i]];
    }
}

/// A slice as an n × 1 faer matrix.
fn column(b: &mut [f64]) -> MatMut<'_, f64> {
    let n = b.len();
    MatMut::from_column_major_slice_mut(b, n, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tridiagonal J plus one far entry, n = 60 (sparse under Auto).
    fn sample(n: usize) -> (SparsityPattern, Vec<f64>) {
        let mut entries = Vec::new();
        for i in 0..n {
            entries.push((i, i));
            if i > 0 {
                entries.push((i, i - 1));
                entries.push((i - 1, i));
            }
        }
        entries.push((0, n - 1));
        let p = SparsityPattern::from_entries(n, entries);
        let values = p
            .entries()
            .map(|(r, c)| {
                if r == c {
                    -2.0 - r as f64 * 0.01
                } else {
                    1.0 + 0.1 * c as f64
                }
            })
            .collect();
        (p, values)
    }

    fn a_times(
        p: &SparsityPattern,
        jac: &[f64],
        gamma: f64,
        x: &[f64],
        transpose: bool,
    ) -> Vec<f64> {
        let mut y = x.to_vec();
        for ((r, c), v) in p.entries().zip(jac) {
            if transpose {
                y[c] -= gamma * v * x[r];
            } else {
                y[r] -= gamma * v * x[c];
            }
        }
        y
    }

    /// The largest error of solving `(I − γJ) y = b` (or its transpose)
    /// with `m`'s factors for `b` made from the known solution `x`.
    fn solve_error(
        m: &mut IterationMatrix,
        p: &SparsityPattern,
        jac: &[f64],
        gamma: f64,
        x: &[f64],
        transpose: bool,
    ) -> f64 {
        let mut b = a_times(p, jac, gamma, x, transpose);
        if transpose {
            m.solve_transpose(&mut b);
        } else {
            m.solve(&mut b);
        }
        b.iter()
            .zip(x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn dense_and_sparse_solve_both_ways() {
        let n = 60;
        let (p, jac) = sample(n);
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        for choice in [
            LinearSolver::Dense,
            LinearSolver::Sparse,
            LinearSolver::Auto,
        ] {
            let mut m = IterationMatrix::new(&p, choice);
            if choice == LinearSolver::Auto {
                assert_eq!(m.kind(), LinearSolver::Sparse);
            }
            m.factor(0.7, &jac).unwrap();
            for transpose in [false, true] {
                let err = solve_error(&mut m, &p, &jac, 0.7, &x, transpose);
                assert!(err < 1e-12, "{choice:?} transpose={transpose}: {err:e}");
            }
        }
    }

    #[test]
    fn small_dense_substitution_solves_both_ways() {
        // Sizes on both sides of SMALL_DENSE_MAX, with pivoting forced by a
        // small leading diagonal.
        for n in [1, 2, 4, 7, SMALL_DENSE_MAX, SMALL_DENSE_MAX + 1] {
            let p = SparsityPattern::dense(n);
            let jac: Vec<f64> = p
                .entries()
                .map(|(r, c)| {
                    let v = ((r * 7 + c * 3) as f64 * 0.61).sin();
                    if r == c {
                        v + 0.9 / 0.7
                    } else {
                        v
                    }
                })
                .collect();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos() + 0.1).collect();
            let mut m = IterationMatrix::new(&p, LinearSolver::Dense);
            m.factor(0.7, &jac).unwrap();
            for transpose in [false, true] {
                let err = solve_error(&mut m, &p, &jac, 0.7, &x, transpose);
                assert!(err < 1e-12, "n {n} transpose={transpose}: {err:e}");
            }
        }
    }

    /// The bytes worked out ahead cover what a set-up and factored matrix
    /// holds (dense: all of it; sparse: all but the fill, which this
    /// pattern's ordering keeps small), and Auto counts the kind it picks.
    #[test]
    fn bytes_needed_cover_what_a_factored_matrix_holds() {
        for n in [8, 60, 200] {
            let (p, jac) = sample(n);
            for choice in [LinearSolver::Dense, LinearSolver::Sparse] {
                let mut m = IterationMatrix::new(&p, choice);
                m.factor(0.7, &jac).unwrap();
                // Both directions: sparse Aᵀ solves copy the factors by rows.
                let mut b = vec![1.0; n];
                m.solve(&mut b);
                m.solve_transpose(&mut b);
                let needed = IterationMatrix::bytes_needed(MatrixShape::of(&p), choice);
                let held = m.buffer_bytes();
                // Sparse factors (by columns, and by rows for Aᵀ) reserve
                // the room any pivoting could fill, which the pattern
                // alone does not tell: on this arrow-shaped pattern the
                // factors hold twice its entries (370 against 179 at
                // n = 60), and the room reserved for them more.
                let slack = if choice == LinearSolver::Dense {
                    1.0
                } else {
                    0.65
                };
                assert!(
                    needed as f64 >= slack * held as f64,
                    "{choice:?} n {n}: {needed} < {held}"
                );
                assert!(
                    needed < 3 * held,
                    "{choice:?} n {n}: {needed} against {held}"
                );
            }
            let auto = IterationMatrix::new(&p, LinearSolver::Auto).kind();
            assert_eq!(
                MatrixShape::of(&p).resolve(LinearSolver::Auto),
                auto,
                "n {n}"
            );
        }
        // A dense 20 000-state matrix: 3.2 GB, worked out without making it.
        let big = MatrixShape::dense(20_000);
        assert_eq!(big.resolve(LinearSolver::Auto), LinearSolver::Dense);
        assert!(IterationMatrix::bytes_needed(big, LinearSolver::Auto) > 3_200_000_000);
        // A column: no diagonal but its first entry.
        let column = SparsityPattern::from_entries(50, (0..50).map(|i| (i, 0)));
        let shape = MatrixShape::of(&column);
        assert_eq!((shape.jacobian_nnz, shape.nnz), (50, 99));
    }

    /// Small dense solves with A multiply by A⁻¹ when A is well
    /// conditioned and substitute otherwise; either way the solution is
    /// right to what the conditioning allows, and transposed solves always
    /// substitute.
    #[test]
    fn small_solves_multiply_by_the_inverse_only_when_well_conditioned() {
        let n = 4;
        let p = SparsityPattern::dense(n);
        // Stiff scales as in Robertson's kinetics, coupled weakly.
        let scales = [-1e-3, -1.0, -1e3, -1e7];
        let jac: Vec<f64> = p
            .entries()
            .map(|(r, c)| {
                if r == c {
                    scales[r]
                } else {
                    0.3 + 0.1 * (r + 2 * c) as f64
                }
            })
            .collect();
        let x: Vec<f64> = (0..n).map(|i| 1.0 + 0.25 * i as f64).collect();
        for (gamma, inverse, tol) in [(1e-9, true, 1e-15), (1.0, false, 1e-9)] {
            let mut m = IterationMatrix::new(&p, LinearSolver::Dense);
            m.factor(gamma, &jac).unwrap();
            for transpose in [false, true] {
                let err = solve_error(&mut m, &p, &jac, gamma, &x, transpose);
                assert!(err < tol, "γ {gamma} transpose={transpose}: {err:e}");
            }
            let state = match &m.factors {
                Factors::Dense { inverse_state, .. } => *inverse_state,
                Factors::Sparse { .. } => unreachable!(),
            };
            let expected = if inverse {
                InverseState::Use
            } else {
                InverseState::Substitute
            };
            assert_eq!(state, expected, "γ {gamma}");
            // A new factorisation decides again, at its first solve.
            m.factor(gamma, &jac).unwrap();
            assert!(matches!(
                &m.factors,
                Factors::Dense {
                    inverse_state: InverseState::Undecided,
                    ..
                }
            ));
        }
        // Larger sizes never invert.
        let big = SparsityPattern::dense(INVERSE_MAX + 1);
        let mut m = IterationMatrix::new(&big, LinearSolver::Dense);
        m.factor(1e-3, &vec![0.1; big.nnz()]).unwrap();
        m.solve(&mut [1.0; INVERSE_MAX + 1]);
        assert!(matches!(
            &m.factors,
            Factors::Dense {
                inverse_state: InverseState::Skip,
                ..
            }
        ));
    }

    #[test]
    fn small_patterns_are_dense_under_auto() {
        let (p, _) = sample(8);
        assert_eq!(
            IterationMatrix::new(&p, LinearSolver::Auto).kind(),
            LinearSolver::Dense
        );
    }

    #[test]
    fn singular_matrices_are_reported() {
        // J = I/γ makes I − γJ = 0.
        let p = SparsityPattern::from_entries(3, (0..3).map(|i| (i, i)));
        for choice in [LinearSolver::Dense, LinearSolver::Sparse] {
            let mut m = IterationMatrix::new(&p, choice);
            assert!(m.factor(0.5, &[2.0, 2.0, 2.0]).is_err(), "{choice:?}");
            assert!(m.factor(0.5, &[1.0, 1.0, 1.0]).is_ok(), "{choice:?}");
        }
    }
}
