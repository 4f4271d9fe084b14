//! Model files through the façade: the seed problem through
//! models/seed_hh.ode against the built-in `hh`, every solver and adjoint,
//! the cortical model's gradient against Richardson finite differences,
//! batches, paths and errors.

use std::path::{Path, PathBuf};

use revode::check::{check, CheckOptions};
use revode::{gradient, solve, Problem};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn fixture(name: &str) -> Problem {
    Problem::from_path(&repo("fixtures").join(name)).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The same problem with the built-in model instead of the file.
fn builtin_twin(file_problem: &Problem) -> Problem {
    let mut p = file_problem.clone();
    p.model = revode::ModelSpec::Hh;
    p
}

/// Largest relative difference of loss and both gradients.
fn worst_difference(a: &Problem, b: &Problem) -> f64 {
    let (ga, gb) = (gradient(a).unwrap(), gradient(b).unwrap());
    let mut worst = rel(ga.loss, gb.loss);
    for (x, y) in ga.gradient.iter().zip(&gb.gradient) {
        worst = worst.max(rel(*x, *y));
    }
    for (x, y) in ga.gradient_u0.iter().zip(&gb.gradient_u0) {
        worst = worst.max(rel(*x, *y));
    }
    worst
}

#[test]
fn seed_problem_through_the_file_matches_builtin_hh() {
    let file = fixture("seed_hh_file.json");
    let builtin = fixture("hh_seed.json");
    // the file supplies params and u0 by default: the seed problem's values
    let mut defaults_spelled_out = builtin_twin(&file);
    defaults_spelled_out.params = Some(vec![70.0, 10.0, 0.05]);
    defaults_spelled_out.u0 = Some(vec![-59.0, 0.2, 0.9, 0.1]);
    assert_eq!(
        defaults_spelled_out, builtin,
        "same problem apart from the model"
    );
    let g = gradient(&file).unwrap();
    assert_eq!(g.model, "seed_hh.ode");
    assert_eq!(g.param_names, ["g_Na", "g_Kd", "g_leak"]);
    assert_eq!(g.state_names, ["E", "m", "h", "n"]);
    let worst = worst_difference(&file, &builtin);
    assert!(worst <= 1e-12, "relative difference {worst:e}");
}

#[test]
fn seed_problem_started_exactly_at_the_singular_voltages() {
    for e in [-50.0, -48.0, -23.0] {
        let mut file = fixture("seed_hh_file.json");
        file.u0 = Some(vec![e, 0.2, 0.9, 0.1]);
        let worst = worst_difference(&file, &builtin_twin(&file));
        assert!(worst <= 1e-12, "E0 = {e}: relative difference {worst:e}");
    }
}

#[test]
fn rk4_and_dopri5_with_the_continuous_adjoint_match_builtin_hh() {
    let mut rk4 = fixture("seed_hh_file.json");
    rk4.solver = serde_json::from_str(r#"{"method": "rk4", "dt": 0.02}"#).unwrap();
    rk4.tspan = [0.0, 100.0];
    let worst = worst_difference(&rk4, &builtin_twin(&rk4));
    assert!(worst <= 1e-11, "rk4: {worst:e}");

    let text = r#"{"model": {"file": "../models/seed_hh.ode"}, "tspan": [0, 100],
        "solver": {"method": "dopri5", "rtol": 1e-8, "atol": 1e-8},
        "loss": {"kind": "trace_mse", "component": 0, "times": [20, 100], "values": [-60, -65]},
        "adjoint": {"method": "continuous"}}"#;
    let dopri = Problem::from_json_in(text, "dopri", Some(&repo("fixtures"))).unwrap();
    // Step-size control sees rounding-level differences, so the accepted
    // steps may differ: agreement to the tolerances, not to rounding.
    let worst = worst_difference(&dopri, &builtin_twin(&dopri));
    assert!(worst <= 1e-6, "dopri5: {worst:e}");
}

#[test]
fn solve_reports_aux_values_at_the_final_state() {
    let mut p = fixture("seed_hh_file.json");
    p.tspan = [0.0, 5.0];
    let r = solve(&p, None).unwrap();
    assert_eq!(r.aux_names, ["I_Na"]);
    let [e, m, h, _] = r.final_state[..] else {
        panic!()
    };
    let want = -(e - 50.0) * 70.0 * m.powi(3) * h;
    assert!(rel(r.final_aux[0], want) < 1e-14);
    // built-in models have none, and the JSON leaves the keys out
    let b = solve(&builtin_twin(&p), None).unwrap();
    assert!(b.aux_names.is_empty());
    let json = serde_json::to_value(&b).unwrap();
    assert!(json.get("aux_names").is_none());
}

#[test]
fn cortical_model_gradient_matches_richardson_fd_for_every_parameter() {
    let mut p = fixture("cortical_pospischil.json");
    // 30 ms include the first spike (at ≈ 18 ms) and keep the test short.
    p.tspan = [0.0, 30.0];
    let r = check(&p, &CheckOptions::default()).unwrap();
    assert!(r.entries.len() >= 50, "{} parameters", r.entries.len());
    let failed: Vec<_> = r.failed().map(|e| (&e.name, e.rel_error)).collect();
    assert!(r.passed, "failed: {failed:?}");
    assert!(r.entries.iter().all(|e| e.fd_converged));
}

#[test]
fn hh1952_gradient_matches_richardson_fd() {
    let mut p = fixture("hh1952.json");
    p.tspan = [0.0, 20.0];
    let r = check(
        &p,
        &CheckOptions {
            include_u0: true,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    let failed: Vec<_> = r.failed().map(|e| (&e.name, e.rel_error)).collect();
    assert!(r.passed, "failed: {failed:?}");
}

#[test]
fn relative_paths_follow_the_problem_file_and_absolute_paths_work() {
    let dir = std::env::temp_dir().join(format!("revode-model-files-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/decay.ode"),
        "par k=0.5\ninit x=2\nx' = -k*x\n",
    )
    .unwrap();
    let body = r#""tspan": [0, 1], "solver": {"method": "euler", "dt": 0.001}"#;
    std::fs::write(
        dir.join("relative.json"),
        format!(r#"{{"model": {{"file": "sub/decay.ode"}}, {body}}}"#),
    )
    .unwrap();
    let absolute = dir.join("sub/decay.ode");
    std::fs::write(
        dir.join("absolute.json"),
        format!(
            r#"{{"model": {{"file": {:?}}}, {body}}}"#,
            absolute.display().to_string()
        ),
    )
    .unwrap();
    for name in ["relative.json", "absolute.json"] {
        let g = gradient(&Problem::from_path(&dir.join(name)).unwrap()).unwrap();
        // L = x(1) = 2 (1 − k dt)^1000; dL/dk = −1000 dt · 2 (1 − k dt)^999
        let want = -2.0 * (1.0 - 0.0005f64).powi(999);
        assert!(
            rel(g.gradient[0], want) < 1e-12,
            "{name}: {}",
            g.gradient[0]
        );
        assert_eq!(g.param_names, ["k"]);
    }
    // batches resolve against the batch file's folder, per member
    std::fs::write(
        dir.join("batch.json"),
        format!(
            r#"{{"base": {{"model": {{"file": "sub/decay.ode"}}, {body}}},
                "overrides": [{{"params": [0.5]}}, {{"params": [1.0]}}, {{"model": {{"file": "sub/missing.ode"}}}}]}}"#
        ),
    )
    .unwrap();
    let members = revode::batch::read_batch(&dir.join("batch.json")).unwrap();
    assert!(members[0].is_ok() && members[1].is_ok());
    let e = members[2].as_ref().unwrap_err();
    assert!(e.to_string().contains("missing.ode: cannot read"), "{e}");
    assert_eq!(e.exit_code(), 2);
    let results =
        revode::batch::gradients_of_members(members, revode::batch::Parallelism::Sequential)
            .unwrap();
    assert!(results[0].is_ok() && results[1].is_ok() && results[2].is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_file_errors_are_located_and_bad_input() {
    let dir = std::env::temp_dir().join(format!("revode-model-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.ode"), "par k=1\ninit x=1\nx' = -k*y\n").unwrap();
    let text = r#"{"model": {"file": "bad.ode"}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#;
    std::fs::write(dir.join("p.json"), text).unwrap();
    let e = Problem::from_path(&dir.join("p.json")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3:9: unknown name 'y'", dir.join("bad.ode").display())
    );
    assert_eq!(e.exit_code(), 2);
    // an unknown key next to "file" is a problem-file error
    let e = Problem::from_json(r#"{"model": {"file": "x.ode", "n": 3}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#, "p").unwrap_err();
    assert!(e.to_string().contains("unknown field `n`"), "{e}");
    // a run-time NaN is the usual non-finite state error (exit 3)
    std::fs::write(dir.join("nan.ode"), "init x=1\nx' = ln(x - 2)\n").unwrap();
    let text = r#"{"model": {"file": "nan.ode"}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#;
    let p = Problem::from_json_in(text, "p", Some(&dir)).unwrap();
    let e = gradient(&p).unwrap_err();
    assert!(
        e.to_string().contains("state became non-finite at t"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 3);
    std::fs::remove_dir_all(&dir).ok();
}
