//! End-to-end tests of `revode fit`: a recovery through files, its JSON,
//! plot and fitted problem file, and every bad-input case (one line on
//! stderr, exit 2, nothing on stdout).

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_well_formed, run};
use revode::fit::Sweep;
use revode::problem::{ModelSpec, SolverSpec};
use revode::Problem;
use serde_json::Value;

const TRUTH: [f64; 3] = [70.0, 10.0, 0.05];

/// `t,E` of the seed model over 50 ms, every 0.5 ms.
fn trace_csv() -> String {
    let problem = Problem {
        model: ModelSpec::Hh,
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, 50.0],
        solver: SolverSpec::Euler { dt: 0.01 },
        loss: None,
        adjoint: Default::default(),
        stimulus: None,
    };
    let sweep = Sweep::synthetic(&problem, "E", 50).unwrap();
    let mut csv = String::from("t,E\n");
    for (t, e) in sweep.times.iter().zip(&sweep.values) {
        csv.push_str(&format!("{t},{e}\n"));
    }
    csv
}

fn fit_json(start: [f64; 3]) -> Value {
    serde_json::json!({
        "model": {"name": "hh"},
        "params": start,
        "free": {"g_Na": {"lower": 1.0, "upper": 200.0}, "g_Kd": {"lower": 0.0}, "g_leak": {}},
        "solver": {"method": "euler", "dt": 0.01},
        "sweeps": [{"tspan": [0.0, 50.0], "data": "trace.csv", "component": "E", "weight": 1.0}],
        "optimizer": {"method": "lbfgs", "max_iters": 200, "gtol": 1e-8, "starts": 1}
    })
}

