//! Whole-solve gradients of the HH seed problem against central finite
//! differences of the forward solve, for Euler and RK4, both losses, and
//! bitwise identity across checkpoint intervals.

use revode::checkpoint::Schedule;
use revode::prelude::*;

const MODEL: HodgkinHuxley = HodgkinHuxley;

fn loss_value(method: FixedMethod, grid: &TimeGrid, u0: &[f64], p: &[f64], loss: &Loss) -> f64 {
    let every = matches!(loss, Loss::AllSteps { .. }).then_some(1);
    let sol = solve_fixed(&MODEL, method, grid, u0, p, every).unwrap();
    let dot = |u: &[f64]| {
        loss.weights()
            .iter()
            .zip(u)
            .map(|(w, x)| w * x)
            .sum::<f64>()
    };
    match loss {
        Loss::Final { .. } => dot(&sol.final_state),
        Loss::AllSteps { .. } => sol
            .samples
            .iter()
            .map(|(_, u)| dot(u.as_slice().unwrap()))
            .sum(),
        Loss::TraceMse { .. } | Loss::EventTimes { .. } => unreachable!("not used here"),
    }
}

/// Central difference with Richardson extrapolation (2h and h), so the
/// reference is accurate to O(h⁴) plus rounding. Over 60 000 steps the
/// rounding noise of the loss is ~1e-7 relative to its change, which makes
/// h ≈ 1e-4 (relative) the sweet spot (scanned from 1e-3 to 1e-7).
fn central_fd(x: &[f64], i: usize, f: &dyn Fn(&[f64]) -> f64) -> f64 {
    let d = |h: f64| {
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += h;
        xm[i] -= h;
        (f(&xp) - f(&xm)) / (2.0 * h)
    };
    let h = 1e-4 * x[i].abs().max(0.1);
    let (d1, d2) = (d(2.0 * h), d(h));
    d2 + (d2 - d1) / 3.0
}

fn check_against_fd(method: FixedMethod, t1: f64, loss: Loss, rtol: f64) {
    let (u0, p) = (MODEL.default_u0(), MODEL.default_params());
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method,
    };
    let g = gradient_fixed(&MODEL, &problem, &loss, Schedule::Every(97)).unwrap();
    for i in 0..p.len() {
        let fd = central_fd(&p, i, &|pp| loss_value(method, &grid, &u0, pp, &loss));
        let err = (g.gradient[i] - fd).abs() / fd.abs().max(1e-8);
        assert!(
            err < rtol,
            "{method:?} {} t1={t1} dL/dp[{i}]: adjoint {} fd {fd} (rel {err:e})",
            loss.name(),
            g.gradient[i]
        );
    }
    for i in 0..u0.len() {
        let fd = central_fd(&u0, i, &|uu| loss_value(method, &grid, uu, &p, &loss));
        let err = (g.gradient_u0[i] - fd).abs() / fd.abs().max(1e-8);
        assert!(
            err < rtol,
            "{method:?} {} t1={t1} dL/du0[{i}]: adjoint {} fd {fd} (rel {err:e})",
            loss.name(),
            g.gradient_u0[i]
        );
    }
}

#[test]
fn euler_seed_problem_matches_fd_both_losses() {
    check_against_fd(
        FixedMethod::Euler,
        600.0,
        Loss::Final {
            weights: vec![1.0; 4],
        },
        1e-5,
    );
    check_against_fd(
        FixedMethod::Euler,
        600.0,
        Loss::AllSteps {
            weights: vec![1.0; 4],
        },
        1e-5,
    );
}

#[test]
fn rk4_seed_problem_matches_fd_both_losses() {
    check_against_fd(
        FixedMethod::Rk4,
        600.0,
        Loss::Final {
            weights: vec![1.0; 4],
        },
        1e-5,
    );
    check_against_fd(
        FixedMethod::Rk4,
        600.0,
        Loss::AllSteps {
            weights: vec![1.0; 4],
        },
        1e-5,
    );
}

#[test]
fn shorter_variants_match_fd() {
    // Spans ending mid-spike and before the first spike, and uneven weights.
    for t1 in [3.0, 17.3, 55.55] {
        for method in [FixedMethod::Euler, FixedMethod::Rk4] {
            check_against_fd(
                method,
                t1,
                Loss::Final {
                    weights: vec![1.0, -2.0, 0.5, 3.0],
                },
                1e-6,
            );
            check_against_fd(
                method,
                t1,
                Loss::AllSteps {
                    weights: vec![0.0, 1.0, 0.0, 1.0],
                },
                1e-6,
            );
        }
    }
}

#[test]
fn seed_gradient_is_bitwise_identical_for_every_interval() {
    let (u0, p) = (MODEL.default_u0(), MODEL.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
    let n = grid.n_steps();
    assert_eq!(n, 60_000);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        for loss in [
            Loss::Final {
                weights: vec![1.0; 4],
            },
            Loss::AllSteps {
                weights: vec![1.0; 4],
            },
        ] {
            let all = gradient_fixed(&MODEL, &problem, &loss, Schedule::All).unwrap();
            for k in [1, 7, 1000, n] {
                let g = gradient_fixed(&MODEL, &problem, &loss, Schedule::Every(k)).unwrap();
                assert_eq!(g.loss.to_bits(), all.loss.to_bits());
                assert_eq!(bits(&g.gradient), bits(&all.gradient), "{method:?} K={k}");
                assert_eq!(
                    bits(&g.gradient_u0),
                    bits(&all.gradient_u0),
                    "{method:?} K={k}"
                );
                // Every segment but the last is replayed: (⌈N/K⌉ − 1)(K − 1) steps.
                let expected_recompute = (n.div_ceil(k) - 1) * (k - 1);
                assert_eq!(g.stats.recomputed_steps, expected_recompute, "K={k}");
            }
        }
    }
}
