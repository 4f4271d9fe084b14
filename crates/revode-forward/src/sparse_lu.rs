//! Sparse LU of an iteration matrix `A = I − γJ` through faer's
//! simplicial factorisation, and revode's own substitution over its
//! factors.
//!
//! faer pivots by rows (the largest entry of each column), which can move
//! pivots off the diagonal where a column's largest entry is an
//! off-diagonal coupling. In a Hodgkin–Huxley cable the column of a gate
//! holds `1 + γ(α+β)` on the diagonal and `γ·∂(dV/dt)/∂m`, often larger,
//! in its voltage's row; pivoting there takes 299 of 400 pivots off the
//! diagonal, doubles the fill of U and chains the substitution through
//! every state. Pivoting the rows of `Aᵀ` (the columns of A) keeps all of
//! them on the diagonal. Solves with `A` are then transposed solves with
//! the factors of `Aᵀ`.
//!
//! Two column orderings are candidates, each computed once on the pattern
//! of `A + Aᵀ`: faer's AMD (least fill) and revode's nested dissection
//! (shortest chains of dependent columns, [`crate::dissection`]). Which
//! ordering and which way round depends on the values, so the first
//! factorisation tries each: for each ordering the way round with less
//! fill, then the ordering whose factors are cheapest to substitute with
//! by [`SparseLu::solve_cost`]; later factorisations reuse that choice.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::perm::PermRef;
use faer::sparse::linalg::amd;
use faer::sparse::linalg::lu::simplicial::{
    factorize_simplicial_numeric_lu, factorize_simplicial_numeric_lu_scratch, SimplicialLu,
};
use faer::sparse::linalg::LuError;
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use revode_model::SparsityPattern;

use crate::dissection::{nested_dissection, Graph};
use crate::factor_bound::george_ng_bound;
use crate::linear::SingularMatrix;
use crate::sparse_rows::{Columns, RowFactors};

/// Which matrix is factored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orientation {
    /// `P·A·Q = L·U`.
    Direct,
    /// `P·Aᵀ·Q = L·U`.
    Transposed,
}

/// A column ordering: `perm[k]` is the k-th column eliminated.
#[derive(Clone)]
struct ColumnOrder {
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
}

impl ColumnOrder {
    fn new(perm: Vec<usize>) -> ColumnOrder {
        let mut perm_inv = vec![0; perm.len()];
        for (k, &v) in perm.iter().enumerate() {
            perm_inv[v] = k;
        }
        ColumnOrder { perm, perm_inv }
    }
}

/// Which factors the solves use: an ordering (an index into
/// `SparseLu::orders`) and which matrix is factored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Choice {
    order: usize,
    orientation: Orientation,
}

/// One link of a chain of dependent columns in a substitution costs about
/// this many entries' worth of time: a link waits for the value the
/// previous one stored, where independent entries overlap. Fitted on the
/// 100-compartment cable: AMD's factors (1 598 entries, chains of 202
/// links) solve in ~1.1 µs, nested dissection's (1 772 entries, 20 links)
/// in ~0.9 µs: ~0.5 ns an entry and ~1.6 ns a link.
const LINK_COST: usize = 3;

pub(crate) struct SparseLu {
    /// The candidate orderings of `A + Aᵀ` (AMD first; nested dissection
    /// when it differs).
    orders: Vec<ColumnOrder>,
    /// The pattern of `Aᵀ` in compressed columns and, for each entry of A,
    /// its entry number there.
    t_col_ptr: Vec<usize>,
    t_row_idx: Vec<usize>,
    a_to_t: Vec<usize>,
    t_values: Vec<f64>,
    /// Unit L with its diagonal first in each column, U with its diagonal
    /// last (faer's simplicial layout), rows numbered after pivoting.
    lu: SimplicialLu<usize, f64>,
    row_perm: Vec<usize>,
    row_perm_inv: Vec<usize>,
    /// 1/U's diagonal: the substitutions multiply (a division on the
    /// critical path of each column costs several times a multiply).
    u_diag_inv: Vec<f64>,
    /// The factors by rows, for solves that would scatter down columns;
    /// `rows_current` once copied from this factorisation.
    rows: RowFactors,
    rows_current: bool,
    /// Chosen at the first successful factorisation.
    choice: Option<Choice>,
    /// A solve's permuted right-hand side.
    scratch: Vec<f64>,
    stack: MemBuffer,
    stack_req: StackReq,
}

