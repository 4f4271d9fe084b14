//! The removable singularity `g(z) = z / (e^z − 1)` shared by the HH rates.
//!
//! Three evaluation regimes, all finite for every finite `z`:
//!
//! * `|z| < SERIES_BELOW`: the Taylor series around 0 (Bernoulli numbers),
//!   which has the limits `g(0) = 1`, `g'(0) = −1/2` built in;
//! * `z > ASYMPTOTIC_ABOVE`: `e^z` is about to overflow, so `e^z − 1` is
//!   replaced by `e^z` (relative change `e^{−z}`, far below one ulp):
//!   `g ≈ z e^{−z}`, `g' ≈ (1 − z) e^{−z}`, which underflow gracefully to 0;
//! * otherwise the direct form through `exp_m1`.
//!
//! The direct `g = z / expm1(z)` is accurate to a couple of ulps for every
//! `z ≠ 0`. The direct derivative `g' = (1 − g e^z) / (e^z − 1)` is not: near
//! 0, `1 − g e^z ≈ −z/2` is a cancellation and its relative error grows like
//! `ε/|z|`. The switch point balances that growth against the truncation of
//! the series (next term `12·B₁₂/12!·z¹¹ ≈ 6.3e−9·z¹¹` for `g'`); see
//! `docs/models/hh.md` and the `switch_point_*` tests for the measurement.

/// Below this `|z|` the Taylor series is used, above it the direct form.
///
/// Measured with `switch_point_scan` (2000 log-spaced `|z|` per band, both
/// signs, against a 20-term reference series): the direct `g'` has relative
/// error 5e−12 on [1e−4, 1e−2], 1.4e−14 on [0.05, 0.1], 4.4e−15 on
/// [0.15, 0.2] and 3.3e−15 on [0.2, 0.25]; the series `g'` stays ≤ 6.3e−16
/// up to 0.2 and grows to 3.4e−15 on [0.2, 0.25], 2.5e−14 on [0.25, 0.3]. The
/// curves cross at ≈ 0.2; there series and direct form differ by at most
/// 3.9e−15 (`g'`) and 4.0e−16 (`g`). Worst error of the chosen combination:
/// ~4.4e−15 for `g'`, ~6.5e−16 for `g`. (The old value 1e−4 left ~5e−12.)
pub const SERIES_BELOW: f64 = 0.2;

/// Above this `z` the asymptotic forms are used (`exp(709.78…)` overflows).
const ASYMPTOTIC_ABOVE: f64 = 700.0;

// Taylor coefficients of z/(e^z − 1) = Σ Bₙ zⁿ / n!:
// 1 − z/2 + z²/12 − z⁴/720 + z⁶/30240 − z⁸/1209600 + z¹⁰/47900160 − …
const G2: f64 = 1.0 / 12.0;
const G4: f64 = -1.0 / 720.0;
const G6: f64 = 1.0 / 30240.0;
const G8: f64 = -1.0 / 1209600.0;
const G10: f64 = 1.0 / 47900160.0;
// Coefficients of the derivative, n·Bₙ/n!:
// −1/2 + z/6 − z³/180 + z⁵/5040 − z⁷/151200 + z⁹/4790016 − …
const D1: f64 = 1.0 / 6.0;
const D3: f64 = -1.0 / 180.0;
const D5: f64 = 1.0 / 5040.0;
const D7: f64 = -1.0 / 151200.0;
const D9: f64 = 1.0 / 4790016.0;
/// `[G2, G4, G6, G8, G10]`, the even coefficients of [`series`] (for code
/// generators that must repeat its operations exactly).
pub const SERIES_EVEN: [f64; 5] = [G2, G4, G6, G8, G10];
/// `[D1, D3, D5, D7, D9]`, the odd coefficients of [`series_deriv`].
pub const SERIES_DERIV_ODD: [f64; 5] = [D1, D3, D5, D7, D9];

/// Series of `g` (valid for small `|z|`; error ≈ 5.3e−10·z¹²).
#[inline]
pub fn series(z: f64) -> f64 {
    let z2 = z * z;
    let even = 1.0 + z2 * (G2 + z2 * (G4 + z2 * (G6 + z2 * (G8 + z2 * G10))));
    even - 0.5 * z
}

