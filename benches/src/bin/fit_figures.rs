//! Fitting benchmarks (docs/fitting.md): wall time and iterations of
//! fitting the seed model's conductances, and multi-start recovery rates.
//!
//! `cargo run --release -p revode-benches --bin fit_figures -- single`
//! `cargo run --release -p revode-benches --bin fit_figures -- multistart [TRIALS [FIRST]]`
//! `cargo run --release -p revode-benches --bin fit_figures -- windows [TRIALS]`
//! `cargo run --release -p revode-benches --bin fit_figures -- file FIT.json`
//! `cargo run --release -p revode-benches --bin fit_figures -- cortical`
//!
//! `multistart`: each trial draws a guess log-uniformly within ±30 % of the
//! true conductances, then fits the 600 ms trace with 16 starts (the guess
//! and 15 draws within ±30 % of it, seed = trial). A start recovers when
//! every conductance is within 1e-6 of the truth (relative). Success with K
//! starts uses the first K starts of each trial (nested, independent draws).

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
        stimulus: None,
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
    let options = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
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
        Some("multistart") => multistart(
            args.get(1).map_or(16, |t| t.parse().expect("TRIALS")),
            args.get(2).map_or(0, |t| t.parse().expect("FIRST")),
        ),
        Some("windows") => windows(args.get(1).map_or(16, |t| t.parse().expect("TRIALS"))),
        Some("file") => fit_file(args.get(1).expect("fit_figures file FIT.json")),
        Some("cortical") => cortical(),
        Some("example") => write_example(args.get(1).map_or("examples/fit_hh", String::as_str)),
        Some(other) => eprintln!("unknown mode {other}"),
    }
}

