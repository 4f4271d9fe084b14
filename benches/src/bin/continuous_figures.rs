//! Prints the continuous-adjoint figures of the HH seed problem as JSON:
//! dopri5 at rtol = atol = 1e-8 over [0, 600], final loss; forward and
//! gradient medians, their ratio, step counts both ways and store bytes
//! for several checkpoint schedules.
//!
//! `cargo run --release -p revode-benches --bin continuous_figures [-- --repeat R]`

use revode::adjoint::{gradient_continuous, AdaptiveProblem, ContinuousOptions, Gradient};
use revode::checkpoint::Schedule;
use revode::forward::{solve_adaptive, AdaptiveOptions};
use revode::prelude::*;
use revode_benches::median_seconds;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(21);

    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let problem = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 600.0,
        options: &options,
    };
    let adjoint = ContinuousOptions::default();
    let gradient = |schedule: Schedule| -> Gradient {
        gradient_continuous(&model, &problem, &loss, &adjoint, schedule).unwrap()
    };

    let forward = median_seconds(repeat, || {
        std::hint::black_box(solve_adaptive(&model, &options, 0.0, 600.0, &u0, &p, None).unwrap());
    });
    let reference = gradient(Schedule::All);
    let n = reference.stats.steps;
    let sqrt_n = (n as f64).sqrt().ceil() as usize;
    let mut rows = Vec::new();
    for (name, schedule) in [
        ("all", Schedule::All),
        ("every_64", Schedule::Every(64)),
        ("every_sqrt_n", Schedule::Every(sqrt_n)),
        ("budget_64_kib", Schedule::BudgetBytes(64 << 10)),
    ] {
        let g = gradient(schedule);
        assert_eq!(
            g.gradient, reference.gradient,
            "schedules must agree bit for bit"
        );
        let seconds = median_seconds(repeat, || {
            std::hint::black_box(gradient(schedule));
        });
        let s = g.stats;
        rows.push(serde_json::json!({
            "schedule": name,
            "gradient_ms": seconds * 1e3,
            "ratio_to_forward": seconds / forward,
            "forward_steps": {"accepted": s.steps, "rejected": s.rejected_steps},
            "backward_steps": {"accepted": s.backward_steps, "rejected": s.backward_rejected},
            "checkpoints_kept": s.checkpoints_kept,
            "recomputed_steps": s.recomputed_steps,
            "peak_store_bytes": s.peak_store_bytes,
        }));
    }
    let figures = serde_json::json!({
        "problem": "HH seed, dopri5 rtol=atol=1e-8, [0,600], final loss, continuous adjoint",
        "forward_ms": forward * 1e3,
        "gradient": reference.gradient,
        "gradient_u0": reference.gradient_u0,
        "schedules": rows,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
