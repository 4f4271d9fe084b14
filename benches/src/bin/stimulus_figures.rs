//! What a stimulus protocol costs: the seed problem (HH, Euler, 60 000
//! steps) forward and gradient with no protocol, with g_leak switched on grid
//! times, and switched off them (each switch cuts a step); dopri5 + continuous
//! adjoint with and without. Prints the best of `REPEAT` runs per case; with
//! one case name it runs only that one (a target for callgrind).
//!
//! `cargo run --release -p revode-benches --bin stimulus_figures -- [REPEAT] [CASE]`
//! (CASE: `none`, `on_grid`, `off_grid`, `dopri5_none`, `dopri5_stimulus`)

use std::time::Instant;

use revode::adjoint::{
    gradient_continuous_with_stimulus, gradient_fixed_with_stimulus, AdaptiveProblem,
    ContinuousOptions,
};
use revode::checkpoint::Schedule;
use revode::forward::{solve_fixed_with_stimulus, AdaptiveOptions, Stimulus, StimulusTrack};
use revode::prelude::*;

fn protocol(times: [f64; 3]) -> Stimulus {
    Stimulus {
        tracks: vec![StimulusTrack {
            param: 2,
            switches: vec![[times[0], 0.05], [times[1], 0.2], [times[2], 0.05]],
        }],
    }
}

fn best_of(repeat: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..repeat.max(1))
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let repeat: usize = args
        .next()
        .map_or(20, |s| s.parse().expect("REPEAT is a whole number"));
    let only = args.next();
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
    let fixed_cases = [
        ("none", Stimulus::none()),
        ("on_grid", protocol([0.0, 100.0, 400.0])),
        ("off_grid", protocol([0.0, 100.005, 400.005])),
    ];
    println!("HH seed, Euler 60 000 steps, final loss, all states kept (best of {repeat}):");
    for (name, stimulus) in &fixed_cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let forward = best_of(repeat, || {
            solve_fixed_with_stimulus(&model, FixedMethod::Euler, &grid, &u0, &p, stimulus, None)
                .unwrap()
                .final_state[0]
        });
        let gradient = best_of(repeat, || {
            gradient_fixed_with_stimulus(&model, &problem, stimulus, &loss, Schedule::All)
                .unwrap()
                .gradient[0]
        });
        println!(
            "  {name:<16} forward {:.3} ms ({:.1} ns/step), gradient {:.3} ms",
            forward * 1e3,
            forward * 1e9 / 60_000.0,
            gradient * 1e3
        );
    }
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let adaptive = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 600.0,
        options: &options,
    };
    println!("HH dopri5 at 1e-8, continuous adjoint (best of {repeat}):");
    for (name, stimulus) in [
        ("dopri5_none", Stimulus::none()),
        ("dopri5_stimulus", protocol([0.0, 100.005, 400.005])),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut steps = 0;
        let gradient = best_of(repeat, || {
            let g = gradient_continuous_with_stimulus(
                &model,
                &adaptive,
                &stimulus,
                &loss,
                &ContinuousOptions::default(),
                Schedule::All,
            )
            .unwrap();
            steps = g.stats.steps;
            g.gradient[0]
        });
        println!(
            "  {name:<16} gradient {:.3} ms ({steps} forward steps)",
            gradient * 1e3
        );
    }
}
