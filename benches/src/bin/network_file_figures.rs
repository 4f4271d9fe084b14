//! The network of HH neurons as a model file (models/hh_network.ode, written
//! with arrays) against the built-in `hh_network` (issue #16: within 1.5×):
//! fixtures/hh_network_file.json and hh_network_10.json (N = 10, euler
//! dt 0.01 over 20 ms, every-45 checkpoints), forward and gradient medians,
//! and the largest gradient difference between the two.
//!
//! `cargo run --release -p revode-benches --bin network_file_figures [-- --reps N]`

use revode::ModelSpec;
use revode_benches::{fixture, median_seconds};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--reps takes a number"))
        .unwrap_or(21);
    let mut rows = Vec::new();
    let mut gradients = Vec::new();
    for name in ["hh_network_10.json", "hh_network_file.json"] {
        let problem = fixture(name);
        if let ModelSpec::File(file) = &problem.model {
            file.model().expect("loaded").wait_for_native_code();
        }
        let forward = median_seconds(reps, || {
            std::hint::black_box(revode::loss(&problem).expect("forward"));
        });
        let gradient = median_seconds(reps, || {
            std::hint::black_box(revode::gradient(&problem).expect("gradient"));
        });
        gradients.push(revode::gradient(&problem).expect("gradient").gradient);
        rows.push(json!({
            "problem": name,
            "forward_ms": forward * 1e3,
            "gradient_ms": gradient * 1e3,
            "n_timed": reps,
        }));
    }
    let scale = gradients[0].iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let max_diff = gradients[0]
        .iter()
        .zip(&gradients[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    let ratio = rows[1]["gradient_ms"].as_f64().unwrap() / rows[0]["gradient_ms"].as_f64().unwrap();
    let doc = json!({
        "runs": rows,
        "file_gradient_over_builtin": ratio,
        "max_gradient_difference_relative_to_largest": max_diff / scale,
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}
