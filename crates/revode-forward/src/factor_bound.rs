//! How many entries the sparse LU factors can need, whatever rows the
//! partial pivoting picks.
//!
//! George and Ng (1987): for `P·M·Q = L·U` with the column order Q fixed
//! and any row permutation P, the structure of U lies in that of `Lcᵀ` and
//! each column of L holds no more entries than the same column of `Lc`,
//! where `Lc` is the Cholesky factor of `(MQ)ᵀ(MQ)` (M structurally
//! nonsingular). So `nnz(L) ≤ nnz(Lc)` and `nnz(U) ≤ nnz(Lc)`: room for
//! that many entries, reserved once, is never outgrown by a later
//! factorisation whose pivots fall elsewhere.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::sparse::linalg::cholesky::simplicial::{
    prefactorize_symbolic_cholesky, prefactorize_symbolic_cholesky_scratch,
};
use faer::sparse::SymbolicSparseColMatRef;

/// `nnz(Lc)`, the Cholesky factor of `(MQ)ᵀ(MQ)` (diagonal included), for
/// the n × n pattern M in compressed columns (`col_ptr`, `row_idx`) and the
/// column order `perm` (`perm[k]`: the k-th column eliminated;
/// `perm_inv` its inverse).
pub(crate) fn george_ng_bound(
    col_ptr: &[usize],
    row_idx: &[usize],
    perm: &[usize],
    perm_inv: &[usize],
) -> usize {
    let n = perm.len();
    if n == 0 {
        return 0;
    }
    let (row_ptr, row_cols) = rows_of(n, col_ptr, row_idx);
    // The upper triangle of S = (MQ)ᵀ(MQ), column by column: S[b, a] ≠ 0
    // when columns perm[a] and perm[b] of M share a row.
    let mut s_ptr = Vec::with_capacity(n + 1);
    s_ptr.push(0usize);
    let mut s_rows = Vec::new();
    let mut seen = vec![usize::MAX; n];
    for (a, &c) in perm.iter().enumerate() {
        let start = s_rows.len();
        for &r in &row_idx[col_ptr[c]..col_ptr[c + 1]] {
            for &other in &row_cols[row_ptr[r]..row_ptr[r + 1]] {
                let b = perm_inv[other];
                if b <= a && seen[b] != a {
                    seen[b] = a;
                    s_rows.push(b);
                }
            }
        }
        // M's diagonal may be structurally zero in places: S's never is.
        if seen[a] != a {
            s_rows.push(a);
        }
        s_rows[start..].sort_unstable();
        s_ptr.push(s_rows.len());
    }
    let s = SymbolicSparseColMatRef::new_checked(n, n, &s_ptr, None, &s_rows);
    let mut etree = vec![0isize; n];
    let mut counts = vec![0usize; n];
    let mut stack = MemBuffer::new(prefactorize_symbolic_cholesky_scratch::<usize>(
        n,
        s_rows.len(),
    ));
    prefactorize_symbolic_cholesky(&mut etree, &mut counts, s, MemStack::new(&mut stack));
    counts.iter().sum()
}

/// The pattern's rows: for row r, the columns holding an entry in it.
fn rows_of(n: usize, col_ptr: &[usize], row_idx: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let nnz = col_ptr[n];
    let mut row_ptr = vec![0usize; n + 1];
    for &r in &row_idx[..nnz] {
        row_ptr[r + 1] += 1;
    }
    for i in 0..n {
        row_ptr[i + 1] += row_ptr[i];
    }
    let mut next = row_ptr.clone();
    let mut cols = vec![0usize; nnz];
    for c in 0..n {
        for &r in &row_idx[col_ptr[c]..col_ptr[c + 1]] {
            cols[next[r]] = c;
            next[r] += 1;
        }
    }
    (row_ptr, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    /// Compressed columns of an n × n pattern given by its entries.
    fn pattern(n: usize, entries: &[(usize, usize)]) -> (Vec<usize>, Vec<usize>) {
        let mut cols: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(r, c) in entries {
            cols[c].push(r);
        }
        let mut col_ptr = vec![0];
        let mut rows = Vec::new();
        for mut col in cols {
            col.sort_unstable();
            col.dedup();
            rows.extend(col);
            col_ptr.push(rows.len());
        }
        (col_ptr, rows)
    }

    #[test]
    fn a_tridiagonal_pattern_bounds_its_factors_by_a_band_of_two() {
        // MᵀM is pentadiagonal; its Cholesky factor holds 3 entries a column
        // but the last two: 3n − 3.
        let n = 10;
        let mut entries = Vec::new();
        for i in 0..n {
            entries.push((i, i));
            if i + 1 < n {
                entries.push((i + 1, i));
                entries.push((i, i + 1));
            }
        }
        let (col_ptr, rows) = pattern(n, &entries);
        let id = identity(n);
        assert_eq!(george_ng_bound(&col_ptr, &rows, &id, &id), 3 * n - 3);
    }

    #[test]
    fn a_diagonal_pattern_needs_n_and_a_dense_row_the_whole_triangle() {
        let n = 6;
        let id = identity(n);
        let diagonal: Vec<_> = (0..n).map(|i| (i, i)).collect();
        let (col_ptr, rows) = pattern(n, &diagonal);
        assert_eq!(george_ng_bound(&col_ptr, &rows, &id, &id), n);
        // One dense row couples every column with every other.
        let mut arrow = diagonal.clone();
        arrow.extend((0..n).map(|c| (0, c)));
        let (col_ptr, rows) = pattern(n, &arrow);
        assert_eq!(george_ng_bound(&col_ptr, &rows, &id, &id), n * (n + 1) / 2);
    }

    #[test]
    fn the_column_order_changes_the_bound() {
        // An arrow with its dense column first fills everything when that
        // column is eliminated first, nothing beyond the arrow when last.
        let n = 6;
        let mut arrow: Vec<_> = (0..n).map(|i| (i, i)).collect();
        arrow.extend((1..n).map(|r| (r, 0)));
        let (col_ptr, rows) = pattern(n, &arrow);
        let id = identity(n);
        let first = george_ng_bound(&col_ptr, &rows, &id, &id);
        let last: Vec<usize> = (1..n).chain([0]).collect();
        let mut last_inv = vec![0; n];
        for (k, &c) in last.iter().enumerate() {
            last_inv[c] = k;
        }
        let later = george_ng_bound(&col_ptr, &rows, &last, &last_inv);
        assert_eq!(first, n * (n + 1) / 2);
        assert_eq!(later, 2 * n - 1);
    }
}
