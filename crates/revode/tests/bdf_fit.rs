//! Fitting with the bdf solver: Robertson's rate constants recovered from
//! y1 sampled at irregular (logarithmic) times, which the BDF solve lands on.

use revode::fit::{fit, FitOptions, FitProblem, FreeParameter, Sweep};
use revode::problem::{AdjointMethod, Atol, ModelFile, ModelSpec, SolverSpec};
use revode::Problem;

const TRUTH: [f64; 3] = [0.04, 3e7, 1e4];

fn model() -> ModelSpec {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/robertson.ode");
    ModelSpec::File(ModelFile::load(path).unwrap())
}

fn bdf(rtol: f64, atol: f64) -> SolverSpec {
    SolverSpec::Bdf {
        rtol,
        atol: Atol::Scalar(atol),
        max_steps: None,
        h0: None,
        h_min: None,
        max_order: None,
        linear_solver: None,
    }
}

#[test]
fn bdf_fit_recovers_robertson_rates_from_irregular_samples() {
    let times: Vec<f64> = (0..12).map(|k| 10f64.powf(-1.0 + 0.5 * k as f64)).collect();
    let t1 = *times.last().unwrap();
    let reference = Problem {
        model: model(),
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, t1],
        solver: bdf(1e-10, 1e-14),
        loss: None,
        adjoint: Default::default(),
        stimulus: None,
    };
    let values: Vec<f64> = times
        .iter()
        .map(|&t| {
            let mut p = reference.clone();
            p.tspan = [0.0, t];
            revode::solve(&p, None).unwrap().final_state[0]
        })
        .collect();
    let sweep = Sweep {
        tspan: [0.0, t1],
        component: "y1".into(),
        times,
        values,
        weight: 1.0,
        stimulus: None,
        source: "log-spaced".into(),
        event: None,
    };
    let mut problem = FitProblem {
        model: model(),
        params: Some(vec![0.044, 3e7, 0.9e4]),
        u0: None,
        free: ["k1", "k3"]
            .iter()
            .map(|n| FreeParameter {
                name: n.to_string(),
                lower: Some(0.0),
                upper: None,
            })
            .collect(),
        solver: bdf(1e-9, 1e-13),
        adjoint: Default::default(),
        sweeps: vec![sweep],
    };
    problem.adjoint.method = AdjointMethod::Continuous;
    let options = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let r = fit(&problem, &options).unwrap();
    for (v, t) in r.params.iter().zip([TRUTH[0], TRUTH[2]]) {
        assert!(((v - t) / t).abs() < 1e-3, "{v} vs {t}: {}", r.stop_message);
    }
}
