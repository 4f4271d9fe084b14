//! Stimulus protocols: gradients across parameter switches against closed
//! forms and finite differences, schedule identity, and the forward solve
//! across switches against solves restarted segment by segment.

mod common;

use common::{Decay, Predator};
use revode_adjoint::{
    gradient_continuous_fixed_with_stimulus, gradient_continuous_with_stimulus,
    gradient_fixed_with_stimulus, loss_fixed_with_stimulus, AdaptiveProblem, ContinuousOptions,
    FixedProblem, GradientError, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_adaptive, solve_adaptive_with_stimulus, solve_fixed, solve_fixed_with_stimulus,
    AdaptiveOptions, FixedMethod, ForwardError, Stimulus, StimulusFault, StimulusTrack, TimeGrid,
};
use revode_model::{HodgkinHuxley, Model};

fn stimulus(tracks: &[(usize, &[[f64; 2]])]) -> Stimulus {
    Stimulus {
        tracks: tracks
            .iter()
            .map(|(param, switches)| StimulusTrack {
                param: *param,
                switches: switches.to_vec(),
            })
            .collect(),
    }
}

fn final_loss(n: usize) -> Loss {
    Loss::Final {
        weights: vec![1.0; n],
    }
}

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs())
}

/// RK4's amplification factor for du/dt = λu, z = λh, and its derivative.
fn rk4_r(z: f64) -> (f64, f64) {
    (
        1.0 + z + z * z / 2.0 + z.powi(3) / 6.0 + z.powi(4) / 24.0,
        1.0 + z + z * z / 2.0 + z.powi(3) / 6.0,
    )
}

/// du/dt = −k u on [0, 1], dt = 0.1, k = k1 (its `params` value) until the
/// off-grid switch τ = 0.35, then k2: steps of 0.1 × 3, h_a = τ − 0.3 (k1),
/// h_b = 0.4 − τ (k2), then 0.1 × 6 (k2). The discrete solution is
/// u0 Π_i R(−k_i h_i), with R(z) = 1 + z (Euler) or RK4's polynomial.
#[test]
fn decay_across_an_off_grid_switch_matches_the_closed_form() {
    let (u0, k1, k2, tau) = (2.0, 0.7, 1.9, 0.35);
    let grid = TimeGrid::new(0.0, 1.0, 0.1).unwrap();
    let stim = stimulus(&[(0, &[[tau, k2]])]);
    let (h_a, h_b) = (tau - 3.0 * 0.1, 4.0 * 0.1 - tau);
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let r = |z: f64| match method {
            FixedMethod::Euler => (1.0 + z, 1.0),
            FixedMethod::Rk4 => rk4_r(z),
        };
        let (ra, dra) = r(-k1 * 0.1);
        let (rb, drb) = r(-k1 * h_a);
        let before = ra.powi(3) * rb;
        let d_before = 3.0 * ra * ra * dra * (-0.1) * rb + ra.powi(3) * drb * (-h_a);
        let after = r(-k2 * h_b).0 * r(-k2 * 0.1).0.powi(6);
        let problem = FixedProblem {
            u0: &[u0],
            params: &[k1],
            grid,
            method,
        };
        let g =
            gradient_fixed_with_stimulus(&Decay, &problem, &stim, &final_loss(1), Schedule::All)
                .unwrap();
        assert_eq!(g.stats.steps, 11, "one step cut in two");
        assert!(close(g.loss, u0 * before * after, 1e-14), "{method:?} loss");
        assert!(
            close(g.gradient_u0[0], before * after, 1e-14),
            "{method:?} u0"
        );
        assert!(
            close(g.gradient[0], u0 * d_before * after, 1e-13),
            "{method:?}: dL/dk1 {} vs {}",
            g.gradient[0],
            u0 * d_before * after
        );
    }
}

