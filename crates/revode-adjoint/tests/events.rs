//! Gradients through events (state resets): the discrete adjoint against
//! central differences of the same solution and against the leaky
//! integrate-and-fire closed form. Models written by hand here, independent
//! of the model-file reader.

use revode_adjoint::{gradient_fixed, FixedProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{solve_fixed, FixedMethod, ForwardError, TimeGrid};
use revode_model::Model;

mod event_models;

use event_models::AdaptiveLif;

fn final_loss(method: FixedMethod, grid: &TimeGrid, u0: &[f64], p: &[f64], w: &[f64]) -> f64 {
    let sol = solve_fixed(&AdaptiveLif, method, grid, u0, p, None).unwrap();
    w.iter().zip(&sol.final_state).map(|(a, b)| a * b).sum()
}

fn fd(f: impl Fn(&[f64]) -> f64, x: &[f64], i: usize, rel: f64) -> f64 {
    let h = rel * x[i].abs().max(1.0);
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    a[i] += h;
    b[i] -= h;
    (f(&a) - f(&b)) / (2.0 * h)
}

#[test]
fn the_discrete_adjoint_matches_central_differences_of_the_same_solution() {
    let grid = TimeGrid::new(0.0, 47.3, 0.05).unwrap();
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    let weights = vec![1.0, 0.7];
    let loss = Loss::Final {
        weights: weights.clone(),
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        let g = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::All).unwrap();
        let events = g.stats.events.unwrap();
        assert!(events >= 4, "{events} events");
        let mut worst: f64 = 0.0;
        for k in 0..p.len() {
            let want = fd(|x| final_loss(method, &grid, &u0, x, &weights), &p, k, 1e-6);
            let err = (g.gradient[k] - want).abs() / want.abs().max(1.0);
            worst = worst.max(err);
            assert!(err < 1e-6, "{method:?} p{k}: {} vs {want}", g.gradient[k]);
        }
        for i in 0..2 {
            let want = fd(|x| final_loss(method, &grid, x, &p, &weights), &u0, i, 1e-6);
            let err = (g.gradient_u0[i] - want).abs() / want.abs().max(1.0);
            worst = worst.max(err);
            assert!(
                err < 1e-6,
                "{method:?} u0[{i}]: {} vs {want}",
                g.gradient_u0[i]
            );
        }
        eprintln!(
            "{method:?}: {events} events, worst relative error vs central differences {worst:.2e}"
        );
        // Every checkpoint schedule replays the events bitwise.
        for schedule in [
            Schedule::Every(7),
            Schedule::Every(1000),
            Schedule::BudgetBytes(4096),
        ] {
            let other = gradient_fixed(&AdaptiveLif, &problem, &loss, schedule).unwrap();
            assert_eq!(other.gradient, g.gradient, "{schedule:?}");
            assert_eq!(other.gradient_u0, g.gradient_u0, "{schedule:?}");
            assert!(other.stats.recomputed_steps > 0 || matches!(schedule, Schedule::Every(1000)));
        }
    }
}

/// v(t1) of the plain LIF (w ≡ 0) from v(0) = v0, in closed form: the first
/// spike after τ ln((I − v0)/(I − θ)), then one every τ ln((I − v_r)/(I − θ)).
fn lif_closed_form(p: &[f64], v0: f64, t1: f64) -> f64 {
    let (i, tau, theta, vr) = (p[0], p[1], p[3], p[4]);
    let first = tau * ((i - v0) / (i - theta)).ln();
    if t1 < first {
        return i + (v0 - i) * (-t1 / tau).exp();
    }
    let period = tau * ((i - vr) / (i - theta)).ln();
    let n = ((t1 - first) / period).floor();
    let s = t1 - first - n * period;
    i + (vr - i) * (-s / tau).exp()
}

