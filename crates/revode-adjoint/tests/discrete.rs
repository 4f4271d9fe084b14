//! The discrete adjoint against closed forms and finite differences of the
//! forward solve, on test models independent of the built-in ones.

mod common;

use common::{Decay, Predator};
use revode_adjoint::{gradient_fixed, FixedProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{solve_fixed, FixedMethod, TimeGrid};
use revode_model::Model;

fn loss_of<M: Model>(
    m: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    loss: &Loss,
) -> f64 {
    let sol = solve_fixed(m, method, grid, u0, p, Some(1)).unwrap();
    match loss {
        Loss::Final { weights } => weights
            .iter()
            .zip(&sol.final_state)
            .map(|(w, u)| w * u)
            .sum(),
        Loss::AllSteps { weights } => sol
            .samples
            .iter()
            .map(|(_, u)| weights.iter().zip(&u).map(|(w, x)| w * x).sum::<f64>())
            .sum(),
        Loss::TraceMse { .. } | Loss::EventTimes { .. } => unreachable!("not used here"),
    }
}

/// Central differences of the whole solve, dL/dp then dL/du0.
fn fd_gradient<M: Model>(
    m: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    loss: &Loss,
) -> (Vec<f64>, Vec<f64>) {
    let fd = |x: &[f64], set: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-6 * x[i].abs().max(1e-3);
                let mut xp = x.to_vec();
                xp[i] += h;
                let mut xm = x.to_vec();
                xm[i] -= h;
                (set(&xp) - set(&xm)) / (2.0 * h)
            })
            .collect()
    };
    let gp = fd(p, &|pp| loss_of(m, method, grid, u0, pp, loss));
    let gu = fd(u0, &|uu| loss_of(m, method, grid, uu, p, loss));
    (gp, gu)
}

fn assert_close(a: &[f64], b: &[f64], rtol: f64, what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1e-8);
        assert!(
            (x - y).abs() <= rtol * scale,
            "{what}[{i}]: adjoint {x} vs reference {y}"
        );
    }
}

#[test]
fn euler_decay_matches_closed_form() {
    // u_N = u0 (1 − k h)^N  ⇒  dL/dk = −u0 N h (1 − k h)^{N−1},  dL/du0 = (1 − k h)^N
    let (u0, k, h, n) = (2.0, 0.7, 0.01, 300);
    let grid = TimeGrid::new(0.0, h * n as f64, h).unwrap();
    let problem = FixedProblem {
        u0: &[u0],
        params: &[k],
        grid,
        method: FixedMethod::Euler,
    };
    let g = gradient_fixed(
        &Decay,
        &problem,
        &Loss::Final { weights: vec![1.0] },
        Schedule::All,
    )
    .unwrap();
    let a = 1.0 - k * h;
    assert!((g.loss - u0 * a.powi(n)).abs() < 1e-12);
    assert!((g.gradient[0] - (-u0 * n as f64 * h * a.powi(n - 1))).abs() < 1e-12);
    assert!((g.gradient_u0[0] - a.powi(n)).abs() < 1e-12);
}

#[test]
fn rk4_decay_matches_closed_form() {
    // One RK4 step multiplies by R(z) = 1 + z + z²/2 + z³/6 + z⁴/24, z = −k h.
    let (u0, k, h, n) = (2.0, 0.7, 0.05, 100);
    let grid = TimeGrid::new(0.0, h * n as f64, h).unwrap();
    let problem = FixedProblem {
        u0: &[u0],
        params: &[k],
        grid,
        method: FixedMethod::Rk4,
    };
    let g = gradient_fixed(
        &Decay,
        &problem,
        &Loss::Final { weights: vec![1.0] },
        Schedule::Every(7),
    )
    .unwrap();
    let z = -k * h;
    let r = 1.0 + z + z * z / 2.0 + z.powi(3) / 6.0 + z.powi(4) / 24.0;
    let dr_dz = 1.0 + z + z * z / 2.0 + z.powi(3) / 6.0;
    let expected = u0 * n as f64 * r.powi(n - 1) * dr_dz * (-h);
    assert!(
        (g.gradient[0] - expected).abs() < 1e-12 * expected.abs(),
        "{} vs {expected}",
        g.gradient[0]
    );
    assert!((g.gradient_u0[0] - r.powi(n)).abs() < 1e-12);
}

#[test]
fn nonlinear_gradients_match_finite_differences() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for loss in [
            Loss::Final {
                weights: vec![1.0, -0.5],
            },
            Loss::AllSteps {
                weights: vec![0.3, 1.0],
            },
        ] {
            // 1.0 / 0.013 is not whole: a partial last step is exercised.
            let grid = TimeGrid::new(0.0, 1.0, 0.013).unwrap();
            let problem = FixedProblem {
                u0: &u0,
                params: &p,
                grid,
                method,
            };
            let g = gradient_fixed(&m, &problem, &loss, Schedule::Every(5)).unwrap();
            let (gp, gu) = fd_gradient(&m, method, &grid, &u0, &p, &loss);
            assert_close(
                &g.gradient,
                &gp,
                1e-7,
                &format!("{method:?} {} dp", loss.name()),
            );
            assert_close(
                &g.gradient_u0,
                &gu,
                1e-7,
                &format!("{method:?} {} du0", loss.name()),
            );
            let direct = loss_of(&m, method, &grid, &u0, &p, &loss);
            assert!((g.loss - direct).abs() <= 1e-12 * direct.abs());
        }
    }
}

#[test]
fn gradient_is_bitwise_identical_across_schedules() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, 3.0, 0.001).unwrap();
    let n = grid.n_steps();
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        let loss = Loss::AllSteps {
            weights: vec![1.0, 1.0],
        };
        let all = gradient_fixed(&m, &problem, &loss, Schedule::All).unwrap();
        for k in [1, 7, 55, 1000, n - 1, n] {
            let g = gradient_fixed(&m, &problem, &loss, Schedule::Every(k)).unwrap();
            assert_eq!(g.loss.to_bits(), all.loss.to_bits());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g.gradient), bits(&all.gradient), "{method:?} K={k}");
            assert_eq!(
                bits(&g.gradient_u0),
                bits(&all.gradient_u0),
                "{method:?} K={k}"
            );
            assert_eq!(g.stats.backward_steps, n);
        }
    }
}