/// Writes the fit file and `trace.csv` beside it, runs `revode fit FILE extra…`.
fn run_fit(dir: &Path, fit: &Value, csv: &str, extra: &[&str]) -> Output {
    std::fs::write(dir.join("trace.csv"), csv).unwrap();
    let path = dir.join("fit.json");
    std::fs::write(&path, serde_json::to_string_pretty(fit).unwrap()).unwrap();
    let mut args = vec!["fit", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn fit_recovers_and_writes_json_plot_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("fit.svg");
    let out = dir.path().join("fitted.json");
    let o = run_fit(
        dir.path(),
        &fit_json(TRUTH.map(|p| p * 1.3)),
        &trace_csv(),
        &[
            "--json",
            "--plot",
            svg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "params",
        "param_names",
        "loss",
        "iterations",
        "converged",
        "stop_reason",
        "history",
        "seconds",
    ] {
        assert!(r.get(key).is_some(), "--json lacks {key}");
    }
    assert_eq!(
        r["param_names"],
        serde_json::json!(["g_Na", "g_Kd", "g_leak"])
    );
    assert_eq!(r["converged"], true);
    for (v, t) in r["params"].as_array().unwrap().iter().zip(TRUTH) {
        let v = v.as_f64().unwrap();
        assert!(((v - t) / t).abs() <= 1e-6, "{v} vs {t}");
    }
    assert_eq!(
        r["history"].as_array().unwrap().len() as u64,
        r["iterations"].as_u64().unwrap() + 1
    );
    // A progress line per iteration on stderr (not a terminal: plain lines).
    let err = String::from_utf8_lossy(&o.stderr);
    let iterations = r["iterations"].as_u64().unwrap() as usize;
    assert_eq!(
        err.lines().filter(|l| l.starts_with("iter ")).count(),
        iterations + 1
    );
    assert!(err
        .lines()
        .all(|l| l.contains("loss") && l.contains("|grad|")));

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert_well_formed(&svg);
    for label in ["sweep 1", "loss against iteration", "iteration"] {
        assert!(svg.contains(label), "plot lacks {label}");
    }

    // The fitted problem file works with `revode grad`, at a loss near 0.
    let g = run(&["grad", out.to_str().unwrap(), "--json"]);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let g: Value = serde_json::from_slice(&g.stdout).unwrap();
    assert!(g["loss"].as_f64().unwrap() < 1e-12, "{}", g["loss"]);
}

#[test]
fn fit_text_output_has_the_table_and_stop_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The default optimizer: several starts, each listed.
    let mut fit = fit_json(TRUTH.map(|p| p * 0.9));
    fit["optimizer"] = serde_json::json!({});
    let o = run_fit(dir.path(), &fit, &trace_csv(), &["--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "--quiet prints no progress");
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "parameter",
        "start",
        "fitted",
        "lower",
        "upper",
        "g_Na",
        "stopped:",
        "converged",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

/// Runs a bad fit and checks the error contract; returns the message.
fn bad(fit: &Value, csv: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let o = run_fit(dir.path(), fit, csv, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        o.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn with(key: &str, value: Value) -> Value {
    let mut v = fit_json(TRUTH);
    v[key] = value;
    v
}

fn sweep_with(key: &str, value: Value) -> Value {
    let mut v = fit_json(TRUTH);
    v["sweeps"][0][key] = value;
    v
}

#[test]
fn every_bad_input_is_one_line_exit_2() {
    let csv = trace_csv();
    let fit = fit_json(TRUTH);
    let cases: Vec<(Value, String, &str)> = vec![
        // CSV problems.
        (
            sweep_with("data", "missing.csv".into()),
            csv.clone(),
            "cannot read",
        ),
        (fit.clone(), "t,E\n0,1\n0.5,1,2\n".into(), "malformed CSV"),
        (fit.clone(), "time,E\n0.5,1\n".into(), "no column `t`"),
        (fit.clone(), "t,V\n0.5,1\n".into(), "no column `E`"),
        (
            fit.clone(),
            "t,E\n0.5,1\nabc,2\n".into(),
            "not a finite number",
        ),
        (
            fit.clone(),
            "t,E\n1,1\n0.5,2\n".into(),
            "times must increase",
        ),
        (fit.clone(), "t,E\n0.5,1\n0.5,2\n".into(), "appears twice"),
        (
            fit.clone(),
            "t,E\n0.5,1\n60,2\n".into(),
            "outside the sweep's tspan",
        ),
        (
            fit.clone(),
            "t,E\n0.5,1\n0.505,2\n".into(),
            "use the dopri5 solver",
        ),
        (fit.clone(), "t,E\n".into(), "no data rows"),
        // Fit-file problems.
        (
            with("free", serde_json::json!({"g_X": {}})),
            csv.clone(),
            "no parameter `g_X`",
        ),
        (
            with("free", serde_json::json!({"g_Na": {"lower": 80.0}})),
            csv.clone(),
            "not strictly inside",
        ),
        (
            with(
                "free",
                serde_json::json!({"g_Na": {"lower": 90.0, "upper": 80.0}}),
            ),
            csv.clone(),
            "must be below upper",
        ),
        (
            with("free", serde_json::json!({"g_Na": {"lowr": 1.0}})),
            csv.clone(),
            "unknown field `lowr`",
        ),
        (with("sweeps", serde_json::json!([])), csv.clone(), "sweeps"),
        (
            with("optimiser", serde_json::json!({})),
            csv.clone(),
            "unknown field `optimiser`",
        ),
        (
            with("optimizer", serde_json::json!({"method": "bfgs"})),
            csv.clone(),
            "unknown variant `bfgs`",
        ),
        (
            with("optimizer", serde_json::json!({"starts": 0})),
            csv.clone(),
            "starts",
        ),
        (
            sweep_with("component", "V".into()),
            csv.clone(),
            "no state `V`",
        ),
        (sweep_with("weight", (-1.0).into()), csv.clone(), "weight"),
        // Stimulus problems (g_leak stands in for a stimulated parameter).
        (
            sweep_with("stimulus", serde_json::json!({"I_x": [[0, 0.1]]})),
            csv.clone(),
            "unknown parameter \"I_x\"",
        ),
        (
            sweep_with("stimulus", serde_json::json!({"g_leak": [[0, 0.1]]})),
            csv.clone(),
            "cannot also be fitted",
        ),
        (
            {
                let mut v = sweep_with(
                    "stimulus",
                    serde_json::json!({"g_leak": [[0, 0.1], [70, 0.2]]}),
                );
                v["free"] = serde_json::json!({"g_Na": {}});
                v
            },
            csv.clone(),
            "outside the time span",
        ),
        (
            {
                let mut v = sweep_with(
                    "stimulus",
                    serde_json::json!({"g_leak": [[10, 0.1], [5, 0.2]]}),
                );
                v["free"] = serde_json::json!({"g_Na": {}});
                v
            },
            csv.clone(),
            "strictly increasing",
        ),
    ];
    for (fit, csv, expected) in cases {
        let err = bad(&fit, &csv);
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
    // Not JSON at all, and no such fit file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fit.json");
    std::fs::write(&path, "{ not json").unwrap();
    let o = run(&["fit", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let o = run(&["fit", dir.path().join("nope.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}
