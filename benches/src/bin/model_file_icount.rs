//! One forward solve or one gradient of a fixed-step Euler problem, for
//! instruction counts under callgrind. Run it at two end times and subtract
//! to cancel loading and JIT compilation (the per-step figures in
//! `docs/performance.md`, "Model files vs built-in"):
//!
//! ```text
//! valgrind --tool=callgrind target/release/model_file_icount hh gradient 10
//! valgrind --tool=callgrind target/release/model_file_icount hh gradient 20
//! valgrind --tool=callgrind target/release/model_file_icount models/seed_hh.ode gradient 20
//! ```
//!
//! MODEL is `hh` (the built-in) or a `.ode` file; MODE is `forward` or
//! `gradient`; T1 the end time in ms (dt = 0.01, final loss, all states kept).

use revode::checkpoint::Schedule;
use revode::model::OdeModel;
use revode::prelude::*;

fn run<M: Model>(m: &M, gradient: bool, t1: f64) -> f64 {
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
    if !gradient {
        let sol = solve_fixed(m, FixedMethod::Euler, &grid, &u0, &p, None).unwrap();
        return std::hint::black_box(sol).final_state[0];
    }
    let loss = Loss::Final {
        weights: vec![1.0; m.dims().n_states],
    };
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let g = gradient_fixed(m, &problem, &loss, Schedule::All).unwrap();
    std::hint::black_box(g).gradient[0]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: model_file_icount (hh|FILE.ode) (forward|gradient) T1";
    let (model, mode, t1) = match args.as_slice() {
        [_, m, mode, t1] => (m.as_str(), mode.as_str(), t1.parse::<f64>().expect(usage)),
        _ => panic!("{usage}"),
    };
    let gradient = match mode {
        "forward" => false,
        "gradient" => true,
        _ => panic!("{usage}"),
    };
    let x = if model == "hh" {
        run(&HodgkinHuxley, gradient, t1)
    } else {
        let m = OdeModel::from_file(model).unwrap_or_else(|e| panic!("{e}"));
        run(&m, gradient, t1)
    };
    println!("{x}");
}
