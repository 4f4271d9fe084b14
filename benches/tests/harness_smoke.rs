//! Keeps the peer-benchmark harness from rotting: revode's side runs on the
//! shortened problems, every record is complete, and the report script turns
//! it into a performance page.

use std::process::Command;

use serde_json::Value;

#[test]
fn revode_side_of_the_harness_runs_and_reports() {
    let out = Command::new(env!("CARGO_BIN_EXE_revode_figures"))
        .args(["--quick", "--reps", "1"])
        .output()
        .expect("revode_figures runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let records = doc["records"].as_array().expect("records");
    let problems: Vec<&str> = records
        .iter()
        .filter_map(|r| r["problem"].as_str())
        .collect();
    for p in [
        "hh_seed_final",
        "hh_seed_all_steps",
        "hh_dopri5_final",
        "hh_network_10",
        "hh_network_100",
    ] {
        assert!(problems.contains(&p), "{p} missing");
    }
    for r in records {
        assert!(
            r["error"].is_null(),
            "{} {}: {}",
            r["problem"],
            r["method"],
            r["error"]
        );
        for key in [
            "forward_ms",
            "gradient_ms",
            "first_call_ms",
            "loss",
            "peak_store_bytes",
        ] {
            assert!(
                r[key].is_number(),
                "{} {}: {key} missing",
                r["problem"],
                r["method"]
            );
        }
        assert_eq!(r["grad_all_finite"], true);
    }

    // The page generator (standard-library Python) on this quick run. It needs
    // python3, which a machine with only Rust installed may lack: skip that half
    // then, saying so, rather than fail.
    if !python3_available() {
        eprintln!(
            "skipping the performance-page half of this test: python3 not found \
             (benches/peers/report.py needs it; revode's side above was checked)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("revode.json");
    std::fs::write(&json_path, &out.stdout).unwrap();
    let md = dir.path().join("performance.md");
    let svg = dir.path().join("plot.svg");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/report.py");
    let status = Command::new("python3")
        .arg(root)
        .args([
            "--revode",
            json_path.to_str().unwrap(),
            "--peers",
            "none",
            "--diffsol",
            "none",
            "--stiff",
            "none",
        ])
        .args([
            "--out",
            md.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let page = std::fs::read_to_string(&md).unwrap();
    assert!(
        page.contains("## hh_seed_final") && page.contains("| revode |"),
        "{page}"
    );
    // No load was recorded around this run (it is not a run of record): said so.
    assert!(page.contains("load not recorded"), "{page}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
}

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs report.py on a one-record revode run whose load average around the
/// run is `before`/`after` (1-minute figures); returns (exit code, page if written).
fn report_with_load(before: f64, after: f64, extra: &[&str]) -> (Option<i32>, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let run = serde_json::json!({
        "engine": "revode",
        "quick": true,
        "load": {"before": [before, 0.5, 0.5], "after": [after, 0.6, 0.5], "waited_s": 0.0},
        "records": [{
            "engine": "revode", "problem": "hh_seed_final", "method": "discrete_adjoint_all",
            "forward_ms": 1.0, "gradient_ms": 2.0, "first_call_ms": 2.0,
            "grad": [1.0, 2.0, 3.0], "peak_store_bytes": 1024
        }]
    });
    let json_path = dir.path().join("revode.json");
    std::fs::write(&json_path, run.to_string()).unwrap();
    let md = dir.path().join("performance.md");
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/peers/report.py"))
        .args(["--revode", json_path.to_str().unwrap()])
        .args(["--peers", "none", "--diffsol", "none", "--stiff", "none"])
        .args(["--out", md.to_str().unwrap()])
        .args(["--svg", dir.path().join("p.svg").to_str().unwrap()])
        .args(extra)
        .output()
        .expect("python3 runs");
    (out.status.code(), std::fs::read_to_string(&md).ok())
}

#[test]
fn report_refuses_or_marks_figures_taken_on_a_busy_machine() {
    if !python3_available() {
        eprintln!("skipping: python3 not found (benches/peers/report.py needs it)");
        return;
    }
    // Quiet before and after: written, load table shows "ok", no warning banner.
    let (code, page) = report_with_load(0.3, 1.1, &[]);
    assert_eq!(code, Some(0));
    let page = page.expect("page written");
    assert!(
        page.contains("| revode | 0.30 / 0.50 / 0.50 | 1.10 / 0.60 / 0.50 |"),
        "{page}"
    );
    assert!(!page.contains("NOT A FAIR"), "{page}");

    // Busy after the run (load 2.4 > 1.5): refused, nothing written.
    let (code, page) = report_with_load(0.3, 2.4, &[]);
    assert_eq!(code, Some(3));
    assert!(page.is_none());

    // Busy, but explicitly allowed: written, with the banner and the row marked.
    let (code, page) = report_with_load(1.6, 0.9, &["--allow-loaded"]);
    assert_eq!(code, Some(0));
    let page = page.expect("page written");
    assert!(page.contains("NOT A FAIR COMPARISON"), "{page}");
    assert!(page.contains("⚠ LOADED (1.60 > 1.5)"), "{page}");
}