/// A copy with the same ordering, choice and factors (and the room
/// reserved for them): later factorisations of either allocate nothing.
impl Clone for SparseLu {
    fn clone(&self) -> Self {
        SparseLu {
            orders: self.orders.clone(),
            t_col_ptr: self.t_col_ptr.clone(),
            t_row_idx: self.t_row_idx.clone(),
            a_to_t: self.a_to_t.clone(),
            t_values: self.t_values.clone(),
            lu: self.lu.clone(),
            row_perm: self.row_perm.clone(),
            row_perm_inv: self.row_perm_inv.clone(),
            u_diag_inv: self.u_diag_inv.clone(),
            rows: self.rows.clone(),
            rows_current: self.rows_current,
            choice: self.choice,
            scratch: self.scratch.clone(),
            stack: MemBuffer::new(self.stack_req),
            stack_req: self.stack_req,
        }
    }
}

impl SparseLu {
    /// Orders the columns and allocates every buffer for matrices with
    /// pattern `a` (which must hold the whole diagonal).
    pub(crate) fn new(a: &SparsityPattern) -> SparseLu {
        let n = a.n();
        let amd = amd_order(a);
        let graph = Graph::symmetric(a);
        let dissected = nested_dissection(&graph, &amd);
        let mut orders = vec![ColumnOrder::new(amd)];
        if dissected != orders[0].perm {
            orders.push(ColumnOrder::new(dissected));
        }
        let (t_col_ptr, t_row_idx, a_to_t) = transposed_pattern(a);
        let stack_req = factorize_simplicial_numeric_lu_scratch::<usize, f64>(n, n);
        SparseLu {
            orders,
            t_col_ptr,
            t_row_idx,
            a_to_t,
            t_values: vec![0.0; a.nnz()],
            lu: SimplicialLu::new(),
            row_perm: vec![0; n],
            row_perm_inv: vec![0; n],
            u_diag_inv: vec![0.0; n],
            rows: RowFactors::default(),
            rows_current: false,
            choice: None,
            scratch: vec![0.0; n],
            stack: MemBuffer::new(stack_req),
            stack_req,
        }
    }

    /// Whether the kept factors use the nested-dissection ordering.
    #[cfg(test)]
    pub(crate) fn dissected(&self) -> bool {
        self.choice.is_some_and(|c| c.order > 0)
    }

    /// Factors `A` (its values in `a`'s order).
    pub(crate) fn factor(
        &mut self,
        a: &SparsityPattern,
        values: &[f64],
    ) -> Result<(), SingularMatrix> {
        for (&k, &v) in self.a_to_t.iter().zip(values) {
            self.t_values[k] = v;
        }
        if let Some(choice) = self.choice {
            return self.factor_as(a, values, choice);
        }
        // Each ordering the way round with less fill (ties: Aᵀ), then
        // the ordering whose factors are cheapest to substitute with; the
        // kept one gets its room reserved and is factored again. A singular
        // candidate is skipped; when all are, the last error stands.
        let mut best: Option<(usize, Choice)> = None;
        let mut failure = None;
        for order in 0..self.orders.len() {
            let mut kept: Option<(usize, usize, Choice)> = None;
            for orientation in [Orientation::Transposed, Orientation::Direct] {
                let choice = Choice { order, orientation };
                match self.factor_as(a, values, choice) {
                    Ok(()) => {
                        let (fill, cost) = (self.fill(), self.solve_cost());
                        if kept.is_none_or(|(f, _, _)| fill < f) {
                            kept = Some((fill, cost, choice));
                        }
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if let Some((_, cost, choice)) = kept {
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, choice));
                }
            }
        }
        let Some((_, choice)) = best else {
            return Err(failure.expect("a candidate was tried"));
        };
        self.reserve_factors(a, choice);
        self.factor_as(a, values, choice)?;
        self.choice = Some(choice);
        Ok(())
    }

