//! Model files against hand-written models, as JSON:
//!
//! * the seed problem (HH, Euler dt = 0.01 over 600 ms) through
//!   `models/seed_hh.ode` and through the built-in `hh`, same process:
//!   forward and gradient medians and their ratios (target: gradient
//!   ≤ 1.5× the built-in's);
//! * the cortical model (`models/cortical_pospischil.ode`, 62 parameters),
//!   Euler dt = 0.01 over 300 ms: forward and gradient, gradient/forward
//!   (target ≤ 3), and the speed-up over forward mode, estimated as
//!   (P + 1) forward solves;
//! * load + derive + compile time of the cortical file (target ≤ 20 ms).
//!
//! Medians of wall time: run it on a quiet machine.
//!
//! `cargo run --release -p revode-benches --bin model_file_figures [-- --repeat N]`

use revode::checkpoint::Schedule;
use revode::model::OdeModel;
use revode::prelude::*;
use revode_benches::median_seconds;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn median(repeat: usize, f: impl FnMut()) -> f64 {
    median_seconds(repeat, f)
}

/// Forward and gradient (all states kept) medians in seconds.
fn forward_and_gradient<M: Model>(m: &M, t1: f64, repeat: usize) -> (f64, f64) {
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
    let loss = Loss::Final {
        weights: vec![1.0; m.dims().n_states],
    };
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let forward = median(repeat, || {
        std::hint::black_box(solve_fixed(m, FixedMethod::Euler, &grid, &u0, &p, None).unwrap());
    });
    let gradient = median(repeat, || {
        std::hint::black_box(gradient_fixed(m, &problem, &loss, Schedule::All).unwrap());
    });
    (forward, gradient)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(21);

    let seed_file = OdeModel::from_file(repo("models/seed_hh.ode")).unwrap();
    let (file_fwd, file_grad) = forward_and_gradient(&seed_file, 600.0, repeat);
    let (hh_fwd, hh_grad) = forward_and_gradient(&HodgkinHuxley, 600.0, repeat);

    let cortical_path = repo("models/cortical_pospischil.ode");
    let cortical = OdeModel::from_file(&cortical_path).unwrap();
    let n_params = cortical.dims().n_params;
    let (c_fwd, c_grad) = forward_and_gradient(&cortical, 300.0, repeat.min(11));
    let text = std::fs::read_to_string(&cortical_path).unwrap();
    let load = median(repeat, || {
        std::hint::black_box(OdeModel::from_str(&text).unwrap());
    });
    let stats = cortical.stats();
    let seed_stats = seed_file.stats();

    let figures = serde_json::json!({
        "seed_problem": {
            "problem": "HH, Euler dt=0.01, [0,600], final loss, all states kept",
            "file_forward_ms": file_fwd * 1e3,
            "builtin_forward_ms": hh_fwd * 1e3,
            "forward_ratio_file_to_builtin": file_fwd / hh_fwd,
            "file_gradient_ms": file_grad * 1e3,
            "builtin_gradient_ms": hh_grad * 1e3,
            "gradient_ratio_file_to_builtin": file_grad / hh_grad,
            "rhs_instructions": seed_stats.rhs_instructions,
            "vjp_instructions": seed_stats.vjp_instructions,
        },
        "cortical": {
            "problem": "cortical_pospischil.ode, Euler dt=0.01, [0,300], final loss, all states kept",
            "params": n_params,
            "forward_ms": c_fwd * 1e3,
            "gradient_ms": c_grad * 1e3,
            "gradient_to_forward": c_grad / c_fwd,
            "forward_mode_estimate_ms": (n_params + 1) as f64 * c_fwd * 1e3,
            "speedup_over_forward_mode": (n_params + 1) as f64 * c_fwd / c_grad,
            "load_derive_compile_ms": load * 1e3,
            "dag_nodes": stats.dag_nodes,
            "rhs_instructions": stats.rhs_instructions,
            "vjp_instructions": stats.vjp_instructions,
        },
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
