//! The continuous adjoint on fixed grids: convergence at the scheme's order
//! to the exact ODE gradient, and how it differs from the discrete adjoint.

mod common;

use common::{spiral_exact, Predator, Spiral};
use revode_adjoint::{
    gradient_continuous_fixed, gradient_fixed, FixedProblem, Gradient, GradientError, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{FixedMethod, TimeGrid};
use revode_model::Model;

fn run(method: FixedMethod, dt: f64, continuous: bool) -> Gradient {
    let m = Spiral;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 5.0, dt).unwrap(),
        method,
    };
    let loss = Loss::Final {
        weights: vec![1.0, -0.5],
    };
    if continuous {
        gradient_continuous_fixed(&m, &problem, &loss, Schedule::All).unwrap()
    } else {
        gradient_fixed(&m, &problem, &loss, Schedule::All).unwrap()
    }
}

fn error(g: &Gradient) -> f64 {
    let m = Spiral;
    let (_, gp, gu) = spiral_exact(&m.default_params(), &m.default_u0(), &[1.0, -0.5], 5.0);
    g.gradient
        .iter()
        .zip(&gp)
        .chain(g.gradient_u0.iter().zip(&gu))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

#[test]
fn converges_at_the_scheme_order() {
    for (method, order, dt) in [
        (FixedMethod::Euler, 1.0, 1e-3),
        (FixedMethod::Rk4, 4.0, 2e-2),
    ] {
        let (e1, e2) = (
            error(&run(method, dt, true)),
            error(&run(method, dt / 2.0, true)),
        );
        let observed = (e1 / e2).log2();
        assert!(
            (observed - order).abs() < 0.2,
            "{method:?}: order {observed} ({e1:e}, {e2:e})"
        );
    }
}

#[test]
fn differs_from_the_discrete_adjoint_by_the_discretisation_error() {
    for (method, dt) in [(FixedMethod::Euler, 1e-3), (FixedMethod::Rk4, 2e-2)] {
        let (c, d) = (run(method, dt, true), run(method, dt, false));
        let gap = c
            .gradient
            .iter()
            .zip(&d.gradient)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            gap > 1e-12,
            "{method:?}: the two adjoints should not coincide"
        );
        assert!(
            gap < 10.0 * error(&c).max(error(&d)),
            "{method:?}: gap {gap:e}"
        );
        assert_eq!(c.loss, d.loss);
    }
}

#[test]
fn identical_across_schedules() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![0.5, 1.25, 2.0],
        values: vec![1.0, 0.8, 1.2],
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid: TimeGrid::new(0.0, 2.0, 0.01).unwrap(),
            method,
        };
        let all = gradient_continuous_fixed(&m, &problem, &loss, Schedule::All).unwrap();
        for schedule in [Schedule::Every(3), Schedule::Every(16)] {
            let g = gradient_continuous_fixed(&m, &problem, &loss, schedule).unwrap();
            assert_eq!(g.gradient, all.gradient);
            assert_eq!(g.gradient_u0, all.gradient_u0);
        }
    }
}

#[test]
fn observation_off_the_grid_is_an_error() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 2.0, 0.01).unwrap(),
        method: FixedMethod::Rk4,
    };
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![0.5, 1.234],
        values: vec![1.0, 0.8],
    };
    for e in [
        gradient_continuous_fixed(&m, &problem, &loss, Schedule::All).unwrap_err(),
        gradient_fixed(&m, &problem, &loss, Schedule::All).unwrap_err(),
    ] {
        assert!(
            matches!(e, GradientError::ObservationOffGrid { index: 1, .. }),
            "{e}"
        );
    }
}

#[test]
fn discrete_trace_mse_matches_finite_differences_of_the_discrete_loss() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::TraceMse {
        component: 1,
        times: vec![0.3, 1.1, 2.0],
        values: vec![0.4, 0.7, 0.5],
    };
    let grid = TimeGrid::new(0.0, 2.0, 0.01).unwrap();
    let loss_at = |p: &[f64]| {
        let problem = FixedProblem {
            u0: &u0,
            params: p,
            grid,
            method: FixedMethod::Rk4,
        };
        gradient_fixed(&m, &problem, &loss, Schedule::All).unwrap()
    };
    let g = loss_at(&p);
    for i in 0..3 {
        let h = 1e-6;
        let (mut plus, mut minus) = (p.clone(), p.clone());
        plus[i] += h;
        minus[i] -= h;
        let fd = (loss_at(&plus).loss - loss_at(&minus).loss) / (2.0 * h);
        assert!(
            (g.gradient[i] - fd).abs() < 1e-7 * fd.abs().max(1e-2),
            "p{i}: {} vs {fd}",
            g.gradient[i]
        );
    }
}
