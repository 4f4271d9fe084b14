//! One forward solve or one gradient of the seed problem, `REPEAT` times,
//! printing the fastest run: a target for instruction counters
//! (`valgrind --tool=callgrind … forward 1`) and for quick A/B timings on a
//! busy machine (the minimum is robust to load from other processes).
//!
//! `cargo run --release -p revode-benches --bin forward_only -- [forward|gradient] [REPEAT]`

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
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let checksum = match what.as_str() {
            "forward" => {
                solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None)
                    .unwrap()
                    .final_state[0]
            }
            _ => {
                gradient_fixed(&model, &problem, &loss, Schedule::All)
                    .unwrap()
                    .gradient[0]
            }
        };
        best = best.min(started.elapsed().as_secs_f64());
        std::hint::black_box(checksum);
    }
    println!(
        "{what}: best of {repeat}: {:.3} ms ({:.1} ns/step)",
        best * 1e3,
        best * 1e9 / grid.n_steps() as f64
    );
}