#[test]
fn rk4_gradients_match_the_lif_closed_form() {
    // Five spikes, the last well before t1.
    let p = [1.5, 10.0, 30.0, 1.0, 0.0, 0.0];
    let t1 = 60.0;
    let u0 = [0.0, 0.0];
    let grid = TimeGrid::new(0.0, t1, 0.002).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let loss = Loss::Final {
        weights: vec![1.0, 0.0],
    };
    let g = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::All).unwrap();
    assert_eq!(g.stats.events, Some(5));
    let value = lif_closed_form(&p, 0.0, t1);
    assert!((g.loss - value).abs() < 1e-9, "{} vs {value}", g.loss);
    let mut worst: f64 = 0.0;
    for k in [0, 1, 3, 4] {
        let want = fd(|x| lif_closed_form(x, 0.0, t1), &p, k, 1e-5);
        let err = (g.gradient[k] - want).abs();
        worst = worst.max(err);
        assert!(err < 1e-6, "p{k}: {} vs closed form {want}", g.gradient[k]);
    }
    let want = fd(|x| lif_closed_form(&p, x[0], t1), &[0.0], 0, 1e-5);
    assert!((g.gradient_u0[0] - want).abs() < 1e-6);
    eprintln!("RK4 dt 0.002: worst error vs the LIF closed form {worst:.2e}");
}

#[test]
fn a_reset_onto_its_own_threshold_is_zeno_and_fails_naming_t() {
    // v_r above θ: the reset lands past the threshold, so no further upward
    // crossing; instead make θ reachable again at once by v_r just below it
    // with a huge drive: many events per step.
    let p = [1e9, 1.0, 30.0, 1.0, 1.0 - 1e-12, 0.0];
    let grid = TimeGrid::new(0.0, 1.0, 0.1).unwrap();
    let err = solve_fixed(
        &AdaptiveLif,
        FixedMethod::Euler,
        &grid,
        &[0.0, 0.0],
        &p,
        None,
    )
    .unwrap_err();
    let ForwardError::TooManyEvents { t, .. } = err else {
        panic!("{err}");
    };
    assert!(t < 0.1, "{t}");
    assert!(err.to_string().contains("t = "), "{err}");
}

/// Σ_k (t_k − τ_k)² with the LIF's spike times in closed form.
fn lif_spike_time_loss(p: &[f64], v0: f64, targets: &[f64]) -> f64 {
    let (i, tau, theta, vr) = (p[0], p[1], p[3], p[4]);
    let first = tau * ((i - v0) / (i - theta)).ln();
    let period = tau * ((i - vr) / (i - theta)).ln();
    targets
        .iter()
        .enumerate()
        .map(|(k, target)| {
            let t = first + k as f64 * period;
            (t - target) * (t - target)
        })
        .sum()
}

#[test]
fn event_time_losses_match_the_closed_form_and_central_differences() {
    let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
    let targets = vec![10.0, 20.0, 31.0, 44.0];
    let loss = Loss::EventTimes {
        event: 0,
        times: targets.clone(),
    };
    let u0 = [0.0, 0.0];
    let grid = TimeGrid::new(0.0, 60.0, 0.002).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let g = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::BudgetBytes(8192)).unwrap();
    let value = lif_spike_time_loss(&p, 0.0, &targets);
    assert!((g.loss - value).abs() < 1e-8, "{} vs {value}", g.loss);
    let mut worst: f64 = 0.0;
    for k in [0, 1, 3, 4] {
        let want = fd(|x| lif_spike_time_loss(x, 0.0, &targets), &p, k, 1e-6);
        worst = worst.max((g.gradient[k] - want).abs());
        assert!(
            (g.gradient[k] - want).abs() < 1e-6,
            "p{k}: {} vs {want}",
            g.gradient[k]
        );
    }
    eprintln!("event_times, RK4 dt 0.002: worst error vs the closed form {worst:.2e}");
    // Euler: against central differences of its own solution.
    let problem = FixedProblem {
        method: FixedMethod::Euler,
        grid: TimeGrid::new(0.0, 60.0, 0.01).unwrap(),
        ..problem
    };
    let g = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::Every(13)).unwrap();
    let of = |x: &[f64]| {
        let pr = FixedProblem {
            params: x,
            ..problem
        };
        revode_adjoint::loss_fixed(&AdaptiveLif, &pr, &loss).unwrap()
    };
    assert_eq!(of(&p), g.loss);
    for k in 0..p.len() {
        let want = fd(of, &p, k, 1e-6);
        let err = (g.gradient[k] - want).abs() / want.abs().max(1.0);
        assert!(err < 1e-6, "Euler p{k}: {} vs {want}", g.gradient[k]);
    }
}

