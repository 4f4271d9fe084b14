//! Prints the seed-problem figures as JSON: forward and gradient medians,
//! their ratios, and the peak resident memory of a long √N-checkpointed run.
//!
//! `cargo run --release -p revode-benches --bin seed_figures [-- --steps-long N]`

use revode::checkpoint::Schedule;
use revode::prelude::*;
use revode_benches::{median_seconds, peak_rss_bytes};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let long_t1: f64 = args
        .iter()
        .position(|a| a == "--long-t1")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--long-t1 takes a number"))
        .unwrap_or(60_000.0);
    let repeat = 21;

    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let grid = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
    let n = grid.n_steps();
    let sqrt_n = (n as f64).sqrt().ceil() as usize;
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
    let grad_all = median_seconds(repeat, || {
        std::hint::black_box(gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap());
    });
    let grad_sqrt = median_seconds(repeat, || {
        std::hint::black_box(
            gradient_fixed(&model, &problem, &loss, Schedule::Every(sqrt_n)).unwrap(),
        );
    });
    let rss_before_long = peak_rss_bytes();

    // The long run last, so its peak RSS is the process's peak.
    let long_grid = TimeGrid::new(0.0, long_t1, 0.01).unwrap();
    let long_n = long_grid.n_steps();
    let long_k = (long_n as f64).sqrt().ceil() as usize;
    let long_problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: long_grid,
        method: FixedMethod::Euler,
    };
    let t = std::time::Instant::now();
    let long = gradient_fixed(&model, &long_problem, &loss, Schedule::Every(long_k)).unwrap();
    let long_seconds = t.elapsed().as_secs_f64();

    let figures = serde_json::json!({
        "problem": "hh_seed: HH, Euler dt=0.01, [0,600], final loss",
        "steps": n,
        "forward_ms": forward * 1e3,
        "forward_ns_per_step": forward * 1e9 / n as f64,
        "gradient_all_ms": grad_all * 1e3,
        "gradient_all_ratio": grad_all / forward,
        "gradient_sqrt_n_ms": grad_sqrt * 1e3,
        "gradient_sqrt_n_ratio": grad_sqrt / forward,
        "sqrt_n_interval": sqrt_n,
        "peak_rss_before_long_run_bytes": rss_before_long,
        "long_run": {
            "steps": long_n,
            "interval": long_k,
            "gradient_ms": long_seconds * 1e3,
            "peak_store_bytes": long.stats.peak_store_bytes,
            "recomputed_steps": long.stats.recomputed_steps,
            "peak_rss_bytes": peak_rss_bytes(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
