//! Backward Euler with events: the discrete adjoint against central
//! differences of the same solution (several events in one step included),
//! bitwise equal under every checkpoint schedule, the LIF period converging
//! to its closed form at first order, spike-time losses, Zeno.

use revode_adjoint::{
    gradient_beuler_with_stimulus, loss_beuler_with_stimulus, BeulerProblem, Gradient, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_beuler, BackwardEuler, BeulerEvents, BeulerLayout, BeulerOptions, ForwardError,
    LinearSolver, StepTimes, Stimulus, StimulusTrack, TimeGrid, UniformPlan,
};
use revode_model::Model;

mod event_models;

use event_models::AdaptiveLif;

/// Newton to rounding: the adjoint differentiates the implicit equation,
/// central differences the computed iterates.
const TIGHT: BeulerOptions = BeulerOptions {
    newton_tol: 1e-13,
    linear_solver: LinearSolver::Dense,
};

fn problem<'a>(u0: &'a [f64], p: &'a [f64], grid: TimeGrid) -> BeulerProblem<'a> {
    BeulerProblem {
        u0,
        params: p,
        grid,
        options: TIGHT,
    }
}

fn gradient(pr: &BeulerProblem<'_>, stim: &Stimulus, loss: &Loss, s: Schedule) -> Gradient {
    gradient_beuler_with_stimulus(&AdaptiveLif, pr, stim, loss, s).unwrap()
}

fn fd(f: impl Fn(&[f64]) -> f64, x: &[f64], i: usize, rel: f64) -> f64 {
    let h = rel * x[i].abs().max(1.0);
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    a[i] += h;
    b[i] -= h;
    (f(&a) - f(&b)) / (2.0 * h)
}

/// The worst relative error of the gradient against central differences of
/// the loss of the same backward Euler solution.
fn worst_fd_error(pr: &BeulerProblem<'_>, stim: &Stimulus, loss: &Loss, g: &Gradient) -> f64 {
    let of_p = |x: &[f64]| {
        let q = BeulerProblem { params: x, ..*pr };
        loss_beuler_with_stimulus(&AdaptiveLif, &q, stim, loss).unwrap()
    };
    let of_u0 = |x: &[f64]| {
        let q = BeulerProblem { u0: x, ..*pr };
        loss_beuler_with_stimulus(&AdaptiveLif, &q, stim, loss).unwrap()
    };
    assert_eq!(of_p(pr.params), g.loss, "the loss alone is the gradient's");
    let mut worst: f64 = 0.0;
    for k in 0..pr.params.len() {
        let want = fd(of_p, pr.params, k, 1e-6);
        let err = (g.gradient[k] - want).abs() / want.abs().max(1.0);
        assert!(err < 1e-6, "p{k}: {} vs {want}", g.gradient[k]);
        worst = worst.max(err);
    }
    for i in 0..pr.u0.len() {
        let want = fd(of_u0, pr.u0, i, 1e-6);
        let err = (g.gradient_u0[i] - want).abs() / want.abs().max(1.0);
        assert!(err < 1e-6, "u0[{i}]: {} vs {want}", g.gradient_u0[i]);
        worst = worst.max(err);
    }
    worst
}

fn assert_schedules_bitwise(pr: &BeulerProblem<'_>, stim: &Stimulus, loss: &Loss, g: &Gradient) {
    for schedule in [
        Schedule::Every(7),
        Schedule::Every(1000),
        Schedule::BudgetBytes(4096),
    ] {
        let other = gradient(pr, stim, loss, schedule);
        assert_eq!(other.gradient, g.gradient, "{schedule:?}");
        assert_eq!(other.gradient_u0, g.gradient_u0, "{schedule:?}");
        assert_eq!(other.loss, g.loss, "{schedule:?}");
        let stored_all = matches!(schedule, Schedule::Every(1000)) || pr.grid.n_steps() < 8;
        assert!(
            other.stats.recomputed_steps > 0 || stored_all,
            "{schedule:?}"
        );
    }
}