/// The ODE: u(T) = u0 exp(−k1 τ − k2 (T − τ)); dL/dk1 = −τ u(T).
#[test]
fn continuous_adjoints_across_a_switch_match_the_ode() {
    let (u0, k1, k2, tau, t1): (f64, f64, f64, f64, f64) = (2.0, 0.7, 1.9, 0.35, 1.0);
    let u_t = u0 * (-k1 * tau - k2 * (t1 - tau)).exp();
    let stim = stimulus(&[(0, &[[tau, k2]])]);
    let options = AdaptiveOptions::new(1e-12, 1e-14);
    let problem = AdaptiveProblem {
        u0: &[u0],
        params: &[k1],
        t0: 0.0,
        t1,
        options: &options,
    };
    for schedule in [Schedule::All, Schedule::BudgetBytes(2_000)] {
        let g = gradient_continuous_with_stimulus(
            &Decay,
            &problem,
            &stim,
            &final_loss(1),
            &ContinuousOptions::default(),
            schedule,
        )
        .unwrap();
        assert!(close(g.loss, u_t, 1e-10), "loss {} vs {u_t}", g.loss);
        assert!(close(g.gradient_u0[0], u_t / u0, 1e-9));
        assert!(
            close(g.gradient[0], -tau * u_t, 1e-9),
            "dL/dk1 {} vs {}",
            g.gradient[0],
            -tau * u_t
        );
    }
    // The fixed-step continuous adjoint converges at the scheme's order.
    for (method, dt, rtol) in [
        (FixedMethod::Rk4, 0.01, 1e-8),
        (FixedMethod::Euler, 1e-4, 1e-3),
    ] {
        let problem = FixedProblem {
            u0: &[u0],
            params: &[k1],
            grid: TimeGrid::new(0.0, t1, dt).unwrap(),
            method,
        };
        let g = gradient_continuous_fixed_with_stimulus(
            &Decay,
            &problem,
            &stim,
            &final_loss(1),
            Schedule::Every(10),
        )
        .unwrap();
        assert!(close(g.gradient_u0[0], u_t / u0, rtol), "{method:?} u0");
        assert!(
            close(g.gradient[0], -tau * u_t, rtol),
            "{method:?}: {} vs {}",
            g.gradient[0],
            -tau * u_t
        );
    }
}

/// Central differences of the discrete loss (the adjoint is exact, so a
/// plain difference at a small step suffices on this smooth test model).
fn fd<F: Fn(&[f64]) -> f64>(x: &[f64], f: F) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let h = 1e-6 * x[i].abs().max(1e-2);
            let (mut hi, mut lo) = (x.to_vec(), x.to_vec());
            hi[i] += h;
            lo[i] -= h;
            (f(&hi) - f(&lo)) / (hi[i] - lo[i])
        })
        .collect()
}

/// Non-autonomous Predator, two parameters stimulated (one from t0, one
/// from an off-grid time), observations at a switch time and elsewhere.
#[test]
fn discrete_adjoint_across_switches_matches_finite_differences() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let stim = stimulus(&[
        (0, &[[0.0, 0.5], [1.234, 1.1], [2.5, 0.3]]),
        (2, &[[1.7, 0.9], [3.055, 0.2]]),
    ]);
    let loss = Loss::TraceMse {
        component: 1,
        times: vec![1.0, 1.234, 2.5, 4.0],
        values: vec![0.4, 0.5, 0.6, 0.3],
    };
    let grid = TimeGrid::new(0.0, 4.0, 0.01).unwrap();
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let loss_at = |u0: &[f64], p: &[f64]| {
            let problem = FixedProblem {
                u0,
                params: p,
                grid,
                method,
            };
            loss_fixed_with_stimulus(&m, &problem, &stim, &loss).unwrap()
        };
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        let g =
            gradient_fixed_with_stimulus(&m, &problem, &stim, &loss, Schedule::Every(13)).unwrap();
        assert_eq!(g.loss.to_bits(), loss_at(&u0, &p).to_bits());
        // 400 lattice steps, cut at 1.234 and 3.055 (1.7 and 2.5 are on it).
        assert_eq!(g.stats.steps, 402);
        let fd_p = fd(&p, |q| loss_at(&u0, q));
        let fd_u = fd(&u0, |v| loss_at(v, &p));
        assert_eq!(g.gradient[0], 0.0, "param 0's protocol starts at t0");
        assert!(g.gradient[2] != 0.0, "param 2 acts before 1.7");
        for (i, (a, f)) in g.gradient.iter().zip(&fd_p).enumerate() {
            assert!(
                close(*a, *f, 1e-6) || (a - f).abs() < 1e-9,
                "{method:?} p{i}: {a} vs {f}"
            );
        }
        for (i, (a, f)) in g.gradient_u0.iter().zip(&fd_u).enumerate() {
            assert!(close(*a, *f, 1e-6), "{method:?} u0[{i}]: {a} vs {f}");
        }
    }
}

