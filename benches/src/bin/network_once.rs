//! One `hh_network` forward solve or gradient, for instruction counts
//! (callgrind gives the same count on a busy machine as on a quiet one).
//!
//! Same problem as `network_figures`: Euler dt = 0.01 over [0, T] (T = 100
//! by default), loss Σ E_i(T), checkpoints all.
//!
//! ```text
//! RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release -p revode-benches \
//!     --bin network_once --target-dir target/portable
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/portable/release/network_once gradient 100 10
//! ```
//!
//! Arguments: `forward|gradient N [T]`.

use revode::checkpoint::Schedule;
use revode::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: network_once forward|gradient N [T]";
    let what = args.get(1).expect(usage).as_str();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let t1: f64 = args.get(3).map_or(100.0, |s| s.parse().expect(usage));
    let model = HhNetwork::with_neurons(n).expect("N ≥ 1");
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
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
    match what {
        "forward" => {
            let sol = solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None).unwrap();
            println!("E_0(T) = {:e}", sol.final_state[0]);
        }
        "gradient" => {
            let g = gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap();
            let norm: f64 = g.gradient.iter().map(|x| x * x).sum::<f64>().sqrt();
            println!("loss {:e}, |dL/dp| {:e}", g.loss, norm);
        }
        _ => panic!("{usage}"),
    }
}
