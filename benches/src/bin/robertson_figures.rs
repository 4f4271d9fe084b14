//! Prints the BDF figures of Robertson's kinetics as JSON: models/robertson.ode
//! to T = 4e5, loss y3(T), continuous adjoint, at rtol/atol = 1e-6/1e-8 and
//! 1e-8/1e-12. Forward and gradient medians and their ratio, accepted and
//! rejected steps both ways, Newton iterations, Jacobian evaluations and
//! factorisations both ways, peak store bytes, and the largest relative
//! error against the forward-sensitivity reference
//! (fixtures/reference/robertson/robertson_bdf.json).
//!
//! `cargo run --release -p revode-benches --bin robertson_figures [-- --repeat R]`

use revode::adjoint::{gradient_continuous_bdf, loss_bdf_with_stimulus, BdfProblem};
use revode::adjoint::{ContinuousOptions, Gradient};
use revode::checkpoint::Schedule;
use revode::forward::{BdfOptions, Stimulus};
use revode::prelude::*;
use revode_benches::median_seconds;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(51);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = OdeModel::from_file(root.join("models/robertson.ode")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/reference/robertson/robertson_bdf.json"))
            .unwrap(),
    )
    .unwrap();
    let ref_entries: Vec<f64> = ["gradient", "gradient_u0"]
        .iter()
        .flat_map(|k| reference[k].as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (u0, p) = (model.default_u0(), model.default_params());
    let loss = Loss::Final {
        weights: vec![0.0, 0.0, 1.0],
    };
    let mut rows = Vec::new();
    for (rtol, atol) in [(1e-6, 1e-8), (1e-8, 1e-12)] {
        let options = BdfOptions::new(rtol, atol);
        let problem = BdfProblem {
            u0: &u0,
            params: &p,
            t0: 0.0,
            t1: 4e5,
            options: &options,
        };
        let gradient = || -> Gradient {
            gradient_continuous_bdf(
                &model,
                &problem,
                &loss,
                &ContinuousOptions::default(),
                Schedule::All,
            )
            .unwrap()
        };
        let forward = median_seconds(repeat, || {
            std::hint::black_box(
                loss_bdf_with_stimulus(&model, &problem, &Stimulus::none(), &loss).unwrap(),
            );
        });
        let seconds = median_seconds(repeat, || {
            std::hint::black_box(gradient());
        });
        let g = gradient();
        let s = g.stats;
        let newton = s.newton.expect("bdf reports its Newton work");
        let error = g
            .gradient
            .iter()
            .chain(&g.gradient_u0)
            .zip(&ref_entries)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0, f64::max);
        rows.push(serde_json::json!({
            "rtol": rtol,
            "atol": atol,
            "forward_ms": forward * 1e3,
            "gradient_ms": seconds * 1e3,
            "ratio_gradient_to_forward": seconds / forward,
            "forward_steps": {"accepted": s.steps, "rejected": s.rejected_steps},
            "backward_steps": {"accepted": s.backward_steps, "rejected": s.backward_rejected},
            "newton_forward": newton.forward,
            "newton_backward": newton.backward,
            "peak_store_bytes": s.peak_store_bytes,
            "loss": g.loss,
            "gradient": g.gradient,
            "gradient_u0": g.gradient_u0,
            "max_relative_error_vs_reference": error,
        }));
    }
    let figures = serde_json::json!({
        "problem": "Robertson (models/robertson.ode), T = 4e5, L = y3(T), bdf, continuous adjoint, checkpoints all",
        "jacobian": "assembled from VJPs (model file)",
        "repeat": repeat,
        "runs": rows,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
