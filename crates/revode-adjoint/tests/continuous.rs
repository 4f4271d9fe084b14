//! The continuous adjoint of adaptive Dormand–Prince solves against closed
//! forms, finite differences and an independent fine-grid reference.

mod common;

use common::{spiral_exact, Decay, Predator, Spiral};
use revode_adjoint::{
    gradient_continuous, gradient_fixed, AdaptiveProblem, ContinuousOptions, ErrorControl,
    FixedProblem, Gradient, GradientError, Loss,
};
use revode_checkpoint::{CheckpointError, Schedule};
use revode_forward::{solve_adaptive, AdaptiveOptions, FixedMethod, ForwardError, TimeGrid};
use revode_model::{HodgkinHuxley, Model};

fn continuous<M: Model>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    t1: f64,
    tol: f64,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    let options = AdaptiveOptions::new(tol, tol);
    let problem = AdaptiveProblem {
        u0,
        params: p,
        t0: 0.0,
        t1,
        options: &options,
    };
    gradient_continuous(m, &problem, loss, &ContinuousOptions::default(), schedule)
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-300))
        .fold(0.0, f64::max)
}

#[test]
fn decay_gradient_converges_with_tolerance() {
    let (u0, p, t1): ([f64; 1], [f64; 1], f64) = ([2.0], [0.7], 3.0);
    let e = (-p[0] * t1).exp();
    let exact_p = [-t1 * u0[0] * e];
    let exact_u0 = [e];
    let loss = Loss::Final { weights: vec![1.0] };
    let mut errors = vec![];
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let g = continuous(&Decay, &u0, &p, t1, tol, &loss, Schedule::All).unwrap();
        let err = max_rel(&g.gradient, &exact_p).max(max_rel(&g.gradient_u0, &exact_u0));
        assert!(err < 100.0 * tol, "tol {tol:e}: error {err:e}");
        errors.push(err);
    }
    assert!(errors[3] < errors[0] * 1e-3, "{errors:?}");
}

#[test]
fn spiral_gradient_converges_with_tolerance() {
    let (m, t1) = (Spiral, 5.0);
    let (u0, p) = (m.default_u0(), m.default_params());
    let w = [1.0, -0.5];
    let (exact_loss, exact_p, exact_u0) = spiral_exact(&p, &u0, &w, t1);
    let loss = Loss::Final {
        weights: w.to_vec(),
    };
    let mut errors = vec![];
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let g = continuous(&m, &u0, &p, t1, tol, &loss, Schedule::All).unwrap();
        assert!((g.loss - exact_loss).abs() < 100.0 * tol);
        let err = max_rel(&g.gradient, &exact_p).max(max_rel(&g.gradient_u0, &exact_u0));
        assert!(err < 1000.0 * tol, "tol {tol:e}: error {err:e}");
        errors.push(err);
    }
    assert!(errors.windows(2).all(|e| e[1] < e[0]), "{errors:?}");
    assert!(errors[3] < errors[0] * 1e-4, "{errors:?}");
}

#[test]
fn identical_across_schedules() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::TraceMse {
        component: 1,
        times: vec![0.37, 1.234, 2.9, 4.0],
        values: vec![0.4, 0.6, 0.5, 0.3],
    };
    let reference = continuous(&m, &u0, &p, 4.0, 1e-8, &loss, Schedule::All).unwrap();
    assert!(reference.stats.steps > 20);
    for schedule in [
        Schedule::Every(1),
        Schedule::Every(3),
        Schedule::Every(7),
        Schedule::Every(1000),
        Schedule::BudgetBytes(2048),
        Schedule::BudgetBytes(8192),
    ] {
        let g = continuous(&m, &u0, &p, 4.0, 1e-8, &loss, schedule).unwrap();
        assert_eq!(g.gradient, reference.gradient, "{schedule:?}");
        assert_eq!(g.gradient_u0, reference.gradient_u0, "{schedule:?}");
        assert_eq!(g.loss, reference.loss, "{schedule:?}");
        assert_eq!(g.stats.backward_steps, reference.stats.backward_steps);
        match schedule {
            Schedule::Every(k) if k > 1 && k < g.stats.steps => {
                assert!(g.stats.recomputed_steps > 0, "{schedule:?}");
            }
            Schedule::BudgetBytes(budget) => {
                // Restart states of 10 f64: a budget below N of them must recompute.
                if budget < g.stats.steps * 80 {
                    assert!(g.stats.recomputed_steps > 0, "{schedule:?} {:?}", g.stats);
                }
                // Everything counted: slots, restart state, dense output.
                assert!(g.stats.peak_store_bytes <= budget, "{:?}", g.stats);
            }
            _ => {}
        }
    }
}