#[test]
fn every_schedule_gives_the_same_bits_across_switches() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let stim = stimulus(&[(2, &[[0.0, 0.05], [7.003, 0.2]]), (1, &[[12.5, 14.0]])]);
    let loss = Loss::AllSteps {
        weights: vec![1.0, 0.0, 0.0, 0.0],
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid: TimeGrid::new(0.0, 20.0, 0.01).unwrap(),
            method,
        };
        let schedules = [
            Schedule::All,
            Schedule::Every(1),
            Schedule::Every(7),
            Schedule::Every(500),
            Schedule::BudgetBytes(40 * 32),
            Schedule::BudgetBytes(400 * 32),
        ];
        let discrete: Vec<_> = schedules
            .iter()
            .map(|&s| gradient_fixed_with_stimulus(&m, &problem, &stim, &loss, s).unwrap())
            .collect();
        let continuous: Vec<_> = schedules
            .iter()
            .map(|&s| {
                gradient_continuous_fixed_with_stimulus(&m, &problem, &stim, &loss, s).unwrap()
            })
            .collect();
        for runs in [&discrete, &continuous] {
            for (g, s) in runs.iter().zip(&schedules) {
                assert_eq!(g.loss.to_bits(), runs[0].loss.to_bits(), "{s:?}");
                assert_eq!(g.gradient, runs[0].gradient, "{method:?} {s:?}");
                assert_eq!(g.gradient_u0, runs[0].gradient_u0, "{method:?} {s:?}");
            }
        }
    }
}

/// A protocol that sets a parameter to its own value on grid times changes
/// no bit of the solution; the parameter's entry keeps only the part before
/// its first switch.
#[test]
fn a_protocol_repeating_params_on_the_grid_changes_nothing() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::AllSteps {
        weights: vec![1.0, 0.0, 0.0, 0.0],
    };
    let grid = TimeGrid::new(0.0, 10.0, 0.01).unwrap();
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        let plain =
            gradient_fixed_with_stimulus(&m, &problem, &Stimulus::none(), &loss, Schedule::All)
                .unwrap();
        let same = stimulus(&[(0, &[[3.0, p[0]], [6.5, p[0]]])]);
        let g = gradient_fixed_with_stimulus(&m, &problem, &same, &loss, Schedule::All).unwrap();
        assert_eq!(g.stats.steps, plain.stats.steps);
        assert_eq!(g.loss.to_bits(), plain.loss.to_bits());
        assert_eq!(g.gradient_u0, plain.gradient_u0);
        assert_eq!(g.gradient[1..], plain.gradient[1..]);
        // Only the part before t = 3: what moving params[0] moves.
        assert!(g.gradient[0] != plain.gradient[0] && g.gradient[0] != 0.0);
        let fd_p = fd(&p, |q| {
            let problem = FixedProblem {
                params: q,
                ..problem
            };
            loss_fixed_with_stimulus(&m, &problem, &same, &loss).unwrap()
        });
        assert!(
            close(g.gradient[0], fd_p[0], 1e-6),
            "{} vs {}",
            g.gradient[0],
            fd_p[0]
        );
    }
}

