//! The `revode` binary with `"method": "beuler"`: solve (streamed samples,
//! CSV), grad, check and tune, and its failures as one-line errors with
//! their exit codes (Newton failing and a singular iteration matrix: 3,
//! naming t and the step; bad keys and the continuous adjoint: 2).

mod common;
use common::{run, stderr, stdout};

use std::path::Path;

use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const SHORT: &str = r#"{"model": {"name": "hh"}, "tspan": [0, 10],
    "solver": {"method": "beuler", "dt": 0.01}, "loss": {"kind": "all_steps"}}"#;

#[test]
fn solve_streams_samples_and_reports_newton() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "p.json", SHORT);
    let o = run(&["solve", &p, "--every", "250"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("hh beuler 1000 steps to t = 10"), "{text}");
    assert!(text.contains("newton: "), "{text}");
    // u0 and every 250th state: t = 0, 2.5, 5, 7.5, 10.
    assert!(text.contains("\n  7.500000000e0  "), "{text}");

    let csv = dir.path().join("out.csv");
    let o = run(&[
        "solve",
        &p,
        "--every",
        "100",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines[0], "t,E,m,h,n");
    assert_eq!(lines.len(), 1 + 11);
    assert!(lines[11].starts_with("10,"), "{}", lines[11]);

    let o = run(&["solve", &p, "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["solver"], "beuler");
    assert!(v["newton"]["iterations"].as_u64().unwrap() >= 1000);
    // The CSV's last row is the final state, in full precision.
    let last: Vec<f64> = lines[11].split(',').map(|x| x.parse().unwrap()).collect();
    let final_state: Vec<f64> = v["final_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(&last[1..], &final_state[..]);
}

#[test]
fn grad_check_and_tune_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "p.json", SHORT);
    let o = run(&["grad", &p, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let implicit = &v["stats"]["implicit"];
    assert_eq!(implicit["linear_solver"], "dense");
    assert!(implicit["newton"]["jacobian_evaluations"].as_u64().unwrap() >= 1);
    assert!(implicit["backward"]["transposed_solves"].as_u64().unwrap() >= 1000);

    let o = run(&["grad", &p]);
    assert!(stdout(&o).contains("newton (dense LU): "), "{}", stdout(&o));

    // Tight Newton: FD of the computed solution then judges to 1e-6.
    let tight = write(
        dir.path(),
        "tight.json",
        &SHORT.replace(r#""dt": 0.01"#, r#""dt": 0.01, "newton_tol": 1e-13"#),
    );
    let o = run(&["check", &tight, "--u0", "--fd-step", "1e-3"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("all 7 pass"), "{}", stdout(&o));

    let o = run(&["tune", &p, "--repeat", "1", "--quiet", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["gradient_agreement"], "bitwise");
}

fn model_problem(dir: &Path, ode: &str, dt: f64) -> String {
    write(dir, "m.ode", ode);
    write(
        dir,
        "m.json",
        &format!(
            r#"{{"model": {{"file": "m.ode"}}, "tspan": [0, 2],
                "solver": {{"method": "beuler", "dt": {dt}}}}}"#
        ),
    )
}

#[test]
fn newton_failure_and_singular_matrix_exit_3_naming_t_and_the_step() {
    let dir = tempfile::tempdir().unwrap();
    // x' = x²: x = 1 + 0.5 x² has no real root, so step 1 cannot converge.
    let p = model_problem(dir.path(), "init x=1\nx' = x^2\n", 0.5);
    for command in ["solve", "grad"] {
        let o = run(&[command, &p]);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
        let e = stderr(&o);
        assert!(
            e.starts_with("error: Newton's iteration did not converge at t = 0.5 (step 1)"),
            "{e}"
        );
        assert!(e.contains("try a smaller dt"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // x' = 2x with dt = 0.5: I − hJ = 0.
    let p = model_problem(dir.path(), "par a=2\ninit x=1\nx' = a*x\n", 0.5);
    let o = run(&["grad", &p]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("error: the iteration matrix I − h·J is singular at t = 0.5 (step 1"),
        "{e}"
    );
    assert!(e.contains("try a smaller dt"), "{e}");
    // A smaller dt solves it.
    let p = model_problem(dir.path(), "par a=2\ninit x=1\nx' = a*x\n", 0.1);
    assert!(run(&["grad", &p]).status.success());
}

#[test]
fn bad_keys_and_the_continuous_adjoint_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (solver, needle) in [
        (r#""newton_tol": 0"#, "newton_tol = 0 is invalid"),
        (r#""newton_tol": 1"#, "newton_tol = 1 is invalid"),
        (r#""newton_tol": "tight""#, "invalid type"),
        (
            r#""linear_solver": "qr""#,
            "expected one of `auto`, `dense`, `sparse`",
        ),
        (
            r#""newton_iterations": 4"#,
            "unknown field `newton_iterations`",
        ),
    ] {
        let p = write(
            dir.path(),
            "bad.json",
            &format!(
                r#"{{"model": {{"name": "hh"}}, "tspan": [0, 1],
                    "solver": {{"method": "beuler", "dt": 0.01, {solver}}}}}"#
            ),
        );
        for command in ["solve", "grad"] {
            let o = run(&[command, &p]);
            assert_eq!(o.status.code(), Some(2), "{solver}: {}", stderr(&o));
            assert!(stderr(&o).contains(needle), "{solver}: {}", stderr(&o));
            assert!(stdout(&o).is_empty());
        }
    }
    let p = write(
        dir.path(),
        "c.json",
        r#"{"model": {"name": "hh"}, "tspan": [0, 1],
            "solver": {"method": "beuler", "dt": 0.01}, "adjoint": {"method": "continuous"}}"#,
    );
    let o = run(&["grad", &p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not available for beuler"),
        "{}",
        stderr(&o)
    );
}

/// The LIF's spike times k·τ ln(I/(I − 1)) against the targets of
/// `fixtures/lif_beuler.json`: the loss and its gradient in (I, τ).
fn lif_spike_loss(i: f64, tau: f64) -> f64 {
    let period = tau * (i / (i - 1.0)).ln();
    [10.0, 20.0, 31.0, 44.0]
        .iter()
        .enumerate()
        .map(|(k, t)| ((k + 1) as f64 * period - t).powi(2))
        .sum()
}

#[test]
fn grad_locates_events_with_beuler_and_approaches_the_closed_form() {
    let o = run(&["grad", &common::fixture("lif_beuler.json"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["solver"], "beuler");
    assert_eq!(v["stats"]["events"], 5);
    // First order in dt = 0.002: about 1 % off the closed form.
    let loss = v["loss"].as_f64().unwrap();
    let want = lif_spike_loss(1.5, 10.0);
    assert!((loss - want).abs() < 0.02 * want, "{loss} vs {want}");
    let g = v["gradient"].as_array().unwrap();
    let h = 1e-6;
    let want = [
        (lif_spike_loss(1.5 + h, 10.0) - lif_spike_loss(1.5 - h, 10.0)) / (2.0 * h),
        (lif_spike_loss(1.5, 10.0 + h) - lif_spike_loss(1.5, 10.0 - h)) / (2.0 * h),
    ];
    for (k, want) in want.iter().enumerate() {
        let got = g[k].as_f64().unwrap();
        assert!(
            (got - want).abs() < 0.02 * want.abs(),
            "p{k}: {got} vs {want}"
        );
    }
    // And against central differences of its own solution (small FD steps:
    // a large one moves event times across grid times, where the chord's
    // slope has kinks).
    let path = common::fixture("lif_beuler.json");
    let o = run(&["check", &path, "--fd-step", "1e-4"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn a_zeno_model_with_beuler_is_exit_3_naming_t() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "zeno.ode",
        "par I=1e9\ninit v=0\nv' = I - v\nglobal 1 v-1 {v=0.999999999999}\ndone\n",
    );
    let p = write(
        dir.path(),
        "z.json",
        r#"{"model": {"file": "zeno.ode"}, "tspan": [0, 1],
            "solver": {"method": "beuler", "dt": 0.1}, "loss": {"kind": "final", "weights": [1]}}"#,
    );
    for command in ["grad", "solve"] {
        let o = run(&[command, &p]);
        assert_eq!(o.status.code(), Some(3), "{command}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("more than 100 events in one step at t = "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
