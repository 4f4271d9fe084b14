//! Prints the BDF figures of Robertson's kinetics as JSON: models/robertson.ode
//! to T = 4e5, loss y3(T), continuous adjoint, at rtol/atol = 1e-6/1e-8 and
//! 1e-8/1e-12. Forward and gradient medians and their ratio, accepted and
//! rejected steps both ways, Newton iterations, Jacobian evaluations and
//! factorisations both ways, peak store bytes, and the largest relative
//! error against the forward-sensitivity reference
//! (fixtures/reference/robertson/robertson_bdf.json).
//!
//! Output: the peers' record schema (benches/peers/README.md, "JSON of
//! revode's stiff bench binaries"), problems `robertson_1e-6` and
//! `robertson_1e-8`; `grad` is [k1, k2, k3, y0_1, y0_2, y0_3].
//!
//! `cargo run --release -p revode-benches --bin robertson_figures [-- --quick] [--reps R]`
//!
//! `--quick`: T = 40 (no reference there: the error is not reported).

use revode::adjoint::{gradient_continuous_bdf, loss_bdf_with_stimulus, BdfProblem};
use revode::adjoint::{ContinuousOptions, Gradient};
use revode::checkpoint::Schedule;
use revode::forward::{BdfOptions, Stimulus};
use revode::prelude::*;
use revode_benches::median_seconds;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let t1 = if quick { 40.0 } else { 4e5 };
    let repeat: usize = args
        .iter()
        .position(|a| a == "--reps" || a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(51);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let loading = std::time::Instant::now();
    let model = OdeModel::from_file(root.join("models/robertson.ode")).unwrap();
    let load_seconds = loading.elapsed().as_secs_f64();
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
            t1,
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
        let first = std::time::Instant::now();
        std::hint::black_box(gradient());
        let first_call_ms = (load_seconds + first.elapsed().as_secs_f64()) * 1e3;
        model.wait_for_native_code();
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
        let grad: Vec<f64> = g.gradient.iter().chain(&g.gradient_u0).copied().collect();
        rows.push(serde_json::json!({
            "engine": "revode",
            "problem": if rtol == 1e-6 { "robertson_1e-6" } else { "robertson_1e-8" },
            "method": "bdf_adjoint",
            "config": format!("bdf (orders 1-5, Nordsieck), rtol {rtol:e}, atol {atol:e}, continuous adjoint by backward BDF, checkpoints all, T = {t1}"),
            "first_call_ms": first_call_ms,
            "n_timed": repeat,
            "grad": grad,
            "steps": {"accepted": s.steps, "rejected": s.rejected_steps},
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
            "max_relative_error_vs_reference": if quick { None } else { Some(error) },
        }));
    }
    let figures = serde_json::json!({
        "engine": "revode",
        "bench": "robertson_figures",
        "quick": quick,
        "version": env!("CARGO_PKG_VERSION"),
        "timing": "forward_ms: the loss alone (one forward solve); gradient_ms: loss and gradient; medians after one warm-up, native code compiled",
        "problem": format!("Robertson (models/robertson.ode), T = {t1}, L = y3(T), bdf, continuous adjoint, checkpoints all"),
        "jacobian": "the model file's symbolic Jacobian",
        "records": rows,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