/// Solving across a switch on the grid equals stopping there and restarting
/// with the new parameters (bitwise for Euler and RK4 on an autonomous model).
#[test]
fn the_forward_solve_across_a_switch_equals_a_restart() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let p2 = [p[0], p[1] * 1.4, p[2] * 3.0];
    let stim = stimulus(&[(1, &[[20.0, p2[1]]]), (2, &[[20.0, p2[2]]])]);
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let grid = TimeGrid::new(0.0, 50.0, 0.01).unwrap();
        let whole = solve_fixed_with_stimulus(&m, method, &grid, &u0, &p, &stim, None).unwrap();
        let first = solve_fixed(
            &m,
            method,
            &TimeGrid::new(0.0, 20.0, 0.01).unwrap(),
            &u0,
            &p,
            None,
        )
        .unwrap();
        let second = solve_fixed(
            &m,
            method,
            &TimeGrid::new(20.0, 50.0, 0.01).unwrap(),
            &first.final_state,
            &p2,
            None,
        )
        .unwrap();
        assert_eq!(whole.final_state, second.final_state, "{method:?}");
        assert_eq!(whole.n_steps, first.n_steps + second.n_steps);
    }
    let options = AdaptiveOptions::new(1e-10, 1e-10);
    let whole =
        solve_adaptive_with_stimulus(&m, &options, 0.0, 50.0, &u0, &p, &stim, None).unwrap();
    let first = solve_adaptive(&m, &options, 0.0, 20.0, &u0, &p, None).unwrap();
    let second = solve_adaptive(&m, &options, 20.0, 50.0, &first.final_state, &p2, None).unwrap();
    for (a, b) in whole.final_state.iter().zip(&second.final_state) {
        assert!(close(*a, *b, 1e-6), "dopri5: {a} vs {b}");
    }
    // Without the switch the solution differs visibly.
    let plain = solve_adaptive(&m, &options, 0.0, 50.0, &u0, &p, None).unwrap();
    assert!(!close(plain.final_state[0], whole.final_state[0], 1e-3));
}

#[test]
fn bad_protocols_are_errors_naming_the_parameter_index() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 1.0, 0.1).unwrap(),
        method: FixedMethod::Euler,
    };
    let fault = |stim: Stimulus| match gradient_fixed_with_stimulus(
        &m,
        &problem,
        &stim,
        &final_loss(2),
        Schedule::All,
    ) {
        Err(GradientError::Forward(ForwardError::Stimulus { param, fault })) => (param, fault),
        other => panic!("expected a stimulus error, got {other:?}"),
    };
    assert!(matches!(
        fault(stimulus(&[(5, &[[0.0, 1.0]])])),
        (5, StimulusFault::UnknownParam { n_params: 3 })
    ));
    assert!(matches!(
        fault(stimulus(&[(1, &[[1.5, 1.0]])])),
        (1, StimulusFault::TimeOutside { .. })
    ));
    assert!(matches!(
        fault(stimulus(&[(1, &[[0.5, 1.0], [0.2, 1.0]])])),
        (1, StimulusFault::Unsorted { .. })
    ));
    assert!(matches!(
        fault(stimulus(&[(2, &[[0.5, f64::NAN]])])),
        (2, StimulusFault::NonFinite { what: "value", .. })
    ));
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let adaptive = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 1.0,
        options: &options,
    };
    let e = gradient_continuous_with_stimulus(
        &m,
        &adaptive,
        &stimulus(&[(0, &[[-0.5, 1.0]])]),
        &final_loss(2),
        &ContinuousOptions::default(),
        Schedule::All,
    )
    .unwrap_err();
    assert!(e.to_string().contains("outside the time span"), "{e}");
}
