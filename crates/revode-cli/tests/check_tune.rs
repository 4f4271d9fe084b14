//! End-to-end tests of `revode check` and `revode tune`.

mod common;
use common::{assert_well_formed, fixture, run, stderr, stdout};

use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// A short HH problem with the given model, solver and loss.
fn short_problem(model: &str, solver: &str, loss: &str) -> String {
    format!(
        r#"{{"model": {{"name": "{model}"}}, "tspan": [0.0, 30.0],
            "solver": {solver}, "loss": {loss}}}"#
    )
}

fn write_problem(dir: &Path, text: &str) -> String {
    let path = dir.join("problem.json");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn assert_bad_input(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "nothing on stdout: {}", stdout(o));
}

// ---------------------------------------------------------------- check

/// Every built-in model (add new ones here), every solver, both losses.
#[test]
fn check_passes_on_every_model_solver_and_loss() {
    let dir = tempfile::tempdir().unwrap();
    for solver in [
        r#"{"method": "euler", "dt": 0.01}"#,
        r#"{"method": "rk4", "dt": 0.05}"#,
    ] {
        for loss in [r#"{"kind": "final"}"#, r#"{"kind": "all_steps"}"#] {
            let path = write_problem(dir.path(), &short_problem("hh", solver, loss));
            let o = run(&["check", &path, "--u0", "--json"]);
            let v = json(&o);
            assert_eq!(o.status.code(), Some(0), "{solver} {loss}: {v:#}");
            assert_eq!(v["passed"], true);
            for key in ["model", "solver", "loss_kind", "adjoint_method"] {
                assert!(v[key].is_string(), "{key} missing: {v}");
            }
            for key in ["loss", "steps", "rtol", "atol", "rel_step", "n_failed"] {
                assert!(v[key].is_number(), "{key} missing: {v}");
            }
            let entries = v["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 3 + 4, "params and u0");
            for e in entries {
                for key in ["value", "step", "adjoint", "fd", "fd_error", "abs_error"] {
                    assert!(e[key].is_number(), "{key} missing: {e}");
                }
                assert!(e["fd_converged"].as_bool().unwrap(), "{e}");
                assert!(e["rel_error"].as_f64().unwrap() < 1e-6, "{e}");
            }
        }
    }
}

#[test]
fn check_passes_on_the_network_and_the_continuous_adjoint() {
    // hh_network (130 parameters, a sample of them), dopri5 with the
    // continuous adjoint (final and trace_mse losses), each with dL/du0 for
    // the small models.
    for (file, extra) in [
        ("hh_network_10.json", &["--sample", "12", "--seed", "7"][..]),
        ("hh_dopri5.json", &["--u0"][..]),
        ("hh_dopri5_trace.json", &["--u0"][..]),
    ] {
        let path = fixture(file);
        let mut args = vec!["check", path.as_str(), "--json"];
        args.extend_from_slice(extra);
        let o = run(&args);
        let v = json(&o);
        assert_eq!(o.status.code(), Some(0), "{file}: {v:#}");
        assert_eq!(v["passed"], true, "{file}");
        assert!(!v["entries"].as_array().unwrap().is_empty());
    }
}

#[test]
fn check_passes_on_the_seed_problem() {
    let o = run(&["check", &fixture("hh_seed.json")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for needle in ["g_Na", "g_Kd", "g_leak", "all 3 pass", "finite difference"] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
}

#[test]
fn check_selects_params_by_index_and_by_sample() {
    let p = fixture("hh_rk4_short.json");
    let v = json(&run(&["check", &p, "--params", "2,0", "--json"]));
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["g_Na", "g_leak"]);

    let a = json(&run(&[
        "check", &p, "--sample", "2", "--seed", "7", "--json",
    ]));
    let b = json(&run(&[
        "check", &p, "--sample", "2", "--seed", "7", "--json",
    ]));
    assert_eq!(a["entries"].as_array().unwrap().len(), 2);
    assert_eq!(a["entries"], b["entries"], "same seed, same sample");
}

#[test]
fn write_golden_writes_beside_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::copy(fixture("hh_rk4_short.json"), &good).unwrap();
    let o = run(&["check", good.to_str().unwrap(), "--write-golden"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("expected/good.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(golden["problem"], "good.json");
    assert_eq!(golden["gradient"].as_array().unwrap().len(), 3);
    // A failing check writes nothing: crates/revode-test-cli/tests.
}

#[test]
fn check_bad_input() {
    let p = fixture("hh_rk4_short.json");
    assert_bad_input(
        &run(&["check", &p, "--sample", "4"]),
        "--sample: 4 is not between 1 and the number of parameters of model hh (3)",
    );
    assert_bad_input(
        &run(&["check", &p, "--params", "0,3"]),
        "--params: index 3 out of range",
    );
    assert_bad_input(&run(&["check", &p, "--sample", "0"]), "--sample");
    assert_bad_input(
        &run(&["check", &p, "--params", "0", "--sample", "1"]),
        "cannot be used with",
    );
    assert_bad_input(
        &run(&["check", &p, "--rtol=-1"]),
        "--rtol: -1 is not a finite number ≥ 0",
    );
    assert_bad_input(&run(&["check", &p, "--atol", "nan"]), "--atol: NaN");
    assert_bad_input(&run(&["check", &p, "--fd-step", "0"]), "--fd-step");
    assert_bad_input(&run(&["check", &p, "--seed", "3"]), "--sample");
    assert_bad_input(&run(&["check", &p, "--params", "x"]), "invalid value 'x'");
    assert_bad_input(&run(&["check", &p, "--frobnicate"]), "--frobnicate");
    assert_bad_input(&run(&["check", "/nonexistent.json"]), "cannot read");
}

// ----------------------------------------------------------------- tune

fn tune_json(extra: &[&str]) -> Value {
    let p = fixture("hh_rk4_short.json");
    let mut args = vec!["tune", p.as_str(), "--repeat", "1", "--json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json(&o)
}

#[test]
fn tune_json_is_complete_and_covers_the_baseline() {
    let v = tune_json(&[]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[0]["setting"], "forward");
    assert_eq!(rows[0]["ratio_to_forward"], 1.0);
    let steps = v["steps"].as_u64().unwrap();
    assert_eq!(steps, 4000);
    let settings: Vec<&str> = rows
        .iter()
        .map(|r| r["setting"].as_str().unwrap())
        .collect();
    for s in ["all", "every 2", "every 64", "every 2048", "every 4000"] {
        assert!(settings.contains(&s), "{s} missing: {settings:?}");
    }
    for row in rows {
        for key in [
            "median_seconds",
            "ratio_to_forward",
            "peak_store_bytes",
            "checkpoints_kept",
            "recomputed_steps",
        ] {
            assert!(row[key].is_number(), "{key} missing in {row}");
        }
        assert_eq!(row["same_gradient"], true, "{row}");
    }
    assert_eq!(v["gradients_agree"], true);
    assert_eq!(v["gradient_agreement"], "bitwise");
    let best = v["recommended"].as_u64().unwrap() as usize;
    assert!(best >= 1 && best < rows.len());
    assert_eq!(v["recommended_adjoint"]["method"], "discrete");
    assert_eq!(
        v["recommended_adjoint"]["checkpoints"],
        rows[best]["schedule"]
    );
}

#[test]
fn tune_recommendation_respects_the_memory_budget() {
    // every 64 holds 63 + 63 = 126 states of 4 f64s = 4032 B; all holds 4001.
    let v = tune_json(&["--memory-budget", "4KiB"]);
    assert_eq!(v["memory_budget"], 4096);
    let rows = v["rows"].as_array().unwrap();
    let best = &rows[v["recommended"].as_u64().unwrap() as usize];
    assert!(best["peak_store_bytes"].as_u64().unwrap() <= 4096, "{best}");
    assert_eq!(best["fits_budget"], true);
    // The budget itself is one of the settings (placed by the binomial rule).
    let own = rows
        .iter()
        .find(|r| r["setting"] == "budget 4096 B")
        .unwrap();
    assert_eq!(own["schedule"]["budget_bytes"], 4096);
    assert!(own["peak_store_bytes"].as_u64().unwrap() <= 4096, "{own}");
    let over: Vec<_> = rows.iter().filter(|r| r["fits_budget"] == false).collect();
    assert!(!over.is_empty(), "the budget should exclude settings");
    for r in over {
        assert!(r["peak_store_bytes"].as_u64().unwrap() > 4096);
    }
}

#[test]
fn tune_text_recommends_a_block_to_paste() {
    let p = fixture("hh_rk4_short.json");
    let o = run(&["tune", &p, "--repeat", "1", "--memory-budget", "16KB"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("forward"), "{out}");
    assert!(out.contains("← recommended"), "{out}");
    assert!(out.contains("(bitwise)"), "{out}");
    let block = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"adjoint\": "))
        .unwrap_or_else(|| panic!("no adjoint block in:\n{out}"));
    let v: Value = serde_json::from_str(block).unwrap();
    assert_eq!(v["method"], "discrete");
    assert!(
        v["checkpoints"].is_object() || v["checkpoints"] == "all",
        "{v}"
    );
    assert!(
        stderr(&o).is_empty(),
        "no progress bar off a terminal: {}",
        stderr(&o)
    );
}

#[test]
fn tune_plot_writes_a_well_formed_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("tune.svg");
    let _ = tune_json(&[
        "--plot",
        svg_path.to_str().unwrap(),
        "--memory-budget",
        "8KiB",
    ]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg ") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert_well_formed(&svg);
    for label in [
        "checkpoint interval K",
        "gradient time (median)",
        "peak checkpoint store",
        "forward solve alone",
        "memory budget",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    assert!(svg.matches("<circle").count() >= 2 * 8, "points drawn");
}

#[test]
fn tune_bad_input() {
    let p = fixture("hh_rk4_short.json");
    assert_bad_input(&run(&["tune", &p, "--repeat", "0"]), "--repeat");
    assert_bad_input(
        &run(&["tune", &p, "--memory-budget", "12XB"]),
        "`12XB` is not a size",
    );
    assert_bad_input(
        &run(&["tune", &p, "--memory-budget", "100B"]),
        "--memory-budget: 100 B is too small for any setting",
    );
    assert_bad_input(&run(&["tune", &p, "--frobnicate"]), "--frobnicate");
}
