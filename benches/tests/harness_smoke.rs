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

    // The page generator (standard-library Python) on this quick run.
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
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
}
