//! One forward solve or one gradient of the seed problem, `REPEAT` times,
//! printing the fastest run: a target for instruction counters
//! (`valgrind --tool=callgrind … forward 1`) and for quick A/B timings on a
//! busy machine (the minimum is robust to load from other processes).
//!
//! `cargo run --release -p revode-benches --bin forward_only -- [forward|gradient] [REPEAT] [K]`

use std::time::Instant;

use revode::checkpoint::Schedule;
use revode::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "forward".into());
    let repeat: usize = args
        .next()
        .map_or(1, |s| s.parse().expect("REPEAT is a whole number"));
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    // Optional third argument: a checkpoint interval K (default: all states).
    let schedule = args.next().map_or(Schedule::All, |k| {
        Schedule::Every(k.parse().expect("K is a whole number"))
    });
    let mut best = f64::INFINITY;
    let mut all_times = Vec::with_capacity(repeat.max(1));
    let (mut best_fwd_sweep, mut best_back_sweep) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let checksum = match what.as_str() {
            "forward" => {
                solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None)
                    .unwrap()
                    .final_state[0]
            }
            _ => {
                let g = gradient_fixed(&model, &problem, &loss, schedule).unwrap();
                best_fwd_sweep = best_fwd_sweep.min(g.stats.forward_seconds);
                best_back_sweep = best_back_sweep.min(g.stats.backward_seconds);
                g.gradient[0]
            }
        };
        let took = started.elapsed().as_secs_f64();
        all_times.push(took);
        best = best.min(took);
        std::hint::black_box(checksum);
    }
    if best_back_sweep.is_finite() {
        println!(
            "  sweeps (best of each): forward {:.3} ms, backward {:.3} ms",
            best_fwd_sweep * 1e3,
            best_back_sweep * 1e3
        );
    }
    all_times.sort_by(f64::total_cmp);
    println!(
        "  median {:.3} ms, 90th percentile {:.3} ms",
        all_times[all_times.len() / 2] * 1e3,
        all_times[all_times.len() * 9 / 10] * 1e3
    );
    println!(
        "{what}: best of {repeat}: {:.3} ms ({:.1} ns/step)",
        best * 1e3,
        best * 1e9 / grid.n_steps() as f64
    );
}