#[test]
fn the_discrete_adjoint_matches_central_differences_of_the_same_solution() {
    let grid = TimeGrid::new(0.0, 47.3, 0.05).unwrap();
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    let pr = problem(&u0, &p, grid);
    let loss = Loss::Final {
        weights: vec![1.0, 0.7],
    };
    let none = Stimulus::none();
    let g = gradient(&pr, &none, &loss, Schedule::All);
    let events = g.stats.events.unwrap();
    assert!(events >= 4, "{events} events");
    let worst = worst_fd_error(&pr, &none, &loss, &g);
    eprintln!("beuler: {events} events, worst relative error vs central differences {worst:.2e}");
    assert_schedules_bitwise(&pr, &none, &loss, &g);
}

#[test]
fn a_stimulus_and_all_steps_losses_go_through_events_too() {
    let grid = TimeGrid::new(0.0, 40.0, 0.05).unwrap();
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    let pr = problem(&u0, &p, grid);
    let stim = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[10.02, 2.1], [25.0, 1.3]],
        }],
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0, -0.5],
    };
    let g = gradient(&pr, &stim, &loss, Schedule::All);
    let events = g.stats.events.unwrap();
    assert!(events >= 3, "{events} events");
    let worst = worst_fd_error(&pr, &stim, &loss, &g);
    eprintln!("beuler, stimulus, all_steps: {events} events, worst {worst:.2e}");
    assert_schedules_bitwise(&pr, &stim, &loss, &g);
}

#[test]
fn several_events_in_one_step_are_taken_in_time_order() {
    // Period 10 ln(50/49) ≈ 0.2 with steps of 0.5: two or three per step.
    let p = [50.0, 10.0, 25.0, 1.0, 0.0, 0.02];
    let u0 = [0.3, 0.0];
    let grid = TimeGrid::new(0.0, 3.0, 0.5).unwrap();
    let pr = problem(&u0, &p, grid);
    let loss = Loss::Final {
        weights: vec![1.0, 0.5],
    };
    let none = Stimulus::none();
    let g = gradient(&pr, &none, &loss, Schedule::All);
    let events = g.stats.events.unwrap();
    assert!(events >= 2 * grid.n_steps(), "{events} events");
    let worst = worst_fd_error(&pr, &none, &loss, &g);
    eprintln!("beuler, {events} events in 6 steps: worst relative error {worst:.2e}");
    assert_schedules_bitwise(&pr, &none, &loss, &g);
    // The firings of one step are in increasing time order.
    let times = firing_times(&p, &u0, grid);
    assert_eq!(times.len(), events);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

/// The firing times of the beuler solve of the AdaptiveLif, through the
/// public stepper and event buffers.
fn firing_times(p: &[f64], u0: &[f64], grid: TimeGrid) -> Vec<f64> {
    let model = AdaptiveLif;
    let plan = UniformPlan { grid, params: p };
    let mut stepper = BackwardEuler::new(&model, TIGHT);
    let mut events = BeulerEvents::new(&model);
    let layout = BeulerLayout { n: 2 };
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    layout.initial_state(&model, 0.0, u0, p, &mut (), &mut x);
    let mut times = Vec::new();
    for k in 0..plan.n_steps() {
        events
            .step(&mut stepper, &model, &plan, k, &x, &mut next, &mut ())
            .unwrap();
        for seg in events.segments() {
            if seg.event.is_some() {
                times.push(seg.tau + seg.sigma);
            }
        }
        std::mem::swap(&mut x, &mut next);
    }
    times
}

#[test]
fn the_lif_period_converges_to_its_closed_form_at_first_order() {
    // v' = (I − v)/τ, reset 1 → 0: period τ ln(I/(I − 1)).
    let p = [1.5, 10.0, 30.0, 1.0, 0.0, 0.0];
    let exact = 10.0 * 3.0_f64.ln();
    let mut errors = Vec::new();
    for dt in [0.1, 0.05, 0.025, 0.0125] {
        let times = firing_times(&p, &[0.0, 0.0], TimeGrid::new(0.0, 50.0, dt).unwrap());
        assert_eq!(times.len(), 4, "dt {dt}: {times:?}");
        let period = times[2] - times[1];
        errors.push((period - exact).abs());
        eprintln!("dt {dt}: period {period:.10}, error {:.3e}", period - exact);
    }
    for w in errors.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!((0.9..1.1).contains(&order), "order {order}: {errors:?}");
    }
    assert!(errors[3] < 0.01 * exact, "{errors:?}");
}

