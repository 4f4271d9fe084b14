//! `revode solve`/`grad`/`check` with a stimulus protocol, and its errors.

mod common;
use common::{fixture, run, stderr};

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

#[test]
fn grad_and_solve_run_the_stimulus_fixtures() {
    for name in ["hh_stimulus.json", "hh_stimulus_dopri5.json"] {
        let o = run(&["grad", &fixture(name), "--json"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["stimulated"], serde_json::json!(["g_Kd", "g_leak"]));
        assert_eq!(v["gradient"][2], 0.0);
        let o = run(&["grad", &fixture(name)]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("(stimulated: g_Kd, g_leak;"), "{text}");
        let o = run(&["solve", &fixture(name), "--json"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    // The Euler grid is cut once, at the off-grid switch 20.005.
    let o = run(&["solve", &fixture("hh_stimulus.json"), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["steps"], 6001);
    // Without a stimulus the report has no `stimulated` key.
    let o = run(&["grad", &fixture("hh_rk4_short.json"), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("stimulated").is_none());
}

#[test]
fn check_passes_on_the_stimulus_fixture() {
    let o = run(&["check", &fixture("hh_stimulus.json"), "--u0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn with_stimulus(stimulus: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"model": {{"name": "hh"}}, "tspan": [0.0, 10.0],
                "solver": {{"method": "euler", "dt": 0.01}}, "stimulus": {stimulus}}}"#
        ),
    )
    .unwrap();
    let out = run(&["grad", path.to_str().unwrap()]);
    // `solve` reads the same protocol and fails the same way.
    let solve = run(&["solve", path.to_str().unwrap()]);
    assert_eq!(solve.status.code(), out.status.code());
    assert_eq!(stderr(&solve), stderr(&out));
    out
}

fn assert_input_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_protocols_exit_2_with_one_line() {
    assert_input_error(
        &with_stimulus(r#"{"I_inj": [[0, 0.6]]}"#),
        r#"stimulus: unknown parameter "I_inj"; the model's parameters are g_Na, g_Kd, g_leak"#,
    );
    assert_input_error(
        &with_stimulus(r#"{"g_leak": [[0, 0.1], [11, 0.2]]}"#),
        "stimulus: g_leak: switch time 1 = 11 is outside the time span [0, 10]",
    );
    assert_input_error(
        &with_stimulus(r#"{"g_leak": [[5, 0.1], [4, 0.2]]}"#),
        "stimulus: g_leak: switch times must be strictly increasing: time 1 = 4 follows 5",
    );
    assert_input_error(&with_stimulus(r#"{"g_leak": []}"#), "at least one");
    assert_input_error(&with_stimulus(r#"{"g_leak": [[1, 2, 3]]}"#), "invalid JSON");
    assert_input_error(
        &with_stimulus(r#"{"g_leak": [[1, 1e999]]}"#),
        "invalid JSON",
    );
}

#[test]
fn a_model_files_injected_current_follows_its_protocol() {
    let o = run(&["grad", &fixture("hh1952_stimulus.json"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stimulated"], serde_json::json!(["I_inj"]));
    // dopri5 + continuous adjoint through the same model file, against FD.
    let dir = tempfile::tempdir().unwrap();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/hh1952.ode");
    let path = dir.path().join("p.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"model": {{"file": {:?}}}, "tspan": [0.0, 30.0], "u0": [2.0, 0.0529, 0.5961, 0.3177],
                "solver": {{"method": "dopri5", "rtol": 1e-10, "atol": 1e-10}},
                "loss": {{"kind": "trace_mse", "component": 0, "times": [10.0, 20.0, 30.0],
                          "values": [5.0, 30.0, 0.0]}},
                "adjoint": {{"method": "continuous"}},
                "stimulus": {{"I_inj": [[0.0, 0.0], [5.0, 10.0], [12.5, 0.0], [15.0, 20.0]]}}}}"#,
            models.to_str().unwrap()
        ),
    )
    .unwrap();
    let o = run(&["check", path.to_str().unwrap(), "--u0", "--rtol", "1e-5"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}
