//! `revode check` and `revode check-model` fail, exit 1 and name the wrong
//! derivative when a model's VJP is wrong: run on the test-only model
//! `hh_broken_vjp` (g_Kd's VJP 1 % too large) through `revode-test-cli`,
//! the real command line with that model registered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_revode-test-cli");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// A short problem on the broken model, written to `dir/name`.
fn broken_problem(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        r#"{"model": {"name": "hh_broken_vjp"}, "tspan": [0.0, 30.0],
            "solver": {"method": "euler", "dt": 0.01}, "loss": {"kind": "final"}}"#,
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn check_fails_on_a_broken_vjp_and_names_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = broken_problem(dir.path(), "problem.json");
    let o = run(&["check", &path]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1 of 3 FAIL"), "{out}");
    assert!(out.trim_end().ends_with(": g_Kd"), "{out}");

    let v = json(&run(&["check", &path, "--json"]));
    assert_eq!(v["passed"], false);
    assert_eq!(v["model"], "hh_broken_vjp");
    assert_eq!(v["n_failed"], 1);
    let failed: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pass"] == false)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["g_Kd"]);
}

#[test]
fn write_golden_refuses_when_the_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = broken_problem(dir.path(), "bad.json");
    let o = run(&["check", &bad, "--write-golden"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("NOT written"), "{}", stdout(&o));
    assert!(!dir.path().join("expected/bad.json").exists());
}

#[test]
fn check_model_flags_a_broken_vjp() {
    let o = run(&["check-model", "hh_broken_vjp", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["passed"], false);
    assert_eq!(v["worst"][0]["wrt_kind"], "param");
    assert_eq!(v["worst"][0]["entry"], "d(dE/dt)/dg_Kd");
    assert!(v["worst"][0]["error"].as_f64().unwrap() > 1e-6, "{v}");
}

#[test]
fn the_test_cli_is_the_real_cli() {
    // Built-in models and every other path behave as in `revode`.
    let o = run(&[
        "grad",
        fixture("hh_rk4_short.json").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["model"], "hh");
    let o = run(&["check-model", "hh_broken_vjp", "--n", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("applies to hh_network only"),
        "{}",
        stderr(&o)
    );
    // a registered model takes no options
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(
        &path,
        r#"{"model": {"name": "hh_broken_vjp", "n": 2}, "tspan": [0, 1],
            "solver": {"method": "euler", "dt": 0.1}}"#,
    )
    .unwrap();
    let o = run(&["grad", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("takes no options"), "{}", stderr(&o));
}
