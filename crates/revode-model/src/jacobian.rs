//! The state Jacobian `∂f/∂u` for implicit steppers.
//!
//! A model that knows its Jacobian says so with [`Model::jacobian_pattern`]:
//! the sparsity pattern, fixed for the model's life, in compressed sparse
//! column form ([`SparsityPattern`]). [`Model::jacobian`] then writes the
//! values of those entries, in pattern order, into a buffer the caller owns.
//!
//! Steppers never call the model directly: they hold a [`JacobianEval`],
//! which uses the model's own Jacobian when it has one and otherwise
//! assembles a dense one from `n` vector–Jacobian products with the unit
//! vectors (`Jᵀ eᵢ` is row i of J). That is exact, but costs n VJPs and a
//! dense n × n matrix per evaluation (docs/stiff.md).

use crate::Model;

/// The sparsity pattern of an n × n matrix in compressed sparse column
/// form: the rows of the entries of column j are
/// `row_idx[col_ptr[j]..col_ptr[j + 1]]`, strictly increasing. Entries are
/// numbered in that order (column by column); values travel in slices of
/// length [`SparsityPattern::nnz`] in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparsityPattern {
    n: usize,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
}

/// Why a pattern was refused by [`SparsityPattern::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid sparsity pattern: {}", self.0)
    }
}

impl std::error::Error for PatternError {}

impl SparsityPattern {
    /// Checks and takes a CSC pattern.
    pub fn new(n: usize, col_ptr: Vec<usize>, row_idx: Vec<usize>) -> Result<Self, PatternError> {
        let fail = |m: String| Err(PatternError(m));
        if col_ptr.len() != n + 1 {
            return fail(format!(
                "col_ptr has {} entries, expected {}",
                col_ptr.len(),
                n + 1
            ));
        }
        if col_ptr[0] != 0 || col_ptr[n] != row_idx.len() {
            return fail(format!(
                "col_ptr must run from 0 to {} (the entry count), got {}..{}",
                row_idx.len(),
                col_ptr[0],
                col_ptr[n]
            ));
        }
        for j in 0..n {
            if col_ptr[j] > col_ptr[j + 1] {
                return fail(format!("col_ptr decreases at column {j}"));
            }
            let rows = &row_idx[col_ptr[j]..col_ptr[j + 1]];
            if let Some(&r) = rows.iter().find(|&&r| r >= n) {
                return fail(format!("row {r} in column {j} is out of range (n = {n})"));
            }
            if rows.windows(2).any(|w| w[0] >= w[1]) {
                return fail(format!("rows of column {j} are not strictly increasing"));
            }
        }
        Ok(SparsityPattern {
            n,
            col_ptr,
            row_idx,
        })
    }

    /// Every entry of an n × n matrix (column-major order).
    pub fn dense(n: usize) -> Self {
        SparsityPattern {
            n,
            col_ptr: (0..=n).map(|j| j * n).collect(),
            row_idx: (0..n * n).map(|k| k % n).collect(),
        }
    }

    /// The pattern holding the given `(row, col)` entries (any order,
    /// repeats allowed). Panics on an index ≥ n.
    pub fn from_entries(n: usize, entries: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut by_col: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (r, c) in entries {
            assert!(
                r < n && c < n,
                "entry ({r}, {c}) outside a {n} × {n} matrix"
            );
            by_col[c].push(r);
        }
        let mut col_ptr = Vec::with_capacity(n + 1);
        let mut row_idx = Vec::new();
        col_ptr.push(0);
        for mut rows in by_col {
            rows.sort_unstable();
            rows.dedup();
            row_idx.extend_from_slice(&rows);
            col_ptr.push(row_idx.len());
        }
        SparsityPattern {
            n,
            col_ptr,
            row_idx,
        }
    }

    /// The matrix is n × n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of entries.
    pub fn nnz(&self) -> usize {
        self.row_idx.len()
    }

    /// Fraction of the n² entries present.
    pub fn density(&self) -> f64 {
        if self.n == 0 {
            return 1.0;
        }
        self.nnz() as f64 / (self.n as f64 * self.n as f64)
    }

    pub fn col_ptr(&self) -> &[usize] {
        &self.col_ptr
    }

    pub fn row_idx(&self) -> &[usize] {
        &self.row_idx
    }

    /// The rows of column `j`'s entries.
    pub fn column(&self, j: usize) -> &[usize] {
        &self.row_idx[self.col_ptr[j]..self.col_ptr[j + 1]]
    }

    /// `(row, col)` of every entry, in entry order.
    pub fn entries(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.n).flat_map(move |j| self.column(j).iter().map(move |&r| (r, j)))
    }

    /// The entry number of `(row, col)`, if the pattern has it.
    pub fn position(&self, row: usize, col: usize) -> Option<usize> {
        let start = self.col_ptr[col];
        self.column(col).binary_search(&row).ok().map(|k| start + k)
    }

    /// This pattern with the whole diagonal added: the pattern of `I − γJ`.
    /// Returns it with, for each of this pattern's entries, its number in
    /// the new pattern, and the number of each diagonal entry.
    pub fn with_diagonal(&self) -> (SparsityPattern, Vec<usize>, Vec<usize>) {
        let full = SparsityPattern::from_entries(
            self.n,
            self.entries().chain((0..self.n).map(|i| (i, i))),
        );
        let map = self
            .entries()
            .map(|(r, c)| full.position(r, c).expect("superset"))
            .collect();
        let diag = (0..self.n)
            .map(|i| full.position(i, i).expect("diagonal added"))
            .collect();
        (full, map, diag)
    }
}

