//! Stimulus protocols in problem files: gradients across switch times
//! against Richardson-extrapolated finite differences (`revode::check`) for
//! every solver and adjoint, schedule identity, and every input error.

use revode::check::{check, CheckOptions};
use revode::problem::StimulusSpec;
use revode::{Error, Problem};

fn problem(json: &str) -> Problem {
    Problem::from_json(json, "test").unwrap()
}

/// HH over 30 ms with a spike-shaping protocol: g_leak from t0 with an
/// off-grid switch, g_Kd from t = 12 (its `params` value acts before).
fn hh_stimulated(solver: &str, adjoint: &str) -> Problem {
    problem(&format!(
        r#"{{"model": {{"name": "hh"}}, "tspan": [0.0, 30.0],
            "solver": {solver},
            "loss": {{"kind": "trace_mse", "component": 0,
                      "times": [5.0, 10.0, 12.0, 20.0, 30.0],
                      "values": [-60.0, -50.0, -40.0, -60.0, -65.0]}},
            "adjoint": {adjoint},
            "stimulus": {{"g_leak": [[0.0, 0.05], [8.0037, 0.15], [17.5, 0.03]],
                          "g_Kd": [[12.0, 13.0]]}}}}"#
    ))
}

fn checked(p: &Problem, rtol: Option<f64>) -> revode::check::CheckReport {
    let options = CheckOptions {
        include_u0: true,
        rtol,
        ..CheckOptions::default()
    };
    check(p, &options).unwrap()
}

