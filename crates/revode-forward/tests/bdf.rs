//! The BDF forward solver: Robertson's stiff kinetics, a linear stiff
//! system in closed form, bitwise replay from restart states, landing on
//! stop times, and its failures.

use revode_forward::{
    solve_bdf, Bdf, BdfLayout, BdfOptions, ForwardError, ParamSegments, Stimulus, StimulusTrack,
};
use revode_model::Model;
use revode_testing::Robertson;

fn robertson(options: &BdfOptions, t1: f64) -> revode_forward::AdaptiveSolution {
    let m = Robertson::DENSE;
    solve_bdf(
        &m,
        options,
        0.0,
        t1,
        &m.default_u0(),
        &m.default_params(),
        &Stimulus::none(),
        None,
    )
    .unwrap()
}

/// y3(4e5) of scipy's Radau at rtol 1e-12 (fixtures/reference/robertson/).
const ROBERTSON_Y3: f64 = 0.9950617056290814;

#[test]
fn robertson_reaches_4e5_in_few_steps_and_converges() {
    let mut errors = vec![];
    for (rtol, atol) in [(1e-4, 1e-8), (1e-6, 1e-8), (1e-8, 1e-12)] {
        let sol = robertson(&BdfOptions::new(rtol, atol), 4e5);
        let err = (sol.final_state[2] - ROBERTSON_Y3).abs();
        eprintln!("rtol {rtol:e}: {:?}, y3 error {err:e}", sol.counts);
        assert_eq!(sol.t_final, 4e5);
        assert!(err < 10.0 * rtol, "rtol {rtol:e}: {err:e}");
        // Mass is conserved by every linear multistep method.
        let mass: f64 = sol.final_state.iter().sum();
        assert!((mass - 1.0).abs() < 1e-12, "{mass}");
        if rtol == 1e-6 {
            assert!(sol.counts.accepted <= 635, "{:?}", sol.counts);
        }
        errors.push(err);
    }
    assert!(errors[2] < errors[0] * 1e-2, "{errors:?}");
}

/// Steps replayed from any stored restart state, by a fresh solver, give
/// the same restart states bit for bit (Nordsieck history, order, step and
/// the Newton memory included).
#[test]
fn replay_from_any_restart_state_is_bitwise() {
    let m = Robertson::DENSE;
    let p = m.default_params();
    let options = BdfOptions::new(1e-6, 1e-8);
    let mut solver = Bdf::new(&m, &options, 0.0, 4e5, &[1.0, 100.0]).unwrap();
    let layout = solver.layout();
    let mut states = vec![vec![0.0; layout.len()]];
    solver
        .initial_state(&p, &mut (), &m.default_u0(), &mut states[0])
        .unwrap();
    let mut k = 0;
    while !solver.is_last(&states[k]) {
        let mut next = vec![0.0; layout.len()];
        solver
            .advance(&p, &mut (), k, &states[k], &mut next)
            .unwrap();
        states.push(next);
        k += 1;
    }
    let n = states.len() - 1;
    assert!(n > 300);
    let orders: Vec<usize> = states[1..].iter().map(|x| BdfLayout::order(x)).collect();
    assert!(orders.contains(&5) && orders.contains(&1), "{orders:?}");
    for start in [1, 7, n / 3, n / 2, n - 5] {
        let mut fresh = Bdf::new(&m, &options, 0.0, 4e5, &[1.0, 100.0]).unwrap();
        let mut x = states[start].clone();
        for (k, want) in states.iter().enumerate().skip(start + 1).take(40) {
            let mut next = vec![0.0; layout.len()];
            fresh.advance(&p, &mut (), k - 1, &x, &mut next).unwrap();
            let same = next
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "step {k} replayed from {start}");
            x = next;
        }
    }
    // The observation times are landed on exactly.
    assert!(states.iter().any(|x| x[BdfLayout::T] == 1.0));
    assert!(states.iter().any(|x| x[BdfLayout::T] == 100.0));
}

