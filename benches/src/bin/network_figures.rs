//! Prints the network and batch figures as JSON.
//!
//! * `hh_network`, Euler dt = 0.01 over [0, 100], loss Σ E_i(100), for
//!   N = 10, 50, 100: forward and gradient medians, their ratio, and the
//!   forward-mode estimate P × forward;
//! * a batch of 64 seed problems (HH, Euler dt = 0.01 over [0, 600], final
//!   loss, g_Na from 60 to 80) on 1 and 2 threads.
//!
//! `cargo run --release -p revode-benches --bin network_figures [-- --sizes 10,50,100]`

use revode::batch::{gradients, Parallelism};
use revode::checkpoint::Schedule;
use revode::prelude::*;
use revode::Problem;
use revode_benches::{fixture, median_cpu_seconds, median_seconds};

fn network(n: usize, repeat: usize) -> serde_json::Value {
    let model = HhNetwork::with_neurons(n).unwrap();
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 100.0, 0.01).unwrap();
    let weights: Vec<f64> = (0..4 * n)
        .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
        .collect();
    let loss = Loss::Final { weights };
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let forward = median_seconds(repeat, || {
        std::hint::black_box(
            solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None).unwrap(),
        );
    });
    let mut last = None;
    let gradient = median_seconds(repeat, || {
        last = Some(gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap());
    });
    let sqrt_k = (grid.n_steps() as f64).sqrt().ceil() as usize;
    let gradient_sqrt = median_seconds(repeat, || {
        std::hint::black_box(
            gradient_fixed(&model, &problem, &loss, Schedule::Every(sqrt_k)).unwrap(),
        );
    });
    let g = last.unwrap();
    let forward_cpu = median_cpu_seconds(repeat, || {
        std::hint::black_box(
            solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None).unwrap(),
        );
    });
    let gradient_cpu = median_cpu_seconds(repeat, || {
        std::hint::black_box(gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap());
    });
    let n_params = p.len();
    serde_json::json!({
        "n": n,
        "params": n_params,
        "steps": grid.n_steps(),
        "forward_ms": forward * 1e3,
        "gradient_ms": gradient * 1e3,
        "ratio": gradient / forward,
        "gradient_backward_ms": g.stats.backward_seconds * 1e3,
        "forward_cpu_ms": forward_cpu.map(|s| s * 1e3),
        "gradient_cpu_ms": gradient_cpu.map(|s| s * 1e3),
        "ratio_cpu": forward_cpu.zip(gradient_cpu).map(|(f, g)| g / f),
        "gradient_sqrt_n_checkpoints_ms": gradient_sqrt * 1e3,
        "forward_mode_estimate_ms": n_params as f64 * forward * 1e3,
    })
}

fn batch(repeat: usize) -> serde_json::Value {
    let seed = fixture("hh_seed.json");
    let problems: Vec<Problem> = (0..64)
        .map(|k| {
            let mut p = seed.clone();
            p.params = Some(vec![60.0 + 20.0 * k as f64 / 63.0, 10.0, 0.05]);
            p
        })
        .collect();
    let mut rows = Vec::new();
    for threads in [1, 2] {
        let seconds = median_seconds(repeat, || {
            let r = gradients(&problems, Parallelism::Threads(threads)).unwrap();
            assert!(r.iter().all(Result::is_ok));
        });
        rows.push(serde_json::json!({
            "threads": threads,
            "seconds": seconds,
            "problems_per_second": problems.len() as f64 / seconds,
        }));
    }
    serde_json::json!({ "problems": problems.len(), "runs": rows })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| {
            s.split(',')
                .map(|x| x.parse().expect("--sizes takes N,N,.."))
                .collect()
        })
        .unwrap_or_else(|| vec![10, 50, 100]);
    let skip_batch = args.iter().any(|a| a == "--no-batch");
    let nets: Vec<_> = sizes.iter().map(|&n| network(n, 7)).collect();
    let mut out = serde_json::json!({
        "network": "hh_network, Euler dt=0.01, [0,100], loss sum E_i(100), checkpoints all",
        "sizes": nets,
    });
    if !skip_batch {
        out["batch_hh_seed"] = batch(3);
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