#[test]
fn missing_events_count_as_firing_at_t1_and_unknown_events_are_errors() {
    use revode_adjoint::GradientError;
    let p = AdaptiveLif.default_params();
    let u0 = [0.0, 0.0];
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 25.0, 0.01).unwrap(),
        method: FixedMethod::Rk4,
    };
    let targets = vec![10.0, 20.0, 30.0];
    let loss = Loss::EventTimes {
        event: 0,
        times: targets.clone(),
    };
    // Two firings by t1 = 25: the third counts as firing at 25, a constant.
    let g = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::All).unwrap();
    assert_eq!(g.stats.events, Some(2));
    let two = Loss::EventTimes {
        event: 0,
        times: targets[..2].to_vec(),
    };
    let g2 = gradient_fixed(&AdaptiveLif, &problem, &two, Schedule::All).unwrap();
    assert!(
        (g.loss - g2.loss - 25.0).abs() < 1e-12,
        "{} vs {}",
        g.loss,
        g2.loss
    );
    assert_eq!(g.gradient, g2.gradient);
    let loss = Loss::EventTimes {
        event: 1,
        times: vec![10.0],
    };
    let e = gradient_fixed(&AdaptiveLif, &problem, &loss, Schedule::All).unwrap_err();
    assert!(
        matches!(
            e,
            GradientError::NoSuchEvent {
                event: 1,
                n_events: 1
            }
        ),
        "{e}"
    );
}

mod dopri5 {
    use super::*;
    use revode_adjoint::{
        gradient_continuous, gradient_continuous_with_stimulus, AdaptiveProblem, ContinuousOptions,
    };
    use revode_forward::{
        solve_adaptive, AdaptiveOptions, Stimulus, StimulusTrack, MAX_EVENTS_PER_STEP,
    };

    fn gradient(p: &[f64], loss: &Loss, schedule: Schedule) -> revode_adjoint::Gradient {
        let options = AdaptiveOptions::new(1e-10, 1e-10);
        let problem = AdaptiveProblem {
            u0: &[0.0, 0.0],
            params: p,
            t0: 0.0,
            t1: 60.0,
            options: &options,
        };
        gradient_continuous(
            &AdaptiveLif,
            &problem,
            loss,
            &ContinuousOptions::default(),
            schedule,
        )
        .unwrap()
    }

    #[test]
    fn the_continuous_adjoint_matches_the_lif_closed_form() {
        let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
        let loss = Loss::Final {
            weights: vec![1.0, 0.0],
        };
        let g = gradient(&p, &loss, Schedule::All);
        assert_eq!(g.stats.events, Some(5));
        let value = lif_closed_form(&p, 0.0, 60.0);
        assert!((g.loss - value).abs() < 1e-8, "{} vs {value}", g.loss);
        let mut worst: f64 = 0.0;
        for k in [0, 1, 3, 4] {
            let want = fd(|x| lif_closed_form(x, 0.0, 60.0), &p, k, 1e-5);
            worst = worst.max((g.gradient[k] - want).abs());
            assert!(
                (g.gradient[k] - want).abs() < 1e-6,
                "p{k}: {} vs {want}",
                g.gradient[k]
            );
        }
        let want = fd(|x| lif_closed_form(&p, x[0], 60.0), &[0.0], 0, 1e-5);
        assert!(
            (g.gradient_u0[0] - want).abs() < 1e-6,
            "{} vs {want}",
            g.gradient_u0[0]
        );
        eprintln!("dopri5 rtol 1e-10, v(t1): worst error vs the LIF closed form {worst:.2e}");
        // Replays repeat the events: every schedule gives the same bits.
        for schedule in [Schedule::Every(3), Schedule::BudgetBytes(4000)] {
            let other = gradient(&p, &loss, schedule);
            assert_eq!(other.gradient, g.gradient, "{schedule:?}");
        }
        // The adaptive solve fires the same events.
        let options = AdaptiveOptions::new(1e-10, 1e-10);
        let sol = solve_adaptive(&AdaptiveLif, &options, 0.0, 60.0, &[0.0, 0.0], &p, None).unwrap();
        assert!((sol.final_state[0] - value).abs() < 1e-8);
    }

