//! Models with events under bdf through the `revode` binary: the LIF
//! spike-time fixture against its closed form, solve, `grad --batch`, and
//! Zeno behaviour as a one-line exit-3 error naming t.

mod common;
use common::{fixture, run, stderr, stdout};

use std::process::Output;

use serde_json::Value;

fn run_in_dir(args: &[&str], files: &[(&str, &str)]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let paths: Vec<String> = args
        .iter()
        .map(|a| match files.iter().any(|(name, _)| name == a) {
            true => dir.path().join(a).to_str().unwrap().to_string(),
            false => a.to_string(),
        })
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    (run(&args), dir)
}

/// `models/lif.ode` (I = 1.5, τ = 10, reset 1 → 0 from v = 0) fires every
/// `P = τ ln(I/(I − 1))`; the loss `Σ_k ((k + 1)P − τ_k)²` and its
/// derivatives in I and τ in closed form.
fn lif_closed_form(targets: &[f64]) -> (f64, [f64; 2]) {
    let (i, tau) = (1.5_f64, 10.0_f64);
    let period = tau * (i / (i - 1.0)).ln();
    let d_period = [tau * (1.0 / i - 1.0 / (i - 1.0)), period / tau];
    let (mut value, mut d) = (0.0, [0.0; 2]);
    for (k, target) in targets.iter().enumerate() {
        let n = (k + 1) as f64;
        let r = n * period - target;
        value += r * r;
        for (dj, dp) in d.iter_mut().zip(d_period) {
            *dj += 2.0 * r * n * dp;
        }
    }
    (value, d)
}

#[test]
fn lif_bdf_fixture_matches_the_closed_form() {
    let o = run(&["grad", &fixture("lif_bdf.json"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["solver"], "bdf");
    assert_eq!(v["loss_kind"], "event_times");
    assert_eq!(v["stats"]["events"], 5);
    let (value, d) = lif_closed_form(&[10.0, 20.0, 31.0, 44.0]);
    let loss = v["loss"].as_f64().unwrap();
    assert!((loss - value).abs() < 1e-6, "{loss} vs {value}");
    for (k, want) in d.iter().enumerate() {
        let got = v["gradient"][k].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5 * want.abs(),
            "p{k}: {got} vs {want}"
        );
    }
    let o = run(&["solve", &fixture("lif_bdf.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn grad_batch_runs_bdf_with_events() {
    let problem = std::fs::read_to_string(fixture("lif_bdf.json"))
        .unwrap()
        .replace("../models/lif.ode", &fixture("../models/lif.ode"));
    let batch = format!(
        r#"{{"base": {problem}, "overrides": [{{}}, {{"solver": {{"method": "bdf", "rtol": 1e-8, "atol": 1e-8}}}}]}}"#
    );
    let (o, _dir) = run_in_dir(&["grad", "--batch", "b.json"], &[("b.json", &batch)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["ok"], true, "{line}");
        assert_eq!(line["result"]["stats"]["events"], 5, "{line}");
    }
}

#[test]
fn zeno_under_bdf_is_exit_3_naming_t() {
    // The reset lands just below the threshold under a huge drive.
    let model = "par I=1e9\ninit v=0\nv' = I - v\nglobal 1 v-1 {v=0.999999999999}\ndone\n";
    let problem = r#"{"model": {"file": "zeno.ode"}, "tspan": [0, 1],
        "solver": {"method": "bdf", "rtol": 1e-6, "atol": 1e-6},
        "loss": {"kind": "final"}, "adjoint": {"method": "continuous"}}"#;
    for cmd in ["grad", "solve"] {
        let (o, _dir) = run_in_dir(
            &[cmd, "p.json"],
            &[("zeno.ode", model), ("p.json", problem)],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{cmd}: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("more than 100 events") && err.contains("t = "),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
