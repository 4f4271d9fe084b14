//! The adaptive Dormand–Prince solver against known solutions.

use revode_forward::{
    solve_adaptive, AdaptiveOptions, DenseStep, Dopri5, ForwardError, StepLayout,
};
use revode_model::{Dims, Model};

/// u'' = −ω² u as (u, v): u = cos ωt, v = −ω sin ωt from (1, 0).
struct Oscillator;

const OMEGA: f64 = 2.0;

impl Model for Oscillator {
    type Work = ();
    fn name(&self) -> &str {
        "oscillator"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 0,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["u".into(), "v".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec![]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 0.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], _p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = u[1];
        du[1] = -OMEGA * OMEGA * u[0];
    }
    fn vjp(
        &self,
        _: f64,
        _: &[f64],
        _: &[f64],
        l: &[f64],
        out: &mut [f64],
        _: f64,
        _: &mut [f64],
        _: &mut (),
    ) {
        out[0] = -OMEGA * OMEGA * l[1];
        out[1] = l[0];
    }
}

fn exact(t: f64) -> [f64; 2] {
    [(OMEGA * t).cos(), -OMEGA * (OMEGA * t).sin()]
}

/// u' = u², u(0) = 1: blows up at t = 1.
struct BlowUp;

impl Model for BlowUp {
    type Work = ();
    fn name(&self) -> &str {
        "blowup"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 1,
            n_params: 0,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["u".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec![]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], _p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = u[0] * u[0];
    }
    fn vjp(
        &self,
        _: f64,
        u: &[f64],
        _: &[f64],
        l: &[f64],
        out: &mut [f64],
        _: f64,
        _: &mut [f64],
        _: &mut (),
    ) {
        out[0] = 2.0 * u[0] * l[0];
    }
}

/// Takes `steps` accepted steps of (nearly) fixed length `h`: a tolerance so
/// loose every attempt is accepted, and h0 = h; growth is ≤ 10× per step, so
/// we restore h in the state before each step.
fn fixed_steps(h: f64, steps: usize) -> (Vec<Vec<f64>>, StepLayout) {
    let mut opts = AdaptiveOptions::new(1e6, 1e6);
    opts.h0 = Some(h);
    let t1 = 1e3;
    let mut solver = Dopri5::new(&opts, 2, 0.0, t1, &[]).unwrap();
    let layout = solver.layout();
    let mut xs = vec![vec![0.0; layout.len()]];
    solver
        .initial_state(&Oscillator, &[], &mut (), &[1.0, 0.0], &mut xs[0])
        .unwrap();
    for k in 0..steps {
        let mut next = vec![0.0; layout.len()];
        solver
            .advance(&Oscillator, &[], &mut (), k, &xs[k], &mut next)
            .unwrap();
        next[StepLayout::H] = h;
        xs.push(next);
    }
    (xs, layout)
}

#[test]
fn fifth_order_on_the_oscillator() {
    let error = |h: f64| {
        let steps = (1.0 / h).round() as usize;
        let (xs, layout) = fixed_steps(h, steps);
        let last = xs.last().unwrap();
        let t = last[StepLayout::T];
        assert!((t - 1.0).abs() < 1e-12);
        let e = exact(t);
        let u = layout.u(last);
        ((u[0] - e[0]).powi(2) + (u[1] - e[1]).powi(2)).sqrt()
    };
    let (e1, e2) = (error(0.1), error(0.05));
    let order = (e1 / e2).log2();
    assert!(
        (order - 5.0).abs() < 0.3,
        "observed order {order} ({e1:e}, {e2:e})"
    );
}

#[test]
fn dense_output_is_fourth_order_inside_a_step() {
    // Local interpolation error at θ = 0.3 from an exact start: O(h⁵).
    let error = |h: f64| {
        let (xs, layout) = fixed_steps(h, 1);
        let mut dense = DenseStep::new(2);
        dense.set(layout, &xs[0], &xs[1]);
        let mut u = [0.0; 2];
        let mut worst: f64 = 0.0;
        for theta in [0.0, 0.3, 0.5, 0.8, 1.0] {
            let t = theta * h;
            dense.eval(t, &mut u);
            let e = exact(t);
            worst = worst.max((u[0] - e[0]).abs().max((u[1] - e[1]).abs()));
        }
        // Both ends are the step's own states.
        dense.eval(0.0, &mut u);
        assert_eq!(u, [1.0, 0.0]);
        worst
    };
    let (e1, e2) = (error(0.2), error(0.1));
    let order = (e1 / e2).log2();
    assert!(order > 4.5, "local order {order} ({e1:e}, {e2:e})");
    assert!(e2 < 1e-6, "{e2:e}");
}

