//! One backward Euler (or explicit Euler) forward solve or gradient, for
//! instruction counts: callgrind gives the same count on a busy machine as
//! on a quiet one, so alternatives are compared with it (docs/stiff.md).
//!
//! ```text
//! cargo build --release -p revode-benches --bin stiff_once
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/stiff_once gradient seed
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/stiff_once gradient cable 100 --refactor
//! ```
//!
//! Arguments: `forward|gradient|euler-forward|euler-gradient seed|cable [N]`
//! and options `--dt DT`, `--t1 T`, `--newton-tol TOL`, `--refactor` (refactor
//! at every backward step) or `--refine` (refine on older factors; the
//! default chooses by size), `--threads 1|2` (the backward sweep of a
//! larger model; default: two on a multi-core machine), `--every K`
//! (checkpoints).
//! `seed` is fixtures/hh_seed.json (built-in HH, [0, 600] by default);
//! `cable N` is the N-compartment cable of models/make_hh_cable.py (written
//! to a temporary folder by python3), [0, 100], as fixtures/hh_cable_100.json.

use revode::adjoint::{
    gradient_beuler_with, gradient_fixed_with_stimulus, loss_beuler_with_stimulus, BackwardThreads,
    BeulerProblem, TransposedSolve,
};
use revode::checkpoint::Schedule;
use revode::forward::{FixedMethod, Stimulus, TimeGrid};
use revode::model::Model;
use revode::{ModelVisitor, Problem};
use revode_benches::{cable_problem, fixture};

struct Run {
    what: String,
    dt: Option<f64>,
    t1: Option<f64>,
    newton_tol: Option<f64>,
    transposed: TransposedSolve,
    threads: BackwardThreads,
    schedule: Schedule,
    problem: Problem,
    /// Time this many runs (after the model's native code is ready).
    repeat: Option<usize>,
}

impl ModelVisitor for &Run {
    type Output = ();
    fn visit<M: Model>(self, model: &M) {
        let mut p = self.problem.clone();
        if let Some(t1) = self.t1 {
            // A shorter span keeps the switches inside it.
            p.tspan[1] = t1;
            if let Some(stim) = &mut p.stimulus {
                for switches in stim.0.values_mut() {
                    switches.retain(|&[t, _]| t < t1);
                }
                stim.0.retain(|_, switches| !switches.is_empty());
            }
        }
        let p = &p;
        let (u0, params, loss) = p.resolved_inputs(model);
        let stimulus: Stimulus = p.stimulus_for(model).expect("stimulus");
        let dt = self
            .dt
            .or(p.solver.fixed_dt())
            .expect("a fixed-step problem");
        let t1 = self.t1.unwrap_or(p.tspan[1]);
        let grid = TimeGrid::new(p.tspan[0], t1, dt).expect("grid");
        let mut options = p.solver.beuler_options().unwrap_or_default();
        if let Some(tol) = self.newton_tol {
            options.newton_tol = tol;
        }
        let beuler = BeulerProblem {
            u0: &u0,
            params: &params,
            grid,
            options,
        };
        let explicit = revode::adjoint::FixedProblem {
            u0: &u0,
            params: &params,
            grid,
            method: FixedMethod::Euler,
        };
        match self.what.as_str() {
            "forward" => {
                if let Some(reps) = self.repeat {
                    let secs = revode_benches::median_seconds(reps, || {
                        std::hint::black_box(
                            loss_beuler_with_stimulus(model, &beuler, &stimulus, &loss).unwrap(),
                        );
                    });
                    eprintln!("median forward {:.3} ms over {reps}", secs * 1e3);
                }
                let l = loss_beuler_with_stimulus(model, &beuler, &stimulus, &loss).unwrap();
                println!("loss {l:e}");
            }
            "gradient" => {
                if let Some(reps) = self.repeat {
                    let secs = revode_benches::median_seconds(reps, || {
                        std::hint::black_box(
                            gradient_beuler_with(
                                model,
                                &beuler,
                                &stimulus,
                                &loss,
                                self.schedule,
                                self.transposed,
                                self.threads,
                            )
                            .unwrap(),
                        );
                    });
                    eprintln!("median gradient {:.3} ms over {reps}", secs * 1e3);
                }
                let g = gradient_beuler_with(
                    model,
                    &beuler,
                    &stimulus,
                    &loss,
                    self.schedule,
                    self.transposed,
                    self.threads,
                )
                .unwrap();
                println!("loss {:e}, dL/dp[0] {:e}", g.loss, g.gradient[0]);
                println!(
                    "forward sweep {:.3} ms, backward sweep {:.3} ms",
                    g.stats.forward_seconds * 1e3,
                    g.stats.backward_seconds * 1e3
                );
                println!("{}", serde_json::to_string(&g.stats.implicit).unwrap());
            }
            "euler-forward" => {
                if let Some(reps) = self.repeat {
                    let secs = revode_benches::median_seconds(reps, || {
                        std::hint::black_box(
                            revode::adjoint::loss_fixed_with_stimulus(
                                model, &explicit, &stimulus, &loss,
                            )
                            .unwrap(),
                        );
                    });
                    eprintln!("median euler forward {:.3} ms over {reps}", secs * 1e3);
                }
                let l =
                    revode::adjoint::loss_fixed_with_stimulus(model, &explicit, &stimulus, &loss)
                        .unwrap();
                println!("loss {l:e}");
            }
            "euler-gradient" => {
                let g =
                    gradient_fixed_with_stimulus(model, &explicit, &stimulus, &loss, self.schedule)
                        .unwrap();
                println!("loss {:e}, dL/dp[0] {:e}", g.loss, g.gradient[0]);
            }
            other => panic!("unknown run {other}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: stiff_once forward|gradient|euler-forward|euler-gradient seed|cable [N] \
                 [--dt DT] [--t1 T] [--newton-tol TOL] [--refactor|--refine] [--threads 1|2] [--every K] [--repeat R]";
    let what = args.get(1).expect(usage).clone();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|s| s.parse::<f64>().expect(usage))
    };
    let (problem, _dir) = match args.get(2).map(String::as_str) {
        Some("seed") => {
            let mut p = fixture("hh_seed.json");
            p.solver = revode::problem::SolverSpec::Beuler {
                dt: 0.01,
                newton_tol: None,
                linear_solver: None,
            };
            (p, None)
        }
        Some("cable") => {
            let n: usize = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
            let (p, dir) = cable_problem(n);
            (p, Some(dir))
        }
        _ => panic!("{usage}"),
    };
    let run = Run {
        what,
        dt: option("--dt"),
        t1: option("--t1"),
        newton_tol: option("--newton-tol"),
        transposed: if args.iter().any(|a| a == "--refactor") {
            TransposedSolve::Refactor
        } else if args.iter().any(|a| a == "--refine") {
            TransposedSolve::Refine
        } else {
            TransposedSolve::Auto
        },
        threads: match option("--threads").map(|t| t as usize) {
            None => BackwardThreads::Auto,
            Some(1) => BackwardThreads::One,
            Some(_) => BackwardThreads::Two,
        },
        schedule: option("--every").map_or(Schedule::All, |k| Schedule::Every(k as usize)),
        repeat: option("--repeat").map(|r| r as usize),
        problem,
    };
    if run.repeat.is_some() {
        if let revode::ModelSpec::File(file) = &run.problem.model {
            file.model().expect("loaded").wait_for_native_code();
        }
    }
    run.problem.model.visit(&run).expect("model");
}
