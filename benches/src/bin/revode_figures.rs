//! revode's side of the peer benchmarks: the same problems as
//! `benches/peers/` (see its README), one JSON record per (problem, method),
//! in the peers' schema, on stdout as one JSON object.
//!
//! `cargo run --release -p revode-benches --bin revode_figures [-- --quick] [--reps N] [--only TEXT]`
//!
//! Each record has the minor page faults per timed call next to the times:
//! above zero after the warm-up, a call maps and touches fresh memory (the
//! in-process cost of issue #18's seed regression).
//!
//! A problem that cannot run (say, a model this build lacks) is recorded with
//! an `"error"`, never dropped.

use std::time::Instant;

use revode::Problem;
use revode_benches::{median_seconds_and_faults, peak_rss_bytes};
use serde_json::{json, Value};

/// One benchmark case: a problem name, a method label and its problem file.
struct Case {
    problem: &'static str,
    method: String,
    file: Value,
}

fn hh_problem(t1: f64, solver: Value, loss: Value, adjoint: Value) -> Value {
    json!({
        "model": {"name": "hh"},
        "tspan": [0.0, t1],
        "solver": solver,
        "loss": loss,
        "adjoint": adjoint,
    })
}

fn network_problem(n: usize, t1: f64) -> Value {
    // loss = Σ_i E_i(t1): weight 1 on every E_i (state 4i), 0 on the gates.
    let weights: Vec<f64> = (0..4 * n)
        .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
        .collect();
    json!({
        "model": {"name": "hh_network", "n": n},
        "tspan": [0.0, t1],
        "solver": {"method": "euler", "dt": 0.01},
        "loss": {"kind": "final", "weights": weights},
        "adjoint": {"method": "discrete", "checkpoints": "all"},
    })
}

fn cases(quick: bool) -> Vec<Case> {
    let seed_t1 = if quick { 6.0 } else { 600.0 };
    let net_t1 = if quick { 1.0 } else { 100.0 };
    let euler = json!({"method": "euler", "dt": 0.01});
    let final_loss = json!({"kind": "final"});
    let sqrt_n = ((seed_t1 / 0.01_f64).sqrt().ceil()) as usize;
    let discrete = |checkpoints: Value| json!({"method": "discrete", "checkpoints": checkpoints});
    let mut cases = vec![
        Case {
            problem: "hh_seed_final",
            method: "discrete_adjoint_all".into(),
            file: hh_problem(
                seed_t1,
                euler.clone(),
                final_loss.clone(),
                discrete(json!("all")),
            ),
        },
        Case {
            problem: "hh_seed_final",
            method: format!("discrete_adjoint_every_{sqrt_n}"),
            file: hh_problem(
                seed_t1,
                euler.clone(),
                final_loss.clone(),
                discrete(json!({"every": sqrt_n})),
            ),
        },
        Case {
            problem: "hh_seed_final",
            method: "discrete_adjoint_budget_64KiB".into(),
            file: hh_problem(
                seed_t1,
                euler.clone(),
                final_loss.clone(),
                discrete(json!({"budget_bytes": 65536})),
            ),
        },
        Case {
            problem: "hh_seed_all_steps",
            method: "discrete_adjoint_all".into(),
            file: hh_problem(
                seed_t1,
                euler,
                json!({"kind": "all_steps"}),
                discrete(json!("all")),
            ),
        },
        Case {
            problem: "hh_dopri5_final",
            method: "dopri5_continuous_adjoint".into(),
            file: hh_problem(
                seed_t1,
                json!({"method": "dopri5", "rtol": 1e-8, "atol": 1e-8}),
                final_loss.clone(),
                json!({"method": "continuous"}),
            ),
        },
        Case {
            problem: "hh_dopri5_final",
            method: "dopri5_continuous_adjoint_budget_64KiB".into(),
            file: hh_problem(
                seed_t1,
                json!({"method": "dopri5", "rtol": 1e-8, "atol": 1e-8}),
                final_loss.clone(),
                json!({"method": "continuous", "checkpoints": {"budget_bytes": 65536}}),
            ),
        },
        Case {
            // The shared high-accuracy reference for the true ODE gradient.
            problem: "hh_dopri5_final",
            method: "reference_rk4_discrete_dt5e-4".into(),
            file: hh_problem(
                seed_t1,
                json!({"method": "rk4", "dt": 5e-4}),
                final_loss,
                discrete(json!({"every": 1100})),
            ),
        },
    ];
    for n in [10, 50, 100] {
        cases.push(Case {
            problem: match n {
                10 => "hh_network_10",
                50 => "hh_network_50",
                _ => "hh_network_100",
            },
            method: "discrete_adjoint_all".into(),
            file: network_problem(n, net_t1),
        });
    }
    cases
}

fn run_case(case: &Case, reps: usize, quick: bool) -> Value {
    let mut record = json!({
        "engine": "revode",
        "version": env!("CARGO_PKG_VERSION"),
        "problem": case.problem,
        "method": case.method,
        "quick": quick,
        "problem_file": case.file,
    });
    let problem = match Problem::from_json(&case.file.to_string(), case.problem) {
        Ok(p) => p,
        Err(e) => {
            record["error"] = json!(e.to_string());
            return record;
        }
    };
    let started = Instant::now();
    let first = revode::gradient(&problem);
    let first_call = started.elapsed().as_secs_f64();
    let report = match first {
        Ok(r) => r,
        Err(e) => {
            record["error"] = json!(e.to_string());
            return record;
        }
    };
    let (forward, forward_faults) = median_seconds_and_faults(reps, || {
        std::hint::black_box(revode::loss(&problem).expect("forward succeeded once"));
    });
    let (gradient, gradient_faults) = median_seconds_and_faults(reps, || {
        std::hint::black_box(revode::gradient(&problem).expect("gradient succeeded once"));
    });
    record["forward_ms"] = json!(forward * 1e3);
    record["gradient_ms"] = json!(gradient * 1e3);
    record["ratio"] = json!(gradient / forward);
    record["first_call_ms"] = json!(first_call * 1e3);
    // Above zero after the warm-up: memory mapped and touched afresh per call.
    record["forward_minor_faults_per_call"] = json!(forward_faults);
    record["gradient_minor_faults_per_call"] = json!(gradient_faults);
    record["n_timed"] = json!(reps);
    record["loss"] = json!(report.loss);
    record["grad"] = json!(report.gradient);
    record["grad_all_finite"] = json!(report.gradient.iter().all(|g| g.is_finite()));
    record["n_params"] = json!(report.gradient.len());
    record["stats"] = serde_json::to_value(report.stats).expect("stats serialise");
    record["peak_store_bytes"] = json!(report.stats.peak_store_bytes);
    record["peak_rss_bytes_so_far"] = json!(peak_rss_bytes());
    record
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse::<usize>().expect("--reps takes a whole number"))
        .unwrap_or(if quick { 3 } else { 21 });
    // `--only TEXT`: the cases whose problem or method name contains TEXT.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let records: Vec<Value> = cases(quick)
        .iter()
        .filter(|c| {
            only.is_none_or(|o| c.problem.contains(o.as_str()) || c.method.contains(o.as_str()))
        })
        .map(|c| run_case(c, reps, quick))
        .collect();
    let out = json!({
        "engine": "revode",
        "quick": quick,
        "timing": "forward_ms: forward solve with the loss only; gradient_ms: loss and gradient; \
                   medians of --reps calls after a first call (first_call_ms); \
                   *_minor_faults_per_call: page faults per timed call (Linux)",
        "records": records,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
}
