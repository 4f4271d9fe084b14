//! The continuous adjoint of BDF solves: a linear stiff system in closed
//! form, Robertson's kinetics against an independent forward-sensitivity
//! reference, HH against the fine RK4 reference, a stimulus against finite
//! differences, bitwise identity across checkpoint schedules and budgets
//! held to the byte.

mod common;
mod stiff;

use common::Predator;
use revode_adjoint::{
    bdf_budget, gradient_continuous_bdf, gradient_continuous_bdf_with_stimulus,
    gradient_continuous_with_stimulus, gradient_fixed, loss_bdf_with_stimulus, AdaptiveProblem,
    BdfProblem, ContinuousOptions, ErrorControl, FixedProblem, Gradient, GradientError, Loss,
};
use revode_checkpoint::{CheckpointError, Schedule};
use revode_forward::{
    AdaptiveOptions, BdfOptions, FixedMethod, ForwardError, Stimulus, StimulusTrack, TimeGrid,
};
use revode_model::{HodgkinHuxley, Model};
use revode_testing::Robertson;
use stiff::{linear_exact, StiffLinear};

fn problem<'a>(u0: &'a [f64], p: &'a [f64], t1: f64, options: &'a BdfOptions) -> BdfProblem<'a> {
    BdfProblem {
        u0,
        params: p,
        t0: 0.0,
        t1,
        options,
    }
}

fn bdf<M: Model>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    t1: f64,
    options: &BdfOptions,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    let problem = problem(u0, p, t1, options);
    gradient_continuous_bdf(m, &problem, loss, &ContinuousOptions::default(), schedule)
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-300))
        .fold(0.0, f64::max)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn linear_stiff_state_and_gradient_converge_with_tolerance() {
    let m = StiffLinear;
    let (u0, p, t1) = (m.default_u0(), m.default_params(), 3.0);
    let w = [1.0, -0.5];
    let (u, exact_p, exact_u0) = linear_exact(&p, &u0, &w, t1);
    let exact_loss = w[0] * u[0] + w[1] * u[1];
    let loss = Loss::Final {
        weights: w.to_vec(),
    };
    // μ_c integrates u2 λ2, which lives within 1/c of t0 where λ is smooth:
    // put μ under error control so its quadrature resolves it.
    let adjoint = ContinuousOptions {
        error_control: ErrorControl::LambdaAndMu,
        ..ContinuousOptions::default()
    };
    // The error relative to the largest entry (∂L/∂b and ∂L/∂c are 10⁻⁵
    // and 10⁻⁸ of ∂L/∂a: an absolute tolerance of 10⁻⁴ does not resolve them).
    let normwise = |g: &[f64], e: &[f64]| {
        let scale = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        g.iter()
            .zip(e)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() / scale))
    };
    let mut errors = vec![];
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let options = BdfOptions::new(tol, tol);
        let problem = problem(&u0, &p, t1, &options);
        let g = gradient_continuous_bdf(&m, &problem, &loss, &adjoint, Schedule::All).unwrap();
        let loss_err = (g.loss - exact_loss).abs() / exact_loss.abs();
        let err = normwise(&g.gradient, &exact_p).max(normwise(&g.gradient_u0, &exact_u0));
        eprintln!(
            "tol {tol:e}: loss {loss_err:e}, gradient {err:e}, per entry {:e}; {} steps forward, {} back",
            max_rel(&g.gradient, &exact_p),
            g.stats.steps,
            g.stats.backward_steps
        );
        assert!(
            loss_err < 100.0 * tol,
            "tol {tol:e}: loss error {loss_err:e}"
        );
        assert!(err < 1000.0 * tol, "tol {tol:e}: gradient error {err:e}");
        // Stiff: explicit methods would need c·T/3 = 10⁴ steps.
        assert!(g.stats.steps < 1000, "{:?}", g.stats);
        if tol == 1e-10 {
            // Even the tiny entries, once μ is under error control.
            assert!(max_rel(&g.gradient, &exact_p) < 1e-3, "{:?}", g.gradient);
            assert!(max_rel(&g.gradient_u0, &exact_u0) < 1e-7);
        }
        errors.push(err);
    }
    assert!(errors[3] < errors[0] * 1e-4, "{errors:?}");
}