#[test]
fn spike_time_gradients_match_central_differences_and_approach_the_closed_form() {
    let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
    let targets = vec![10.0, 20.0, 31.0, 44.0];
    let loss = Loss::EventTimes {
        event: 0,
        times: targets.clone(),
    };
    let u0 = [0.0, 0.0];
    let none = Stimulus::none();
    let pr = problem(&u0, &p, TimeGrid::new(0.0, 60.0, 0.01).unwrap());
    let g = gradient(&pr, &none, &loss, Schedule::Every(13));
    let worst = worst_fd_error(&pr, &none, &loss, &g);
    eprintln!(
        "beuler event_times dt 0.01: worst relative error vs central differences {worst:.2e}"
    );
    assert_schedules_bitwise(&pr, &none, &loss, &g);
    // Against the closed form (spike k at τ ln((I − v0)/(I − θ)) + k·period):
    // first order in dt.
    let closed = |x: &[f64]| {
        let (i, tau, theta, vr) = (x[0], x[1], x[3], x[4]);
        let first = tau * (i / (i - theta)).ln();
        let period = tau * ((i - vr) / (i - theta)).ln();
        targets
            .iter()
            .enumerate()
            .map(|(k, t)| (first + k as f64 * period - t).powi(2))
            .sum::<f64>()
    };
    let mut previous = f64::INFINITY;
    for dt in [0.004, 0.002, 0.001] {
        let pr = problem(&u0, &p, TimeGrid::new(0.0, 60.0, dt).unwrap());
        let g = gradient(&pr, &none, &loss, Schedule::All);
        let mut worst: f64 = 0.0;
        for k in [0, 1, 3, 4] {
            let want = fd(closed, &p, k, 1e-6);
            worst = worst.max((g.gradient[k] - want).abs() / want.abs().max(1.0));
        }
        eprintln!(
            "beuler event_times dt {dt}: worst relative error vs the closed form {worst:.2e}"
        );
        assert!(worst < 0.6 * previous, "dt {dt}: {worst} after {previous}");
        previous = worst;
    }
    assert!(previous < 6e-3, "{previous}");
}

#[test]
fn a_reset_onto_its_own_threshold_is_zeno_and_fails_naming_t() {
    let p = [1e9, 1.0, 30.0, 1.0, 1.0 - 1e-12, 0.0];
    let grid = TimeGrid::new(0.0, 1.0, 0.1).unwrap();
    let err = solve_beuler(
        &AdaptiveLif,
        &BeulerOptions::default(),
        &grid,
        &[0.0, 0.0],
        &p,
        &Stimulus::none(),
        None,
    )
    .unwrap_err();
    let ForwardError::TooManyEvents { t, .. } = err else {
        panic!("{err}");
    };
    assert!(t < 0.1, "{t}");
    assert!(err.to_string().contains("t = "), "{err}");
    let u0 = [0.0, 0.0];
    let pr = problem(&u0, &p, grid);
    let loss = Loss::Final {
        weights: vec![1.0, 0.0],
    };
    let e =
        gradient_beuler_with_stimulus(&AdaptiveLif, &pr, &Stimulus::none(), &loss, Schedule::All)
            .unwrap_err();
    assert!(e.to_string().contains("more than 100 events"), "{e}");
}

#[test]
fn the_solve_fires_the_gradients_events_and_an_unknown_event_is_an_error() {
    let p = AdaptiveLif.default_params();
    let u0 = [0.0, 0.0];
    let grid = TimeGrid::new(0.0, 60.0, 0.01).unwrap();
    let sol = solve_beuler(
        &AdaptiveLif,
        &TIGHT,
        &grid,
        &u0,
        &p,
        &Stimulus::none(),
        Some(100),
    )
    .unwrap();
    let pr = problem(&u0, &p, grid);
    let loss = Loss::Final {
        weights: vec![1.0, 0.0],
    };
    let g = gradient(&pr, &Stimulus::none(), &loss, Schedule::All);
    assert_eq!(sol.events, g.stats.events);
    assert_eq!(sol.events, Some(5));
    assert_eq!(sol.solution.final_state[0], g.loss);
    let bad = Loss::EventTimes {
        event: 1,
        times: vec![1.0],
    };
    let e =
        gradient_beuler_with_stimulus(&AdaptiveLif, &pr, &Stimulus::none(), &bad, Schedule::All)
            .unwrap_err();
    assert!(
        matches!(
            e,
            revode_adjoint::GradientError::NoSuchEvent { event: 1, .. }
        ),
        "{e}"
    );
}
