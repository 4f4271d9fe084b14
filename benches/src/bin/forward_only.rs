//! One forward solve and one gradient of the seed problem, nothing else:
//! a target for instruction counters (`valgrind --tool=callgrind`).

use revode::checkpoint::Schedule;
use revode::prelude::*;

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "forward".into());
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
    match what.as_str() {
        "forward" => {
            let s = solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None).unwrap();
            println!("{:?}", s.final_state);
        }
        _ => {
            let problem = FixedProblem {
                u0: &u0,
                params: &p,
                grid,
                method: FixedMethod::Euler,
            };
            let loss = Loss::Final {
                weights: vec![1.0; 4],
            };
            let g = gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap();
            println!("{:?}", g.gradient);
        }
    }
}