/// Series of `g'` (valid for small `|z|`; error ≈ 6.3e−9·|z|¹¹).
#[inline]
pub fn series_deriv(z: f64) -> f64 {
    let z2 = z * z;
    -0.5 + z * (D1 + z2 * (D3 + z2 * (D5 + z2 * (D7 + z2 * D9))))
}

/// Direct `g = z / (e^z − 1)` (NaN at z = 0, 0 once `e^z` overflows).
#[inline]
pub(crate) fn direct(z: f64) -> f64 {
    z / z.exp_m1()
}

/// Direct `(g, g')` from `em1 = e^z − 1`:
/// with `r = 1/(e^z − 1)`, `g = z r` and
/// `g' = (e^z − 1 − z e^z)/(e^z − 1)² = r (1 − g e^z)`.
/// Written with `r` instead of dividing by `(e^z − 1)²`, which would overflow
/// already for z > 354.
#[inline]
pub(crate) fn direct_pair_em1(z: f64, em1: f64) -> (f64, f64) {
    let r = 1.0 / em1;
    let g = z * r;
    (g, r * (1.0 - g * (em1 + 1.0)))
}

/// [`direct_pair_em1`] with `exp_m1`.
#[inline]
pub fn direct_pair(z: f64) -> (f64, f64) {
    direct_pair_em1(z, z.exp_m1())
}

/// `z / (e^z − 1)`, with its limit 1 at z = 0; finite for every finite `z`.
#[inline]
pub fn exprel_inv(z: f64) -> f64 {
    if z.abs() < SERIES_BELOW {
        series(z)
    } else if z > ASYMPTOTIC_ABOVE {
        // z / (e^z − 1) = z e^{−z} (1 + O(e^{−z}))
        z * (-z).exp()
    } else {
        direct(z)
    }
}

/// `d/dz [z / (e^z − 1)]`, with its limit −1/2 at z = 0; finite for every finite `z`.
#[inline]
pub fn exprel_inv_deriv(z: f64) -> f64 {
    exprel_inv_and_deriv(z).1
}

/// `(g(z), g'(z))` sharing one exponential.
#[inline]
pub(crate) fn exprel_inv_and_deriv(z: f64) -> (f64, f64) {
    if z.abs() < SERIES_BELOW {
        (series(z), series_deriv(z))
    } else if z > ASYMPTOTIC_ABOVE {
        // g ≈ z e^{−z}, g' ≈ (1 − z) e^{−z}, both to relative O(z e^{−z})
        let e = (-z).exp();
        (z * e, (1.0 - z) * e)
    } else {
        direct_pair(z)
    }
}

/// `g(z)` given `em1 ≈ e^z − 1` computed elsewhere (for models that share
/// one exponential between several rates). Same series switch; the direct
/// form is `z / em1`, so its accuracy is that of `em1`: built as `e^z − 1`
/// from a correctly rounded-ish `e^z` it carries ≈ ε·e^z/|e^z − 1| ≤ 5.5 ε
/// relative error for |z| ≥ `SERIES_BELOW`. `em1 = ±∞` / `−1` give the
/// limits 0 and `−z`.
#[inline]
pub fn exprel_inv_em1(z: f64, em1: f64) -> f64 {
    if z.abs() < SERIES_BELOW {
        series(z)
    } else {
        z / em1
    }
}

