//! Fitting: synthetic recovery where a correct optimiser must succeed
//! (traces solved forward with known parameters), bounds at every
//! iterate, multi-start bookkeeping and the library's input checks.
//! The measurements behind the chosen cases are in docs/fitting.md.

use std::sync::Mutex;

use revode::fit::{fit, fit_observed, FitOptions, FitProblem, FreeParameter, StopReason, Sweep};
use revode::problem::{ModelSpec, SolverSpec, StimulusSpec};
use revode::Problem;

const TRUTH: [f64; 3] = [70.0, 10.0, 0.05];
const NAMES: [&str; 3] = ["g_Na", "g_Kd", "g_leak"];

/// E of the seed model with the true conductances, every 0.5 ms (t0 included).
fn seed_trace(t1: f64) -> Sweep {
    let problem = Problem {
        model: ModelSpec::Hh,
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, t1],
        solver: SolverSpec::Euler { dt: 0.01 },
        loss: None,
        adjoint: Default::default(),
        stimulus: None,
    };
    Sweep::synthetic(&problem, "E", 50).unwrap()
}

fn free(lower: Option<f64>, upper: Option<f64>) -> Vec<FreeParameter> {
    NAMES
        .iter()
        .map(|n| FreeParameter {
            name: n.to_string(),
            lower,
            upper,
        })
        .collect()
}

fn seed_fit(sweep: Sweep, start: [f64; 3]) -> FitProblem {
    FitProblem {
        model: ModelSpec::Hh,
        params: Some(start.to_vec()),
        u0: None,
        free: free(Some(0.0), None),
        solver: SolverSpec::Euler { dt: 0.01 },
        adjoint: Default::default(),
        sweeps: vec![sweep],
    }
}

/// The optimiser from the given start alone (the default adds 7 more).
fn one_start() -> FitOptions {
    FitOptions {
        starts: 1,
        ..FitOptions::default()
    }
}

fn assert_recovered(p: &[f64], what: &str) {
    for ((v, t), n) in p.iter().zip(TRUTH).zip(NAMES) {
        let rel = ((v - t) / t).abs();
        assert!(
            rel <= 1e-6,
            "{what}: {n} = {v}, truth {t} (relative error {rel:e})"
        );
    }
}

#[test]
fn recovers_hh_conductances_on_50ms_from_1_3_and_0_9() {
    let sweep = seed_trace(50.0);
    for factor in [1.3, 0.9] {
        let problem = seed_fit(sweep.clone(), TRUTH.map(|p| p * factor));
        let r = fit(&problem, &one_start()).unwrap();
        assert!(r.converged, "{factor}x: {}", r.stop_message);
        assert_recovered(&r.params, &format!("50 ms from {factor}x"));
        assert_eq!(r.history.len() as u64, r.iterations + 1);
        assert!(r.history.last().unwrap() <= &r.history[0]);
    }
}

#[test]
fn recovers_hh_conductances_on_600ms_from_1_1() {
    let problem = seed_fit(seed_trace(600.0), TRUTH.map(|p| p * 1.1));
    let r = fit(&problem, &one_start()).unwrap();
    assert!(r.converged, "{}", r.stop_message);
    assert_recovered(&r.params, "600 ms from 1.1x");
    assert_eq!(r.param_names, NAMES);
    assert_eq!(r.all_params, r.params);
}

#[test]
fn dopri5_lands_on_irregular_sample_times() {
    // Irregular times (every 0.37 ms), only reachable by an adaptive solver.
    let truth = seed_trace(20.0);
    let dopri5 = SolverSpec::Dopri5 {
        rtol: 1e-10,
        atol: revode::problem::Atol::Scalar(1e-10),
        max_steps: None,
        h0: None,
        h_min: None,
    };
    let reference = Problem {
        model: ModelSpec::Hh,
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, 20.0],
        solver: dopri5.clone(),
        loss: None,
        adjoint: Default::default(),
        stimulus: None,
    };
    // Values at the irregular times from the dopri5 solution itself.
    let times: Vec<f64> = (1..=54).map(|k| k as f64 * 0.37).collect();
    let mut values = Vec::new();
    for &t in &times {
        let mut p = reference.clone();
        p.tspan = [0.0, t];
        values.push(revode::solve(&p, None).unwrap().final_state[0]);
    }
    let sweep = Sweep {
        times,
        values,
        source: "irregular".into(),
        ..truth
    };
    let mut problem = seed_fit(sweep, TRUTH.map(|p| p * 1.05));
    problem.solver = dopri5;
    problem.adjoint.method = revode::problem::AdjointMethod::Continuous;
    let r = fit(&problem, &one_start()).unwrap();
    for (v, t) in r.params.iter().zip(TRUTH) {
        assert!(((v - t) / t).abs() < 1e-4, "{v} vs {t}: {}", r.stop_message);
    }
}

