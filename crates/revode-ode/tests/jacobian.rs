//! The derived Jacobian `∂f/∂u` of model files: against finite differences
//! (every shipped model), against the VJP (`Jᵀλ`, exact to rounding), its
//! pattern against a brute-force dependency scan of the DAG, structural
//! zeros, and the cost of deriving it (linear in the cable's length; a
//! shared subexpression differentiated once).

use std::collections::BTreeSet;

use revode_model::check::{check_model_at, CheckOptions, Point};
use revode_model::Model;
use revode_ode::dag::{Bin, Dag, Node, Un};
use revode_ode::synthetic::{hh_cable, Family};
use revode_ode::OdeModel;

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped model's text, by path.
fn shipped() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(repo("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ode"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3);
    out
}

const EVERY_OP: &str = "par a=1.5, b=0.5\ninit x=0.3, y=-0.2, z=0.7\n\
    f(u) = if(u > 0 & u < 1 | u == 3)then(u^2)else(min(u, b) + max(u, a))\n\
    x' = a*x/(exp(x/2)-1) + f(y) + abs(x)^1.5 + heav(y) + sign(x) + t + (x != y) + (x <= y) + (x >= 1) + x^-3\n\
    y' = tanh(x)*sinh(y)/cosh(y) + atan(x) + ln(2+x) + log10(3+y) + sqrt(2+x) + sin(y)*cos(x)*tan(x) - x^7 + a^b + x^y\n\
    z' = heav(x - z)*y + if(z > x)then(a)else(b*y) + min(z, 2)*exp(-z)\n";

/// Shared subexpressions of every width: a mean field (one wide node in
/// every row), a pair of states feeding each other's rows.
const MEAN_FIELD: &str = "par g=0.3\n\
    m = (x1 + x2 + x3 + x4 + x5)/5\n\
    r = exp(-x1*x2)\n\
    x1' = -x1 + g*m + r\nx2' = -x2 + g*m*m - r\nx3' = -x3 + tanh(m)\nx4' = -x4 + m*x5\nx5' = -x5\n\
    init x1=0.1, x2=0.2, x3=0.3, x4=0.4, x5=0.5\n";

/// All the models these tests use, by name.
fn texts() -> Vec<(String, String)> {
    let mut out = shipped();
    out.push(("every_op".into(), EVERY_OP.into()));
    out.push(("mean_field".into(), MEAN_FIELD.into()));
    out.push(("cable_7".into(), hh_cable(7)));
    for f in Family::ALL {
        out.push((f.name().into(), f.text(24)));
    }
    out
}

/// SplitMix64 in [0, 1).
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Gates (defaults in [0, 1]) in [0.05, 0.95], other states within ±40 of
/// their default, parameters within ±10 %.
fn random_point(m: &OdeModel, rng: &mut Rng, k: usize) -> Point {
    Point {
        t: 0.1 * k as f64,
        u: m.default_u0()
            .iter()
            .map(|&x| {
                if (0.0..=1.0).contains(&x) {
                    0.05 + 0.9 * rng.uniform()
                } else {
                    x + 80.0 * (rng.uniform() - 0.5)
                }
            })
            .collect(),
        p: m.default_params()
            .iter()
            .map(|&x| x * (1.0 + 0.2 * (rng.uniform() - 0.5)))
            .collect(),
    }
}

#[test]
fn shipped_models_against_finite_differences() {
    for (name, text) in shipped() {
        let m = OdeModel::from_str(&text).unwrap();
        let mut rng = Rng(11);
        let points: Vec<Point> = (0..30).map(|k| random_point(&m, &mut rng, k)).collect();
        let r = check_model_at(&m, &points, &CheckOptions::default());
        assert!(r.passed, "{name}: {:e} {:#?}", r.max_error, r.worst);
        let j = r.jacobian.expect("model files have their own Jacobian");
        let n = m.dims().n_states;
        assert_eq!(j.n, n);
        assert_eq!(j.entries_checked, n * n * points.len(), "{name}");
        assert_eq!(j.nnz, m.jacobian_sparsity().nnz());
        assert!(j.max_error <= 1e-6, "{name}: {}", j.max_error);
    }
}

