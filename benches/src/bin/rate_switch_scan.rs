//! The error of both forms of `g(z) = z/(eᶻ − 1)` and of `g'` per band of
//! |z|, against a 20-term Bernoulli series; used to pick `SERIES_BELOW`
//! (the switch from the Taylor series to the direct form in
//! `crates/revode-model/src/rates.rs`). Print-only.
//!
//! `cargo run --release -p revode-benches --bin rate_switch_scan`

use revode::model::rate_forms::{
    direct_pair, logspace, rel, series, series_deriv, worst, SERIES_BELOW,
};

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
