//! The Nordsieck history array: column j holds `h^j y^{(j)}(t_n) / j!` of
//! the interpolating polynomial, for j = 0..=q, stored column after column
//! in one flat slice of `len`-long columns.

/// Column `j` of `zn`.
#[inline]
pub fn col(zn: &[f64], len: usize, j: usize) -> &[f64] {
    &zn[j * len..(j + 1) * len]
}

/// Column `j` of `zn`, writable.
#[inline]
pub fn col_mut(zn: &mut [f64], len: usize, j: usize) -> &mut [f64] {
    &mut zn[j * len..(j + 1) * len]
}

/// Columns `a < b`, the first writable.
#[inline]
fn pair(zn: &mut [f64], len: usize, a: usize, b: usize) -> (&mut [f64], &[f64]) {
    debug_assert!(a < b);
    let (lo, hi) = zn.split_at_mut(b * len);
    (&mut lo[a * len..(a + 1) * len], &hi[..len])
}

/// Moves the polynomial one step of its scale h forward: `z ← P z` with
/// P the Pascal matrix (repeated additions, exact in the sense that
/// [`unpredict`] undoes it up to rounding).
#[inline]
pub fn predict(zn: &mut [f64], len: usize, q: usize) {
    for k in 1..=q {
        for j in (k..=q).rev() {
            let (dst, src) = pair(zn, len, j - 1, j);
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}

/// Undoes [`predict`] (after a failed attempt).
#[inline]
pub fn unpredict(zn: &mut [f64], len: usize, q: usize) {
    for k in 1..=q {
        for j in (k..=q).rev() {
            let (dst, src) = pair(zn, len, j - 1, j);
            for (d, s) in dst.iter_mut().zip(src) {
                *d -= s;
            }
        }
    }
}

/// Rescales the history from step h to `eta · h`: column j times `eta^j`.
#[inline]
pub fn rescale(zn: &mut [f64], len: usize, q: usize, eta: f64) {
    let mut factor = eta;
    for j in 1..=q {
        for v in col_mut(zn, len, j) {
            *v *= factor;
        }
        factor *= eta;
    }
}

/// `out ← Σ_{j≤q} z_j θ^j`: the polynomial at `t_n + θ h` (Horner).
#[inline]
pub fn eval(zn: &[f64], len: usize, q: usize, theta: f64, out: &mut [f64]) {
    let out = &mut out[..len];
    out.copy_from_slice(col(zn, len, q));
    for j in (0..q).rev() {
        for (o, z) in out.iter_mut().zip(col(zn, len, j)) {
            *o = *o * theta + z;
        }
    }
}

/// Moves the polynomial's expansion point to `t_n + θh`, keeping the scale
/// h: `z_j ← Σ_{i≥j} C(i, j) θ^{i−j} z_i` (repeated synthetic division).
/// Column 0 is then bitwise [`eval`] at θ (the same operations in the same
/// order), so the cut state of an event is the point its location used.
#[inline]
pub fn recentre(zn: &mut [f64], len: usize, q: usize, theta: f64) {
    for k in 0..q {
        for j in (k..q).rev() {
            let (dst, src) = pair(zn, len, j, j + 1);
            for (d, s) in dst.iter_mut().zip(src) {
                *d += theta * s;
            }
        }
    }
}

/// `z_j += c_j · z_src` for j in `range`, `src` outside it.
#[inline]
pub fn add_multiples(
    zn: &mut [f64],
    len: usize,
    range: std::ops::RangeInclusive<usize>,
    c: &[f64],
    src: usize,
) {
    for j in range {
        debug_assert_ne!(j, src);
        let cj = c[j];
        let (dst, s) = if j < src {
            pair(zn, len, j, src)
        } else {
            let (lo, hi) = zn.split_at_mut(j * len);
            (&mut hi[..len], &lo[src * len..(src + 1) * len])
        };
        for (d, v) in dst.iter_mut().zip(s) {
            *d += cj * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cubic in Nordsieck form is moved exactly by `predict` and
    /// evaluated exactly by `eval`.
    #[test]
    fn predict_and_eval_move_a_cubic_exactly() {
        // y(t) = 1 + 2t − t² + 0.5t³ at t = 0, h = 0.5: z_j = h^j y^(j)(0)/j!.
        let h = 0.5;
        let y = |t: f64| 1.0 + 2.0 * t - t * t + 0.5 * t * t * t;
        let mut zn = vec![1.0, 2.0 * h, -h * h, 0.5 * h * h * h];
        let mut out = [0.0];
        eval(&zn, 1, 3, -0.6, &mut out);
        assert!((out[0] - y(-0.3)).abs() < 1e-15);
        predict(&mut zn, 1, 3);
        assert!((zn[0] - y(0.5)).abs() < 1e-15);
        eval(&zn, 1, 3, -0.2, &mut out);
        assert!((out[0] - y(0.4)).abs() < 1e-15);
        rescale(&mut zn, 1, 3, 2.0);
        eval(&zn, 1, 3, -0.1, &mut out);
        assert!((out[0] - y(0.4)).abs() < 1e-15);
        unpredict(&mut zn, 1, 3);
        assert!((zn[0] - y(-0.5)).abs() < 1e-15);
    }

    /// Re-centring keeps the polynomial, and its column 0 is `eval` bitwise.
    #[test]
    fn recentre_moves_the_expansion_point_and_matches_eval_bitwise() {
        let h = 0.5;
        let y = |t: f64| 1.0 + 2.0 * t - t * t + 0.5 * t * t * t;
        let mut zn = vec![1.0, 2.0 * h, -h * h, 0.5 * h * h * h];
        let theta = -0.37;
        let mut at = [0.0];
        eval(&zn, 1, 3, theta, &mut at);
        recentre(&mut zn, 1, 3, theta);
        assert_eq!(zn[0].to_bits(), at[0].to_bits());
        let mut out = [0.0];
        for s in [-1.0, -0.4, 0.0, 0.63] {
            eval(&zn, 1, 3, s, &mut out);
            assert!((out[0] - y(h * (theta + s))).abs() < 1e-15, "{s}");
        }
    }
}