/// The dense Jacobian from `jacobian` (pattern order → row-major).
fn dense(m: &OdeModel, pt: &Point) -> Vec<Vec<f64>> {
    let n = m.dims().n_states;
    let pattern = m.jacobian_pattern().unwrap();
    let mut values = vec![f64::NAN; pattern.nnz()];
    m.jacobian(pt.t, &pt.u, &pt.p, &mut values, &mut m.new_work());
    let mut j = vec![vec![0.0; n]; n];
    for (k, (r, c)) in pattern.entries().enumerate() {
        j[r][c] = values[k];
    }
    j
}

#[test]
fn jacobian_transpose_times_lambda_is_the_vjp() {
    for (name, text) in texts() {
        let m = OdeModel::from_str(&text).unwrap();
        let n = m.dims().n_states;
        let mut rng = Rng(5);
        let mut w = m.new_work();
        for k in 0..20 {
            let pt = random_point(&m, &mut rng, k);
            let j = dense(&m, &pt);
            let lambda: Vec<f64> = (0..n).map(|_| rng.uniform() - 0.5).collect();
            let mut out = vec![f64::NAN; n];
            let mut acc = vec![0.0; pt.p.len()];
            m.vjp(pt.t, &pt.u, &pt.p, &lambda, &mut out, 1.0, &mut acc, &mut w);
            for c in 0..n {
                let jt: f64 = (0..n).map(|r| j[r][c] * lambda[r]).sum();
                let scale: f64 = (0..n).map(|r| (j[r][c] * lambda[r]).abs()).sum();
                if !(out[c].is_finite() && jt.is_finite()) {
                    // a pole of the model at this point: both agree it is one
                    assert_eq!(out[c].is_finite(), jt.is_finite(), "{name} col {c}");
                    continue;
                }
                assert!(
                    (out[c] - jt).abs() <= 1e-12 * scale.max(out[c].abs()),
                    "{name} column {c} at {pt:?}: Jᵀλ {jt} vs vjp {}",
                    out[c]
                );
            }
        }
    }
}

/// Row `i` of the pattern by brute force: the states reachable from `f_i`
/// through operands a derivative flows to (not through `heav`, `sign`,
/// comparisons, `& |`, a select's condition), written out independently of
/// the crate's own list.
fn scanned_pattern(dag: &Dag, rhs: &[u32]) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for (i, &f) in rhs.iter().enumerate() {
        let mut seen = vec![false; dag.len()];
        let mut stack = vec![f];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v as usize], true) {
                continue;
            }
            match dag.node(v) {
                Node::State(j) => {
                    out.insert((i, j as usize));
                }
                Node::Un(Un::Heav | Un::Sign, _) => {}
                Node::Un(_, a) | Node::PowI(a, _) => stack.push(a),
                Node::Bin(op, a, b) => {
                    let smooth = matches!(
                        op,
                        Bin::Add | Bin::Sub | Bin::Mul | Bin::Div | Bin::Pow | Bin::Min | Bin::Max
                    );
                    if smooth {
                        stack.extend([a, b]);
                    }
                    // g(z) of z and e^z: a function of z alone
                    if matches!(op, Bin::ExprelInv | Bin::ExprelInvDeriv) {
                        stack.push(a);
                    }
                }
                Node::Select(_, a, b) => stack.extend([a, b]),
                _ => {}
            }
        }
    }
    out
}

