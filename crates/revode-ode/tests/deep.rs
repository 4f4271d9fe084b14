//! Very deep and very long expressions through every stage after the
//! reader (DAG, singular rewrite, vjp and Jacobian derivation, programs,
//! JIT, interpreter), built directly with the `Dag` API, on threads with a
//! normal 2 MiB stack: nothing may recurse as deep as the expression.

use revode_model::Model;
use revode_ode::dag::{Bin, Dag, Id, Un};
use revode_ode::OdeModel;

const STACK: usize = 2 << 20;

/// Runs `f` on a fresh thread with a 2 MiB stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow, no panic");
}

/// Every output of both backends at `(t, u, p)`: rhs, vjp with `λ = 1`,
/// Jacobian.
struct Outputs {
    du: Vec<f64>,
    out_u: Vec<f64>,
    acc_p: Vec<f64>,
    jac: Vec<f64>,
}

fn outputs(m: &OdeModel, u: &[f64], p: &[f64]) -> Outputs {
    let n = u.len();
    let mut w = m.new_work();
    let mut du = vec![0.0; n];
    m.rhs(0.5, u, p, &mut du, &mut w);
    let (mut out_u, mut acc_p) = (vec![0.0; n], vec![0.0; p.len()]);
    m.vjp(
        0.5,
        u,
        p,
        &vec![1.0; n],
        &mut out_u,
        1.0,
        &mut acc_p,
        &mut w,
    );
    let pattern = m.jacobian_pattern().unwrap();
    let mut jac = vec![0.0; pattern.nnz()];
    m.jacobian(0.5, u, p, &mut jac, &mut w);
    Outputs {
        du,
        out_u,
        acc_p,
        jac,
    }
}

/// Both backends agree bitwise; returns the JIT's outputs.
fn both_backends(dag: Dag, rhs: Vec<Id>, u: Vec<f64>, p: Vec<f64>) -> (OdeModel, Outputs) {
    let m = OdeModel::from_dag(dag, rhs, u.clone(), p.clone());
    m.jacobian_sparsity();
    // large programs compile in the background: compare the native code
    m.wait_for_native_code();
    assert_eq!(m.backend(), revode_ode::Backend::Jit);
    let jit = outputs(&m, &u, &p);
    let interp = outputs(&m.clone().interpreted(), &u, &p);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&jit.du), bits(&interp.du));
    assert_eq!(bits(&jit.out_u), bits(&interp.out_u));
    assert_eq!(bits(&jit.acc_p), bits(&interp.acc_p));
    assert_eq!(bits(&jit.jac), bits(&interp.jac));
    (m, jit)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn a_sum_of_100_000_terms() {
    on_small_stack(|| {
        const TERMS: usize = 100_000;
        let mut d = Dag::default();
        let x = [d.state(0), d.state(1)];
        let a = d.param(0);
        // f0 = Σ_k c_k·x_(k mod 2) + a·x1, one left-leaning chain
        let mut sum = d.mul(a, x[1]);
        let (u, pa) = ([0.7, -0.3], 1.5);
        let mut want = pa * u[1];
        let mut d0 = 0.0;
        let mut d1 = pa;
        for k in 0..TERMS {
            let c = 1.0 + k as f64 * 1e-6;
            let ck = d.constant_node(c);
            let term = d.mul(x[k % 2], ck);
            sum = d.add(sum, term);
            want += u[k % 2] * c;
            if k % 2 == 0 {
                d0 += c;
            } else {
                d1 += c;
            }
        }
        let f1 = d.neg(x[0]);
        let (m, o) = both_backends(d, vec![sum, f1], u.to_vec(), vec![pa]);
        assert_eq!(
            o.du[0].to_bits(),
            want.to_bits(),
            "same additions, same order"
        );
        assert_eq!(o.du[1], -0.7);
        // the Jacobian [[d0, d1], [-1, 0]] and the vjp with λ = 1
        let pattern = m.jacobian_sparsity();
        assert_eq!(
            pattern.entries().collect::<Vec<_>>(),
            [(0, 0), (1, 0), (0, 1)]
        );
        assert!(close(o.jac[0], d0, 1e-12) && o.jac[1] == -1.0 && close(o.jac[2], d1, 1e-12));
        assert!(close(o.out_u[0], d0 - 1.0, 1e-12) && close(o.out_u[1], d1, 1e-12));
        assert_eq!(o.acc_p[0], u[1]);
    });
}