    /// Grows faer's factor vectors, once, to what `choice`'s factors can
    /// need under any pivoting ([`george_ng_bound`]), so that no later
    /// factorisation allocates when its pivots fall elsewhere. faer keeps
    /// its vectors' lengths from one factorisation to the next and has no
    /// call to reserve them; factoring two band matrices of order n, one
    /// whose L holds that many entries and one whose U does, grows them.
    /// Leaves the factors to be recomputed.
    fn reserve_factors(&mut self, a: &SparsityPattern, choice: Choice) {
        let n = a.n();
        let order = &self.orders[choice.order];
        let bound = match choice.orientation {
            Orientation::Direct => {
                george_ng_bound(a.col_ptr(), a.row_idx(), &order.perm, &order.perm_inv)
            }
            Orientation::Transposed => george_ng_bound(
                &self.t_col_ptr,
                &self.t_row_idx,
                &order.perm,
                &order.perm_inv,
            ),
        };
        // faer asks, at each column, for room for the entries so far plus
        // the column's reach (at most n) plus one.
        let needed = bound + n + 1;
        if needed > MAX_RESERVED_ENTRIES {
            // The row-wise copy grows as the factors do.
            log::debug!(
                "sparse LU: {needed} factor entries under any pivoting is more than \
                 {MAX_RESERVED_ENTRIES} reserved; the factors grow as needed"
            );
            return;
        }
        // The row-wise copy holds the factors alone, at most the bound.
        // Reserved now whichever way the matrix will solve: a copy first
        // made late in a solve (a rarer path taken only in long runs)
        // would allocate then.
        self.rows.reserve(n, bound);
        let identity: Vec<usize> = (0..n).collect();
        for band in band_matrices(n, needed) {
            let sym = SymbolicSparseColMatRef::new_checked(n, n, &band.col_ptr, None, &band.rows);
            factorize_simplicial_numeric_lu(
                &mut self.row_perm,
                &mut self.row_perm_inv,
                &mut self.lu,
                SparseColMatRef::new(sym, &band.values),
                PermRef::new_checked(&identity, &identity, n),
                MemStack::new(&mut self.stack),
            )
            .expect("a diagonally dominant band matrix factors");
        }
    }

    fn factor_as(
        &mut self,
        a: &SparsityPattern,
        values: &[f64],
        choice: Choice,
    ) -> Result<(), SingularMatrix> {
        let n = a.n();
        self.rows_current = false;
        let (col_ptr, row_idx, values) = match choice.orientation {
            Orientation::Direct => (a.col_ptr(), a.row_idx(), values),
            Orientation::Transposed => {
                (&self.t_col_ptr[..], &self.t_row_idx[..], &self.t_values[..])
            }
        };
        let sym = SymbolicSparseColMatRef::new_checked(n, n, col_ptr, None, row_idx);
        let result = factorize_simplicial_numeric_lu(
            &mut self.row_perm,
            &mut self.row_perm_inv,
            &mut self.lu,
            SparseColMatRef::new(sym, values),
            PermRef::new_checked(
                &self.orders[choice.order].perm,
                &self.orders[choice.order].perm_inv,
                n,
            ),
            MemStack::new(&mut self.stack),
        );
        if let Err(e) = result {
            let index = match e {
                LuError::SymbolicSingular { index } => index,
                LuError::Generic(_) => 0,
            };
            return Err(SingularMatrix { index });
        }
        // faer takes a zero pivot without complaint: U's diagonal (last in
        // each column) must be finite and nonzero.
        let u = self.lu.u_factor_unsorted();
        let (u_ptr, u_val) = (u.symbolic().col_ptr(), u.val());
        for j in 0..n {
            let d = u_val[u_ptr[j + 1] - 1];
            if d == 0.0 || !d.is_finite() {
                return Err(SingularMatrix { index: j });
            }
            self.u_diag_inv[j] = 1.0 / d;
        }
        Ok(())
    }

