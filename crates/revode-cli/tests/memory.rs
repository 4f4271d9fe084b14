//! Allocations that grow with the input are checked against the memory
//! available before they are made: too much is exit 2 with one line naming
//! the bytes and something that fits, before any step is taken.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_revode");

/// `revode ARGS… FILE` on `text`, with the memory limit `limit` (if any).
fn run(args: &[&str], text: &str, limit: Option<&str>) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.json");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg(&path).env("RUST_LOG", "off");
    match limit {
        Some(l) => cmd.env("REVODE_MEMORY_LIMIT", l),
        None => cmd.env_remove("REVODE_MEMORY_LIMIT"),
    };
    let started = Instant::now();
    let o = cmd.output().expect("binary runs");
    (o, started.elapsed())
}

fn assert_one_line_exit_2(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(o.stdout.is_empty(), "nothing on stdout");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
}

/// 10⁹ Euler steps of the seed neuron (4 states): keeping every state is 32 GB.
const BILLION_STEPS_ALL: &str = r#"{"model": {"name": "hh"}, "tspan": [0.0, 10000000.0],
    "solver": {"method": "euler", "dt": 0.01}, "adjoint": {"checkpoints": "all"}}"#;

#[test]
fn a_billion_steps_with_every_state_kept_fails_fast() {
    // Whatever this machine has: 32 GB of checkpoints is refused unless it
    // is really there; a 1 GiB limit makes the test the same everywhere.
    let (o, took) = run(&["grad"], BILLION_STEPS_ALL, Some("1GiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "checkpoints \"all\" over 1000000000 steps",
            "32000000000 bytes",
            "1073741824 bytes (1.0 GiB) are available (REVODE_MEMORY_LIMIT)",
            "\"checkpoints\": {\"every\": 31623}",
        ],
    );
    // Before any step: 10⁹ steps would take seconds at least.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The same without a limit set: MemAvailable decides (no abort).
    let (o, _) = run(&["grad"], BILLION_STEPS_ALL, None);
    if !o.status.success() {
        assert_one_line_exit_2(&o, &["32000000000 bytes", "MemAvailable"]);
    }
}