    #[test]
    fn the_continuous_adjoint_of_spike_times_matches_the_closed_form() {
        let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
        let targets = vec![10.0, 20.0, 31.0, 44.0];
        let loss = Loss::EventTimes {
            event: 0,
            times: targets.clone(),
        };
        let g = gradient(&p, &loss, Schedule::Every(5));
        let value = lif_spike_time_loss(&p, 0.0, &targets);
        assert!((g.loss - value).abs() < 1e-7, "{} vs {value}", g.loss);
        let mut worst: f64 = 0.0;
        for k in [0, 1, 3, 4] {
            let want = fd(|x| lif_spike_time_loss(x, 0.0, &targets), &p, k, 1e-6);
            worst = worst.max((g.gradient[k] - want).abs());
            assert!(
                (g.gradient[k] - want).abs() < 1e-6,
                "p{k}: {} vs {want}",
                g.gradient[k]
            );
        }
        eprintln!("dopri5 rtol 1e-10, spike times: worst error vs the closed form {worst:.2e}");
    }

    #[test]
    fn the_continuous_adjoint_with_adaptation_matches_central_differences() {
        // Two states, a reset of both, parameters in the reset: no closed
        // form; central differences of the (converged) dopri5 solution.
        let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
        let loss = Loss::Final {
            weights: vec![1.0, 0.7],
        };
        let g = gradient(&p, &loss, Schedule::All);
        let of = |x: &[f64]| gradient(x, &loss, Schedule::All).loss;
        for k in 0..p.len() {
            let want = fd(of, &p, k, 1e-5);
            let err = (g.gradient[k] - want).abs() / want.abs().max(1.0);
            assert!(err < 1e-5, "p{k}: {} vs {want}", g.gradient[k]);
        }
    }

    /// Two long runs of steps that each end at an event (a drive so
    /// strong that the next spike comes sooner than the step dopri5 wants),
    /// split by one plain step at a stimulus switch: the forward stays
    /// under the Zeno limit, so replays from checkpoints must too. They
    /// count the events in a row as the forward did, not on top of what
    /// the previous replay (of the later run) left.
    #[test]
    fn long_runs_of_event_steps_replay_from_checkpoints_as_they_ran() {
        let p = [1000.0, 10.0, 30.0, 1.0, 0.0, 0.0];
        let options = AdaptiveOptions::new(1e-8, 1e-8);
        let problem = AdaptiveProblem {
            u0: &[0.0, 0.0],
            params: &p,
            t0: 0.0,
            t1: 1.5,
            options: &options,
        };
        // τ_w switched to its own value: only a stop at t = 0.995, after 99 events in a row.
        let stop = Stimulus {
            tracks: vec![StimulusTrack {
                param: 2,
                switches: vec![[0.995, 30.0]],
            }],
        };
        let loss = Loss::Final {
            weights: vec![1.0, 0.0],
        };
        let run = |schedule| {
            gradient_continuous_with_stimulus(
                &AdaptiveLif,
                &problem,
                &stop,
                &loss,
                &ContinuousOptions::default(),
                schedule,
            )
        };
        let all = run(Schedule::All).unwrap();
        let fired = all.stats.events.unwrap();
        assert!(fired > 2 * MAX_EVENTS_PER_STEP / 3 + 20, "{fired} events");
        // Binomial replays visit the same steps again and again: before
        // the count was restart state, small budgets failed here with a
        // Zeno error the forward never raised.
        let budgets = [1_600, 2_400, 3_200, 8_000].map(Schedule::BudgetBytes);
        let every = (6..=120).step_by(6).map(Schedule::Every);
        for schedule in budgets.into_iter().chain(every) {
            let replayed = run(schedule).unwrap_or_else(|e| panic!("{schedule:?}: {e}"));
            assert_eq!(replayed.gradient, all.gradient, "{schedule:?}");
        }
    }
}