    /// Entries of L and U.
    pub(crate) fn fill(&self) -> usize {
        // The value vectors keep the length of the largest factors seen:
        // the column pointers end at this factorisation's count.
        let entries =
            |m: faer::sparse::SparseColMatRef<'_, usize, f64>| m.symbolic().col_ptr()[m.ncols()];
        entries(self.lu.l_factor_unsorted()) + entries(self.lu.u_factor_unsorted())
    }

    /// An estimate of a substitution's time with the current factors, in
    /// entries: their number plus [`LINK_COST`] for each link of the
    /// longest chains of dependent columns through L and through U.
    fn solve_cost(&mut self) -> usize {
        // Chain lengths, counted in the scratch vector (exact in f64).
        let depth = &mut self.scratch;
        let mut chains = 0.0f64;
        let l = self.lu.l_factor_unsorted();
        let (l_ptr, l_row) = (l.symbolic().col_ptr(), l.symbolic().row_idx());
        depth.fill(1.0);
        for j in 0..depth.len() {
            let dj = depth[j];
            chains = chains.max(dj);
            for &i in &l_row[l_ptr[j] + 1..l_ptr[j + 1]] {
                depth[i] = depth[i].max(dj + 1.0);
            }
        }
        let mut longest_u = 0.0f64;
        let u = self.lu.u_factor_unsorted();
        let (u_ptr, u_row) = (u.symbolic().col_ptr(), u.symbolic().row_idx());
        depth.fill(1.0);
        for j in (0..depth.len()).rev() {
            let dj = depth[j];
            longest_u = longest_u.max(dj);
            for &i in &u_row[u_ptr[j]..u_ptr[j + 1] - 1] {
                depth[i] = depth[i].max(dj + 1.0);
            }
        }
        self.fill() + LINK_COST * (chains + longest_u) as usize
    }

    /// `b ← A⁻¹ b` (`transpose`: `b ← A⁻ᵀ b`) with the current factors.
    pub(crate) fn solve(&mut self, b: &mut [f64], transpose: bool) {
        let choice = self
            .choice
            .expect("a solve follows a successful factorisation");
        let direct = choice.orientation == Orientation::Direct;
        // A solve with A is a transposed solve with the factors of Aᵀ.
        if direct != transpose {
            self.prepare_rows();
            let order = &self.orders[choice.order];
            self.rows.solve(
                &self.u_diag_inv,
                &self.row_perm,
                &order.perm,
                &mut self.scratch,
                b,
            );
        } else {
            let order = &self.orders[choice.order];
            solve_factored_transpose(
                &self.lu,
                &self.u_diag_inv,
                &self.row_perm,
                &order.perm,
                &mut self.scratch,
                b,
            );
        }
    }

    /// Makes the row-wise copy of the factors that solves `b ← A⁻ᵀ b` use,
    /// if they use one (when the factors kept are `Aᵀ`'s, whose own solve
    /// runs down their columns), now rather than at the first such solve
    /// (a thread that factors ahead of the solves).
    pub(crate) fn prepare_transposed_solves(&mut self) {
        if self
            .choice
            .is_some_and(|c| c.orientation == Orientation::Transposed)
        {
            self.prepare_rows();
        }
    }

    fn prepare_rows(&mut self) {
        if self.rows_current {
            return;
        }
        let (l, u) = (self.lu.l_factor_unsorted(), self.lu.u_factor_unsorted());
        self.rows.copy(
            Columns {
                ptr: l.symbolic().col_ptr(),
                row: l.symbolic().row_idx(),
                val: l.val(),
            },
            Columns {
                ptr: u.symbolic().col_ptr(),
                row: u.symbolic().row_idx(),
                val: u.val(),
            },
        );
        self.rows_current = true;
    }

