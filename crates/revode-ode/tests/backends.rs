//! The JIT against the interpreter: bitwise equal `rhs`, `vjp` and
//! `jacobian` on every shipped model, on a model using every operation and
//! on generated models large enough to be compiled in the background, at
//! random points.

use revode_model::Model;
use revode_ode::{Backend, OdeModel};

fn models() -> Vec<(String, OdeModel)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
    let mut out: Vec<(String, OdeModel)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ode"))
        .map(|p| (p.display().to_string(), OdeModel::from_file(&p).unwrap()))
        .collect();
    let every_op = "par a=1.5, b=0.5\ninit x=0.3, y=-0.2\n\
        f(u) = if(u > 0 & u < 1 | u == 3)then(u^2)else(min(u, b) + max(u, a))\n\
        x' = a*x/(exp(x/2)-1) + f(y) + abs(x)^1.5 + heav(y) + sign(x) + t + (x != y) + (x <= y) + (x >= 1) + x^-3\n\
        y' = tanh(x)*sinh(y)/cosh(y) + atan(x) + ln(2+x) + log10(3+y) + sqrt(2+x) + sin(y)*cos(x)*tan(x) - x^7 + a^b + x^y\n";
    out.push(("every_op".into(), OdeModel::from_str(every_op).unwrap()));
    // compiled in the background (revode_ode's native.rs): compared once ready
    for family in revode_ode::synthetic::Family::ALL {
        let m = OdeModel::from_str(&family.text(400)).unwrap();
        m.jacobian_sparsity();
        m.wait_for_native_code();
        out.push((family.name().into(), m));
    }
    out
}

#[test]
fn jit_equals_interpreter_bitwise() {
    let mut seed = 12345u64;
    let mut uniform = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for (name, jit) in models() {
        assert_eq!(
            jit.backend(),
            Backend::Jit,
            "{name}: the JIT is the default"
        );
        let interp = jit.clone().interpreted();
        assert_eq!(interp.backend(), Backend::Interpreter);
        let pattern = jit.jacobian_pattern().unwrap();
        assert_eq!(Some(&pattern), interp.jacobian_pattern().as_ref());
        let (mut wj, mut wi) = (jit.new_work(), interp.new_work());
        let n = jit.dims().n_states;
        let np = jit.dims().n_params;
        let rounds = if n > 100 { 20 } else { 500 };
        for k in 0..rounds {
            let u: Vec<f64> = jit
                .default_u0()
                .iter()
                .map(|&x| {
                    if (0.0..=1.0).contains(&x) {
                        uniform()
                    } else {
                        x + 100.0 * (uniform() - 0.5)
                    }
                })
                .collect();
            let p: Vec<f64> = jit
                .default_params()
                .iter()
                .map(|&x| x * (0.8 + 0.4 * uniform()))
                .collect();
            let lambda: Vec<f64> = (0..n).map(|_| uniform() - 0.5).collect();
            let t = k as f64 * 0.1;
            let (mut dj, mut di) = (vec![0.0; n], vec![0.0; n]);
            jit.rhs(t, &u, &p, &mut dj, &mut wj);
            interp.rhs(t, &u, &p, &mut di, &mut wi);
            let (mut oj, mut oi) = (vec![f64::NAN; n], vec![f64::NAN; n]);
            let (mut aj, mut ai) = (vec![0.25; np], vec![0.25; np]);
            jit.vjp(t, &u, &p, &lambda, &mut oj, 0.7, &mut aj, &mut wj);
            interp.vjp(t, &u, &p, &lambda, &mut oi, 0.7, &mut ai, &mut wi);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            // NaN payloads may differ; compare NaN-ness for those
            let same = |a: &[f64], b: &[f64]| {
                a.iter()
                    .zip(b)
                    .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
            };
            assert!(
                same(&dj, &di),
                "{name} rhs at {u:?}: {:?} vs {:?}",
                bits(&dj),
                bits(&di)
            );
            assert!(same(&oj, &oi), "{name} vjp u at {u:?}: {oj:?} vs {oi:?}");
            assert!(same(&aj, &ai), "{name} vjp p at {u:?}: {aj:?} vs {ai:?}");
            let (mut jj, mut ji) = (vec![0.0; pattern.nnz()], vec![0.0; pattern.nnz()]);
            jit.jacobian(t, &u, &p, &mut jj, &mut wj);
            interp.jacobian(t, &u, &p, &mut ji, &mut wi);
            assert!(same(&jj, &ji), "{name} jacobian at {u:?}: {jj:?} vs {ji:?}");
        }
    }
}

#[test]
fn short_slices_panic_instead_of_reading_out_of_bounds() {
    let m = OdeModel::from_str("par k=1\ninit x=1, y=2\nx' = -k*y\ny' = x\n").unwrap();
    let mut w = m.new_work();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut du = [0.0; 2];
        m.rhs(0.0, &[1.0], &[1.0], &mut du, &mut w);
    }));
    assert!(result.is_err());
}

