//! `models/seed_hh.ode` against the built-in `hh`, point by point.

use revode_model::{HodgkinHuxley, Model};
use revode_ode::OdeModel;

fn seed() -> OdeModel {
    OdeModel::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/seed_hh.ode"
    ))
    .unwrap()
}

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(1e-300)
}

/// Largest relative difference of rhs and vjp between the two models at (E, m, h, n).
fn compare(file: &OdeModel, u: [f64; 4], p: [f64; 3], lambda: [f64; 4]) -> f64 {
    let hh = HodgkinHuxley;
    let (mut wf, mut wh) = (file.new_work(), hh.new_work());
    let (mut df, mut dh) = ([0.0; 4], [0.0; 4]);
    file.rhs(0.0, &u, &p, &mut df, &mut wf);
    hh.rhs(0.0, &u, &p, &mut dh, &mut wh);
    let mut worst = 0.0f64;
    for i in 0..4 {
        assert!(df[i].is_finite(), "rhs {i} at {u:?}: {}", df[i]);
        worst = worst.max(rel(df[i], dh[i], dh[i].abs().max(1e-3)));
    }
    let (mut of, mut oh) = ([f64::NAN; 4], [f64::NAN; 4]);
    let (mut pf, mut ph) = ([0.5; 3], [0.5; 3]);
    file.vjp(0.0, &u, &p, &lambda, &mut of, 0.7, &mut pf, &mut wf);
    hh.vjp(0.0, &u, &p, &lambda, &mut oh, 0.7, &mut ph, &mut wh);
    for i in 0..4 {
        assert!(of[i].is_finite(), "vjp {i} at {u:?}");
        worst = worst.max(rel(of[i], oh[i], oh[i].abs().max(1e-3)));
    }
    for k in 0..3 {
        worst = worst.max(rel(pf[k], ph[k], ph[k].abs().max(1e-3)));
    }
    worst
}

#[test]
fn names_defaults_and_sizes() {
    let m = seed();
    let hh = HodgkinHuxley;
    assert_eq!(m.state_names(), hh.state_names());
    assert_eq!(m.param_names(), hh.param_names());
    assert_eq!(m.default_u0(), hh.default_u0());
    assert_eq!(m.default_params(), hh.default_params());
    assert_eq!(m.name(), "seed_hh.ode");
    assert_eq!(m.aux_names(), vec!["I_Na".to_string()]);
}

#[test]
fn matches_builtin_hh_on_a_grid_and_at_the_singular_points() {
    let m = seed();
    let mut worst = 0.0f64;
    let mut es: Vec<f64> = (0..=1600).map(|i| -100.0 + 0.1 * i as f64).collect();
    for s in [-50.0, -48.0, -23.0] {
        es.push(s);
        for k in 1..=12 {
            let d = 10f64.powi(-k);
            es.push(s + d);
            es.push(s - d);
        }
    }
    for (j, &e) in es.iter().enumerate() {
        let g = 0.05 + 0.9 * ((j * 37) % 100) as f64 / 100.0;
        let u = [e, g, 1.0 - g, 0.5 * g];
        let lambda = [1.0, -0.3, 0.7, 2.0];
        worst = worst.max(compare(&m, u, [70.0, 10.0, 0.05], lambda));
    }
    // Outputs near 0 are compared against a floor of 1e-3, so at a
    // cancellation (n' = α_n(1−n) − β_n·n with terms ~0.1) this is ~1 ulp
    // of the terms: the file shares its exponentials as `K/e^{w₀}`
    // (crate exp_share) where `hh` writes `e^{−5}·(1/w)` (measured worst
    // 1.1e-13, at E = −50 + 1e-6).
    assert!(worst < 2e-13, "worst relative difference {worst:e}");
}

/// Exponentials a program computes: its `exp` instructions (`g(z)` takes
/// its exponential as an operand and computes none of its own).
fn exp_count(p: &revode_ode::program::Program) -> usize {
    use revode_ode::program::Instr;
    p.instructions()
        .iter()
        .map(|i| match i {
            Instr::Exp { .. } => 1,
            Instr::Exp2 { .. } => 2,
            _ => 0,
        })
        .sum()
}

fn exp_pairs(p: &revode_ode::program::Program) -> usize {
    use revode_ode::program::Instr;
    p.instructions()
        .iter()
        .filter(|i| matches!(i, Instr::Exp2 { .. }))
        .count()
}

#[test]
fn the_six_rates_take_four_exponentials_like_the_builtin() {
    // β_m, β_h and α_n exponentiate ±(E − V_T − 40)/5 and −(E − V_T − 15)/5:
    // one exponential (crate exp_share); α_m, α_h and β_n one each.
    let m = seed();
    assert_eq!(exp_count(m.rhs_program()), 4);
    assert_eq!(exp_count(m.vjp_program()), 4);
    // and they are independent: two pairs, two lanes of a vector each
    assert_eq!(exp_pairs(m.rhs_program()), 2);
    assert_eq!(exp_pairs(m.vjp_program()), 2);
    use revode_ode::dag::Bin;
    use revode_ode::program::Instr;
    let g_calls = m
        .rhs_program()
        .instructions()
        .iter()
        .filter(|i| {
            matches!(
                i,
                Instr::Bin {
                    op: Bin::ExprelInv,
                    ..
                }
            )
        })
        .count();
    assert_eq!(g_calls, 3, "α_m, β_m and α_n through g(z)");
}