#[test]
fn error_follows_the_tolerance_and_lands_on_t1() {
    let mut last_err = f64::INFINITY;
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let sol = solve_adaptive(
            &Oscillator,
            &AdaptiveOptions::new(tol, tol),
            0.0,
            10.0,
            &[1.0, 0.0],
            &[],
            None,
        )
        .unwrap();
        assert_eq!(sol.t_final, 10.0);
        let e = exact(10.0);
        let err = (sol.final_state[0] - e[0])
            .abs()
            .max((sol.final_state[1] - e[1]).abs());
        assert!(err < 500.0 * tol, "tol {tol:e}: error {err:e}");
        assert!(err < last_err);
        last_err = err;
    }
}

#[test]
fn lands_exactly_on_every_observation_time() {
    let times = [0.3, 1.7, std::f64::consts::PI, 4.0];
    let opts = AdaptiveOptions::new(1e-8, 1e-8);
    let mut solver = Dopri5::new(&opts, 2, 0.0, 5.0, &times).unwrap();
    let layout = solver.layout();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver
        .initial_state(&Oscillator, &[], &mut (), &[1.0, 0.0], &mut x)
        .unwrap();
    let mut visited = vec![];
    let mut k = 0;
    while !solver.is_last(&x) {
        solver
            .advance(&Oscillator, &[], &mut (), k, &x, &mut next)
            .unwrap();
        std::mem::swap(&mut x, &mut next);
        visited.push(x[StepLayout::T]);
        k += 1;
    }
    for t in times.iter().chain([5.0].iter()) {
        assert!(visited.contains(t), "{t} not hit exactly: {visited:?}");
    }
    assert_eq!(*visited.last().unwrap(), 5.0);
    assert!(visited.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn replaying_a_step_reproduces_it_bit_for_bit() {
    let opts = AdaptiveOptions::new(1e-6, 1e-9);
    let mut solver = Dopri5::new(&opts, 2, 0.0, 3.0, &[1.0]).unwrap();
    let layout = solver.layout();
    let mut xs = vec![vec![0.0; layout.len()]];
    solver
        .initial_state(&Oscillator, &[], &mut (), &[1.0, 0.0], &mut xs[0])
        .unwrap();
    while !solver.is_last(xs.last().unwrap()) {
        let mut next = vec![0.0; layout.len()];
        let k = xs.len() - 1;
        solver
            .advance(&Oscillator, &[], &mut (), k, &xs[k], &mut next)
            .unwrap();
        xs.push(next);
    }
    for k in (0..xs.len() - 1).rev() {
        let mut again = vec![0.0; layout.len()];
        solver
            .advance(&Oscillator, &[], &mut (), k, &xs[k], &mut again)
            .unwrap();
        assert_eq!(again, xs[k + 1], "step {k}");
    }
}

#[test]
fn bad_options_are_clear_errors() {
    let check = |opts: AdaptiveOptions, times: &[f64], needle: &str| {
        let e = Dopri5::new(&opts, 2, 0.0, 1.0, times).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    };
    check(AdaptiveOptions::new(0.0, 1e-8), &[], "rtol");
    check(AdaptiveOptions::new(-1e-3, 1e-8), &[], "rtol");
    check(AdaptiveOptions::new(1e-6, -1.0), &[], "atol");
    let mut opts = AdaptiveOptions::new(1e-6, 1e-6);
    opts.atol = vec![1e-6; 3];
    check(opts, &[], "atol has 3 entries");
    let opts = || AdaptiveOptions::new(1e-6, 1e-6);
    check(opts(), &[0.5, 0.2], "strictly increasing");
    check(opts(), &[0.5, 0.5], "strictly increasing");
    check(opts(), &[0.0], "outside");
    check(opts(), &[1.5], "outside");
    check(opts(), &[f64::NAN], "outside");
}

#[test]
fn max_steps_is_an_error_naming_t() {
    let mut opts = AdaptiveOptions::new(1e-10, 1e-10);
    opts.max_steps = 20;
    let e = solve_adaptive(&Oscillator, &opts, 0.0, 100.0, &[1.0, 0.0], &[], None).unwrap_err();
    assert!(
        matches!(e, ForwardError::MaxStepsExceeded { max_steps: 20, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("at t = "), "{e}");
}

#[test]
fn step_size_underflow_names_t() {
    let e = solve_adaptive(
        &BlowUp,
        &AdaptiveOptions::new(1e-6, 1e-6),
        0.0,
        2.0,
        &[1.0],
        &[],
        None,
    )
    .unwrap_err();
    match e {
        ForwardError::StepSizeTooSmall { t, .. } => assert!((t - 1.0).abs() < 1e-3, "t = {t}"),
        other => panic!("expected a step-size underflow, got {other}"),
    }
}