    /// Bytes held: the factors, the transposed pattern and the scratch.
    /// About the bytes [`SparseLu::new`] and the factorisations after it
    /// hold for an n × n pattern of `nnz` entries (diagonal included): its
    /// buffers, two orderings, faer's scratch, and factors of at least
    /// the pattern's own entries (the fill is known only once ordered).
    pub(crate) fn bytes_needed(n: usize, nnz: usize) -> usize {
        let (f, i) = (std::mem::size_of::<f64>(), std::mem::size_of::<usize>());
        let stack = factorize_simplicial_numeric_lu_scratch::<usize, f64>(n, n);
        let entries = nnz.saturating_add(n);
        // t_values, scratch, u_diag_inv and the factors' values twice (by
        // columns and by rows); the transposed pattern, its map, the
        // factors' row and column indices, two orderings, the row
        // permutation and the row copy's pointers.
        let floats = nnz
            .saturating_add(2 * n)
            .saturating_add(entries.saturating_mul(2));
        let ints = (n + 1)
            .saturating_add(nnz.saturating_mul(2))
            .saturating_add(entries.saturating_mul(2))
            .saturating_add(9 * n + 2);
        floats
            .saturating_mul(f)
            .saturating_add(ints.saturating_mul(i))
            .saturating_add(stack.unaligned_bytes_required())
    }

    pub(crate) fn buffer_bytes(&self) -> usize {
        let (f, i) = (std::mem::size_of::<f64>(), std::mem::size_of::<usize>());
        let n = self.scratch.len();
        let entries =
            self.lu.l_factor_unsorted().val().len() + self.lu.u_factor_unsorted().val().len();
        (self.t_values.len() + self.scratch.len() + entries) * f
            + (entries + self.t_row_idx.len() + self.a_to_t.len() + (2 + 2 * self.orders.len()) * n)
                * i
            + self.stack.len()
            + self.rows.bytes()
    }
}

/// Most factor entries reserved ahead (16 bytes each, in L and in U):
/// 16 MiB a factor, set up without a memory check like the solver's other
/// buffers, so kept small. Beyond it the factors grow when a factorisation
/// needs more than the ones before (models whose bound is that large are
/// dense enough to be factored densely by default).
const MAX_RESERVED_ENTRIES: usize = 1 << 20;

/// A matrix in compressed columns.
struct Band {
    col_ptr: Vec<usize>,
    rows: Vec<usize>,
    values: Vec<f64>,
}

/// Diagonally dominant matrices of order n whose LU without row exchanges
/// (which partial pivoting keeps to) holds at least `entries` + 1 entries,
/// in faer's requests, in L (the first) and in U (the second): a lower and
/// an upper band as wide as needed, or one dense matrix when even the
/// triangles are too few.
fn band_matrices(n: usize, entries: usize) -> Vec<Band> {
    let count = |w: usize| n * w - w * (w - 1) / 2;
    let Some(width) = (1..=n).find(|&w| count(w) + 1 >= entries) else {
        // Dense: faer's largest request is n(n+1)/2 + n for L, the most
        // any pivoting can ask for.
        return vec![band(n, |_| 0..n)];
    };
    vec![
        band(n, |j| j..(j + width).min(n)),
        band(n, |j| (j + 1).saturating_sub(width)..j + 1),
    ]
}

/// The matrix with rows `rows_of(j)` in column j: 1 off the diagonal, 2n
/// on it.
fn band(n: usize, rows_of: impl Fn(usize) -> std::ops::Range<usize>) -> Band {
    let mut col_ptr = vec![0];
    let (mut rows, mut values) = (Vec::new(), Vec::new());
    for j in 0..n {
        for i in rows_of(j) {
            rows.push(i);
            values.push(if i == j { 2.0 * n as f64 } else { 1.0 });
        }
        col_ptr.push(rows.len());
    }
    Band {
        col_ptr,
        rows,
        values,
    }
}

/// AMD on the pattern of `A + Aᵀ`: the k-th column eliminated first.
fn amd_order(a: &SparsityPattern) -> Vec<usize> {
    let n = a.n();
    let sym = SymbolicSparseColMatRef::new_checked(n, n, a.col_ptr(), None, a.row_idx());
    let (mut perm, mut perm_inv) = (vec![0; n], vec![0; n]);
    let req: StackReq = amd::order_scratch::<usize>(n, a.nnz());
    let mut buf = MemBuffer::new(req);
    amd::order(
        &mut perm,
        &mut perm_inv,
        sym,
        amd::Control::default(),
        MemStack::new(&mut buf),
    )
    .expect("AMD ordering of a square pattern");
    perm
}