/// The reference of fixtures/reference/robertson/robertson_sensitivities.py.
fn robertson_reference() -> (Vec<f64>, Vec<f64>, f64) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/reference/robertson/robertson_bdf.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vec = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    (
        vec("gradient"),
        vec("gradient_u0"),
        v["loss"].as_f64().unwrap(),
    )
}

#[test]
fn robertson_matches_the_forward_sensitivity_reference() {
    let m = Robertson::SPARSE;
    let (u0, p) = (m.default_u0(), m.default_params());
    let (ref_p, ref_u0, ref_loss) = robertson_reference();
    let loss = Loss::Final {
        weights: vec![0.0, 0.0, 1.0],
    };
    for (rtol, atol, bound) in [(1e-6, 1e-8, 1e-2), (1e-8, 1e-12, 1e-4)] {
        let options = BdfOptions::new(rtol, atol);
        let g = bdf(&m, &u0, &p, 4e5, &options, &loss, Schedule::All).unwrap();
        let err_p = max_rel(&g.gradient, &ref_p);
        let err_u0 = max_rel(&g.gradient_u0, &ref_u0);
        eprintln!(
            "rtol {rtol:e}: dL/dp {err_p:e}, dL/du0 {err_u0:e}; {:?}",
            g.stats
        );
        assert!((g.loss - ref_loss).abs() < 10.0 * rtol, "{}", g.loss);
        assert!(
            err_p <= bound,
            "rtol {rtol:e}: {:?} vs {ref_p:?}",
            g.gradient
        );
        assert!(
            err_u0 <= bound,
            "rtol {rtol:e}: {:?} vs {ref_u0:?}",
            g.gradient_u0
        );
        if rtol == 1e-6 {
            // Within 2.5× diffrax Kvaerno5's 254 steps.
            assert!(g.stats.steps <= 635, "{:?}", g.stats);
        }
    }
}

#[test]
fn hh_matches_a_fine_rk4_discrete_reference() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let t1 = 100.0;
    let grid = TimeGrid::new(0.0, t1, 5e-4).unwrap();
    let fixed = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let reference = gradient_fixed(&m, &fixed, &loss, Schedule::Every(450)).unwrap();
    let mut errors = vec![];
    for tol in [1e-7, 1e-9] {
        let options = BdfOptions::new(tol, tol);
        let g = bdf(&m, &u0, &p, t1, &options, &loss, Schedule::All).unwrap();
        let err = max_rel(&g.gradient, &reference.gradient)
            .max(max_rel(&g.gradient_u0, &reference.gradient_u0));
        eprintln!("tol {tol:e}: error {err:e}; {:?}", g.stats);
        errors.push(err);
    }
    assert!(errors[0] < 1e-2, "{errors:?}");
    assert!(errors[1] < 1e-4, "{errors:?}");
}

