//! `revode solve --csv FILE [--every S]`: the trajectory as CSV.

mod common;
use common::{fixture, run};

use std::path::Path;

use serde_json::Value;

/// Header names and numeric rows of a CSV file.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|x| x.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

fn problem_file(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("p.json");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn every_step_by_default_and_the_last_state_matches_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("trace.csv");
    let o = run(&[
        "solve",
        &fixture("hh_rk4_short.json"),
        "--csv",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.get("samples").is_none(), "samples go to the file");
    let (header, rows) = read_csv(&csv);
    assert_eq!(header, ["t", "E", "m", "h", "n"]);
    assert_eq!(rows.len(), 4001, "u_0 … u_N of 4000 steps");
    assert_eq!(rows[0], [0.0, -59.0, 0.2, 0.9, 0.1]);
    assert_eq!(rows[1][0], 0.025);
    // Full precision: the last row is the reported final state to the bit.
    let last = rows.last().unwrap();
    assert_eq!(last[0], 100.0);
    let final_state: Vec<f64> = report["final_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(last[1..], final_state[..]);
}

#[test]
fn every_s_steps_keeps_the_last_point() {
    let dir = tempfile::tempdir().unwrap();
    // 0.5 / 0.01 = 50 steps (and 5.05 ms → a final partial step).
    let p = problem_file(
        &dir,
        r#"{"model": {"name": "hh"}, "tspan": [0.0, 5.05],
            "solver": {"method": "euler", "dt": 0.01}}"#,
    );
    let csv = dir.path().join("t.csv");
    let o = run(&["solve", &p, "--csv", csv.to_str().unwrap(), "--every", "50"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("trajectory: 12 rows written to"), "{text}");
    let (_, rows) = read_csv(&csv);
    let times: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(times.len(), 12);
    for (j, t) in times[..11].iter().enumerate() {
        assert!((t - 0.5 * j as f64).abs() < 1e-12, "{times:?}");
    }
    assert_eq!(times[11], 5.05);
}

#[test]
fn a_stimulus_keeps_samples_on_the_lattice_and_dopri5_writes_accepted_steps() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    let o = run(&[
        "solve",
        &fixture("hh_stimulus.json"),
        "--csv",
        csv.to_str().unwrap(),
        "--every",
        "500",
    ]);
    assert!(o.status.success());
    let (_, rows) = read_csv(&csv);
    let times: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    let expected: Vec<f64> = (0..=12).map(|j| 5.0 * j as f64).collect();
    assert_eq!(times.len(), expected.len());
    for (t, e) in times.iter().zip(&expected) {
        assert!((t - e).abs() < 1e-12, "{times:?}");
    }
    let o = run(&[
        "solve",
        &fixture("hh_dopri5.json"),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let (_, rows) = read_csv(&csv);
    let o = run(&["solve", &fixture("hh_dopri5.json"), "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len() as u64, report["steps"].as_u64().unwrap() + 1);
    assert!(rows.windows(2).all(|w| w[1][0] > w[0][0]));
}

#[test]
fn csv_errors_leave_nothing_behind() {
    let o = run(&[
        "solve",
        &fixture("hh_seed.json"),
        "--csv",
        "/nonexistent-dir/t.csv",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: --csv: cannot create /nonexistent-dir/t.csv"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1);
    assert!(o.stdout.is_empty());
    // A solve that blows up exits 3 and removes its partial file.
    let dir = tempfile::tempdir().unwrap();
    let p = problem_file(
        &dir,
        r#"{"model": {"name": "hh"}, "params": [1e9, 10, 0.05], "tspan": [0.0, 5.0],
            "solver": {"method": "euler", "dt": 0.01}}"#,
    );
    let csv = dir.path().join("t.csv");
    let o = run(&["solve", &p, "--csv", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
    assert!(!csv.exists());
    let o = run(&["solve", &p, "--csv", csv.to_str().unwrap(), "--every", "0"]);
    assert_eq!(o.status.code(), Some(2));
}
