//! End-to-end tests of the bdf solver through the `revode` binary: the
//! Robertson fixture against its independent reference, solve with
//! samples and CSV, and one-line errors with the right exit codes.

mod common;
use common::{fixture, run, stderr, stdout};

use std::process::Output;

use serde_json::Value;

fn run_text(cmd: &str, text: &str, files: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let path = dir.path().join("problem.json");
    std::fs::write(&path, text).unwrap();
    run(&[cmd, path.to_str().unwrap()])
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty());
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn robertson_fixture_matches_the_reference() {
    let o = run(&["grad", &fixture("robertson_bdf.json"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["solver"], "bdf");
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("reference/robertson/robertson_bdf.json")).unwrap(),
    )
    .unwrap();
    for key in ["gradient", "gradient_u0"] {
        for (a, b) in numbers(&v[key]).iter().zip(numbers(&reference[key])) {
            assert!(((a - b) / b).abs() < 1e-2, "{key}: {a} vs {b}");
        }
    }
    let steps = v["stats"]["steps"].as_u64().unwrap();
    assert!(steps <= 635, "{steps}");
    assert!(
        v["stats"]["newton"]["forward"]["factorizations"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The text report names the Newton work.
    let o = run(&["grad", &fixture("robertson_bdf.json")]);
    assert!(stdout(&o).contains("newton: forward"), "{}", stdout(&o));
}

#[test]
fn solve_samples_and_csv() {
    let o = run(&[
        "solve",
        &fixture("robertson_bdf.json"),
        "--json",
        "--every",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["t_final"].as_f64(), Some(4e5));
    let samples = v["samples"].as_array().unwrap();
    let steps = v["steps"].as_u64().unwrap() as usize;
    assert_eq!(samples.len(), 1 + steps.div_ceil(50));
    let y3 = v["final_state"][2].as_f64().unwrap();
    assert!((y3 - 0.9950617056290814).abs() < 1e-5, "{y3}");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let o = run(&[
        "solve",
        &fixture("robertson_bdf.json"),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("t,y1,y2,y3\n"), "{}", &text[..40]);
    assert_eq!(text.lines().count(), 2 + steps);
}

/// The fixture with its solver block replaced.
fn robertson_with(solver: &str) -> String {
    format!(
        r#"{{"model": {{"file": "{}"}}, "tspan": [0, 4e5], "solver": {solver},
            "loss": {{"kind": "final", "weights": [0, 0, 1]}},
            "adjoint": {{"method": "continuous"}}}}"#,
        fixture("../models/robertson.ode")
    )
}

#[test]
fn bad_keys_are_one_line_exit_2() {
    let cases = [
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "order": 3}"#,
            "unknown field `order`",
        ),
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "max_order": 0}"#,
            "max_order = 0 is invalid",
        ),
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "max_order": 6}"#,
            "max_order = 6 is invalid",
        ),
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "linear_solver": "lu"}"#,
            "unknown variant `lu`",
        ),
        (r#"{"method": "bdf", "rtol": 0, "atol": 1e-8}"#, "rtol = 0"),
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": [1e-8, 1e-8]}"#,
            "atol has 2 entries",
        ),
        (
            r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "h_min": -1}"#,
            "h_min",
        ),
    ];
    for (solver, needle) in cases {
        for cmd in ["grad", "solve"] {
            assert_error(&run_text(cmd, &robertson_with(solver), &[]), 2, needle);
        }
    }
    let mut v: Value = serde_json::from_str(&robertson_with(
        r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8}"#,
    ))
    .unwrap();
    v["adjoint"] = serde_json::json!({"method": "discrete"});
    assert_error(&run_text("grad", &v.to_string(), &[]), 2, "dopri5 or bdf");
}

#[test]
fn failed_solves_are_one_line_exit_3_naming_t() {
    let o = run_text(
        "grad",
        &robertson_with(r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "max_steps": 10}"#),
        &[],
    );
    assert_error(&o, 3, "max_steps = 10 accepted steps exceeded at t = ");
    let o = run_text(
        "solve",
        &robertson_with(r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "h_min": 1e-2}"#),
        &[],
    );
    assert_error(&o, 3, "fell below the minimum 1e-2 at t = 0");
    // x' = x² has no backward-Euler solution for h > 1/(4x): with the
    // minimum step above that, Newton cannot converge.
    let blow_up = "par k=1\ninit x=1\nx' = k*x^2\n";
    let problem = r#"{"model": {"file": "blow_up.ode"}, "tspan": [0, 5],
        "solver": {"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "h_min": 0.5}}"#;
    let o = run_text("solve", problem, &[("blow_up.ode", blow_up)]);
    assert_error(&o, 3, "Newton iteration failed to converge at t = 0");
    // Without a minimum the steps shrink towards the blow-up at t = 1 until
    // t + h no longer moves t.
    let problem = r#"{"model": {"file": "blow_up.ode"}, "tspan": [0, 5],
        "solver": {"method": "bdf", "rtol": 1e-6, "atol": 1e-8},
        "adjoint": {"method": "continuous"}}"#;
    let o = run_text("grad", problem, &[("blow_up.ode", blow_up)]);
    assert_error(&o, 3, "at t = 0.99");
    // x' = −√(x − 1) at x = 1: f is finite, its Jacobian is not.
    let cusp = "par k=1\ninit x=1\nx' = -k*sqrt(x - 1)\n";
    let problem = r#"{"model": {"file": "cusp.ode"}, "tspan": [0, 5],
        "solver": {"method": "bdf", "rtol": 1e-6, "atol": 1e-8}}"#;
    let o = run_text("solve", problem, &[("cusp.ode", cusp)]);
    assert_error(&o, 3, "singular at t = 0");
}

/// `check` against Richardson-extrapolated finite differences: at a tight
/// tolerance the BDF loss is smooth enough in the inputs for FD to converge
/// (and tiny atol on λ components that start at 0 still gives a first
/// adjoint step that moves t).
#[test]
fn check_passes_at_a_tight_tolerance() {
    let problem = robertson_with(r#"{"method": "bdf", "rtol": 1e-10, "atol": 1e-14}"#);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.json");
    std::fs::write(&path, problem).unwrap();
    let o = run(&["check", path.to_str().unwrap(), "--u0"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("all 6 pass"), "{}", stdout(&o));
}

/// `grad --batch` over k1 values: each member bitwise its one-by-one run.
#[test]
fn batch_members_equal_single_runs() {
    let base = robertson_with(r#"{"method": "bdf", "rtol": 1e-6, "atol": 1e-8}"#);
    let batch = format!(
        r#"{{"base": {base}, "overrides": [{{"params": [0.04, 3e7, 1e4]}}, {{"params": [0.05, 3e7, 1e4]}}]}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.json");
    std::fs::write(&path, batch).unwrap();
    let o = run(&["grad", "--batch", path.to_str().unwrap(), "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (k, k1) in [0.04, 0.05].iter().enumerate() {
        let mut single: Value = serde_json::from_str(&base).unwrap();
        single["params"] = serde_json::json!([k1, 3e7, 1e4]);
        let single_path = dir.path().join(format!("single{k}.json"));
        std::fs::write(&single_path, single.to_string()).unwrap();
        let o = run(&["grad", single_path.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let one: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let member = &lines[k];
        let member = member.get("result").unwrap_or(member);
        assert_eq!(member["gradient"], one["gradient"], "member {k}: {member}");
        assert_eq!(member["gradient_u0"], one["gradient_u0"]);
    }
}