/// The trace loss by direct evaluation: a solve to each observation time.
fn trace_loss(p: &[f64], u0: &[f64], times: &[f64], values: &[f64], component: usize) -> f64 {
    let opts = AdaptiveOptions::new(1e-13, 1e-13);
    let mut sum = 0.0;
    for (&t, &y) in times.iter().zip(values) {
        let sol = solve_adaptive(&Predator, &opts, 0.0, t, u0, p, None).unwrap();
        sum += (sol.final_state[component] - y).powi(2);
    }
    sum / times.len() as f64
}

#[test]
fn trace_mse_matches_finite_differences() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    // Off any natural grid, and one at t1.
    let times = vec![0.37, 1.234, std::f64::consts::E, 4.0];
    let values = vec![0.4, 0.6, 0.5, 0.3];
    let loss = Loss::TraceMse {
        component: 1,
        times: times.clone(),
        values: values.clone(),
    };
    let g = continuous(&m, &u0, &p, 4.0, 1e-10, &loss, Schedule::All).unwrap();
    let direct = trace_loss(&p, &u0, &times, &values, 1);
    assert!(
        (g.loss - direct).abs() < 1e-8 * direct.abs(),
        "{} vs {direct}",
        g.loss
    );
    let fd = |x: &[f64], i: usize, on_p: bool| {
        let h = 1e-5 * x[i].abs().max(1.0);
        let mut plus = x.to_vec();
        let mut minus = x.to_vec();
        plus[i] += h;
        minus[i] -= h;
        let eval = |v: &[f64]| {
            if on_p {
                trace_loss(v, &u0, &times, &values, 1)
            } else {
                trace_loss(&p, v, &times, &values, 1)
            }
        };
        (eval(&plus) - eval(&minus)) / (2.0 * h)
    };
    for i in 0..3 {
        let want = fd(&p, i, true);
        assert!(
            (g.gradient[i] - want).abs() < 1e-6 * want.abs().max(1e-3),
            "p{i}: {} vs {want}",
            g.gradient[i]
        );
    }
    for i in 0..2 {
        let want = fd(&u0, i, false);
        assert!(
            (g.gradient_u0[i] - want).abs() < 1e-6 * want.abs().max(1e-3),
            "u0{i}: {} vs {want}",
            g.gradient_u0[i]
        );
    }
}

#[test]
fn error_control_on_mu_also_converges() {
    let (m, t1) = (Spiral, 5.0);
    let (u0, p) = (m.default_u0(), m.default_params());
    let w = [1.0, -0.5];
    let (_, exact_p, _) = spiral_exact(&p, &u0, &w, t1);
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let problem = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1,
        options: &options,
    };
    let loss = Loss::Final {
        weights: w.to_vec(),
    };
    let adjoint = ContinuousOptions {
        rtol: Some(1e-9),
        atol: Some(vec![1e-9]),
        error_control: ErrorControl::LambdaAndMu,
        ..ContinuousOptions::default()
    };
    let g = gradient_continuous(&m, &problem, &loss, &adjoint, Schedule::All).unwrap();
    assert!(max_rel(&g.gradient, &exact_p) < 1e-6);
}

