//! The seed problem's ratios of issue #18, in one process: a hand-written
//! Euler loop (`HodgkinHuxley::rhs`, `u += h·f`), the library's forward
//! (`solve_fixed`, and `revode::loss` on `fixtures/hh_seed.json`, the
//! forward `revode_figures` divides by) and the all-states gradient
//! (`revode::gradient`), interleaved round by round so drifting machine
//! speed hits all alike. Prints medians and bests of wall time, minor page
//! faults per call, and the ratios
//! library forward / hand loop and gradient / forward.
//!
//! `cargo run --release -p revode-benches --bin seed_ratios -- [ROUNDS] [CALLS]`
//! (defaults 15 rounds of 10 calls each). Take figures in a quiet window.

use std::hint::black_box;
use std::time::Instant;

use revode::prelude::*;
use revode_benches::{fixture, minor_faults};

/// The loop a user would write by hand: state in a local array.
fn hand_loop(model: &HodgkinHuxley, u0: &[f64], p: &[f64], grid: &TimeGrid) -> f64 {
    let mut u = [u0[0], u0[1], u0[2], u0[3]];
    let mut du = [0.0; 4];
    let h = grid.dt;
    for k in 0..grid.n_steps() {
        model.rhs(grid.time(k), &u, p, &mut du, &mut ());
        for i in 0..4 {
            u[i] += h * du[i];
        }
    }
    u.iter().sum()
}

/// One timed call, returning something to keep.
type Case<'a> = (&'static str, Box<dyn FnMut() -> f64 + 'a>);

/// Wall seconds and page faults of every call of one case.
#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    faults: u64,
    calls: u64,
}

impl Samples {
    fn time(&mut self, f: &mut dyn FnMut() -> f64) {
        let faults = minor_faults();
        let started = Instant::now();
        black_box(f());
        self.wall.push(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (faults, minor_faults()) {
            self.faults += after - before;
        }
        self.calls += 1;
    }

    fn median(&self) -> f64 {
        let mut w = self.wall.clone();
        w.sort_by(f64::total_cmp);
        w[w.len() / 2]
    }

    fn best(&self) -> f64 {
        self.wall.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(15, |s| s.parse().expect("ROUNDS is a whole number"));
    let calls: usize = args
        .next()
        .map_or(10, |s| s.parse().expect("CALLS is a whole number"));
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).expect("seed grid");
    let seed = fixture("hh_seed.json");

    let mut cases: Vec<Case> = vec![
        ("hand loop", Box::new(|| hand_loop(&model, &u0, &p, &grid))),
        (
            "solve_fixed",
            Box::new(|| {
                solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None)
                    .expect("seed solves")
                    .final_state[0]
            }),
        ),
        (
            "revode::loss",
            Box::new(|| revode::loss(&seed).expect("seed loss")),
        ),
        (
            "revode::gradient",
            Box::new(|| revode::gradient(&seed).expect("seed gradient").gradient[0]),
        ),
    ];
    // Warm-up: first calls map memory and fill caches.
    for (_, f) in cases.iter_mut() {
        for _ in 0..3 {
            black_box(f());
        }
    }
    let mut samples: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    for _ in 0..rounds.max(1) {
        for ((_, f), s) in cases.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..calls.max(1) {
                s.time(f.as_mut());
            }
        }
    }
    let steps = grid.n_steps() as f64;
    println!(
        "seed problem, {} steps; {} calls per case in {} interleaved rounds",
        grid.n_steps(),
        rounds.max(1) * calls.max(1),
        rounds.max(1)
    );
    for ((name, _), s) in cases.iter().zip(&samples) {
        println!(
            "  {name:17} median {:7.3} ms  best {:7.3} ms ({:5.1} ns/step)  {:6.1} page faults/call",
            s.median() * 1e3,
            s.best() * 1e3,
            s.best() * 1e9 / steps,
            s.faults as f64 / s.calls as f64
        );
    }
    let [hand, solve, loss, gradient] = [0, 1, 2, 3].map(|i| &samples[i]);
    let ratio = |a: &Samples, b: &Samples| {
        format!(
            "median {:.3}, best {:.3}",
            a.median() / b.median(),
            a.best() / b.best()
        )
    };
    println!("solve_fixed / hand loop:       {}", ratio(solve, hand));
    println!("revode::loss / hand loop:      {}", ratio(loss, hand));
    println!("gradient / revode::loss:       {}", ratio(gradient, loss));
}