#[test]
fn bounds_hold_at_every_iterate_when_the_optimum_lies_outside() {
    // g_Na's best value (70) lies above its upper bound: the fit must press
    // against the bound without crossing it.
    let mut problem = seed_fit(seed_trace(50.0), [60.0, 10.0, 0.05]);
    problem.free = vec![FreeParameter {
        name: "g_Na".into(),
        lower: Some(50.0),
        upper: Some(65.0),
    }];
    let seen = Mutex::new(Vec::new());
    let r = fit_observed(&problem, &one_start(), &|p| {
        seen.lock().unwrap().push(p.params.clone())
    })
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.len() > 2);
    for p in seen.iter().chain([&r.params]) {
        assert!(p[0] >= 50.0 && p[0] <= 65.0, "g_Na = {}", p[0]);
    }
    assert!(
        r.params[0] > 64.9,
        "pressed against the bound: {}",
        r.params[0]
    );
}

#[test]
fn multistart_reports_every_start_and_keeps_the_best() {
    let problem = seed_fit(seed_trace(50.0), TRUTH.map(|p| p * 0.7));
    let options = FitOptions {
        starts: 4,
        spread: Some(0.3),
        seed: 3,
        max_iters: 60,
        ..one_start()
    };
    let r = fit(&problem, &options).unwrap();
    assert_eq!(r.starts.len(), 4);
    assert_eq!(r.starts[0].start, TRUTH.map(|p| p * 0.7));
    let best = r
        .starts
        .iter()
        .map(|s| s.loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r.loss, best);
    assert_eq!(r.params, r.starts[r.best_start].params);
    // Same seed, same starts.
    let again = fit(&problem, &options).unwrap();
    let starts =
        |r: &revode::fit::FitReport| r.starts.iter().map(|s| s.start.clone()).collect::<Vec<_>>();
    assert_eq!(starts(&r), starts(&again));
}

#[test]
fn max_iters_stops_and_says_so() {
    let problem = seed_fit(seed_trace(50.0), TRUTH.map(|p| p * 1.3));
    let options = FitOptions {
        max_iters: 3,
        ..one_start()
    };
    let r = fit(&problem, &options).unwrap();
    assert_eq!(r.stop_reason, StopReason::MaxIterations);
    assert!(!r.converged);
    assert_eq!(r.iterations, 3);
}

#[test]
fn library_input_errors_name_the_problem() {
    let base = seed_fit(seed_trace(5.0), TRUTH);
    let check = |edit: &dyn Fn(&mut FitProblem), expected: &str| {
        let mut p = base.clone();
        edit(&mut p);
        let e = fit(&p, &one_start()).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains(expected), "{e} lacks {expected:?}");
    };
    check(&|p| p.free[0].name = "g_X".into(), "no parameter `g_X`");
    check(&|p| p.free[0].upper = Some(50.0), "not strictly inside");
    check(&|p| p.free[0].lower = Some(70.0), "not strictly inside");
    check(
        &|p| {
            p.free[0].lower = Some(80.0);
            p.free[0].upper = Some(80.0)
        },
        "must be below upper",
    );
    check(&|p| p.free.clear(), "no parameter to fit");
    check(&|p| p.sweeps.clear(), "sweeps");
    check(&|p| p.sweeps[0].component = "V".into(), "no state `V`");
    check(
        &|p| {
            let n = p.sweeps[0].times.len();
            p.sweeps[0].times[n - 1] = 7.0
        },
        "outside",
    );
    check(&|p| p.sweeps[0].times[3] = p.sweeps[0].times[2], "increase");
    check(&|p| p.sweeps[0].times[3] += 0.004, "not a step");
    check(&|p| p.sweeps[0].weight = -1.0, "weight");
    check(
        &|p| p.sweeps[0].stimulus = Some(StimulusSpec::new().with("g_Na", &[[0.0, 1.0]])),
        "cannot also be fitted",
    );
    check(
        &|p| {
            p.free.truncate(1);
            p.sweeps[0].stimulus =
                Some(StimulusSpec::new().with("g_leak", &[[1.0, 0.1], [0.5, 0.2]]))
        },
        "strictly increasing",
    );
    check(
        &|p| {
            p.free.truncate(1);
            p.sweeps[0].stimulus = Some(StimulusSpec::new().with("g_leak", &[[9.0, 0.1]]))
        },
        "outside the time span",
    );
    check(
        &|p| p.sweeps[0].stimulus = Some(StimulusSpec::new().with("I_x", &[[1.0, 0.1]])),
        "unknown parameter \"I_x\"",
    );
    let bad_options = FitOptions {
        starts: 0,
        ..FitOptions::default()
    };
    assert!(fit(&base, &bad_options).is_err());
}