/// `g(z)`/`g'(z)` on both sides of the series switch, at the removable
/// point itself and where `e^z` saturates: the inlined branch-free form
/// must pick the interpreter's branch and operations everywhere.
#[test]
fn jit_equals_interpreter_bitwise_across_the_exprel_switch() {
    let src = "par a=1\ninit x=0.1\nx' = a*x/(exp(x)-1)\n";
    let jit = OdeModel::from_str(src).unwrap();
    let interp = jit.clone().interpreted();
    let (mut wj, mut wi) = (jit.new_work(), interp.new_work());
    let mut zs = vec![
        0.0, -0.0, 1e-300, -1e-300, 1e-8, 50.0, -50.0, 700.0, 710.0, -750.0,
    ];
    for s in [0.2f64, 0.1, 0.05] {
        for x in [s, s.next_down(), s.next_up()] {
            zs.extend([x, -x]);
        }
    }
    for z in zs {
        let (mut dj, mut di) = ([0.0], [0.0]);
        jit.rhs(0.0, &[z], &[1.0], &mut dj, &mut wj);
        interp.rhs(0.0, &[z], &[1.0], &mut di, &mut wi);
        assert_eq!(dj[0].to_bits(), di[0].to_bits(), "rhs at z = {z:e}");
        let (mut oj, mut oi) = ([0.0], [0.0]);
        let (mut aj, mut ai) = ([0.0], [0.0]);
        jit.vjp(0.0, &[z], &[1.0], &[1.0], &mut oj, 1.0, &mut aj, &mut wj);
        interp.vjp(0.0, &[z], &[1.0], &[1.0], &mut oi, 1.0, &mut ai, &mut wi);
        assert_eq!(oj[0].to_bits(), oi[0].to_bits(), "vjp u at z = {z:e}");
        assert_eq!(aj[0].to_bits(), ai[0].to_bits(), "vjp p at z = {z:e}");
    }
}

/// The inlined `exp` clamps its argument with two selects (one
/// maxsd/minsd each): the same values as the interpreter's `f64::clamp`
/// at and beyond both ends, at ±0, ±∞ and NaN.
#[test]
fn jit_exp_equals_interpreter_at_the_clamp() {
    let src = "init x=0\nx' = exp(x)\n";
    let jit = OdeModel::from_str(src).unwrap();
    let interp = jit.clone().interpreted();
    let (mut wj, mut wi) = (jit.new_work(), interp.new_work());
    for x in [
        0.0,
        -0.0,
        708.0,
        709.0,
        709.0f64.next_up(),
        -708.0,
        -708.0f64.next_down(),
        1e300,
        -1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ] {
        let (mut dj, mut di) = ([1.0], [2.0]);
        jit.rhs(0.0, &[x], &[], &mut dj, &mut wj);
        interp.rhs(0.0, &[x], &[], &mut di, &mut wi);
        assert!(
            dj[0].to_bits() == di[0].to_bits() || (dj[0].is_nan() && di[0].is_nan()),
            "exp({x:e}): {} vs {}",
            dj[0],
            di[0]
        );
        if !x.is_nan() {
            assert!(dj[0].is_finite() && dj[0] > 0.0, "exp({x:e}) = {}", dj[0]);
        }
    }
}

/// Paired exponentials (two lanes of one vector in the JIT) against the
/// interpreter's two scalar ones, every combination of ordinary, clamped,
/// infinite and NaN arguments in the two lanes.
#[test]
fn jit_exp_pairs_equal_interpreter_lane_by_lane() {
    let src = "init x=0, y=0\nx' = exp(x) + 3*exp(2*y)\ny' = exp(x)*exp(2*y)\n";
    let jit = OdeModel::from_str(src).unwrap();
    let pairs = jit
        .rhs_program()
        .instructions()
        .iter()
        .filter(|i| matches!(i, revode_ode::program::Instr::Exp2 { .. }))
        .count();
    assert_eq!(pairs, 1, "exp(x) and exp(2y) are paired");
    let interp = jit.clone().interpreted();
    let (mut wj, mut wi) = (jit.new_work(), interp.new_work());
    let xs = [
        0.0,
        -0.0,
        1.5,
        -20.25,
        709.0f64.next_up(),
        -750.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for &x in &xs {
        for &y in &xs {
            let (mut dj, mut di) = ([0.0; 2], [0.0; 2]);
            jit.rhs(0.0, &[x, y], &[], &mut dj, &mut wj);
            interp.rhs(0.0, &[x, y], &[], &mut di, &mut wi);
            for k in 0..2 {
                assert!(
                    dj[k].to_bits() == di[k].to_bits() || (dj[k].is_nan() && di[k].is_nan()),
                    "({x:e}, {y:e}) component {k}: {} vs {}",
                    dj[k],
                    di[k]
                );
            }
        }
    }
}