#[test]
fn hh_seed_matches_a_fine_rk4_discrete_reference() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let grid = TimeGrid::new(0.0, 600.0, 5e-4).unwrap();
    let fixed = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let reference = gradient_fixed(&m, &fixed, &loss, Schedule::Every(1100)).unwrap();
    for (tol, bound) in [(1e-8, 1e-4), (1e-10, 1e-6)] {
        let g = continuous(&m, &u0, &p, 600.0, tol, &loss, Schedule::All).unwrap();
        let err_p = max_rel(&g.gradient, &reference.gradient);
        let err_u0 = max_rel(&g.gradient_u0, &reference.gradient_u0);
        eprintln!(
            "tol {tol:e}: {} steps, dL/dp rel err {err_p:e}, dL/du0 rel err {err_u0:e}",
            g.stats.steps
        );
        eprintln!("  cont {:?}\n  ref  {:?}", g.gradient, reference.gradient);
        assert!(
            err_p < bound,
            "tol {tol:e}: dL/dp {:?} vs {:?}",
            g.gradient,
            reference.gradient
        );
        assert!(
            err_u0 < bound,
            "tol {tol:e}: dL/du0 {:?} vs {:?}",
            g.gradient_u0,
            reference.gradient_u0
        );
    }
}

#[test]
fn adaptive_loss_and_input_errors() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let run = |loss: Loss| continuous(&m, &u0, &p, 2.0, 1e-6, &loss, Schedule::All).unwrap_err();
    let e = run(Loss::AllSteps {
        weights: vec![1.0; 2],
    });
    assert!(
        matches!(e, GradientError::LossNeedsFixedSteps { .. }),
        "{e}"
    );
    let trace = |times: Vec<f64>| Loss::TraceMse {
        component: 0,
        values: vec![0.0; times.len()],
        times,
    };
    assert!(matches!(
        run(trace(vec![0.5, 0.2])),
        GradientError::ObservationsUnsorted { .. }
    ));
    assert!(matches!(
        run(trace(vec![0.5, 2.5])),
        GradientError::ObservationOutside { .. }
    ));
    assert!(matches!(
        run(trace(vec![0.0, 0.5])),
        GradientError::ObservationOutside { .. }
    ));
    let e = run(Loss::TraceMse {
        component: 2,
        times: vec![1.0],
        values: vec![0.0],
    });
    assert!(matches!(e, GradientError::ObservedComponent { .. }), "{e}");
    let e = run(Loss::TraceMse {
        component: 0,
        times: vec![1.0],
        values: vec![0.0, 1.0],
    });
    assert!(matches!(e, GradientError::ObservationLengths { .. }), "{e}");
    let e = continuous(
        &m,
        &u0,
        &p,
        2.0,
        0.0,
        &Loss::Final {
            weights: vec![1.0; 2],
        },
        Schedule::All,
    )
    .unwrap_err();
    assert!(e.to_string().contains("rtol"), "{e}");
    let mut options = AdaptiveOptions::new(1e-10, 1e-10);
    options.max_steps = 10;
    let problem = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 50.0,
        options: &options,
    };
    let e = gradient_continuous(
        &m,
        &problem,
        &Loss::Final {
            weights: vec![1.0; 2],
        },
        &ContinuousOptions::default(),
        Schedule::All,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            GradientError::Forward(ForwardError::MaxStepsExceeded { max_steps: 10, .. })
        ),
        "{e}"
    );
}