#[test]
fn window_continuation_fits_the_leading_part_first_then_everything() {
    let problem = seed_fit(seed_trace(50.0), TRUTH.map(|p| p * 1.3));
    let options = FitOptions {
        windows: vec![0.5],
        ..one_start()
    };
    let seen = Mutex::new(Vec::new());
    let r = fit_observed(&problem, &options, &|p| {
        seen.lock().unwrap().push(p.iteration)
    })
    .unwrap();
    assert!(r.converged, "{}", r.stop_message);
    assert_recovered(&r.params, "50 ms via 25 ms");
    // Two stages: each reports its start, numbering runs on.
    assert_eq!(r.history.len() as u64, r.iterations + 2);
    let seen = seen.into_inner().unwrap();
    assert_eq!(*seen.last().unwrap(), r.iterations);
    let bad = FitOptions {
        windows: vec![0.5, 0.4],
        ..one_start()
    };
    assert!(fit(&problem, &bad)
        .unwrap_err()
        .to_string()
        .contains("windows"));
}

#[test]
fn default_options_run_eight_starts_around_the_given_one() {
    let problem = seed_fit(seed_trace(50.0), TRUTH.map(|p| p * 1.3));
    let r = fit(&problem, &FitOptions::default()).unwrap();
    assert_eq!(r.starts.len(), revode::fit::DEFAULT_STARTS);
    assert_eq!(r.starts[0].start, TRUTH.map(|p| p * 1.3));
    for s in &r.starts[1..] {
        for (v, g) in s.start.iter().zip(TRUTH.map(|p| p * 1.3)) {
            assert!(*v >= 0.7 * g && *v <= 1.3 * g, "{v} not within 30 % of {g}");
        }
    }
    assert_recovered(&r.params, "default options from 1.3x");
}

/// Two sweeps of one model file at different stimulus amplitudes (I_inj
/// steps of 6 and 15 µA/cm² from 5 to 40 ms), fitted together.
#[test]
fn recovers_conductances_from_two_sweeps_of_different_stimulus_amplitude() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/hh1952.ode");
    let model = ModelSpec::File(revode::problem::ModelFile::load(path).unwrap());
    let truth = [120.0, 36.0, 0.3];
    let sweep = |amplitude: f64| {
        let problem = Problem {
            model: model.clone(),
            params: None,
            u0: None,
            tspan: [0.0, 50.0],
            solver: SolverSpec::Euler { dt: 0.01 },
            loss: None,
            adjoint: Default::default(),
            stimulus: Some(
                StimulusSpec::new().with("I_inj", &[[0.0, 0.0], [5.0, amplitude], [40.0, 0.0]]),
            ),
        };
        Sweep::synthetic(&problem, "V", 50).unwrap()
    };
    let (weak, strong) = (sweep(6.0), sweep(15.0));
    assert_ne!(weak.values, strong.values);
    // C_m, g_Na, g_K, g_L, E_Na, E_K, E_L, I_inj; conductances 10 % off.
    let mut params = vec![1.0, 132.0, 32.4, 0.33, 115.0, -12.0, 10.613, 10.0];
    params[7] = 0.0; // follows the protocol in each sweep
    let problem = FitProblem {
        model,
        params: Some(params),
        u0: None,
        free: ["g_Na", "g_K", "g_L"]
            .iter()
            .map(|n| FreeParameter {
                name: n.to_string(),
                lower: Some(0.0),
                upper: None,
            })
            .collect(),
        solver: SolverSpec::Euler { dt: 0.01 },
        adjoint: Default::default(),
        sweeps: vec![weak, strong],
    };
    let r = fit(&problem, &one_start()).unwrap();
    assert!(r.converged, "{}", r.stop_message);
    for ((v, t), n) in r.params.iter().zip(truth).zip(&r.param_names) {
        let rel = ((v - t) / t).abs();
        assert!(rel <= 1e-6, "{n} = {v}, truth {t} (relative error {rel:e})");
    }
    // A stimulated parameter cannot also be free.
    let mut both = problem.clone();
    both.free.push(FreeParameter {
        name: "I_inj".into(),
        lower: None,
        upper: None,
    });
    let e = fit(&both, &one_start()).unwrap_err().to_string();
    assert!(e.contains("cannot also be fitted"), "{e}");
}