/// Robertson with a trace loss on y2 (observations off any step) and the
/// final y3: every schedule gives the same bits, budgets are never
/// exceeded, and small ones recompute.
#[test]
fn identical_across_schedules_and_budgets_held_to_the_byte() {
    let m = Robertson::SPARSE;
    let (u0, p) = (m.default_u0(), m.default_params());
    let options = BdfOptions::new(1e-6, 1e-10);
    let trace = Loss::TraceMse {
        component: 1,
        times: vec![0.37, 12.5, 3.3e3, 4e4],
        values: vec![3e-5, 2e-5, 1e-6, 1e-7],
    };
    let fin = Loss::Final {
        weights: vec![0.0, 0.0, 1.0],
    };
    let layout_len = bdf_budget(3, 5).state_len;
    for loss in [trace, fin] {
        let reference = bdf(&m, &u0, &p, 4e4, &options, &loss, Schedule::All).unwrap();
        let n = reference.stats.steps;
        assert!(n > 100, "{:?}", reference.stats);
        let minimum = bdf_budget(3, 5).min_bytes;
        let mut budgets: Vec<usize> = (0..40).map(|i| minimum + i * 997).collect();
        budgets.extend([minimum + 10_000, minimum + 50_000, 1 << 20]);
        let mut schedules: Vec<Schedule> = [1, 2, 3, 7, 64, 1000]
            .iter()
            .map(|&k| Schedule::Every(k))
            .collect();
        schedules.extend(budgets.iter().map(|&b| Schedule::BudgetBytes(b)));
        for schedule in schedules {
            let g = bdf(&m, &u0, &p, 4e4, &options, &loss, schedule).unwrap();
            let what = format!("{} {schedule:?}", loss.name());
            assert_eq!(bits(&g.gradient), bits(&reference.gradient), "{what}");
            assert_eq!(bits(&g.gradient_u0), bits(&reference.gradient_u0), "{what}");
            assert_eq!(g.loss.to_bits(), reference.loss.to_bits(), "{what}");
            assert_eq!(g.stats.backward_steps, reference.stats.backward_steps);
            match schedule {
                Schedule::Every(k) if k > 1 && k < n => {
                    assert!(g.stats.recomputed_steps > 0, "{what}");
                }
                Schedule::BudgetBytes(budget) => {
                    assert!(g.stats.peak_store_bytes <= budget, "{what}: {:?}", g.stats);
                    if budget < n * layout_len * 8 {
                        assert!(g.stats.recomputed_steps > 0, "{what}");
                    }
                }
                _ => {}
            }
        }
        let e = bdf(
            &m,
            &u0,
            &p,
            4e4,
            &options,
            &loss,
            Schedule::BudgetBytes(minimum - 1),
        )
        .unwrap_err();
        let GradientError::Checkpoint(CheckpointError::BudgetTooSmall {
            minimum: stated, ..
        }) = e
        else {
            panic!("{e:?}");
        };
        assert_eq!(stated, minimum);
        bdf(
            &m,
            &u0,
            &p,
            4e4,
            &options,
            &loss,
            Schedule::BudgetBytes(minimum),
        )
        .unwrap();
    }
}

/// A parameter switched twice (once off any step), with a trace loss: the
/// gradient against the dopri5 continuous adjoint at a tight tolerance (an
/// independent integrator) and against central differences of the BDF loss.
#[test]
fn stimulus_gradient_matches_dopri5_and_finite_differences() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 2,
            switches: vec![[1.3, 0.9], [2.71, 0.2]],
        }],
    };
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![0.9, 2.0, 3.5, 4.0],
        values: vec![1.0, 0.8, 0.5, 0.3],
    };
    let options = BdfOptions::new(1e-10, 1e-10);
    let g = gradient_continuous_bdf_with_stimulus(
        &m,
        &problem(&u0, &p, 4.0, &options),
        &stimulus,
        &loss,
        &ContinuousOptions::default(),
        Schedule::Every(5),
    )
    .unwrap();
    let tight = AdaptiveOptions::new(1e-12, 1e-12);
    let adaptive = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 4.0,
        options: &tight,
    };
    let reference = gradient_continuous_with_stimulus(
        &m,
        &adaptive,
        &stimulus,
        &loss,
        &ContinuousOptions::default(),
        Schedule::All,
    )
    .unwrap();
    let err = max_rel(&g.gradient, &reference.gradient)
        .max(max_rel(&g.gradient_u0, &reference.gradient_u0));
    assert!(
        err < 1e-6,
        "{err:e}: {:?} vs {:?}",
        g.gradient,
        reference.gradient
    );
    // Central differences of the BDF loss at 1e-12 (the adaptive loss is
    // only as smooth in p as its tolerance: a wide step keeps that noise
    // small).
    let fine = BdfOptions::new(1e-12, 1e-12);
    let run = |p: &[f64], u0: &[f64]| {
        loss_bdf_with_stimulus(&m, &problem(u0, p, 4.0, &fine), &stimulus, &loss).unwrap()
    };
    assert_eq!(
        g.loss.to_bits(),
        loss_bdf_with_stimulus(&m, &problem(&u0, &p, 4.0, &options), &stimulus, &loss)
            .unwrap()
            .to_bits()
    );
    let fd = |x: &[f64], i: usize, on_p: bool| {
        let h = 1e-3 * x[i].abs().max(1.0);
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[i] += h;
        minus[i] -= h;
        let eval = |v: &[f64]| if on_p { run(v, &u0) } else { run(&p, v) };
        (eval(&plus) - eval(&minus)) / (2.0 * h)
    };
    for i in 0..3 {
        let want = fd(&p, i, true);
        assert!(
            (g.gradient[i] - want).abs() < 1e-4 * want.abs().max(1e-2),
            "p{i}: {} vs {want}",
            g.gradient[i]
        );
    }
    for i in 0..2 {
        let want = fd(&u0, i, false);
        assert!(
            (g.gradient_u0[i] - want).abs() < 1e-4 * want.abs().max(1e-2),
            "u0{i}: {} vs {want}",
            g.gradient_u0[i]
        );
    }
}