/// The dense output of each step is its Nordsieck polynomial: at the step's
/// ends it gives the states, and inside it is as accurate as the states.
#[test]
fn dense_output_interpolates_the_steps() {
    let m = Robertson::DENSE;
    let p = m.default_params();
    let options = BdfOptions::new(1e-8, 1e-12);
    let mut solver = Bdf::new(&m, &options, 0.0, 40.0, &[]).unwrap();
    let layout = solver.layout();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver
        .initial_state(&p, &mut (), &m.default_u0(), &mut x)
        .unwrap();
    let mut out = [0.0; 3];
    let mut k = 0;
    let mut worst: f64 = 0.0;
    while !solver.is_last(&x) {
        solver.advance(&p, &mut (), k, &x, &mut next).unwrap();
        layout.dense(&next, next[BdfLayout::T], &mut out);
        assert_eq!(&out[..], layout.u(&next));
        layout.dense(&next, x[BdfLayout::T], &mut out);
        for (a, b) in out.iter().zip(layout.u(&x)) {
            worst = worst.max((a - b).abs() / (1e-8 * b.abs() + 1e-12));
        }
        std::mem::swap(&mut x, &mut next);
        k += 1;
    }
    // Within a few tolerances of the previous state.
    assert!(worst < 20.0, "{worst}");
}

/// A switch in k1 at t = 10: the solve lands there, restarts at order 1,
/// and agrees with two solves joined at t = 10.
#[test]
fn a_switch_restarts_the_history() {
    let m = Robertson::DENSE;
    let p = m.default_params();
    let options = BdfOptions::new(1e-9, 1e-13);
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[10.0, 0.4]],
        }],
    };
    let joined = solve_bdf(
        &m,
        &options,
        0.0,
        50.0,
        &m.default_u0(),
        &p,
        &stimulus,
        None,
    )
    .unwrap();
    let first = solve_bdf(
        &m,
        &options,
        0.0,
        10.0,
        &m.default_u0(),
        &p,
        &Stimulus::none(),
        None,
    )
    .unwrap();
    let mut p2 = p.clone();
    p2[0] = 0.4;
    let second = solve_bdf(
        &m,
        &options,
        10.0,
        50.0,
        &first.final_state,
        &p2,
        &Stimulus::none(),
        None,
    )
    .unwrap();
    for (a, b) in joined.final_state.iter().zip(&second.final_state) {
        assert!((a - b).abs() < 1e-7 * b.abs() + 1e-12, "{a} vs {b}");
    }
    let mut solver = Bdf::new(&m, &options, 0.0, 50.0, &[])
        .unwrap()
        .with_switches(ParamSegments::new(&p, &stimulus, 0.0, 50.0).unwrap());
    let layout = solver.layout();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver
        .initial_state(&p, &mut (), &m.default_u0(), &mut x)
        .unwrap();
    let mut k = 0;
    let mut restarted = false;
    while !solver.is_last(&x) {
        solver.advance(&p, &mut (), k, &x, &mut next).unwrap();
        if x[BdfLayout::RESTART] == 1.0 {
            assert_eq!(x[BdfLayout::T], 10.0);
            assert_eq!(BdfLayout::order(&next), 1);
            restarted = true;
        }
        std::mem::swap(&mut x, &mut next);
        k += 1;
    }
    assert!(restarted);
}

#[test]
fn failures_name_t() {
    let m = Robertson::DENSE;
    let mut options = BdfOptions::new(1e-6, 1e-8);
    options.adaptive.max_steps = 20;
    let e = solve_bdf(
        &m,
        &options,
        0.0,
        4e5,
        &m.default_u0(),
        &m.default_params(),
        &Stimulus::none(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, ForwardError::MaxStepsExceeded { max_steps: 20, .. }),
        "{e}"
    );
    // A minimum step far above what the transient needs.
    let mut options = BdfOptions::new(1e-6, 1e-8);
    options.adaptive.h_min = Some(10.0);
    let e = solve_bdf(
        &m,
        &options,
        0.0,
        4e5,
        &m.default_u0(),
        &m.default_params(),
        &Stimulus::none(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ForwardError::StepSizeTooSmall { .. } | ForwardError::NewtonDiverged { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("at t = 0"), "{e}");
}
