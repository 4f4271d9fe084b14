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
    // Tiny limit: only a byte budget fits, and it is accepted (on a short run).
    let (o, _) = run(&["grad"], BILLION_STEPS_ALL, Some("64KiB"));
    assert_one_line_exit_2(&o, &["\"checkpoints\": {\"budget_bytes\": 65536}"]);
    let short = r#"{"model": {"name": "hh"}, "tspan": [0.0, 100.0],
        "solver": {"method": "euler", "dt": 0.01},
        "adjoint": {"checkpoints": {"budget_bytes": 65536}}}"#;
    let (o, _) = run(&["grad", "--json"], short, Some("64KiB"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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

#[test]
fn a_malformed_limit_falls_back_to_the_system() {
    let text = r#"{"model": {"name": "hh"}, "tspan": [0.0, 1.0],
        "solver": {"method": "euler", "dt": 0.01}}"#;
    let (o, _) = run(&["grad"], text, Some("plenty"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
