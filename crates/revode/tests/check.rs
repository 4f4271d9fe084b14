//! The gradient checker, the forward-only loss and the golden regression.

use std::path::PathBuf;

use revode::check::{check, CheckOptions, ParamSelection};
use revode::golden::Golden;
use revode::Problem;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn problem(json: &str) -> Problem {
    Problem::from_json(json, "test").unwrap()
}

fn short(model: &str, method: &str, dt: f64, loss: &str) -> Problem {
    problem(&format!(
        r#"{{"model": {{"name": "{model}"}}, "tspan": [0.0, 20.0],
            "solver": {{"method": "{method}", "dt": {dt}}}, "loss": {{"kind": "{loss}"}}}}"#
    ))
}

#[test]
fn loss_alone_equals_the_gradient_reports_loss_bitwise() {
    for name in [
        "hh_seed.json",
        "hh_seed_all_steps.json",
        "hh_rk4_short.json",
    ] {
        let p = Problem::from_path(&fixtures().join(name)).unwrap();
        let g = revode::gradient(&p).unwrap();
        let l = revode::loss(&p).unwrap();
        assert_eq!(
            l.to_bits(),
            g.loss.to_bits(),
            "{name}: {l:e} vs {:e}",
            g.loss
        );
    }
}

#[test]
fn check_passes_for_hh_with_every_solver() {
    for (method, dt) in [("euler", 0.01), ("rk4", 0.05)] {
        let options = CheckOptions {
            include_u0: true,
            ..CheckOptions::default()
        };
        let r = check(&short("hh", method, dt, "all_steps"), &options).unwrap();
        assert!(r.passed, "{method}: {:#?}", r.entries);
        assert_eq!(r.entries.len(), 7);
        assert_eq!(r.rtol, 1e-6);
    }
}

/// The problem with the test-only model whose g_Kd derivative is 1 % off.
fn broken(mut p: Problem) -> Problem {
    p.model = revode::ModelSpec::Custom(revode::custom::CustomModel::new(
        revode_testing::HhBrokenVjp::default(),
    ));
    p
}

#[test]
fn check_fails_on_the_broken_vjp_and_only_there() {
    let r = check(
        &broken(short("hh", "rk4", 0.05, "final")),
        &CheckOptions {
            include_u0: true,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert!(!r.passed);
    let failed: Vec<&str> = r.failed().map(|e| e.name.as_str()).collect();
    assert_eq!(failed, ["g_Kd"]);
    let bad = r.failed().next().unwrap();
    // A 1 % error in one term of the VJP: far above the FD's own error.
    assert!(bad.rel_error > 1e-4, "{bad:?}");
    assert!(
        bad.fd_converged && bad.fd_error < 1e-3 * bad.abs_error,
        "{bad:?}"
    );
}

#[test]
fn check_honours_the_selection() {
    let p = broken(short("hh", "euler", 0.01, "final"));
    let only = |params| CheckOptions {
        params,
        ..CheckOptions::default()
    };
    let r = check(&p, &only(ParamSelection::Indices(vec![0, 2]))).unwrap();
    assert!(r.passed, "g_Kd not selected");
    let r = check(&p, &only(ParamSelection::Indices(vec![1]))).unwrap();
    assert_eq!(r.n_failed, 1);
    let r = check(&p, &only(ParamSelection::Sample { count: 3, seed: 9 })).unwrap();
    assert_eq!(r.entries.len(), 3);
}

/// Every golden file in fixtures/expected: the gradient has not drifted.
#[test]
fn golden_gradients_have_not_drifted() {
    let dir = fixtures().join("expected");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let golden = Golden::read(&path).unwrap();
            let problem = Problem::from_path(&golden.problem_path(&path)).unwrap();
            let now = revode::gradient(&problem).unwrap();
            let drifts = golden.drifts(&now);
            assert!(
                drifts.is_empty(),
                "{}: drifted beyond rtol {:e}; if intended, regenerate with `{}`:\n{}",
                path.display(),
                golden.rtol,
                golden.regenerate,
                drifts.join("\n")
            );
            names.push(golden.problem);
        }
    }
    names.sort();
    // An empty directory must not pass silently.
    for required in [
        "hh_rk4_short.json",
        "hh_seed.json",
        "hh_seed_all_steps.json",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} has no golden file"
        );
    }
}

#[test]
fn golden_drift_is_detected() {
    let p = Problem::from_path(&fixtures().join("hh_rk4_short.json")).unwrap();
    let now = revode::gradient(&p).unwrap();
    let mut golden = Golden::from_report("hh_rk4_short.json", "test".into(), &now, 1e-8, 0.0);
    assert!(golden.drifts(&now).is_empty());
    golden.gradient[2] *= 1.0 + 1e-7;
    let drifts = golden.drifts(&now);
    assert_eq!(drifts.len(), 1, "{drifts:?}");
    assert!(drifts[0].starts_with("gradient[2]"), "{drifts:?}");
    golden.gradient[2] = f64::NAN;
    assert_eq!(golden.drifts(&now).len(), 1, "NaN is drift");
}
