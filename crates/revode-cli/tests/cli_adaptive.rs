//! End-to-end tests of dopri5, the continuous adjoint and trace_mse through
//! the `revode` binary: outputs, errors and exit codes.

mod common;
use common::run;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .display()
        .to_string()
}

fn run_text(cmd: &str, text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.json");
    std::fs::write(&path, text).unwrap();
    run(&[cmd, path.to_str().unwrap()])
}

/// A short dopri5 problem with continuous adjoint, `key` replaced.
fn problem_with(key: &str, value: &str) -> String {
    let mut v: Value = serde_json::from_str(
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 20.0],
            "solver": {"method": "dopri5", "rtol": 1e-6, "atol": 1e-6},
            "loss": {"kind": "trace_mse", "component": 0, "times": [5.0, 12.5, 20.0],
                     "values": [-60, -50, -55]},
            "adjoint": {"method": "continuous"}}"#,
    )
    .unwrap();
    v[key] = serde_json::from_str(value).unwrap();
    v.to_string()
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn hh_dopri5_fixture_gradient_matches_the_fine_rk4_reference() {
    let o = run(&["grad", &fixture("hh_dopri5.json"), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["solver"], "dopri5");
    // Exact discrete adjoint of RK4 at dt = 5e-4 (tests/continuous.rs).
    let reference = [0.7596091434935409, -15.028515801016127, 84.77530457802327];
    for (g, r) in v["gradient"].as_array().unwrap().iter().zip(reference) {
        let g = g.as_f64().unwrap();
        assert!((g - r).abs() < 1e-4 * r.abs(), "{g} vs {r}");
    }
    let stats = &v["stats"];
    for key in [
        "steps",
        "rejected_steps",
        "backward_steps",
        "backward_rejected",
        "peak_store_bytes",
    ] {
        assert!(stats[key].as_u64().unwrap() > 0, "stats.{key}: {stats}");
    }
}

#[test]
fn trace_fixture_runs_with_every_k_checkpoints() {
    let o = run(&["grad", &fixture("hh_dopri5_trace.json")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("trace_mse") && out.contains("rejected"),
        "{out}"
    );
}

#[test]
fn solve_with_dopri5_lands_on_t1() {
    let o = run(&[
        "solve",
        &fixture("hh_dopri5.json"),
        "--json",
        "--every",
        "1000",
    ]);
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["t_final"], 600.0);
    assert_eq!(v["solver"], "dopri5");
    assert!(v["samples"].as_array().unwrap().len() > 5);
}

#[test]
fn bad_tolerances_exit_2() {
    let solver = |s: &str| problem_with("solver", s);
    let cases = [
        (
            solver(r#"{"method": "dopri5", "rtol": 0, "atol": 1e-6}"#),
            "rtol = 0",
        ),
        (
            solver(r#"{"method": "dopri5", "rtol": -1e-6, "atol": 1e-6}"#),
            "rtol",
        ),
        (
            solver(r#"{"method": "dopri5", "rtol": 1e-6, "atol": -1}"#),
            "atol = -1",
        ),
        (
            solver(r#"{"method": "dopri5", "rtol": 1e-6, "atol": [1e-6, 1e-6]}"#),
            "atol has 2 entries",
        ),
        (
            solver(r#"{"method": "dopri5", "rtol": 1e-6, "atol": 1e-6, "dt": 0.1}"#),
            "unknown field `dt`",
        ),
        (
            solver(r#"{"method": "dopri5", "rtol": 1e-6, "atol": 1e-6, "max_steps": 0}"#),
            "max_steps",
        ),
        (
            problem_with("adjoint", r#"{"method": "continuous", "rtol": 0}"#),
            "rtol",
        ),
        (
            problem_with("adjoint", r#"{"method": "continuous", "atol": [1, 2, 3]}"#),
            "adjoint atol has 3 entries",
        ),
        (
            problem_with(
                "adjoint",
                r#"{"method": "continuous", "error_control": "mu"}"#,
            ),
            "unknown variant `mu`",
        ),
        (
            problem_with("adjoint", r#"{"method": "continuous", "tol": 1}"#),
            "unknown field `tol`",
        ),
    ];
    for (text, needle) in cases {
        assert_error(&run_text("grad", &text), 2, needle);
    }
}

#[test]
fn bad_observations_exit_2() {
    let loss = |times: &str, values: &str, c: usize| {
        problem_with(
            "loss",
            &format!(
                r#"{{"kind": "trace_mse", "component": {c}, "times": {times}, "values": {values}}}"#
            ),
        )
    };
    let cases = [
        (loss("[5, 3]", "[0, 0]", 0), "strictly increasing"),
        (loss("[5, 25]", "[0, 0]", 0), "outside the time span"),
        (loss("[0, 5]", "[0, 0]", 0), "outside the time span"),
        (loss("[5, 6]", "[0]", 0), "2 times, 1 values"),
        (loss("[5]", "[0]", 4), "component 4 is out of range"),
    ];
    for (text, needle) in cases {
        assert_error(&run_text("grad", &text), 2, needle);
    }
    // Fixed grids observe only where they step.
    let mut v: Value = serde_json::from_str(&loss("[5.005, 10]", "[0, 0]", 0)).unwrap();
    v["solver"] = serde_json::from_str(r#"{"method": "rk4", "dt": 0.01}"#).unwrap();
    assert_error(
        &run_text("grad", &v.to_string()),
        2,
        "not on the fixed grid",
    );
}

#[test]
fn unsupported_combinations_exit_2() {
    let all_steps = problem_with("loss", r#"{"kind": "all_steps"}"#);
    assert_error(
        &run_text("grad", &all_steps),
        2,
        "needs a fixed-step solver",
    );
    let discrete = problem_with("adjoint", r#"{"method": "discrete"}"#);
    assert_error(
        &run_text("grad", &discrete),
        2,
        "discrete adjoint needs a fixed-step solver",
    );
    let mut v: Value = serde_json::from_str(&problem_with(
        "adjoint",
        r#"{"method": "continuous", "rtol": 1e-6}"#,
    ))
    .unwrap();
    v["solver"] = serde_json::from_str(r#"{"method": "euler", "dt": 0.01}"#).unwrap();
    assert_error(
        &run_text("grad", &v.to_string()),
        2,
        "adaptive solvers (dopri5, bdf) only",
    );
}

#[test]
fn solve_failures_exit_3_and_name_t() {
    let max_steps = problem_with(
        "solver",
        r#"{"method": "dopri5", "rtol": 1e-8, "atol": 1e-8, "max_steps": 50}"#,
    );
    for cmd in ["solve", "grad"] {
        assert_error(
            &run_text(cmd, &max_steps),
            3,
            "max_steps = 50 accepted steps exceeded at t = ",
        );
    }
    // A spike needs steps far below 0.05 ms.
    let underflow = problem_with(
        "solver",
        r#"{"method": "dopri5", "rtol": 1e-8, "atol": 1e-8, "h_min": 0.05}"#,
    );
    for cmd in ["solve", "grad"] {
        assert_error(
            &run_text(cmd, &underflow),
            3,
            "fell below the minimum 5e-2 at t = ",
        );
    }
}

#[test]
fn continuous_adjoint_with_fixed_steps_runs() {
    let mut v: Value =
        serde_json::from_str(&problem_with("adjoint", r#"{"method": "continuous"}"#)).unwrap();
    v["solver"] = serde_json::from_str(r#"{"method": "rk4", "dt": 0.01}"#).unwrap();
    let o = run_text("grad", &v.to_string());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn budget_checkpoints_give_the_same_gradient() {
    let grad = |schedule: &str| -> Value {
        let text = std::fs::read_to_string(fixture("hh_dopri5.json"))
            .unwrap()
            .replace(
                r#""checkpoints": "all""#,
                &format!(r#""checkpoints": {schedule}"#),
            );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, text).unwrap();
        let o = run(&["grad", path.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let all = grad(r#""all""#);
    let budget = grad(r#"{"budget_bytes": 65536}"#);
    assert_eq!(all["gradient"], budget["gradient"]);
    assert_eq!(all["gradient_u0"], budget["gradient_u0"]);
    assert!(budget["stats"]["peak_store_bytes"].as_u64().unwrap() <= 65536);
    assert!(budget["stats"]["recomputed_steps"].as_u64().unwrap() > 0);
}