/// The compressed-column pattern of `Aᵀ` (rows sorted in each column) and,
/// for each entry of A, its entry number there.
fn transposed_pattern(a: &SparsityPattern) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let n = a.n();
    let mut col_ptr = vec![0usize; n + 1];
    for (r, _) in a.entries() {
        col_ptr[r + 1] += 1;
    }
    for i in 0..n {
        col_ptr[i + 1] += col_ptr[i];
    }
    let mut next = col_ptr.clone();
    let mut row_idx = vec![0; a.nnz()];
    let mut a_to_t = vec![0; a.nnz()];
    // A's entries come column by column, so each column of Aᵀ is filled in
    // increasing row order.
    for (k, (r, c)) in a.entries().enumerate() {
        row_idx[next[r]] = c;
        a_to_t[k] = next[r];
        next[r] += 1;
    }
    (col_ptr, row_idx, a_to_t)
}

/// `b ← M⁻ᵀ b` for `P·M·Q = L·U`: `Uᵀ z = Qᵀ b` forward and `Lᵀ v = z`
/// backward, each a dot product with a column; `x = Pᵀ v`. The
/// permutations are folded into the first and the last pass.
fn solve_factored_transpose(
    lu: &SimplicialLu<usize, f64>,
    u_diag_inv: &[f64],
    row_perm: &[usize],
    col_perm: &[usize],
    y: &mut [f64],
    b: &mut [f64],
) {
    let n = b.len();
    let (y, row_perm, col_perm) = (&mut y[..n], &row_perm[..n], &col_perm[..n]);
    let u = lu.u_factor_unsorted();
    let (u_ptr, u_row, u_val) = (u.symbolic().col_ptr(), u.symbolic().row_idx(), u.val());
    for j in 0..n {
        let last = u_ptr[j + 1] - 1;
        let range = u_ptr[j]..last;
        let mut s = b[col_perm[j]];
        for (&i, &v) in u_row[range.clone()].iter().zip(&u_val[range]) {
            s -= v * y[i];
        }
        y[j] = s * u_diag_inv[j];
    }
    let l = lu.l_factor_unsorted();
    let (l_ptr, l_row, l_val) = (l.symbolic().col_ptr(), l.symbolic().row_idx(), l.val());
    for j in (0..n).rev() {
        let range = l_ptr[j] + 1..l_ptr[j + 1];
        let mut s = y[j];
        for (&i, &v) in l_row[range.clone()].iter().zip(&l_val[range]) {
            s -= v * y[i];
        }
        y[j] = s;
        b[row_perm[j]] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HH-cable-like: a tridiagonal "voltage" chain, each voltage coupled
    /// both ways to one "gate" whose column entry in the voltage's row is
    /// larger than its diagonal (row pivoting of A leaves the diagonal).
    fn cable_like(n_comp: usize) -> (SparsityPattern, Vec<f64>) {
        let n = 2 * n_comp;
        let mut entries = Vec::new();
        for c in 0..n_comp {
            let (v, g) = (2 * c, 2 * c + 1);
            entries.extend([(v, v), (g, g), (v, g), (g, v)]);
            if c > 0 {
                entries.extend([(v, v - 2), (v - 2, v)]);
            }
        }
        let p = SparsityPattern::from_entries(n, entries);
        let values = p
            .entries()
            .map(|(r, c)| match (r % 2, c % 2) {
                _ if r == c && r % 2 == 0 => 30.0,
                _ if r == c => 1.1,
                (0, 1) => -5.0,
                (1, 0) => 0.01,
                _ => -10.0,
            })
            .collect();
        (p, values)
    }

    fn a_times(p: &SparsityPattern, values: &[f64], x: &[f64], transpose: bool) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for ((r, c), v) in p.entries().zip(values) {
            if transpose {
                y[c] += v * x[r];
            } else {
                y[r] += v * x[c];
            }
        }
        y
    }

    #[test]
    fn keeps_the_cheapest_factors_and_solves_both_ways() {
        let (p, values) = cable_like(40);
        let mut lu = SparseLu::new(&p);
        lu.factor(&p, &values).unwrap();
        let kept = lu.solve_cost();
        let choice = lu.choice.unwrap();
        // Every other candidate costs at least as much, and solves as well.
        let mut other = SparseLu::new(&p);
        for (&k, &v) in other.a_to_t.iter().zip(&values) {
            other.t_values[k] = v;
        }
        assert_eq!(other.orders.len(), 2);
        for order in 0..other.orders.len() {
            for orientation in [Orientation::Direct, Orientation::Transposed] {
                let candidate = Choice { order, orientation };
                other.factor_as(&p, &values, candidate).unwrap();
                let cost = other.solve_cost();
                assert!(
                    kept <= cost,
                    "kept {choice:?} at {kept}, {candidate:?} at {cost}"
                );
                other.choice = Some(candidate);
                assert_solves(&mut other, &p, &values);
            }
        }
        // Here the gates' columns pivot off the diagonal: Aᵀ wins, and a
        // chain of 40 voltages is dissected.
        assert_eq!(choice.orientation, Orientation::Transposed);
        assert!(lu.dissected());
        assert_solves(&mut lu, &p, &values);
    }

    /// `M⁻¹ b` for the factors of M, down the columns as faer keeps them
    /// (the substitution the row-wise copy replaces).
    fn column_sweep(lu: &SparseLu, b: &[f64]) -> Vec<f64> {
        let n = b.len();
        let order = &lu.orders[lu.choice.unwrap().order];
        let mut y: Vec<f64> = (0..n).map(|i| b[lu.row_perm[i]]).collect();
        let l = lu.lu.l_factor_unsorted();
        let (l_ptr, l_row, l_val) = (l.symbolic().col_ptr(), l.symbolic().row_idx(), l.val());
        for j in 0..n {
            for e in l_ptr[j] + 1..l_ptr[j + 1] {
                y[l_row[e]] -= l_val[e] * y[j];
            }
        }
        let u = lu.lu.u_factor_unsorted();
        let (u_ptr, u_row, u_val) = (u.symbolic().col_ptr(), u.symbolic().row_idx(), u.val());
        for j in (0..n).rev() {
            y[j] *= lu.u_diag_inv[j];
            for e in u_ptr[j]..u_ptr[j + 1] - 1 {
                y[u_row[e]] -= u_val[e] * y[j];
            }
        }
        (0..n).map(|i| y[order.perm_inv[i]]).collect()
    }

    #[test]
    fn solves_by_rows_repeat_the_column_sweep_bit_for_bit() {
        let (p, values) = cable_like(40);
        for orientation in [Orientation::Transposed, Orientation::Direct] {
            for order in 0..2 {
                let mut lu = SparseLu::new(&p);
                for (&k, &v) in lu.a_to_t.iter().zip(&values) {
                    lu.t_values[k] = v;
                }
                let choice = Choice { order, orientation };
                lu.factor_as(&p, &values, choice).unwrap();
                lu.choice = Some(choice);
                // Made ahead exactly when Aᵀ's solve would scatter: when the
                // factors kept are Aᵀ's.
                lu.prepare_transposed_solves();
                assert_eq!(lu.rows_current, orientation == Orientation::Transposed);
                let b: Vec<f64> = (0..p.n()).map(|i| (i as f64 * 0.61).cos()).collect();
                let expected = column_sweep(&lu, &b);
                // The factored matrix's own solve: Aᵀ's when Aᵀ is factored.
                let mut x = b.clone();
                lu.solve(&mut x, orientation == Orientation::Transposed);
                assert!(
                    x.iter()
                        .zip(&expected)
                        .all(|(a, e)| a.to_bits() == e.to_bits()),
                    "{choice:?}"
                );
                // A refactorisation copies its own factors.
                let scaled: Vec<f64> = values.iter().map(|v| v * 1.5).collect();
                for (&k, &v) in lu.a_to_t.iter().zip(&scaled) {
                    lu.t_values[k] = v;
                }
                lu.factor_as(&p, &scaled, choice).unwrap();
                let expected = column_sweep(&lu, &b);
                let mut x = b.clone();
                lu.solve(&mut x, orientation == Orientation::Transposed);
                assert!(x
                    .iter()
                    .zip(&expected)
                    .all(|(a, e)| a.to_bits() == e.to_bits()));
            }
        }
    }

    fn assert_solves(lu: &mut SparseLu, p: &SparsityPattern, values: &[f64]) {
        for transpose in [false, true] {
            let x: Vec<f64> = (0..p.n()).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
            let mut b = a_times(p, values, &x, transpose);
            lu.solve(&mut b, transpose);
            for (bi, xi) in b.iter().zip(&x) {
                assert!((bi - xi).abs() < 1e-12, "{bi} vs {xi}");
            }
        }
    }

    /// Lengths of faer's factor vectors: values and row indices of L and U.
    fn factor_lengths(lu: &SparseLu) -> [usize; 4] {
        let (l, u) = (lu.lu.l_factor_unsorted(), lu.lu.u_factor_unsorted());
        [
            l.val().len(),
            l.symbolic().row_idx().len(),
            u.val().len(),
            u.symbolic().row_idx().len(),
        ]
    }

    /// A uniform number in [-1, 1) from a SplitMix64 state.
    fn uniform(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    #[test]
    fn factors_never_outgrow_the_room_reserved_at_the_first_factorisation() {
        // Random patterns (full diagonal) and random values: every
        // factorisation pivots its own way, and some need more entries
        // than the first did. None may grow faer's vectors past it.
        let mut state = 7u64;
        let mut grew_beyond_first = 0;
        for trial in 0..40 {
            let n = 8 + trial % 25;
            let mut entries: Vec<(usize, usize)> = (0..n).map(|i| (i, i)).collect();
            for r in 0..n {
                for c in 0..n {
                    if r != c && uniform(&mut state) < -0.8 {
                        entries.push((r, c));
                    }
                }
            }
            let p = SparsityPattern::from_entries(n, entries);
            let random_values =
                |state: &mut u64| -> Vec<f64> { p.entries().map(|_| uniform(state)).collect() };
            let mut lu = SparseLu::new(&p);
            let first = random_values(&mut state);
            if lu.factor(&p, &first).is_err() {
                continue;
            }
            let first_fill = lu.fill();
            let reserved = factor_lengths(&lu);
            for _ in 0..60 {
                let values = random_values(&mut state);
                if lu.factor(&p, &values).is_ok() {
                    if lu.fill() > first_fill {
                        grew_beyond_first += 1;
                    }
                    let x: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
                    let mut b = a_times(&p, &values, &x, false);
                    lu.solve(&mut b, false);
                    let err = b
                        .iter()
                        .zip(&x)
                        .map(|(bi, xi)| (bi - xi).abs())
                        .fold(0.0, f64::max);
                    assert!(err < 1e-6 * n as f64, "trial {trial}: solve error {err}");
                }
                assert_eq!(
                    factor_lengths(&lu),
                    reserved,
                    "trial {trial}: the factors grew"
                );
            }
        }
        // The test means something only if pivots did move the fill.
        assert!(
            grew_beyond_first > 50,
            "{grew_beyond_first} factorisations filled more"
        );
    }

    #[test]
    fn a_singular_matrix_is_reported_whichever_the_candidate() {
        let (p, mut values) = cable_like(40);
        // A zero column: singular in every ordering, either way round.
        for ((_, c), v) in p.entries().zip(values.iter_mut()) {
            if c == 6 {
                *v = 0.0;
            }
        }
        let mut lu = SparseLu::new(&p);
        assert!(lu.factor(&p, &values).is_err());
        assert!(lu.choice.is_none());
    }
}