#[test]
fn the_suggested_schedule_fits() {
    // Tiny limit: only a byte budget fits, beside the model's parameter
    // buffers (so not the whole 64 KiB), and it is accepted (on a short run).
    let (o, _) = run(&["grad"], BILLION_STEPS_ALL, Some("64KiB"));
    assert_one_line_exit_2(&o, &["\"checkpoints\": {\"budget_bytes\": 32768}"]);
    let short = r#"{"model": {"name": "hh"}, "tspan": [0.0, 100.0],
        "solver": {"method": "euler", "dt": 0.01},
        "adjoint": {"checkpoints": {"budget_bytes": 32768}}}"#;
    let (o, _) = run(&["grad", "--json"], short, Some("64KiB"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An adaptive gradient's store grows with the steps taken: against a set
/// limit it counts the parameters, the solver's matrices and the adjoint's
/// buffers with its slots, and the budget it proposes fits beside them.
#[test]
fn an_adaptive_store_is_counted_with_what_the_run_holds_beside_it() {
    let problem = |checkpoints: &str| {
        format!(
            r#"{{"model": {{"name": "hh_network", "n": 16}}, "tspan": [0.0, 20.0],
            "solver": {{"method": "bdf", "rtol": 1e-6, "atol": 1e-8, "linear_solver": "dense"}},
            "adjoint": {{"method": "continuous", "checkpoints": {checkpoints}}}}}"#
        )
    };
    // The dense matrices of 64 states and the rest come to ~170 KiB, so
    // 200 KiB leaves the store too little to keep every state.
    let (o, _) = run(&["grad"], &problem("\"all\""), Some("200KiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "checkpoints \"all\" over an adaptive run, beside",
            "KiB the run holds outside the store",
            "(200.0 KiB) are available (REVODE_MEMORY_LIMIT)",
            "which fits beside them",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let budget: usize = err
        .split("{\"budget_bytes\": ")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no budget proposed: {err}"));
    // Far below the limit: what the run holds beside the store is left out.
    assert!(budget < 200 * 1024 / 2, "{budget}");
    let proposed = problem(&format!("{{\"budget_bytes\": {budget}}}"));
    let (o, _) = run(&["grad", "--json"], &proposed, Some("200KiB"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A budget that fits alone but not beside the rest names both.
    let (o, _) = run(
        &["grad"],
        &problem("{\"budget_bytes\": 120000}"),
        Some("200KiB"),
    );
    assert_one_line_exit_2(
        &o,
        &["checkpoints {\"budget_bytes\": 120000} over an adaptive run, beside"],
    );
}

#[test]
fn a_large_network_is_refused_before_it_is_built() {
    let text = r#"{"model": {"name": "hh_network", "n": 4096}, "tspan": [0.0, 0.1],
        "solver": {"method": "euler", "dt": 0.01}}"#;
    for cmd in ["grad", "solve"] {
        let (o, _) = run(&[cmd], text, Some("256MiB"));
        assert_one_line_exit_2(&o, &["model hh_network with 16789504 parameters"]);
    }
}

/// An implicit solver's dense iteration matrices grow with the square of
/// the states: refused before they are made, pointing to sparse factors
/// where those fit.
#[test]
fn dense_iteration_matrices_of_a_large_model_are_refused_before_they_are_made() {
    let problem = |linear: &str| {
        format!(
            r#"{{"model": {{"name": "hh_network", "n": 1024}}, "tspan": [0.0, 0.1],
            "solver": {{"method": "beuler", "dt": 0.05, "linear_solver": "{linear}"}}}}"#
        )
    };
    let what = "the beuler solver's dense iteration matrices for hh_network (4096 states)";
    let sparse = "set \"linear_solver\": \"sparse\"";
    // One 4096² matrix and its Jacobian for a solve (~180 MB); the gradient's
    // backward sweep holds more (~1 GB), sparse factors about half of that.
    for (cmd, limit) in [("solve", "150MiB"), ("grad", "800MiB")] {
        let (o, took) = run(&[cmd], &problem("dense"), Some(limit));
        assert_one_line_exit_2(&o, &[what, "are needed", sparse]);
        assert!(took < Duration::from_secs(5), "{cmd} took {took:?}");
    }
    // Too little even for sparse factors: no advice to switch.
    let (o, _) = run(&["grad"], &problem("sparse"), Some("300MiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "sparse iteration matrices",
            "use a smaller model or an explicit method",
        ],
    );
}

#[test]
fn a_malformed_limit_is_bad_input_naming_the_forms() {
    let text = r#"{"model": {"name": "hh"}, "tspan": [0.0, 1.0],
        "solver": {"method": "euler", "dt": 0.01}}"#;
    let needles = [
        "REVODE_MEMORY_LIMIT = \"plenty\" is not a memory limit",
        "KiB",
        "512MiB",
        "\"unlimited\"",
    ];
    for args in [
        &["grad"][..],
        &["solve"],
        &["solve", "--every", "1"],
        &["check"],
    ] {
        let (o, _) = run(args, text, Some("plenty"));
        assert_one_line_exit_2(&o, &needles);
    }
    let batch = format!("[{text}, {text}]");
    let (o, _) = run(&["grad", "--batch"], &batch, Some("plenty"));
    assert_one_line_exit_2(&o, &needles);
    // set but empty reads as not set; a valid value works
    for ok in ["", "1GiB", "unlimited"] {
        let (o, _) = run(&["grad"], text, Some(ok));
        assert!(
            o.status.success(),
            "{ok:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// 10⁹ Euler steps, nothing stored for a gradient (solve only).
const BILLION_STEPS: &str = r#"{"model": {"name": "hh"}, "tspan": [0.0, 10000000.0],
    "solver": {"method": "euler", "dt": 0.01}}"#;

#[test]
fn keeping_every_state_of_a_billion_steps_fails_fast() {
    let (o, took) = run(&["solve", "--every", "1"], BILLION_STEPS, Some("1GiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "--every: sampling every 1 of 1000000000 steps keeps 1000000001 states",
            "1073741824 bytes (1.0 GiB) are available (REVODE_MEMORY_LIMIT)",
            "steps fits",
            "--csv FILE",
        ],
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Kept samples count the parameters and an implicit solver's matrices
/// with their rows against a set limit, and the interval they suggest fits
/// beside them.
#[test]
fn kept_samples_are_counted_with_what_the_run_holds_beside_them() {
    // 401 rows of 64 states (~220 KiB) fit 250 KiB alone, not beside the
    // dense matrices of the beuler solve (~80 KiB).
    let text = r#"{"model": {"name": "hh_network", "n": 16}, "tspan": [0.0, 20.0],
        "solver": {"method": "beuler", "dt": 0.05, "linear_solver": "dense"}}"#;
    let (o, _) = run(&["solve", "--every", "1"], text, Some("250KiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "sampling every 1 of 400 steps keeps 401 states beside",
            "KiB the run holds (parameters, solver matrices)",
            "(250.0 KiB) are available (REVODE_MEMORY_LIMIT)",
            "sampling every 2 steps fits",
        ],
    );
    let (o, _) = run(&["solve", "--every", "2", "--json"], text, Some("250KiB"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_suggested_sampling_interval_fits() {
    // 10⁵ steps under a 16 KiB limit: every state does not fit, the
    // suggested interval does.
    let text = r#"{"model": {"name": "hh"}, "tspan": [0.0, 1000.0],
        "solver": {"method": "euler", "dt": 0.01}}"#;
    let (o, _) = run(&["solve", "--every", "1"], text, Some("16KiB"));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    let s: u64 = err
        .split("sampling every ")
        .nth(2)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no interval in: {err}"));
    let (o, _) = run(
        &["solve", "--every", &s.to_string(), "--json"],
        text,
        Some("16KiB"),
    );
    assert!(
        o.status.success(),
        "every {s}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["samples"].as_array().unwrap().len() as u64,
        1 + 100_000u64.div_ceil(s)
    );
    let (o, _) = run(
        &["solve", "--every", &(s - 1).to_string()],
        text,
        Some("16KiB"),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn adaptive_samples_stop_when_they_outgrow_memory_and_csv_streams() {
    let text = r#"{"model": {"name": "hh"}, "tspan": [0.0, 1000.0],
        "solver": {"method": "dopri5", "rtol": 1e-8, "atol": 1e-10, "max_steps": 100000000}}"#;
    let (o, took) = run(&["solve", "--every", "1"], text, Some("64KiB"));
    assert_one_line_exit_2(
        &o,
        &[
            "--every: sampling every 1 accepted steps keeps",
            "states by t = ",
            "65536 bytes (64.0 KiB) are available (REVODE_MEMORY_LIMIT)",
            "--csv FILE",
        ],
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // --csv keeps nothing: the same solve runs within the same limit.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let (o, _) = run(
        &["solve", "--every", "1", "--csv", csv.to_str().unwrap()],
        text,
        Some("64KiB"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(
        rows > 65536 / 80,
        "{rows} rows: more than would have been kept"
    );
}

#[test]
fn batch_members_run_only_as_many_at_once_as_fit_together() {
    // Three members each keeping every state of 10 000 steps (≈ 320 KB):
    // one fits a 500 KB limit, two do not.
    let batch = r#"{"base": {"model": {"name": "hh"}, "tspan": [0.0, 100.0],
        "solver": {"method": "euler", "dt": 0.01}, "adjoint": {"checkpoints": "all"}},
        "overrides": [{"params": [70, 10, 0.05]}, {"params": [60, 10, 0.05]},
                      {"params": [50, 10, 0.05]}]}"#;
    // Each member's loss and gradients (the timings in stats differ).
    let lines = |o: &Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let r = &v["result"];
                serde_json::json!([v["ok"], r["loss"], r["gradient"], r["gradient_u0"]])
            })
            .collect()
    };
    let (o, _) = run(&["grad", "--threads", "2", "--batch"], batch, Some("500KB"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.starts_with("note: running 1 member at a time instead of 2: the 2 largest need up to"),
        "{err}"
    );
    assert!(
        err.contains("(500000 B) are available (REVODE_MEMORY_LIMIT)"),
        "{err}"
    );
    let limited = lines(&o);
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|l| l[0] == true), "{limited:?}");
    // With room for two, two run at once and say nothing; results are the same bits.
    let (o, _) = run(&["grad", "--threads", "2", "--batch"], batch, Some("1MB"));
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lines(&o), limited);
    // three at once need ≈ 960 KB: two of three under 700 KB
    let (o, _) = run(&["grad", "--threads", "3", "--batch"], batch, Some("700KB"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("note: running 2 members at a time instead of 3"),
        "{err}"
    );
}

#[test]
fn tiny_and_huge_numbers_in_errors_print_short() {
    for (text, needle) in [
        (
            r#"{"model": {"name": "hh"}, "tspan": [0.0, 1.0], "solver": {"method": "euler", "dt": 1e-300}}"#,
            "with dt = 1e-300 needs 9.999999999999999e299 steps",
        ),
        (
            r#"{"model": {"name": "hh"}, "tspan": [0.0, 1.0], "solver": {"method": "euler", "dt": -1e-300}}"#,
            "got -1e-300",
        ),
    ] {
        let (o, _) = run(&["grad"], text, None);
        assert_one_line_exit_2(&o, &[needle]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.len() < 200, "{err}");
    }
}
