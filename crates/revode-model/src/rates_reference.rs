//! A 20-term Bernoulli-series reference for `g(z) = z/(eᶻ − 1)` and `g'`,
//! and the worst-error scan of both computed forms against it: shared by the
//! unit tests of `rates` and the `rate_switch_scan` bench.

use crate::rates::{direct_pair, series, series_deriv};

/// Bernoulli numbers B₀…B₂₀ (odd ones beyond B₁ vanish).
const BERNOULLI: [f64; 21] = [
    1.0,
    -0.5,
    1.0 / 6.0,
    0.0,
    -1.0 / 30.0,
    0.0,
    1.0 / 42.0,
    0.0,
    -1.0 / 30.0,
    0.0,
    5.0 / 66.0,
    0.0,
    -691.0 / 2730.0,
    0.0,
    7.0 / 6.0,
    0.0,
    -3617.0 / 510.0,
    0.0,
    43867.0 / 798.0,
    0.0,
    -174611.0 / 330.0,
];

/// Reference `(g, g')` from the 20-term series; for |z| ≤ 0.5 the
/// truncation is below (0.5/2π)²¹ ≈ 1e−23, far under one ulp.
pub fn reference(z: f64) -> (f64, f64) {
    let mut fact = 1.0;
    let mut g = 0.0;
    let mut d = 0.0;
    let mut zn = 1.0; // zⁿ
    let mut zn1 = 0.0; // zⁿ⁻¹
    for (n, b) in BERNOULLI.iter().enumerate() {
        if n > 0 {
            fact *= n as f64;
        }
        g += b * zn / fact;
        d += n as f64 * b * zn1 / fact;
        zn1 = zn;
        zn *= z;
    }
    (g, d)
}

pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

pub fn logspace(lo: f64, hi: f64, k: usize) -> impl Iterator<Item = f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..k).map(move |i| (a + (b - a) * i as f64 / (k - 1) as f64).exp())
}

/// Worst relative error of each form against the reference on |z| ∈ [lo, hi].
pub fn worst(lo: f64, hi: f64) -> [f64; 4] {
    let mut w = [0.0f64; 4];
    for a in logspace(lo, hi, 2000) {
        for z in [a, -a] {
            let (rg, rd) = reference(z);
            let (dg, dd) = direct_pair(z);
            w[0] = w[0].max(rel(series(z), rg));
            w[1] = w[1].max(rel(dg, rg));
            w[2] = w[2].max(rel(series_deriv(z), rd));
            w[3] = w[3].max(rel(dd, rd));
        }
    }
    w
}
