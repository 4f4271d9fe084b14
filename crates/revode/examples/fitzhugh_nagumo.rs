//! Writing your own model: FitzHugh–Nagumo by hand, checked and differentiated.
//!
//! ```text
//! dv/dt = v − v³/3 − w + I
//! dw/dt = (v + a − b w) / τ          parameters p = [a, b, τ, I]
//! ```
//!
//! Run with `cargo run --release -p revode --example fitzhugh_nagumo`.
//! Walk-through: `docs/own-model.md`.

use revode::checkpoint::Schedule;
use revode::model::check::{check_model, CheckOptions};
use revode::prelude::*;

/// The FitzHugh–Nagumo neuron. No scratch is needed, so `Work = ()`.
#[derive(Debug, Clone, Copy)]
struct FitzHughNagumo;

impl Model for FitzHughNagumo {
    type Work = ();

    fn name(&self) -> &str {
        "fitzhugh_nagumo"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 4,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["v".into(), "w".into()]
    }
    fn param_names(&self) -> Vec<String> {
        ["a", "b", "tau", "I"].map(String::from).to_vec()
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![-1.0, 1.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.7, 0.8, 12.5, 0.5]
    }
    fn new_work(&self) {}

    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _work: &mut ()) {
        let (v, w) = (u[0], u[1]);
        let (a, b, tau, i) = (p[0], p[1], p[2], p[3]);
        du[0] = v - v * v * v / 3.0 - w + i;
        du[1] = (v + a - b * w) / tau;
    }

    /// `out_u ← (∂f/∂u)ᵀ λ` (overwrite); `acc_p += alpha (∂f/∂p)ᵀ λ` (add).
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        _work: &mut (),
    ) {
        let (v, w) = (u[0], u[1]);
        let (a, b, tau) = (p[0], p[1], p[2]);
        let (l_v, l_w) = (lambda[0], lambda[1]);
        // ∂(dv/dt)/∂v = 1 − v²,  ∂(dw/dt)/∂v = 1/τ
        out_u[0] = (1.0 - v * v) * l_v + l_w / tau;
        // ∂(dv/dt)/∂w = −1,      ∂(dw/dt)/∂w = −b/τ
        out_u[1] = -l_v - b / tau * l_w;
        // ∂(dw/dt)/∂a = 1/τ
        acc_p[0] += alpha * l_w / tau;
        // ∂(dw/dt)/∂b = −w/τ
        acc_p[1] += alpha * (-w / tau) * l_w;
        // ∂(dw/dt)/∂τ = −(v + a − b w)/τ²
        acc_p[2] += alpha * (-(v + a - b * w) / (tau * tau)) * l_w;
        // ∂(dv/dt)/∂I = 1
        acc_p[3] += alpha * l_v;
    }
}

fn main() {
    let model = FitzHughNagumo;

    // 1. Check the hand-written derivatives against finite differences.
    let report = check_model(&model, &CheckOptions::default());
    println!(
        "Jacobian check: {} entries, max scaled error {:.1e}: {}",
        report.entries_checked,
        report.max_error,
        if report.passed { "pass" } else { "FAIL" }
    );
    for w in report.worst.iter().take(3) {
        println!(
            "  {:<16} vjp {:+.12e}  fd {:+.12e}",
            w.label, w.analytic, w.finite_difference
        );
    }
    assert!(report.passed, "fix the vjp before trusting gradients");

    // 2. Gradient of L = v(T) for an Euler solve over [0, 50].
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 50.0, 0.01).expect("valid grid");
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let loss = Loss::Final {
        weights: vec![1.0, 0.0],
    };
    let g = gradient_fixed(&model, &problem, &loss, Schedule::Every(71)).expect("solve succeeds");
    println!("L = v(50) = {:.12}", g.loss);
    for (name, d) in model.param_names().iter().zip(&g.gradient) {
        println!("  dL/d{name:<4} = {d:+.12e}");
    }

    // 3. One entry against a finite difference of two whole solves.
    let loss_at = |tau: f64| {
        let q = [p[0], p[1], tau, p[3]];
        solve_fixed(&model, FixedMethod::Rk4, &grid, &u0, &q, None)
            .expect("solve")
            .final_state[0]
    };
    let h = 1e-5 * p[2];
    let fd = (loss_at(p[2] + h) - loss_at(p[2] - h)) / (2.0 * h);
    println!("  finite difference dL/dtau = {fd:+.12e}");
}
