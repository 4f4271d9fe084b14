//! End-to-end tests of the `revode` binary: outputs, errors and exit codes.

mod common;
use common::{run, stderr, BIN};

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Writes `text` as a problem file and runs `revode <cmd> FILE [extra]`.
fn run_text(cmd: &str, text: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.json");
    std::fs::write(&path, text).unwrap();
    let mut args = vec![cmd, path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// A valid short problem with one key replaced (or added).
fn short_problem_with(key: &str, value: &str) -> String {
    let mut v: Value = serde_json::from_str(
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 5.0],
            "solver": {"method": "euler", "dt": 0.01},
            "loss": {"kind": "final"}}"#,
    )
    .unwrap();
    v[key] = serde_json::from_str(value).unwrap();
    v.to_string()
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.starts_with("error: "),
        "one-line error expected, got: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "nothing on stdout on error");
}

#[test]
fn grad_json_has_the_promised_keys() {
    let o = run(&["grad", fixture("hh_seed.json").to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["loss"].is_f64());
    assert_eq!(v["gradient"].as_array().unwrap().len(), 3);
    assert_eq!(v["gradient_u0"].as_array().unwrap().len(), 4);
    let stats = &v["stats"];
    assert_eq!(stats["steps"], 60_000);
    for key in [
        "checkpoints_kept",
        "recomputed_steps",
        "peak_store_bytes",
        "forward_seconds",
        "backward_seconds",
    ] {
        assert!(stats[key].is_number(), "stats.{key} missing: {stats}");
    }
    for g in v["gradient"].as_array().unwrap() {
        assert!(g.as_f64().unwrap().is_finite());
    }
}

#[test]
fn grad_text_names_parameters() {
    let o = run(&["grad", fixture("hh_seed_all_steps.json").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    for name in ["g_Na", "g_Kd", "g_leak", "loss", "all_steps"] {
        assert!(out.contains(name), "{name} missing in:\n{out}");
    }
}

#[test]
fn solve_prints_final_state() {
    let o = run(&["solve", fixture("hh_seed.json").to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["steps"], 60_000);
    assert_eq!(v["t_final"], 600.0);
    assert_eq!(v["final_state"].as_array().unwrap().len(), 4);
}

#[test]
fn missing_file() {
    assert_error(
        &run(&["grad", "/nonexistent/problem.json"]),
        2,
        "cannot read",
    );
}

#[test]
fn malformed_json() {
    assert_error(
        &run_text("grad", "{\"model\": {\"name\": \"hh\"", &[]),
        2,
        "invalid JSON",
    );
}

#[test]
fn unknown_key() {
    let text = short_problem_with("tolerance", "1e-6");
    assert_error(
        &run_text("grad", &text, &[]),
        2,
        "unknown field `tolerance`",
    );
}

#[test]
fn unknown_model() {
    let text = short_problem_with("model", r#"{"name": "lorenz"}"#);
    assert_error(&run_text("grad", &text, &[]), 2, "unknown variant `lorenz`");
}

#[test]
fn unknown_solver_key() {
    let text = short_problem_with("solver", r#"{"method": "euler", "dt": 0.01, "rtol": 1}"#);
    assert_error(&run_text("grad", &text, &[]), 2, "unknown field `rtol`");
}

#[test]
fn wrong_lengths() {
    let text = short_problem_with("params", "[70, 10]");
    assert_error(
        &run_text("grad", &text, &[]),
        2,
        "params has length 2, expected 3",
    );
    let text = short_problem_with("u0", "[-59, 0.2, 0.9, 0.1, 0.0]");
    assert_error(
        &run_text("solve", &text, &[]),
        2,
        "u0 has length 5, expected 4",
    );
    let text = short_problem_with("loss", r#"{"kind": "final", "weights": [1]}"#);
    assert_error(
        &run_text("grad", &text, &[]),
        2,
        "loss weights has length 1, expected 4",
    );
}

#[test]
fn non_finite_numbers() {
    // JSON has no NaN or infinity; an overflowing literal is refused too.
    let text = short_problem_with("tspan", "[0, 5]").replace("[0,5]", "[0, 1e999]");
    assert_error(&run_text("grad", &text, &[]), 2, "invalid JSON");
    let text = short_problem_with("tspan", "[0, 5]").replace("[0,5]", "[0, NaN]");
    assert_error(&run_text("grad", &text, &[]), 2, "invalid JSON");
}

#[test]
fn non_positive_dt() {
    for dt in ["0.0", "-0.01"] {
        let text = short_problem_with("solver", &format!(r#"{{"method": "rk4", "dt": {dt}}}"#));
        assert_error(&run_text("grad", &text, &[]), 2, "dt must be positive");
    }
}

#[test]
fn empty_or_reversed_span() {
    for span in ["[5, 5]", "[5, 1]"] {
        let text = short_problem_with("tspan", span);
        assert_error(&run_text("solve", &text, &[]), 2, "t0 < t1");
    }
}

#[test]
fn state_blow_up_reports_time_and_step() {
    // Explicit Euler with an enormous sodium conductance is unstable.
    let text = short_problem_with("params", "[1e9, 10, 0.05]");
    for cmd in ["solve", "grad"] {
        let o = run_text(cmd, &text, &[]);
        assert_error(&o, 3, "state became non-finite at t = ");
        assert!(stderr(&o).contains("(step "), "{}", stderr(&o));
    }
}

#[test]
fn bad_flags_exit_2() {
    let o = run(&["grad", fixture("hh_seed.json").to_str().unwrap(), "--jsn"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

// ---- hh_network, check-model, grad --batch ----

fn network_problem(extra_model: &str) -> String {
    format!(
        r#"{{"model": {{"name": "hh_network"{extra_model}}}, "tspan": [0.0, 5.0],
            "solver": {{"method": "euler", "dt": 0.01}},
            "loss": {{"kind": "final", "weights": [1,0,0,0, 1,0,0,0]}}}}"#
    )
}

#[test]
fn grad_runs_a_network_problem() {
    let o = run_text("grad", &network_problem(r#", "n": 2"#), &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model"], "hh_network");
    assert_eq!(v["gradient"].as_array().unwrap().len(), 3 * 2 + 4);
    assert_eq!(v["param_names"][6], "W_0_0");
}

#[test]
fn network_size_errors_are_one_line() {
    let o = run_text("grad", &network_problem(r#", "n": 0"#), &[]);
    assert_error(&o, 2, "n must be at least 1, got 0");
    let o = run_text("grad", &network_problem(r#", "n": 1000000"#), &[]);
    assert_error(&o, 2, "n must be at most 4096, got 1000000");
    let o = run_text("grad", &network_problem(""), &[]);
    assert_error(&o, 2, "missing field `n`");
    let o = run_text("grad", &network_problem(r#", "n": 2, "neurons": 3"#), &[]);
    assert_error(&o, 2, "neurons");
}

#[test]
fn check_model_passes_builtins() {
    let o = run(&["check-model", "hh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("PASS"), "{out}");
    // 4 samples × (4 × (4 + 3) VJP entries + 4 × 4 of the model's Jacobian)
    assert!(
        out.starts_with("hh: 176 Jacobian entries at 4 points"),
        "{out}"
    );
    assert!(
        out.contains(
            "of which the model's own state Jacobian: 10 nonzeros of 16 (62.50%), 64 entries"
        ),
        "{out}"
    );
    let o = run(&[
        "check-model",
        "hh_network",
        "--n",
        "3",
        "--samples",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["samples"], 2);
    assert_eq!(v["entries_checked"], 2 * 12 * (12 + 18) + 2 * 12 * 12);
    // N² + 9N entries: the dense voltage block and each neuron's hh block
    assert_eq!(v["jacobian"]["nnz"], 3 * 3 + 9 * 3);
    assert_eq!(v["jacobian"]["entries_checked"], 2 * 12 * 12);
    assert_eq!(v["worst"].as_array().unwrap().len(), 5);
}

#[test]
fn check_model_exit_codes() {
    // an impossible tolerance fails (exit 1) and names the worst entry
    let o = run(&["check-model", "hh", "--tolerance", "1e-300"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        ["E", "m", "h", "n"]
            .iter()
            .any(|s| out.contains(&format!("d(d{s}/dt)/d"))),
        "{out}"
    );
    assert_error(
        &run(&["check-model", "hh_network", "--n", "0"]),
        2,
        "at least 1",
    );
    assert_error(
        &run(&["check-model", "hh", "--n", "3"]),
        2,
        "hh_network only",
    );
    assert_error(&run(&["check-model", "nope"]), 2, "unknown variant");
    assert_error(
        &run(&["check-model", "hh", "--tolerance=0"]),
        2,
        "tolerance",
    );
}

fn write_temp(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn grad_batch_matches_single_runs_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let base = r#"{"model": {"name": "hh"}, "tspan": [0.0, 20.0], "solver": {"method": "euler", "dt": 0.01}}"#;
    let overrides = [
        r#"{"params": [70, 10, 0.05]}"#,
        r#"{"params": [70, 10]}"#,
        r#"{"model": {"name": "hh_network", "n": 2, "i_ext": 2.5}}"#,
        r#"{"u0": [-50, 0.3, 0.8, 0.2]}"#,
    ];
    let batch = format!(
        r#"{{"base": {base}, "overrides": [{}]}}"#,
        overrides.join(",")
    );
    let batch_path = write_temp(&dir, "batch.json", &batch);
    for threads in ["1", "2"] {
        let o = run(&["grad", "--batch", &batch_path, "--threads", threads]);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("1 of 4 batch members failed"),
            "{}",
            stderr(&o)
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        for (k, line) in lines.iter().enumerate() {
            assert_eq!(line["index"], k);
            if k == 1 {
                assert_eq!(line["ok"], false);
                assert_eq!(line["exit_code"], 2);
                assert!(line["error"].as_str().unwrap().contains("params"));
                continue;
            }
            // the same member alone through `grad --json`
            let mut single: Value = serde_json::from_str(base).unwrap();
            let o: Value = serde_json::from_str(overrides[k]).unwrap();
            for (key, value) in o.as_object().unwrap() {
                single[key] = value.clone();
            }
            let alone = run_text("grad", &single.to_string(), &["--json"]);
            assert!(alone.status.success(), "{}", stderr(&alone));
            let alone: Value = serde_json::from_slice(&alone.stdout).unwrap();
            let r = &line["result"];
            assert_eq!(line["ok"], true);
            for key in ["loss", "gradient", "gradient_u0", "model"] {
                assert_eq!(r[key], alone[key], "member {k} {key}");
            }
        }
    }
    // all members fine: exit 0; an array of problems works too
    let array = format!("[{base}, {base}]");
    let o = run(&["grad", "--batch", &write_temp(&dir, "array.json", &array)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

#[test]
fn grad_batch_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_temp(&dir, "bad.json", r#"{"overrides": []}"#);
    assert_error(
        &run(&["grad", "--batch", &bad]),
        2,
        "\"base\" and \"overrides\"",
    );
    assert_error(
        &run(&["grad", "--batch", "/nonexistent/b.json"]),
        2,
        "cannot read",
    );
    let o = run_text(
        "grad",
        &short_problem_with("loss", r#"{"kind": "final"}"#),
        &["--threads", "2"],
    );
    assert_error(&o, 2, "--threads applies to --batch only");
    let o = run(&["grad", "--batch", &bad, "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn grad_with_a_memory_budget_matches_all_bitwise() {
    let grad = |name: &str| -> Value {
        let o = run(&["grad", fixture(name).to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (budget, all) = (grad("hh_seed_budget.json"), grad("hh_seed.json"));
    assert_eq!(budget["checkpoints"]["budget_bytes"], 65536);
    // serde_json prints f64s round-trip exactly: equal text is equal bits.
    assert_eq!(budget["loss"], all["loss"]);
    assert_eq!(budget["gradient"], all["gradient"]);
    assert_eq!(budget["gradient_u0"], all["gradient_u0"]);
    let stats = &budget["stats"];
    assert!(
        stats["peak_store_bytes"].as_u64().unwrap() <= 65536,
        "{stats}"
    );
    assert!(stats["recomputed_steps"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["forward_steps"], 60_000);
    assert_eq!(stats["backward_steps"], 60_000);
}

#[test]
fn budget_too_small_states_the_minimum() {
    // HH: 4 states, 40 bytes a slot (state + step number), 3 slots at least.
    let text = short_problem_with(
        "adjoint",
        r#"{"method": "discrete", "checkpoints": {"budget_bytes": 100}}"#,
    );
    let o = run_text("grad", &text, &[]);
    assert_error(&o, 2, "memory budget of 100 bytes is too small");
    assert!(stderr(&o).contains("at least 120 bytes"), "{}", stderr(&o));
}

#[test]
fn plain_cli_never_knows_the_test_models() {
    // `cargo test` also builds revode-test-cli, which registers the broken
    // model `hh_broken_vjp`; the `revode` binary built in the same run (the
    // one users get, target/<profile>/revode) must not know it, and must not
    // even contain it.
    assert_error(
        &run(&["check-model", "hh_broken_vjp"]),
        2,
        "unknown variant `hh_broken_vjp`, expected `hh` or `hh_network`",
    );
    let o = run_text(
        "check",
        &short_problem_with("model", r#"{"name": "hh_broken_vjp"}"#),
        &[],
    );
    assert_error(&o, 2, "unknown variant `hh_broken_vjp`");
    let binary = std::fs::read(BIN).unwrap();
    let contains = |needle: &[u8]| binary.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"hh_network"),
        "the search finds a built-in's name"
    );
    for needle in [&b"hh_broken_vjp"[..], b"HhBrokenVjp", b"revode_testing"] {
        assert!(
            !contains(needle),
            "{BIN} contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn closed_stdout_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // `revode solve … --every 1 | head -c 100`: 60 001 rows into a pipe
    // whose reader stops early.
    let mut child = Command::new(BIN)
        .args([
            "solve",
            fixture("hh_seed.json").to_str().unwrap(),
            "--every",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The reading end is dropped here.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
