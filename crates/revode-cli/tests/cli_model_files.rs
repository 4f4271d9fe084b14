//! The `revode` binary on model files: every command, and errors as one
//! `error: FILE:LINE:COL: …` line with exit 2 and nothing on stdout.

mod common;
use common::{run, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A short seed problem through the file, written next to a copy of it.
fn short_problem(dir: &Path, extra: &str) -> PathBuf {
    std::fs::copy(repo("models/seed_hh.ode"), dir.join("seed_hh.ode")).unwrap();
    let path = dir.join("p.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"model": {{"file": "seed_hh.ode"}}, "tspan": [0, 20],
                "solver": {{"method": "euler", "dt": 0.01}}{extra}}}"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn every_command_runs_on_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = short_problem(dir.path(), "");
    let p = p.to_str().unwrap();
    let o = run(&["grad", p, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["model"], "seed_hh.ode");
    assert_eq!(v["param_names"][2], "g_leak");

    let o = run(&["solve", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("aux at the final state:\n  I_Na"),
        "{}",
        stdout(&o)
    );
    let o = run(&["solve", p, "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["aux_names"][0], "I_Na");
    assert_eq!(v["final_aux"].as_array().unwrap().len(), 1);

    let o = run(&["check", p, "--u0"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("all 7 pass"), "{}", stdout(&o));

    let o = run(&["tune", p, "--repeat", "1", "--quiet", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let batch = dir.path().join("batch.json");
    std::fs::write(
        &batch,
        r#"{"base": {"model": {"file": "seed_hh.ode"}, "tspan": [0, 5], "solver": {"method": "euler", "dt": 0.01}},
            "overrides": [{"params": [70, 10, 0.05]}, {"params": [60, 10, 0.05]}]}"#,
    )
    .unwrap();
    let o = run(&["grad", "--batch", batch.to_str().unwrap(), "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 2);

    let o = run(&[
        "check-model",
        repo("models/seed_hh.ode").to_str().unwrap(),
        "--samples",
        "6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 6 × 4 × (4 + 3) from the VJP, 6 × 4 × 4 from the model's own Jacobian
    let out = stdout(&o);
    assert!(
        out.starts_with("seed_hh.ode: 264 Jacobian entries at 6 points"),
        "{out}"
    );
    assert!(
        out.lines().nth(1).unwrap().starts_with(
            "  of which the model's own state Jacobian: 10 nonzeros of 16 (62.50%), 96 entries"
        ),
        "{out}"
    );
    let o = run(&[
        "check-model",
        repo("models/seed_hh.ode").to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["jacobian"]["nnz"], 10);
    assert_eq!(v["jacobian"]["entries_checked"], 4 * 16);
    assert!(v["jacobian"]["max_error"].as_f64().unwrap() < 1e-6);
}

fn assert_located_error(o: &Output, file: &Path, line: usize, col: usize, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(stdout(o).is_empty(), "stdout: {}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let prefix = format!("error: {}:{line}:{col}: ", file.display());
    assert!(err.starts_with(&prefix), "{err} (expected {prefix})");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn model_file_errors_are_one_located_line_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("bad.ode");
    let problem = dir.path().join("p.json");
    std::fs::write(
        &problem,
        r#"{"model": {"file": "bad.ode"}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#,
    )
    .unwrap();
    for (text, line, col, needle) in [
        ("init x=1\nx' = (x + 1", 2, 12, "expected ')'"),
        ("init x=1\nx' = y", 2, 6, "unknown name 'y'"),
        ("init x=1, z=0\nx' = 1", 1, 11, "no derivative"),
        ("init x=1\nx' = a\na = b\nb = a", 3, 1, "cycle"),
        (
            "f(a)=a\ninit x=1\nx' = f(x, x)",
            3,
            6,
            "takes 1 argument, got 2",
        ),
        (
            "init x=1\nx' = 1\ntable T tab.dat",
            3,
            1,
            "'table' is an XPPAUT feature",
        ),
    ] {
        std::fs::write(&model, text).unwrap();
        for cmd in ["grad", "solve", "check", "tune"] {
            let o = run(&[cmd, problem.to_str().unwrap()]);
            assert_located_error(&o, &model, line, col, needle);
        }
        let o = run(&["check-model", model.to_str().unwrap()]);
        assert_located_error(&o, &model, line, col, needle);
    }
    // an unreadable model file
    let missing = dir.path().join("missing.ode");
    let o = run(&["check-model", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).starts_with(&format!("error: {}: cannot read", missing.display())));
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
    // a folder, with or without a trailing separator, is not a built-in name
    for folder in [
        dir.path().display().to_string(),
        format!("{}/", dir.path().display()),
    ] {
        let o = run(&["check-model", &folder]);
        assert_eq!(o.status.code(), Some(2), "{folder}");
        assert!(stdout(&o).is_empty());
        assert!(stderr(&o).contains("is a folder"), "{}", stderr(&o));
    }
}

#[test]
fn run_time_nan_is_the_non_finite_state_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nan.ode"), "init x=1\nx' = ln(x - 2)\n").unwrap();
    let problem = dir.path().join("p.json");
    std::fs::write(
        &problem,
        r#"{"model": {"file": "nan.ode"}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#,
    )
    .unwrap();
    let o = run(&["grad", problem.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).starts_with("error: state became non-finite at t"),
        "{}",
        stderr(&o)
    );
}

/// `revode grad cell.ode`: the file's `@` options set the span and solver;
/// a problem file silent on them takes them from its model file.
#[test]
fn a_model_file_runs_with_its_at_options() {
    let dir = tempfile::tempdir().unwrap();
    let ode = dir.path().join("decay.ode");
    std::fs::write(
        &ode,
        "par a=1\ninit x=1\nx' = -a*x\n@ total=2, dt=.01, meth=euler\n@ xp=t, yp=x\ndone\n",
    )
    .unwrap();
    let o = run(&["grad", ode.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["solver"], "euler");
    assert_eq!(v["stats"]["steps"], 200);
    // final loss of explicit Euler: x(2) = 0.99^200, dL/da = -2·0.99^199
    let loss = v["loss"].as_f64().unwrap();
    assert!((loss - 0.99f64.powi(200)).abs() < 1e-14, "{loss}");
    let dl_da = v["gradient"][0].as_f64().unwrap();
    assert!((dl_da + 2.0 * 0.99f64.powi(199)).abs() < 1e-13, "{dl_da}");

    let o = run(&["solve", ode.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["t_final"], 2.0);

    // the problem file's solver wins, the span comes from the file
    let p = dir.path().join("p.json");
    std::fs::write(
        &p,
        r#"{"model": {"file": "decay.ode"}, "solver": {"method": "rk4", "dt": 0.5}}"#,
    )
    .unwrap();
    let o = run(&["grad", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["solver"].as_str(), v["stats"]["steps"].as_u64()),
        (Some("rk4"), Some(4))
    );
}

#[test]
fn bad_at_options_and_missing_spans_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (option, needle) in [
        (
            "@ meth=adams",
            "@ meth=adams: XPPAUT's adams has no counterpart in revode",
        ),
        ("@ total=-5", "@ total=-5: the span must be positive"),
        ("@ dt=fast", "@ dt=fast: not a finite number"),
    ] {
        let ode = dir.path().join("m.ode");
        std::fs::write(&ode, format!("init x=1\nx' = -x\n{option}\n")).unwrap();
        let o = run(&["grad", ode.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{option}");
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    // a built-in model has no options to fall back on
    let p = dir.path().join("p.json");
    std::fs::write(
        &p,
        r#"{"model": {"name": "hh"}, "solver": {"method": "euler", "dt": 0.01}}"#,
    )
    .unwrap();
    let o = run(&["grad", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing field `tspan`"),
        "{}",
        stderr(&o)
    );
}