#[test]
fn adjoint_steps_span_forward_steps() {
    // A tight forward and a loose adjoint tolerance: each adjoint step covers
    // many forward steps, more than the backward sweep buffers at once, with
    // observation jumps on the way.
    let (m, t1) = (Spiral, 5.0);
    let (u0, p) = (m.default_u0(), m.default_params());
    let w = [1.0, -0.5];
    let (_, exact_p, exact_u0) = spiral_exact(&p, &u0, &w, t1);
    let options = AdaptiveOptions::new(1e-12, 1e-12);
    let problem = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1,
        options: &options,
    };
    let loss = Loss::Final {
        weights: w.to_vec(),
    };
    let adjoint = ContinuousOptions {
        rtol: Some(1e-6),
        atol: Some(vec![1e-6]),
        error_control: ErrorControl::Lambda,
        ..ContinuousOptions::default()
    };
    let g = gradient_continuous(&m, &problem, &loss, &adjoint, Schedule::All).unwrap();
    assert!(g.stats.backward_steps * 4 < g.stats.steps, "{:?}", g.stats);
    let err = max_rel(&g.gradient, &exact_p).max(max_rel(&g.gradient_u0, &exact_u0));
    assert!(err < 1e-4, "error {err:e}");
    for schedule in [Schedule::Every(5), Schedule::BudgetBytes(4096)] {
        let h = gradient_continuous(&m, &problem, &loss, &adjoint, schedule).unwrap();
        assert_eq!(h.gradient, g.gradient, "{schedule:?}");
        assert_eq!(h.gradient_u0, g.gradient_u0, "{schedule:?}");
        assert_eq!(h.stats.backward_steps, g.stats.backward_steps);
    }

    // The same with trace observations: z lands on each one exactly.
    let times = [0.7, 1.9, 3.3];
    let values = [0.1, -0.2, 0.3];
    let trace = Loss::TraceMse {
        component: 0,
        times: times.to_vec(),
        values: values.to_vec(),
    };
    let tight = ContinuousOptions::default();
    let g_tight = gradient_continuous(&m, &problem, &trace, &tight, Schedule::All).unwrap();
    let g_loose = gradient_continuous(&m, &problem, &trace, &adjoint, Schedule::All).unwrap();
    assert!(g_loose.stats.backward_steps * 4 < g_loose.stats.steps);
    let err = max_rel(&g_loose.gradient, &g_tight.gradient)
        .max(max_rel(&g_loose.gradient_u0, &g_tight.gradient_u0));
    assert!(err < 1e-4, "error {err:e}");
}

/// The budget promise of adaptive runs: over many budgets (from the minimum
/// up, whole slots and not) and tolerances, the reported peak never exceeds
/// the budget, the gradient is bitwise that of keeping every state, and one
/// byte below the minimum is the error that states the minimum.
#[test]
fn adaptive_budgets_are_never_exceeded() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    for tol in [1e-4, 1e-6, 1e-8] {
        let all = continuous(&m, &u0, &p, 60.0, tol, &loss, Schedule::All).unwrap();
        let err = continuous(&m, &u0, &p, 60.0, tol, &loss, Schedule::BudgetBytes(1)).unwrap_err();
        let GradientError::Checkpoint(CheckpointError::BudgetTooSmall { minimum, .. }) = err else {
            panic!("{err:?}");
        };
        let below = continuous(
            &m,
            &u0,
            &p,
            60.0,
            tol,
            &loss,
            Schedule::BudgetBytes(minimum - 1),
        );
        assert!(
            matches!(below, Err(GradientError::Checkpoint(CheckpointError::BudgetTooSmall { minimum: m2, budget, .. })) if m2 == minimum && budget == minimum - 1),
            "{below:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("at least {minimum} bytes")),
            "{err}"
        );
        for budget in [
            minimum,
            minimum + 1,
            minimum + 103,
            minimum + 1000,
            3 * minimum + 7,
            4096,
            16_384,
            16_385,
            65_536,
            65_535,
            1 << 20,
        ] {
            if budget < minimum {
                continue;
            }
            let g =
                continuous(&m, &u0, &p, 60.0, tol, &loss, Schedule::BudgetBytes(budget)).unwrap();
            let what = format!("tol {tol:e}, budget {budget}");
            assert!(g.stats.peak_store_bytes <= budget, "{what}: {:?}", g.stats);
            assert_eq!(g.gradient, all.gradient, "{what}");
            assert_eq!(g.gradient_u0, all.gradient_u0, "{what}");
        }
    }
}