#[test]
fn chains_of_200_000_unary_minuses() {
    on_small_stack(|| {
        const DEPTH: usize = 200_000;
        let mut d = Dag::default();
        let x = d.state(0);
        // --…--x folds to x
        let mut y = x;
        for _ in 0..DEPTH {
            y = d.neg(y);
        }
        assert_eq!(y, x);
        // -(…-(-(x·c)·c)…·c): nothing folds
        let c = 0.999_99;
        let cn = d.constant_node(c);
        let mut z = x;
        let (mut want, mut slope) = (0.8f64, 1.0f64);
        for _ in 0..DEPTH / 2 {
            let m = d.mul(z, cn);
            z = d.neg(m);
            want = -(want * c);
            slope = -(slope * c);
        }
        let (_, o) = both_backends(d, vec![z], vec![0.8], vec![]);
        assert_eq!(o.du[0].to_bits(), want.to_bits());
        assert!(close(o.jac[0], slope, 1e-12), "{} vs {slope}", o.jac[0]);
        assert_eq!(o.out_u[0].to_bits(), o.jac[0].to_bits());
    });
}

#[test]
fn a_chain_of_50_000_powers() {
    on_small_stack(|| {
        const DEPTH: usize = 50_000;
        let mut d = Dag::default();
        let x = d.state(0);
        let e = d.constant_node(1.000_01);
        let mut y = x;
        let (mut want, mut slope) = (1.5f64, 1.0f64);
        for _ in 0..DEPTH {
            // y' = e·y^(e−1)·y'
            slope *= 1.000_01 * want.powf(1.000_01 - 1.0);
            y = d.bin(Bin::Pow, y, e);
            want = want.powf(1.000_01);
        }
        let (_, o) = both_backends(d, vec![y], vec![1.5], vec![]);
        assert_eq!(o.du[0].to_bits(), want.to_bits());
        assert!(close(o.jac[0], slope, 1e-9), "{} vs {slope}", o.jac[0]);
    });
}

/// The singular rewrite looks into numerators and denominators: deep ones
/// are left alone (evaluated as written), without deep recursion.
#[test]
fn deep_quotients_through_the_singular_rewrite() {
    on_small_stack(|| {
        const DEPTH: usize = 50_000;
        let mut d = Dag::default();
        let x = d.state(0);
        let c = d.constant_node(1.000_000_1);
        // numerator x·c·c·…·c over exp(x) − 1
        let mut num = x;
        let mut want_num = 0.3f64;
        for _ in 0..DEPTH {
            num = d.mul(num, c);
            want_num *= 1.000_000_1;
        }
        let ex = d.un(Un::Exp, x);
        let one = d.constant_node(1.0);
        let den = d.sub(ex, one);
        let f0 = d.div(num, den);
        // denominator exp(x) − 1 + 1e-9·x + 1e-9·x + … (a long sum)
        let mut den2 = den;
        let small = d.constant_node(1e-9);
        let sx = d.mul(small, x);
        for _ in 0..DEPTH {
            den2 = d.add(den2, sx);
        }
        let f1 = d.div(x, den2);
        let (_, o) = both_backends(d, vec![f0, f1], vec![0.3, 0.0], vec![]);
        let e = revode_model::exp::exp(0.3) - 1.0;
        assert!(close(o.du[0], want_num / e, 1e-14));
        assert!(o.du[1].is_finite());
        assert!(o.jac.iter().all(|v| v.is_finite()));
    });
}