#[test]
fn bad_options_and_failed_solves_are_errors() {
    let m = Robertson::SPARSE;
    let (u0, p) = (m.default_u0(), m.default_params());
    let fin = Loss::Final {
        weights: vec![0.0, 0.0, 1.0],
    };
    for order in [0, 6] {
        let mut options = BdfOptions::new(1e-6, 1e-8);
        options.max_order = order;
        let e = bdf(&m, &u0, &p, 4e5, &options, &fin, Schedule::All).unwrap_err();
        assert!(e.to_string().contains("max_order"), "{e}");
    }
    let mut options = BdfOptions::new(1e-6, 1e-8);
    options.adaptive.max_steps = 50;
    let e = bdf(&m, &u0, &p, 4e5, &options, &fin, Schedule::All).unwrap_err();
    assert!(
        matches!(
            e,
            GradientError::Forward(ForwardError::MaxStepsExceeded { max_steps: 50, .. })
        ),
        "{e}"
    );
    let mut options = BdfOptions::new(1e-6, 1e-8);
    options.adaptive.h_min = Some(1.0);
    let e = bdf(&m, &u0, &p, 4e5, &options, &fin, Schedule::All).unwrap_err();
    assert!(e.to_string().contains("t = "), "{e}");
    let e = bdf(
        &m,
        &u0,
        &p,
        4e5,
        &BdfOptions::new(1e-6, 1e-8),
        &Loss::AllSteps {
            weights: vec![1.0; 3],
        },
        Schedule::All,
    )
    .unwrap_err();
    assert!(
        matches!(e, GradientError::LossNeedsFixedSteps { .. }),
        "{e}"
    );
}

/// Orders capped at 1 to 5 all converge to the reference (lower orders
/// with more steps), and the sparse LU gives the dense LU's gradient.
#[test]
fn every_max_order_and_linear_solver_work() {
    let m = Robertson::SPARSE;
    let (u0, p) = (m.default_u0(), m.default_params());
    let (ref_p, _, _) = robertson_reference();
    let fin = Loss::Final {
        weights: vec![0.0, 0.0, 1.0],
    };
    let mut steps = vec![];
    for order in 1..=5 {
        let mut options = BdfOptions::new(1e-6, 1e-8);
        options.max_order = order;
        let g = bdf(&m, &u0, &p, 4e5, &options, &fin, Schedule::All).unwrap();
        let err = max_rel(&g.gradient, &ref_p);
        eprintln!("max_order {order}: {} steps, error {err:e}", g.stats.steps);
        assert!(err < 2e-2, "order {order}: {err:e}");
        steps.push(g.stats.steps);
    }
    assert!(steps[4] * 3 < steps[0], "{steps:?}");
    let mut dense = BdfOptions::new(1e-6, 1e-8);
    dense.linear_solver = revode_forward::LinearSolver::Dense;
    let mut sparse = dense.clone();
    sparse.linear_solver = revode_forward::LinearSolver::Sparse;
    let a = bdf(&m, &u0, &p, 4e5, &dense, &fin, Schedule::All).unwrap();
    let b = bdf(&m, &u0, &p, 4e5, &sparse, &fin, Schedule::All).unwrap();
    // Both take the same steps; their Newton iterates differ by rounding
    // within the Newton tolerance (1.4e-6 at most here, against 5.8e-5 from
    // the reference).
    let d = max_rel(&a.gradient, &b.gradient);
    assert_eq!(a.stats.steps, b.stats.steps);
    assert!(d < 1e-5, "dense vs sparse {d:e}");
}