/// `(g(z), g'(z))` given `em1 ≈ e^z − 1` computed elsewhere; see
/// [`exprel_inv_em1`]. Finite for every finite `em1 ≥ −1`; `em1 = ∞` would
/// give `0·∞`, so callers clamp `e^z` to `f64::MAX` (as `hh` does).
#[inline]
pub fn exprel_inv_and_deriv_em1(z: f64, em1: f64) -> (f64, f64) {
    if z.abs() < SERIES_BELOW {
        (series(z), series_deriv(z))
    } else {
        direct_pair_em1(z, em1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_forms::{logspace, reference, rel, worst};

    #[test]
    fn switch_point_forms_agree() {
        // Just around the switch both forms are accurate, so they agree.
        for a in logspace(0.9 * SERIES_BELOW, 1.1 * SERIES_BELOW, 500) {
            for z in [a, -a] {
                let (dg, dd) = direct_pair(z);
                assert!(rel(series(z), dg) < 1e-15, "g at {z}");
                assert!(rel(series_deriv(z), dd) < 5e-15, "g' at {z}");
            }
        }
    }

    #[test]
    fn matches_reference_on_both_sides_of_switch() {
        let e = worst(1e-8, 0.5);
        // chosen forms only: series below the switch, direct above
        for a in logspace(1e-8, 0.5, 3000) {
            for z in [a, -a] {
                let (rg, rd) = reference(z);
                assert!(rel(exprel_inv(z), rg) < 1e-15, "g at {z}");
                assert!(rel(exprel_inv_deriv(z), rd) < 6e-15, "g' at {z}");
            }
        }
        // and the series really is needed for g' near 0 (guards the test itself)
        assert!(e[3] > 1e-10, "direct g' near 0 should be inaccurate: {e:?}");
    }

    #[test]
    fn limits_at_zero() {
        assert_eq!(exprel_inv(0.0), 1.0);
        assert_eq!(exprel_inv(-0.0), 1.0);
        assert_eq!(exprel_inv_deriv(0.0), -0.5);
        assert_eq!(exprel_inv_and_deriv(0.0), (1.0, -0.5));
    }

    #[test]
    fn finite_for_all_finite_z() {
        let mut zs = vec![
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
        ];
        for a in logspace(1e-300, 1e300, 4000) {
            zs.push(a);
            zs.push(-a);
        }
        for a in (0..2000).map(|i| 340.0 + i as f64 * 0.25) {
            zs.push(a); // covers the old overflow at 354 and exp's at 709.78
        }
        for z in zs {
            let (g, d) = exprel_inv_and_deriv(z);
            assert!(exprel_inv(z).is_finite() && g.is_finite(), "g({z})");
            assert!(exprel_inv_deriv(z).is_finite() && d.is_finite(), "g'({z})");
            // g > 0 and decreasing everywhere
            assert!(g >= 0.0 && d <= 0.0, "signs at {z}: {g} {d}");
        }
    }

    #[test]
    fn large_z_asymptotics() {
        // positive: g = z e^{-z}/(1 − e^{-z}), g' = e^{-z}(1 − z − e^{-z})/(1 − e^{-z})²
        for z in [
            40.0f64, 100.0, 354.0, 360.0, 699.0, 700.5, 709.0, 709.9, 720.0, 744.0,
        ] {
            let q = (-z).exp();
            let g = z * q / (1.0 - q);
            let d = q * (1.0 - z - q) / ((1.0 - q) * (1.0 - q));
            assert!(rel(exprel_inv(z), g) < 1e-12, "g({z})");
            assert!(rel(exprel_inv_deriv(z), d) < 1e-12, "g'({z})");
        }
        // far out everything underflows to (signed) zero, not NaN
        assert_eq!(exprel_inv(800.0), 0.0);
        assert_eq!(exprel_inv_deriv(800.0), 0.0);
        // negative: g → −z, g' → −1
        for z in [-40.0, -100.0, -1e3, -1e10, -1e300] {
            assert!(rel(exprel_inv(z), -z) < 1e-15, "g({z})");
            assert!(rel(exprel_inv_deriv(z), -1.0) < 1e-12, "g'({z})");
        }
        // continuity across the asymptotic switch
        let a = ASYMPTOTIC_ABOVE;
        let (below, above) = (a - 1e-9, a + 1e-9);
        assert!(rel(exprel_inv(below), exprel_inv(above)) < 1e-8);
        assert!(rel(exprel_inv_deriv(below), exprel_inv_deriv(above)) < 1e-8);
    }

    #[test]
    fn derivative_matches_finite_differences() {
        let mut zs: Vec<f64> = (-400..=400).map(|i| i as f64 * 0.05).collect();
        zs.extend([SERIES_BELOW, -SERIES_BELOW, 1e-7, -1e-7, 50.0, -50.0, 300.0]);
        for z in zs {
            let h = 1e-5;
            let fd = (exprel_inv(z + h) - exprel_inv(z - h)) / (2.0 * h);
            let d = exprel_inv_deriv(z);
            assert!(
                (fd - d).abs() <= 1e-8 * (d.abs() + 1e-300),
                "z={z}: {d} vs fd {fd}"
            );
        }
    }

    #[test]
    fn continuous_across_series_switch() {
        for s in [SERIES_BELOW, -SERIES_BELOW] {
            let lo = s * (1.0 - 1e-14);
            let hi = s * (1.0 + 1e-14);
            assert!(rel(exprel_inv(lo), exprel_inv(hi)) < 1e-14);
            assert!(rel(exprel_inv_deriv(lo), exprel_inv_deriv(hi)) < 1e-14);
        }
    }
}