/// Where a [`JacobianEval`] gets its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JacobianSource {
    /// The model's own [`Model::jacobian`].
    Model,
    /// n vector–Jacobian products with unit vectors, into a dense matrix.
    AssembledFromVjps,
}

/// Evaluates `∂f/∂u` of a model into a caller-owned buffer, from the
/// model's own Jacobian or assembled from VJPs. Owns its scratch (and a
/// model `Work` of its own, so it never disturbs sums a backward pass has
/// deferred in another): made once per solve, no allocation per call.
pub struct JacobianEval<'m, M: Model> {
    model: &'m M,
    pattern: SparsityPattern,
    source: JacobianSource,
    work: M::Work,
    lambda: Vec<f64>,
    row: Vec<f64>,
    acc_p: Vec<f64>,
    evaluations: usize,
}

impl<'m, M: Model> JacobianEval<'m, M> {
    pub fn new(model: &'m M) -> Self {
        let dims = model.dims();
        let n = dims.n_states;
        let (pattern, source, scratch) = match model.jacobian_pattern() {
            Some(p) => {
                assert_eq!(p.n(), n, "{}: Jacobian pattern size", model.name());
                (p, JacobianSource::Model, 0)
            }
            None => (
                SparsityPattern::dense(n),
                JacobianSource::AssembledFromVjps,
                n,
            ),
        };
        JacobianEval {
            model,
            pattern,
            source,
            work: model.new_work(),
            lambda: vec![0.0; scratch],
            row: vec![0.0; scratch],
            acc_p: vec![0.0; if scratch > 0 { dims.n_params } else { 0 }],
            evaluations: 0,
        }
    }

    pub fn pattern(&self) -> &SparsityPattern {
        &self.pattern
    }

    pub fn source(&self) -> JacobianSource {
        self.source
    }

    /// Jacobian evaluations so far.
    pub fn evaluations(&self) -> usize {
        self.evaluations
    }

    /// `values ← ∂f/∂u (t, u, p)` in pattern order (`pattern().nnz()` long).
    pub fn eval(&mut self, t: f64, u: &[f64], p: &[f64], values: &mut [f64]) {
        debug_assert_eq!(values.len(), self.pattern.nnz());
        self.evaluations += 1;
        match self.source {
            JacobianSource::Model => self.model.jacobian(t, u, p, values, &mut self.work),
            JacobianSource::AssembledFromVjps => {
                let n = self.pattern.n();
                // Dense column-major: entry (i, j) is values[j·n + i].
                for i in 0..n {
                    self.lambda.fill(0.0);
                    self.lambda[i] = 1.0;
                    self.model.vjp(
                        t,
                        u,
                        p,
                        &self.lambda,
                        &mut self.row,
                        0.0,
                        &mut self.acc_p,
                        &mut self.work,
                    );
                    for (j, &v) in self.row.iter().enumerate() {
                        values[j * n + i] = v;
                    }
                }
                // Drop whatever the model deferred for the parameters.
                self.model.flush_vjp(&mut self.acc_p, &mut self.work);
                self.acc_p.fill(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_entries_sorts_and_dedups() {
        let p = SparsityPattern::from_entries(3, [(2, 0), (0, 0), (2, 0), (1, 2)]);
        assert_eq!(p.col_ptr(), &[0, 2, 2, 3]);
        assert_eq!(p.row_idx(), &[0, 2, 1]);
        assert_eq!(p.position(2, 0), Some(1));
        assert_eq!(p.position(1, 1), None);
        let e: Vec<_> = p.entries().collect();
        assert_eq!(e, [(0, 0), (2, 0), (1, 2)]);
    }

    #[test]
    fn with_diagonal_maps_old_entries() {
        let p = SparsityPattern::from_entries(3, [(2, 0), (0, 1)]);
        let (full, map, diag) = p.with_diagonal();
        assert_eq!(full.nnz(), 5);
        assert_eq!(full.entries().nth(map[0]), Some((2, 0)));
        assert_eq!(full.entries().nth(map[1]), Some((0, 1)));
        for (i, &d) in diag.iter().enumerate() {
            assert_eq!(full.entries().nth(d), Some((i, i)));
        }
    }

    #[test]
    fn new_rejects_bad_patterns() {
        assert!(SparsityPattern::new(2, vec![0, 1], vec![0]).is_err());
        assert!(SparsityPattern::new(2, vec![0, 2, 2], vec![1, 0]).is_err());
        assert!(SparsityPattern::new(2, vec![0, 1, 2], vec![0, 2]).is_err());
        assert!(SparsityPattern::new(2, vec![0, 1, 2], vec![0, 1]).is_ok());
        assert_eq!(SparsityPattern::dense(3).nnz(), 9);
        assert_eq!(SparsityPattern::dense(3).position(1, 2), Some(7));
    }
}