#[test]
fn discrete_adjoint_across_switches_passes_the_fd_check() {
    for (solver, checkpoints) in [
        (r#"{"method": "euler", "dt": 0.01}"#, r#""all""#),
        (
            r#"{"method": "euler", "dt": 0.01}"#,
            r#"{"budget_bytes": 3000}"#,
        ),
        (r#"{"method": "rk4", "dt": 0.02}"#, r#"{"every": 37}"#),
    ] {
        let adjoint = format!(r#"{{"method": "discrete", "checkpoints": {checkpoints}}}"#);
        let p = hh_stimulated(solver, &adjoint);
        let r = checked(&p, None);
        assert!(r.passed, "{solver} {checkpoints}: {:#?}", r.entries);
        assert_eq!(r.rtol, 1e-6);
        let g = &r.gradient;
        assert_eq!(g.stimulated, ["g_Kd", "g_leak"]);
        assert_eq!(g.gradient[2], 0.0, "g_leak's protocol starts at t0");
        assert!(
            g.gradient[1] != 0.0,
            "g_Kd's params value acts before t = 12"
        );
    }
}

#[test]
fn continuous_adjoints_across_switches_pass_the_fd_check() {
    // dopri5: the ODE gradient at tight tolerances, so FD of the loss agrees
    // to far better than the continuous adjoint's default 1e-3.
    let p = hh_stimulated(
        r#"{"method": "dopri5", "rtol": 1e-11, "atol": 1e-11}"#,
        r#"{"method": "continuous", "checkpoints": {"budget_bytes": 30000}}"#,
    );
    let r = checked(&p, Some(1e-6));
    assert!(r.passed, "dopri5: {:#?}", r.entries);
    // Fixed steps: the continuous adjoint differs from the discrete loss's
    // gradient by the discretisation error, which must fall at the scheme's
    // order (RK4: 16× per halving; Euler: 2×) with the switches in place.
    for (method, dt, rtol, least_ratio) in [("rk4", 0.005, 1e-3, 10.0), ("euler", 0.002, 0.1, 1.6)]
    {
        let worst = |dt: f64| {
            let solver = format!(r#"{{"method": "{method}", "dt": {dt}}}"#);
            let p = hh_stimulated(&solver, r#"{"method": "continuous"}"#);
            let r = checked(&p, Some(rtol));
            assert!(r.passed, "{method} dt = {dt}: {:#?}", r.entries);
            r.entries
                .iter()
                .filter(|e| e.fd_converged)
                .map(|e| e.rel_error)
                .fold(0.0, f64::max)
        };
        let (coarse, fine) = (worst(dt), worst(dt / 2.0));
        assert!(
            coarse > least_ratio * fine,
            "{method}: worst relative error {coarse:e} at dt = {dt}, {fine:e} at dt/2"
        );
    }
}

#[test]
fn schedules_give_the_same_bits_with_a_stimulus() {
    for (solver, adjoint, schedules) in [
        (
            r#"{"method": "rk4", "dt": 0.01}"#,
            "discrete",
            [r#""all""#, r#"{"every": 1}"#, r#"{"budget_bytes": 2000}"#],
        ),
        (
            r#"{"method": "dopri5", "rtol": 1e-8, "atol": 1e-8}"#,
            "continuous",
            [r#""all""#, r#"{"every": 3}"#, r#"{"budget_bytes": 20000}"#],
        ),
    ] {
        let runs: Vec<_> = schedules
            .iter()
            .map(|s| {
                let a = format!(r#"{{"method": "{adjoint}", "checkpoints": {s}}}"#);
                revode::gradient(&hh_stimulated(solver, &a)).unwrap()
            })
            .collect();
        for r in &runs[1..] {
            assert_eq!(r.loss.to_bits(), runs[0].loss.to_bits(), "{solver}");
            assert_eq!(r.gradient, runs[0].gradient, "{solver}");
            assert_eq!(r.gradient_u0, runs[0].gradient_u0, "{solver}");
        }
        assert!(runs[2].stats.recomputed_steps > 0, "the budget recomputes");
    }
}

#[test]
fn a_network_with_deferred_sums_passes_across_switches() {
    // hh_network defers its W-gradient in the model's work: the sums are
    // flushed before a protocol's share is dropped.
    let p = problem(
        r#"{"model": {"name": "hh_network", "n": 3}, "tspan": [0.0, 10.0],
            "solver": {"method": "rk4", "dt": 0.02},
            "loss": {"kind": "final"},
            "stimulus": {"W_0_1": [[4.01, 0.3]], "g_leak_2": [[0.0, 0.2], [6.0, 0.05]]}}"#,
    );
    // FD of a network's initial states converges to a few 1e-6 only.
    let r = checked(&p, Some(1e-5));
    assert!(r.passed, "{:#?}", r.failed().collect::<Vec<_>>());
    let names = &r.gradient.param_names;
    let w01 = names.iter().position(|n| n == "W_0_1").unwrap();
    assert!(r.gradient.gradient[w01] != 0.0, "W_0_1 acts before 4.01");
}

#[test]
fn the_solve_follows_the_protocol() {
    let base = r#"{"model": {"name": "hh"}, "tspan": [0.0, 40.0],
                   "solver": {"method": "euler", "dt": 0.01}"#;
    let plain = revode::solve(&problem(&format!("{base}}}")), None).unwrap();
    let stim = problem(&format!(
        r#"{base}, "stimulus": {{"g_Na": [[10.0, 0.0]]}}}}"#
    ));
    let r = revode::solve(&stim, Some(100)).unwrap();
    assert_eq!(r.steps, plain.steps);
    assert_ne!(r.final_state, plain.final_state);
    // With g_Na = 0 from t = 10 the cell cannot spike: E stays below -40 mV.
    assert!(r
        .samples
        .iter()
        .filter(|s| s[0] > 12.0)
        .all(|s| s[1] < -40.0));
}

#[test]
fn problem_files_round_trip_the_stimulus() {
    let p = hh_stimulated(r#"{"method": "euler", "dt": 0.01}"#, "{}");
    let text = serde_json::to_string(&p).unwrap();
    assert_eq!(Problem::from_json(&text, "again").unwrap(), p);
    let plain = problem(
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 1.0], "solver": {"method": "euler", "dt": 0.01}}"#,
    );
    assert!(plain.stimulus.is_none());
    assert!(!serde_json::to_string(&plain).unwrap().contains("stimulus"));
    // Built in code, as `revode fit` does for each sweep.
    let mut q = plain.clone();
    q.stimulus = Some(StimulusSpec::new().with("g_leak", &[[0.0, 0.1], [0.5, 0.2]]));
    let r = revode::gradient(&q).unwrap();
    assert_eq!(r.stimulated, ["g_leak"]);
}

fn error_of(stimulus: &str) -> String {
    let p = problem(&format!(
        r#"{{"model": {{"name": "hh"}}, "tspan": [0.0, 10.0],
            "solver": {{"method": "euler", "dt": 0.01}}, "stimulus": {stimulus}}}"#
    ));
    let mut errors = vec![
        revode::gradient(&p).unwrap_err(),
        revode::solve(&p, None).unwrap_err(),
        revode::loss(&p).unwrap_err(),
    ];
    let e = errors.pop().unwrap();
    for other in errors {
        assert_eq!(other.to_string(), e.to_string());
    }
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    text
}

#[test]
fn every_bad_protocol_is_a_one_line_input_error() {
    let e = error_of(r#"{"I_inj": [[0, 1.0]]}"#);
    assert!(
        e.contains(r#"unknown parameter "I_inj""#) && e.contains("g_Na, g_Kd, g_leak"),
        "{e}"
    );
    let e = error_of(r#"{"g_Na": [[0, 1.0], [10.5, 2.0]]}"#);
    assert!(
        e.contains("g_Na") && e.contains("switch time 1 = 10.5 is outside the time span [0, 10]"),
        "{e}"
    );
    let e = error_of(r#"{"g_Na": [[-1, 1.0]]}"#);
    assert!(e.contains("outside the time span"), "{e}");
    let e = error_of(r#"{"g_Kd": [[2, 1.0], [1, 2.0]]}"#);
    assert!(
        e.contains("g_Kd") && e.contains("strictly increasing"),
        "{e}"
    );
    let e = error_of(r#"{"g_Kd": [[2, 1.0], [2, 2.0]]}"#);
    assert!(e.contains("strictly increasing"), "{e}");
    let e = error_of(r#"{"g_leak": []}"#);
    assert!(e.contains("g_leak") && e.contains("at least one"), "{e}");
    // Not expressible in JSON, but in code.
    let mut p = problem(
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 10.0], "solver": {"method": "euler", "dt": 0.01}}"#,
    );
    p.stimulus = Some(StimulusSpec::new().with("g_Na", &[[1.0, f64::NAN]]));
    let e = revode::gradient(&p).unwrap_err();
    assert!(e.to_string().contains("non-finite value"), "{e}");
    assert_eq!(e.exit_code(), 2);
    // Malformed pairs are JSON errors.
    let e = Problem::from_json(
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 10.0],
            "solver": {"method": "euler", "dt": 0.01}, "stimulus": {"g_Na": [[1.0]]}}"#,
        "test",
    )
    .unwrap_err();
    assert!(matches!(e, Error::Json { .. }), "{e}");
}

#[test]
fn a_stimulated_parameter_cannot_be_fitted() {
    let stim = StimulusSpec::new()
        .with("I_inj", &[[0.0, 0.0], [100.0, 0.6]])
        .with("g_leak", &[[0.0, 0.1]]);
    assert!(stim.check_not_fitted(["g_Na", "g_Kd"]).is_ok());
    let e = stim.check_not_fitted(["g_Na", "I_inj"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("I_inj is stimulated and cannot also be fitted"),
        "{e}"
    );
    assert_eq!(stim.names().collect::<Vec<_>>(), ["I_inj", "g_leak"]);
}
