//! The shipped array model files through the façade: models/hh_network.ode
//! against the built-in `hh_network` (whole-solve gradients), and
//! models/hh_cable.ode's gradient against Richardson finite differences.

use std::path::{Path, PathBuf};

use revode::check::{check, CheckOptions, ParamSelection};
use revode::{gradient, Problem};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn fixture(name: &str) -> Problem {
    Problem::from_path(&repo("fixtures").join(name)).unwrap()
}

#[test]
fn network_file_gradients_match_the_builtin() {
    let file = fixture("hh_network_file.json");
    let builtin = fixture("hh_network_10.json");
    let mut twin = file.clone();
    twin.model = builtin.model.clone();
    assert_eq!(twin, builtin, "the same problem apart from the model");
    let (gf, gb) = (gradient(&file).unwrap(), gradient(&builtin).unwrap());
    assert_eq!(gf.param_names, gb.param_names);
    assert_eq!(gf.state_names, gb.state_names);
    assert_eq!(gf.gradient.len(), 3 * 10 + 100);
    let rel = |a: f64, b: f64| {
        if a == b {
            0.0
        } else {
            (a - b).abs() / b.abs()
        }
    };
    // Loss, conductances and u0: entry by entry.
    let mut worst = rel(gf.loss, gb.loss);
    for (a, b) in gf.gradient[..30].iter().zip(&gb.gradient[..30]) {
        worst = worst.max(rel(*a, *b));
    }
    for (a, b) in gf.gradient_u0.iter().zip(&gb.gradient_u0) {
        worst = worst.max(rel(*a, *b));
    }
    assert!(worst <= 1e-12, "largest relative difference {worst:e}");
    // W: relative to the largest W entry. The built-in defers the W-gradient
    // as M_ij − d_i, two sums of size Σ|αλ|·|E| (docs/models/hh_network.md,
    // "Conditioning"), so a small entry carries an error of about ε·|E|·Σ|αλ|
    // (a few 1e−14 of the largest here); the file accumulates αλ_i(E_j − E_i)
    // directly.
    let w_max = gb.gradient[30..].iter().fold(0.0f64, |m, g| m.max(g.abs()));
    for k in 30..gb.gradient.len() {
        let (a, b) = (gf.gradient[k], gb.gradient[k]);
        assert!(
            (a - b).abs() <= 1e-12 * w_max,
            "{}: {a:e} vs {b:e} (largest W entry {w_max:e})",
            gb.param_names[k]
        );
        let (i, j) = gb.param_names[k][2..].split_once('_').unwrap();
        if i == j {
            assert_eq!((a, b), (0.0, 0.0), "the diagonal of W has no effect");
        }
    }
}

#[test]
fn cable_gradient_matches_richardson_fd() {
    let p = fixture("hh_cable.json");
    // gNa1, gNa50, gK100, gL1, I_inj: the stimulated end, the middle, the
    // recorded end, and the input
    let r = check(
        &p,
        &CheckOptions {
            params: ParamSelection::Indices(vec![0, 49, 199, 200, 300]),
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.entries.len(), 5);
    let failed: Vec<_> = r.failed().map(|e| (&e.name, e.rel_error)).collect();
    assert!(r.passed, "failed: {failed:?}");
    assert!(r.entries.iter().all(|e| e.fd_converged));
}