#[allow(dead_code)]
fn trace_progress(t1: f64, factor: f64) {
    let problem = seed_fit(t1, TRUTH.map(|p| p * factor));
    let r = revode::fit::fit_observed(
        &problem,
        &FitOptions {
            starts: 1,
            ..FitOptions::default()
        },
        &|p| {
            println!(
                "{:3} loss {:.3e} |g| {:.3e} err {:.2e}",
                p.iteration,
                p.loss,
                p.gradient_norm,
                max_rel_error(&p.params)
            )
        },
    )
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

/// A small seeded generator for the guesses (splitmix64).
fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Trials `first..trials` (the guesses before `first` are drawn and
/// skipped, so a long run can be resumed).
fn multistart(trials: usize, first: usize) {
    const K: usize = 16;
    let sweep = seed_trace(600.0);
    let mut rng = 12345u64;
    let mut recovered: Vec<Vec<bool>> = Vec::new();
    let mut seconds = Vec::new();
    for trial in 0..trials {
        let guess =
            TRUTH.map(|t| t * (0.7f64.ln() + splitmix(&mut rng) * (1.3f64 / 0.7).ln()).exp());
        if trial < first {
            continue;
        }
        let mut problem = seed_fit(600.0, guess);
        problem.sweeps = vec![sweep.clone()];
        let options = FitOptions {
            starts: K,
            spread: Some(0.3),
            seed: trial as u64,
            ..FitOptions::default()
        };
        let r = fit(&problem, &options).expect("fit runs");
        let ok: Vec<bool> = r
            .starts
            .iter()
            .map(|s| max_rel_error(&s.params) <= 1e-6)
            .collect();
        println!(
            "trial {trial:2}: guess {:.3?} x truth, {:.2} s, best loss {:.2e}, recovered by {:2}/{K} starts, guess itself {}, starts {}",
            guess.iter().zip(TRUTH).map(|(g, t)| g / t).collect::<Vec<_>>(),
            r.seconds,
            r.loss,
            ok.iter().filter(|b| **b).count(),
            if ok[0] { "yes" } else { "no" },
            ok.iter().map(|b| if *b { '1' } else { '0' }).collect::<String>()
        );
        seconds.push(r.seconds);
        recovered.push(ok);
    }
    println!("| starts K | trials recovered | rate |");
    println!("|---|---|---|");
    for k in [1, 2, 4, 8, 16] {
        let n = recovered
            .iter()
            .filter(|ok| ok[..k].iter().any(|b| *b))
            .count();
        let done = recovered.len();
        println!(
            "| {k} | {n}/{done} | {:.0} % |",
            100.0 * n as f64 / done as f64
        );
    }
    let all: usize = recovered
        .iter()
        .map(|ok| ok.iter().filter(|b| **b).count())
        .sum();
    println!(
        "single starts recovering, over all {} starts: {:.0} %; median wall time of a 16-start fit {:.2} s",
        recovered.len() * K,
        100.0 * all as f64 / (recovered.len() * K) as f64,
        {
            seconds.sort_by(f64::total_cmp);
            seconds[seconds.len() / 2]
        }
    );
}

/// The multistart trials' guesses, fitted from the guess alone with and
/// without time-window continuation (50, 150, 300 ms, then 600 ms).
fn windows(trials: usize) {
    let sweep = seed_trace(600.0);
    let mut rng = 12345u64;
    let (mut plain, mut continued) = (0, 0);
    for trial in 0..trials {
        let guess =
            TRUTH.map(|t| t * (0.7f64.ln() + splitmix(&mut rng) * (1.3f64 / 0.7).ln()).exp());
        let mut problem = seed_fit(600.0, guess);
        problem.sweeps = vec![sweep.clone()];
        let mut line = format!("trial {trial:2}:");
        for (label, w) in [("plain", vec![]), ("windows", vec![1.0 / 12.0, 0.25, 0.5])] {
            let options = FitOptions {
                windows: w,
                starts: 1,
                ..FitOptions::default()
            };
            let r = fit(&problem, &options).expect("fit runs");
            let ok = max_rel_error(&r.params) <= 1e-6;
            if ok {
                if label == "plain" {
                    plain += 1
                } else {
                    continued += 1
                }
            }
            line += &format!(
                "  {label}: {} in {:.2} s, {} iterations",
                if ok { "recovered" } else { "missed" },
                r.seconds,
                r.iterations
            );
        }
        println!("{line}");
    }
    println!("recovered from the guess alone: {plain}/{trials}; with windows 50, 150, 300, 600 ms: {continued}/{trials}");
}

/// Any fit file: wall time, iterations, time per iteration and per
/// gradient evaluation, and what forward-mode gradients would cost: P + 1
/// forward solves per gradient (P free parameters; a lower bound, since a
/// tangent solve costs at least a solve), from the median time of one
/// forward pass over all sweeps at the fitted parameters.
fn fit_file(path: &str) {
    let (problem, options) = revode::fit::read_fit_file(path.as_ref()).expect("fit file");
    report_fit(path, &problem, &options);
}

fn report_fit(path: &str, problem: &FitProblem, options: &FitOptions) {
    let r = fit(problem, options).expect("fit runs");
    let problems: Vec<Problem> = (0..problem.sweeps.len())
        .map(|i| revode::fit::fitted_problem(problem, &r, i).expect("sweep problem"))
        .collect();
    let forward = revode_benches::median_seconds(5, || {
        for p in &problems {
            revode::solve(p, None).expect("solve");
        }
    });
    let evaluations = r.starts.iter().map(|s| s.evaluations).sum::<usize>();
    let p = r.params.len();
    println!(
        "{path}: {} free parameters, {} sweeps, {} start(s): {:.3} s wall, {} iterations, {} gradient evaluations ({} failed), loss {:.4e}, {:?}",
        p,
        problem.sweeps.len(),
        r.starts.len(),
        r.seconds,
        r.iterations,
        evaluations,
        r.failed_evaluations,
        r.loss,
        r.stop_reason
    );
    let busy: f64 = r.starts.iter().map(|s| s.seconds).sum();
    println!(
        "per iteration {:.2} ms, per gradient evaluation {:.2} ms; one forward pass over all sweeps {:.2} ms",
        1e3 * busy / r.starts.iter().map(|s| s.iterations).sum::<u64>().max(1) as f64,
        1e3 * busy / evaluations.max(1) as f64,
        1e3 * forward
    );
    println!(
        "forward mode: ({p} + 1) x {:.2} ms = {:.2} ms per gradient, {:.2} s for the same {} evaluations (adjoint: {:.2} s)",
        1e3 * forward,
        1e3 * (p + 1) as f64 * forward,
        (p + 1) as f64 * forward * evaluations as f64,
        evaluations,
        busy
    );
}

/// The cortical neuron (models/cortical_pospischil.ode, 62 parameters):
/// 12 free parameters fitted to V of 3 sweeps of 300 ms with I_inj steps of
/// 0.2, 0.4 and 0.6 nA from 20 to 270 ms (synthetic, V every 0.5 ms), from
/// 5 % off the defaults, one start. Then the same figures as `file`.
fn cortical() {
    use revode::problem::{ModelFile, StimulusSpec};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/cortical_pospischil.ode");
    let model = ModelSpec::File(ModelFile::load(path).expect("cortical model"));
    let sweeps: Vec<Sweep> = [0.2, 0.4, 0.6]
        .iter()
        .map(|&amp| {
            let problem = Problem {
                model: model.clone(),
                params: None,
                u0: None,
                tspan: [0.0, 300.0],
                solver: SolverSpec::Euler { dt: 0.01 },
                loss: None,
                adjoint: Default::default(),
                stimulus: Some(
                    StimulusSpec::new().with("I_inj", &[[0.0, 0.0], [20.0, amp], [270.0, 0.0]]),
                ),
            };
            Sweep::synthetic(&problem, "V", 50).expect("cortical trace")
        })
        .collect();
    let names = [
        "g_leak", "E_leak", "g_Na", "V_T", "g_Kd", "g_M", "tau_max", "g_L", "a_ar", "a_br", "g_T",
        "phi_u",
    ];
    let free: Vec<FreeParameter> = names
        .iter()
        .map(|n| FreeParameter {
            name: n.to_string(),
            // Reversal potentials and thresholds are negative: no bound.
            lower: if n.starts_with("E_") || n.starts_with("V_") {
                None
            } else {
                Some(0.0)
            },
            upper: None,
        })
        .collect();
    // Defaults, then the free ones 5 % off.
    let defaults = revode::fit::model_info(&model).expect("defaults");
    let mut params = defaults.default_params.clone();
    for n in names {
        let i = defaults
            .param_names
            .iter()
            .position(|p| p == n)
            .expect("parameter");
        params[i] *= 1.05;
    }
    let problem = FitProblem {
        model,
        params: Some(params),
        u0: None,
        free,
        solver: SolverSpec::Euler { dt: 0.01 },
        adjoint: Default::default(),
        sweeps,
    };
    let options = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    report_fit("cortical (3 sweeps, 12 free)", &problem, &options);
}
