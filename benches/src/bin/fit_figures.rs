//! Fitting benchmarks (docs/fitting.md): wall time and iterations of
//! fitting the seed model's conductances, and multi-start recovery rates.
//!
//! `cargo run --release -p revode-benches --bin fit_figures -- single`
//! `cargo run --release -p revode-benches --bin fit_figures -- multistart [TRIALS]`

use revode::fit::{fit, FitOptions, FitProblem, FreeParameter, Sweep};
use revode::problem::{LossSpec, ModelSpec, SolverSpec};
use revode::Problem;

const TRUTH: [f64; 3] = [70.0, 10.0, 0.05];
const NAMES: [&str; 3] = ["g_Na", "g_Kd", "g_leak"];

fn seed_trace(t1: f64) -> Sweep {
    let problem = Problem {
        model: ModelSpec::Hh,
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, t1],
        solver: SolverSpec::Euler { dt: 0.01 },
        loss: None::<LossSpec>,
        adjoint: Default::default(),
    };
    // E every 0.5 ms.
    Sweep::synthetic(&problem, "E", 50).expect("seed trace")
}

fn seed_fit(t1: f64, start: [f64; 3]) -> FitProblem {
    FitProblem {
        model: ModelSpec::Hh,
        params: Some(start.to_vec()),
        u0: None,
        free: NAMES
            .iter()
            .map(|n| FreeParameter {
                name: n.to_string(),
                lower: Some(0.0),
                upper: None,
            })
            .collect(),
        solver: SolverSpec::Euler { dt: 0.01 },
        adjoint: Default::default(),
        sweeps: vec![seed_trace(t1)],
    }
}

fn max_rel_error(p: &[f64]) -> f64 {
    p.iter()
        .zip(TRUTH)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max)
}

fn single(t1: f64, factor: f64) {
    let problem = seed_fit(t1, TRUTH.map(|p| p * factor));
    let options = FitOptions::default();
    let r = fit(&problem, &options).expect("fit runs");
    println!(
        "{t1} ms from {factor}x: {:.3} s, {} iterations, {} evaluations ({} failed), loss {:.3e}, max rel error {:.2e}, stop {:?}",
        r.seconds,
        r.iterations,
        r.evaluations,
        r.failed_evaluations,
        r.loss,
        max_rel_error(&r.params),
        r.stop_reason
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("single") | None => {
            single(50.0, 1.3);
            single(50.0, 0.9);
            single(50.0, 0.7);
            single(600.0, 1.1);
            single(600.0, 0.9);
        }
        Some("progress") => trace_progress(600.0, 1.1),
        Some("example") => write_example(args.get(1).map_or("examples/fit_hh", String::as_str)),
        Some(other) => eprintln!("unknown mode {other}"),
    }
}

#[allow(dead_code)]
fn trace_progress(t1: f64, factor: f64) {
    let problem = seed_fit(t1, TRUTH.map(|p| p * factor));
    let r = revode::fit::fit_observed(&problem, &FitOptions::default(), &|p| {
        println!(
            "{:3} loss {:.3e} |g| {:.3e} err {:.2e}",
            p.iteration,
            p.loss,
            p.gradient_norm,
            max_rel_error(&p.params)
        )
    })
    .unwrap();
    println!("{:?} {}", r.stop_reason, r.evaluations);
}

/// Writes the walk-through's recording: E of the seed model every 0.5 ms.
fn write_example(dir: &str) {
    let sweep = seed_trace(600.0);
    let mut csv = String::from("t,E\n");
    for (t, e) in sweep.times.iter().zip(&sweep.values) {
        csv.push_str(&format!("{t},{e}\n"));
    }
    std::fs::create_dir_all(dir).expect("example directory");
    std::fs::write(format!("{dir}/trace.csv"), csv).expect("trace written");
}
