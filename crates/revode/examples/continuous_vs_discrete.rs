//! The exact discrete adjoint and the continuous adjoint side by side on the
//! HH seed model over [0, 50] (one spike), final loss Σ u_i(50).
//!
//! `cargo run --release -p revode --example continuous_vs_discrete`
//!
//! The reference is the continuous adjoint of dopri5 at rtol = atol = 1e-12
//! (checked against the discrete adjoint of RK4 at dt = 1e-4).

use revode::adjoint::{
    gradient_continuous, gradient_continuous_fixed, AdaptiveProblem, ContinuousOptions,
};
use revode::forward::AdaptiveOptions;
use revode::prelude::*;

fn rel_err(g: &[f64], reference: &[f64]) -> f64 {
    g.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs() / b.abs())
        .fold(0.0, f64::max)
}

fn main() {
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let t1 = 50.0;
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let options = AdaptiveOptions::new(1e-12, 1e-12);
    let adaptive = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1,
        options: &options,
    };
    let reference = gradient_continuous(
        &model,
        &adaptive,
        &loss,
        &ContinuousOptions::default(),
        Schedule::All,
    )
    .unwrap()
    .gradient;
    let fine = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, t1, 1e-4).unwrap(),
        method: FixedMethod::Rk4,
    };
    let check = gradient_fixed(&model, &fine, &loss, Schedule::All).unwrap();
    println!("reference dL/dp = {reference:.10?}");
    println!(
        "(RK4 discrete at dt = 1e-4 differs by {:.1e} relative)\n",
        rel_err(&check.gradient, &reference)
    );
    println!("| method | dt | discrete adjoint rel. error | continuous adjoint rel. error | gap between them |");
    println!("|---|---|---|---|---|");
    for (method, dts) in [
        (FixedMethod::Euler, [4e-3, 2e-3, 1e-3]),
        (FixedMethod::Rk4, [2e-2, 1e-2, 5e-3]),
    ] {
        for dt in dts {
            let problem = FixedProblem {
                u0: &u0,
                params: &p,
                grid: TimeGrid::new(0.0, t1, dt).unwrap(),
                method,
            };
            let d = gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap();
            let c = gradient_continuous_fixed(&model, &problem, &loss, Schedule::All).unwrap();
            println!(
                "| {} | {dt:e} | {:.2e} | {:.2e} | {:.2e} |",
                method.name(),
                rel_err(&d.gradient, &reference),
                rel_err(&c.gradient, &reference),
                rel_err(&c.gradient, &d.gradient),
            );
        }
    }
    println!(
        "\n| dopri5 rtol = atol | forward steps | adjoint steps | continuous adjoint rel. error |"
    );
    println!("|---|---|---|---|");
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let options = AdaptiveOptions::new(tol, tol);
        let problem = AdaptiveProblem {
            options: &options,
            ..adaptive
        };
        let g = gradient_continuous(
            &model,
            &problem,
            &loss,
            &ContinuousOptions::default(),
            Schedule::All,
        )
        .unwrap();
        println!(
            "| {tol:e} | {} | {} | {:.2e} |",
            g.stats.steps,
            g.stats.backward_steps,
            rel_err(&g.gradient, &reference)
        );
    }
}