#[test]
fn pattern_is_the_dependency_scan() {
    for (name, text) in texts() {
        let m = OdeModel::from_str(&text).unwrap();
        let (dag, rhs) = OdeModel::reference_dag(&text).unwrap();
        let want = scanned_pattern(&dag, &rhs);
        let got: BTreeSet<(usize, usize)> = m.jacobian_sparsity().entries().collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn structural_zeros_are_left_out() {
    // heav, sign and comparisons have derivative 0; a select's derivative
    // follows its branches, not its condition; min and max depend on both.
    let text = "init x=0.5, y=0.2, z=0.1\n\
        x' = heav(y)*x + sign(z) + (y > z)\n\
        y' = if(x > z)then(y)else(2*y)\n\
        z' = min(x, y) + max(z, 1)\n";
    let m = OdeModel::from_str(text).unwrap();
    let got: Vec<(usize, usize)> = m.jacobian_sparsity().entries().collect();
    assert_eq!(got, [(0, 0), (2, 0), (1, 1), (2, 1), (2, 2)]);
    // a derivative proved identically 0 is left out; one that is 0 only
    // at some points stays, with the value 0 there
    let m =
        OdeModel::from_str("init x=0.5, y=0.2\nx' = x - x + y\ny' = if(y > 1)then(x)else(2*y)\n")
            .unwrap();
    let got: Vec<(usize, usize)> = m.jacobian_sparsity().entries().collect();
    assert_eq!(got, [(1, 0), (0, 1), (1, 1)]);
    let mut values = [f64::NAN; 3];
    m.jacobian(0.0, &[0.5, 0.2], &[], &mut values, &mut m.new_work());
    assert_eq!(values, [0.0, 1.0, 2.0]);
}

#[test]
fn the_cable_pattern_and_a_cost_linear_in_its_length() {
    let compartments = 1000;
    let m = OdeModel::from_str(&hh_cable(compartments)).unwrap();
    let pattern = m.jacobian_sparsity();
    assert_eq!(pattern.n(), 4 * compartments);
    assert_eq!(pattern.nnz(), 12 * compartments - 2);
    // V_k (state 4k) couples to its neighbours' V and its own gates
    let has = |r: usize, c: usize| pattern.position(r, c).is_some();
    for k in 0..compartments {
        let v = 4 * k;
        assert!(has(v, v) && has(v, v + 1) && has(v, v + 2) && has(v, v + 3));
        // (and nothing else: the count above)
        assert!(k == 0 || has(v, v - 4));
        assert!(k + 1 == compartments || has(v, v + 4));
        for g in 1..4 {
            assert!(has(v + g, v) && has(v + g, v + g));
        }
    }
    // Jᵀλ = vjp at a point of the long cable
    let mut rng = Rng(3);
    let pt = random_point(&m, &mut rng, 1);
    let n = pattern.n();
    let mut values = vec![0.0; pattern.nnz()];
    let mut w = m.new_work();
    m.jacobian(pt.t, &pt.u, &pt.p, &mut values, &mut w);
    let lambda: Vec<f64> = (0..n).map(|_| rng.uniform() - 0.5).collect();
    let mut jt = vec![0.0; n];
    let mut scale = vec![0.0; n];
    for (k, (r, c)) in pattern.entries().enumerate() {
        jt[c] += values[k] * lambda[r];
        scale[c] += (values[k] * lambda[r]).abs();
    }
    let (mut out, mut acc) = (vec![0.0; n], vec![0.0; pt.p.len()]);
    m.vjp(pt.t, &pt.u, &pt.p, &lambda, &mut out, 1.0, &mut acc, &mut w);
    for c in 0..n {
        assert!((out[c] - jt[c]).abs() <= 1e-12 * scale[c], "column {c}");
    }
    // The derived program grows linearly with the cable: 10× the
    // compartments, at most 10.5× the instructions.
    let short = OdeModel::from_str(&hh_cable(compartments / 10)).unwrap();
    short.jacobian_sparsity();
    let (long, short) = (m.stats().jacobian.unwrap(), short.stats().jacobian.unwrap());
    assert!(
        long.instructions * 10 <= short.instructions * 105,
        "{} vs {}",
        long.instructions,
        short.instructions
    );
    assert!(long.instructions <= 40 * long.nnz, "{long:?}");
}

/// A large expression of one state feeding every row: its gradient is
/// derived once, not once per row (the cost is its size plus the rows,
/// not their product).
#[test]
fn a_shared_subexpression_is_differentiated_once() {
    let (terms, rows) = (200, 200);
    let mut text = String::from("par a=0.5\ninit x0=0.3\nw = 0");
    for k in 1..=terms {
        text.push_str(&format!(" + sin({k}*x0)/{k}"));
    }
    text.push_str("\nx0' = -x0\n");
    for i in 1..=rows {
        text.push_str(&format!("x{i}' = w*x{i} - a*x{i}\ninit x{i}=0.1\n"));
    }
    let m = OdeModel::from_str(&text).unwrap();
    let stats = {
        m.jacobian_sparsity();
        m.stats().jacobian.unwrap()
    };
    assert_eq!(stats.nnz, 1 + 2 * rows);
    assert!(
        stats.instructions <= 12 * (terms + rows),
        "{} instructions for {terms} terms and {rows} rows",
        stats.instructions
    );
    assert!(stats.barriers >= 1);
    // and it is right: d f_i / d x0 = x_i · Σ cos(k x0)
    let pt = Point {
        t: 0.0,
        u: (0..=rows).map(|i| 0.1 + 0.001 * i as f64).collect(),
        p: vec![0.5],
    };
    let j = dense(&m, &pt);
    let dw: f64 = (1..=terms).map(|k| (k as f64 * pt.u[0]).cos()).sum();
    let terms_scale = terms as f64;
    for i in 1..=rows {
        assert!(
            (j[i][0] - pt.u[i] * dw).abs() <= 1e-13 * terms_scale * pt.u[i],
            "{} vs {}",
            j[i][0],
            pt.u[i] * dw
        );
    }
}

/// Values in pattern order land where the pattern says, also when a work
/// was made before the Jacobian was first derived.
#[test]
fn a_work_made_before_the_first_derivation_is_grown_once() {
    for interpreted in [false, true] {
        let text = &shipped()[0].1;
        let mut m = OdeModel::from_str(text).unwrap();
        if interpreted {
            m = m.interpreted();
        }
        let mut early = m.new_work();
        let pattern = m.jacobian_pattern().unwrap();
        let mut late = m.new_work();
        let (u, p) = (m.default_u0(), m.default_params());
        let (mut a, mut b) = (vec![0.0; pattern.nnz()], vec![0.0; pattern.nnz()]);
        m.jacobian(0.0, &u, &p, &mut a, &mut early);
        m.jacobian(0.0, &u, &p, &mut b, &mut late);
        assert_eq!(a, b);
    }
}

/// The parameter VJP compiled with the Jacobian adds exactly what the full
/// VJP adds to the parameters (same DAG nodes: bitwise), on both backends
/// and whether the work was made before or after the Jacobian was derived.
#[test]
fn the_parameter_vjp_alone_is_the_vjps_parameter_part() {
    for (name, text) in texts() {
        for interpreted in [false, true] {
            let mut m = OdeModel::from_str(&text).unwrap();
            if interpreted {
                m = m.interpreted();
            }
            let (n, np) = (m.dims().n_states, m.dims().n_params);
            let mut early = m.new_work();
            m.jacobian_pattern().unwrap();
            let mut late = m.new_work();
            let mut rng = Rng(23);
            for k in 0..5 {
                let pt = random_point(&m, &mut rng, k);
                let lambda: Vec<f64> = (0..n).map(|_| rng.uniform() - 0.5).collect();
                let mut full = vec![0.25; np];
                let mut out = vec![0.0; n];
                m.vjp(
                    pt.t, &pt.u, &pt.p, &lambda, &mut out, 0.5, &mut full, &mut late,
                );
                for work in [&mut early, &mut late] {
                    let mut alone = vec![0.25; np];
                    let mut unused = vec![0.0; n];
                    m.vjp_params(
                        pt.t,
                        &pt.u,
                        &pt.p,
                        &lambda,
                        0.5,
                        &mut alone,
                        &mut unused,
                        work,
                    );
                    for (a, f) in alone.iter().zip(&full) {
                        assert!(
                            a.to_bits() == f.to_bits() || (a.is_nan() && f.is_nan()),
                            "{name} (interpreted: {interpreted}): {alone:?} vs {full:?}"
                        );
                    }
                }
            }
        }
    }
}
