//! The error of both forms of `g(z) = z/(eᶻ − 1)` and of `g'` per band of
//! |z|, against a 20-term Bernoulli series; used to pick `SERIES_BELOW`
//! (the switch from the Taylor series to the direct form in
//! `crates/revode-model/src/rates.rs`). Print-only.
//!
//! `cargo run --release -p revode-benches --bin rate_switch_scan`

use revode::model::rate_forms::{direct_pair, series, series_deriv, SERIES_BELOW};

/// Bernoulli numbers B₀…B₂₀.
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

/// `(g, g')` from `g(z) = Σ Bₙ zⁿ / n!`; for |z| ≤ 0.5 the truncation is
/// below (0.5/2π)²¹ ≈ 1e−23.
fn reference(z: f64) -> (f64, f64) {
    let (mut fact, mut g, mut d, mut zn, mut zn1) = (1.0, 0.0, 0.0, 1.0, 0.0);
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

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn logspace(lo: f64, hi: f64, k: usize) -> impl Iterator<Item = f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..k).map(move |i| (a + (b - a) * i as f64 / (k - 1) as f64).exp())
}

/// Worst relative error of series g, direct g, series g', direct g' on
/// |z| ∈ [lo, hi].
fn worst(lo: f64, hi: f64) -> [f64; 4] {
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

fn main() {
    println!("|z| band           series g   direct g   series g'  direct g'");
    let edges = [1e-6, 1e-4, 1e-2, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5];
    for w in edges.windows(2) {
        let e = worst(w[0], w[1]);
        println!(
            "[{:<5},{:>5}]      {:9.1e}  {:9.1e}  {:9.1e}  {:9.1e}",
            w[0], w[1], e[0], e[1], e[2], e[3]
        );
    }
    let (mut dg, mut dd) = (0.0f64, 0.0f64);
    for a in logspace(0.95 * SERIES_BELOW, 1.05 * SERIES_BELOW, 2000) {
        for z in [a, -a] {
            let (g, d) = direct_pair(z);
            dg = dg.max(rel(series(z), g));
            dd = dd.max(rel(series_deriv(z), d));
        }
    }
    println!(
        "series vs direct within 5% of SERIES_BELOW ({SERIES_BELOW}): g {dg:.1e}, g' {dd:.1e}"
    );
}
