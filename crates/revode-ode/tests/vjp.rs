//! The derived VJPs against central finite differences of the rhs (the
//! `check-model` machinery, which checks the derived Jacobian too): every
//! shipped model at random points and at its removable singularities, and
//! random expressions (proptest: VJP and Jacobian against dual numbers).

use proptest::prelude::*;
use revode_model::check::{check_model_at, CheckOptions, Point};
use revode_model::Model;
use revode_ode::OdeModel;

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Every `.ode` file in models/.
fn shipped() -> Vec<(String, OdeModel)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("models")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ode") {
            let m = OdeModel::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            out.push((path.display().to_string(), m));
        }
    }
    assert!(out.iter().any(|(p, _)| p.ends_with("seed_hh.ode")));
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

/// Random physiological points: gates (defaults in [0, 1]) in [0.05, 0.95],
/// voltages within ±40 of their default, parameters within ±10 %.
fn random_points(m: &OdeModel, n: usize, seed: u64) -> Vec<Point> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|k| Point {
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
        })
        .collect()
}

fn assert_passes(name: &str, m: &OdeModel, points: &[Point], tolerance: f64) {
    let options = CheckOptions {
        tolerance,
        ..CheckOptions::default()
    };
    let r = check_model_at(m, points, &options);
    assert!(
        r.passed,
        "{name}: max error {:e}; worst {:#?}",
        r.max_error, r.worst
    );
}

#[test]
fn shipped_models_at_random_points() {
    for (name, m) in shipped() {
        let points = random_points(&m, 40, 7);
        assert_passes(&name, &m, &points, 1e-6);
    }
}

#[test]
fn seed_hh_at_its_singular_voltages() {
    let m = OdeModel::from_file(repo("models/seed_hh.ode")).unwrap();
    let mut points = Vec::new();
    for e in [-50.0, -48.0, -23.0] {
        for d in [0.0, 1e-9, -1e-6, 1e-3, -0.5] {
            points.push(Point {
                t: 0.0,
                u: vec![e + d, 0.3, 0.6, 0.4],
                p: m.default_params(),
            });
        }
    }
    assert_passes("seed_hh", &m, &points, 1e-6);
}

#[test]
fn recognised_forms_are_finite_and_exact_at_zero() {
    // Each: an expression in x with its limit at x = 0 and the derivative there.
    let forms: &[(&str, f64, f64)] = &[
        // a·x/(exp(x/k) − 1) → a·k, derivative −a/2
        ("3*x/(exp(x/2)-1)", 6.0, -1.5),
        // a·x/(1 − exp(−x/k)) → a·k, derivative a/2
        ("3*x/(1-exp(-x/2))", 6.0, 1.5),
        // negated and scaled numerators and arguments
        ("-0.1*(x)/(exp(-(x)/10)-1)", 1.0, 0.05),
        ("0.01*(-x)/(exp((-x)/10)-1)", 0.1, 0.005),
        ("x/(2*exp(x)-2)", 0.5, -0.25),
        ("(2*x)/(exp(x/4)-1)/4", 2.0, -0.25),
        // a parameter coefficient and scale: a·k at 0
        ("a*x/(exp(x/k)-1)", 6.0, -1.5),
        ("-a*x/(exp(-x/k)-1)", 6.0, 1.5),
    ];
    for &(expr, limit, slope) in forms {
        let text = format!("par a=3, k=2\ninit x=0\nx' = {expr}\n");
        let m = OdeModel::from_str(&text).unwrap();
        let mut w = m.new_work();
        let p = m.default_params();
        let mut du = [0.0];
        m.rhs(0.0, &[0.0], &p, &mut du, &mut w);
        assert!(
            (du[0] - limit).abs() < 1e-15 * limit.abs(),
            "{expr}: {}",
            du[0]
        );
        let mut out = [f64::NAN];
        let mut acc = vec![0.0; 2];
        m.vjp(0.0, &[0.0], &p, &[1.0], &mut out, 1.0, &mut acc, &mut w);
        assert!((out[0] - slope).abs() < 1e-15, "{expr}: slope {}", out[0]);
        // and near 0 it agrees with the literal formula
        for x in [1e-3, -2e-2, 0.3, -4.0, 25.0] {
            m.rhs(0.0, &[x], &p, &mut du, &mut w);
            let literal = {
                let (a, k) = (3.0f64, 2.0f64);
                match expr {
                    "3*x/(exp(x/2)-1)" => 3.0 * x / ((x / 2.0).exp() - 1.0),
                    "3*x/(1-exp(-x/2))" => 3.0 * x / (1.0 - (-x / 2.0).exp()),
                    "-0.1*(x)/(exp(-(x)/10)-1)" => -0.1 * x / ((-x / 10.0).exp() - 1.0),
                    "0.01*(-x)/(exp((-x)/10)-1)" => 0.01 * -x / ((-x / 10.0).exp() - 1.0),
                    "x/(2*exp(x)-2)" => x / (2.0 * x.exp() - 2.0),
                    "(2*x)/(exp(x/4)-1)/4" => 2.0 * x / ((x / 4.0).exp() - 1.0) / 4.0,
                    "a*x/(exp(x/k)-1)" => a * x / ((x / k).exp() - 1.0),
                    _ => -a * x / ((-x / k).exp() - 1.0),
                }
            };
            assert!(
                (du[0] - literal).abs() < 1e-12 * literal.abs(),
                "{expr} at {x}: {} vs {literal}",
                du[0]
            );
        }
        let points: Vec<Point> = [0.0, 1e-8, -0.1, 0.19, 0.21, 3.0]
            .iter()
            .map(|&x| Point {
                t: 0.0,
                u: vec![x],
                p: p.clone(),
            })
            .collect();
        assert_passes(expr, &m, &points, 1e-7);
    }
}

/// `w`'s variable part only below the line, shared with `N`'s: `w` is
/// never 0, but for small `w` the literal `exp(w) − 1` loses ~ε/|w| of
/// relative accuracy (found by the proptest below: 3.5e−12 at w ≈ 3e−5);
/// the rewrite through `g(w)` is accurate, derivatives included.
#[test]
fn shared_denominator_factors_are_recognised_too() {
    let text = "par a=1.3620554473093096
init x=0, y=0
                x' = (a*(((0.16)^4) / (1 + y^2)))/(exp((((0.16)^4) / (1 + y^2))/(10))-1)
                y' = 0
";
    let m = OdeModel::from_str(text).unwrap();
    let p = m.default_params();
    let a = p[0];
    let mut w = m.new_work();
    for y in [-0.7343590528946882, 0.0, 3.0, 300.0] {
        let s = 0.16f64.powi(4) / (1.0 + y * y);
        let z = s / 10.0;
        let accurate = a * 10.0 * (z / z.exp_m1());
        let mut du = [0.0; 2];
        m.rhs(0.0, &[0.0, y], &p, &mut du, &mut w);
        assert!(
            (du[0] - accurate).abs() <= 4.0 * f64::EPSILON * accurate,
            "y = {y}: {} vs {accurate}",
            du[0]
        );
        // d/dy of a·k·g(s/k): a·g'(z)·ds/dy, ds/dy = −2y·s/(1 + y²)
        let slope = {
            let (_, dg) = revode_model::rate_forms::direct_pair(z);
            let dg = if z.abs() < 0.2 {
                revode_model::rate_forms::series_deriv(z)
            } else {
                dg
            };
            a * dg * (-2.0 * y * s / (1.0 + y * y))
        };
        let mut out = [f64::NAN; 2];
        let mut acc = vec![0.0; 1];
        m.vjp(
            0.0,
            &[0.0, y],
            &p,
            &[1.0, 0.0],
            &mut out,
            1.0,
            &mut acc,
            &mut w,
        );
        assert!(
            (out[1] - slope).abs() <= 1e-14 * slope.abs().max(1e-300),
            "y = {y}: slope {} vs {slope}",
            out[1]
        );
    }
}

#[test]
fn forms_outside_the_rule_keep_their_singularity() {
    // Not removable, or not in the recognised forms: evaluated literally.
    for expr in [
        "1/(exp(x)-1)",
        "x^2/(exp(x)-1)",
        "sin(x)/(exp(x)-1)",
        "y/(exp(x)-1)",
    ] {
        let text = format!("init x=0, y=0\nx' = {expr}\ny' = 0\n");
        let m = OdeModel::from_str(&text).unwrap();
        let mut du = [0.0; 2];
        m.rhs(0.0, &[0.0, 0.0], &[], &mut du, &mut m.new_work());
        assert!(!du[0].is_finite(), "{expr}: {}", du[0]);
    }
}

/// Random differentiable expressions in states x, y and parameters a, b,
/// rendered as model text and evaluated directly in Rust (an independent
/// evaluator of what the text means).
#[derive(Debug, Clone)]
enum E {
    X,
    Y,
    A,
    B,
    C(f64),
    Add(Box<E>, Box<E>),
    Sub(Box<E>, Box<E>),
    Mul(Box<E>, Box<E>),
    /// `l / (1 + r^2)`
    Div(Box<E>, Box<E>),
    Neg(Box<E>),
    /// `exp(sin(e))`
    ExpSin(Box<E>),
    Cos(Box<E>),
    Tanh(Box<E>),
    Atan(Box<E>),
    /// `sqrt(1 + e^2)`
    Hypot(Box<E>),
    Pow(Box<E>, i32),
    /// `a·(e)/(exp((e)/k) − 1)`: the removable singularity
    Rate(Box<E>, f64),
    /// `ln(2 + sin(e))`
    LnSin(Box<E>),
}

fn leaf() -> impl Strategy<Value = E> {
    prop_oneof![
        Just(E::X),
        Just(E::Y),
        Just(E::A),
        Just(E::B),
        (-3.0..3.0f64).prop_map(|c| E::C((c * 100.0).round() / 100.0)),
    ]
}

fn expr() -> impl Strategy<Value = E> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        let b = |e: E| Box::new(e);
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| E::Add(b(l), b(r))),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| E::Sub(b(l), b(r))),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| E::Mul(b(l), b(r))),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| E::Div(b(l), b(r))),
            inner.clone().prop_map(move |e| E::Neg(b(e))),
            inner.clone().prop_map(move |e| E::ExpSin(b(e))),
            inner.clone().prop_map(move |e| E::Cos(b(e))),
            inner.clone().prop_map(move |e| E::Tanh(b(e))),
            inner.clone().prop_map(move |e| E::Atan(b(e))),
            inner.clone().prop_map(move |e| E::Hypot(b(e))),
            (inner.clone(), 2..5i32).prop_map(move |(e, n)| E::Pow(b(e), n)),
            (
                inner.clone(),
                prop_oneof![Just(-4.0), Just(2.5), Just(10.0)]
            )
                .prop_map(move |(e, k)| E::Rate(b(e), k)),
            inner.clone().prop_map(move |e| E::LnSin(b(e))),
        ]
    })
}

fn render(e: &E) -> String {
    match e {
        E::X => "x".into(),
        E::Y => "y".into(),
        E::A => "a".into(),
        E::B => "b".into(),
        E::C(c) => format!("({c})"),
        E::Add(l, r) => format!("({} + {})", render(l), render(r)),
        E::Sub(l, r) => format!("({} - {})", render(l), render(r)),
        E::Mul(l, r) => format!("({} * {})", render(l), render(r)),
        E::Div(l, r) => format!("({} / (1 + {}^2))", render(l), render(r)),
        E::Neg(e) => format!("(-{})", render(e)),
        E::ExpSin(e) => format!("exp(sin({}))", render(e)),
        E::Cos(e) => format!("cos({})", render(e)),
        E::Tanh(e) => format!("tanh({})", render(e)),
        E::Atan(e) => format!("atan({})", render(e)),
        E::Hypot(e) => format!("sqrt(1 + {}**2)", render(e)),
        E::Pow(e, n) => format!("(({})^{n})", render(e)),
        E::Rate(e, k) => {
            let s = render(e);
            format!("(a*({s})/(exp(({s})/({k}))-1))")
        }
        E::LnSin(e) => format!("ln(2 + sin({}))", render(e)),
    }
}

fn eval(e: &E, x: f64, y: f64, a: f64, b: f64) -> f64 {
    let ev = |e: &E| eval(e, x, y, a, b);
    match e {
        E::X => x,
        E::Y => y,
        E::A => a,
        E::B => b,
        E::C(c) => *c,
        E::Add(l, r) => ev(l) + ev(r),
        E::Sub(l, r) => ev(l) - ev(r),
        E::Mul(l, r) => ev(l) * ev(r),
        E::Div(l, r) => ev(l) / (1.0 + ev(r).powi(2)),
        E::Neg(e) => -ev(e),
        E::ExpSin(e) => ev(e).sin().exp(),
        E::Cos(e) => ev(e).cos(),
        E::Tanh(e) => ev(e).tanh(),
        E::Atan(e) => ev(e).atan(),
        E::Hypot(e) => (1.0 + ev(e).powi(2)).sqrt(),
        E::Pow(e, n) => ev(e).powi(*n),
        E::Rate(e, k) => {
            let s = ev(e);
            let z = s / k;
            // the limit a·k at s = 0, else the formula (z/expm1(z) is accurate)
            if z == 0.0 {
                a * k
            } else {
                a * k * (z / z.exp_m1())
            }
        }
        E::LnSin(e) => (2.0 + ev(e).sin()).ln(),
    }
}

/// Sum of the magnitudes along the expression: the scale rounding errors
/// are relative to.
fn magnitude(e: &E, x: f64, y: f64, a: f64, b: f64) -> f64 {
    let m = |e: &E| magnitude(e, x, y, a, b);
    let v = eval(e, x, y, a, b).abs();
    v + match e {
        E::Add(l, r) | E::Sub(l, r) | E::Mul(l, r) | E::Div(l, r) => m(l) * m(r).max(1.0) + m(r),
        E::Neg(e)
        | E::ExpSin(e)
        | E::Cos(e)
        | E::Tanh(e)
        | E::Atan(e)
        | E::Hypot(e)
        | E::LnSin(e) => m(e),
        E::Pow(e, n) => m(e).max(1.0).powi(*n),
        E::Rate(e, _) => m(e) * a.abs().max(1.0),
        _ => 0.0,
    }
}

/// Forward-mode dual numbers: value and gradient w.r.t. (x, y, a, b), an
/// exact derivative independent of the DAG's reverse mode.
#[derive(Clone, Copy)]
struct D(f64, [f64; 4]);

impl D {
    fn map(self, v: f64, dv: f64) -> D {
        D(v, self.1.map(|g| g * dv))
    }
    fn lin(self, other: D, v: f64, ca: f64, cb: f64) -> D {
        let mut g = [0.0; 4];
        for k in 0..4 {
            g[k] = ca * self.1[k] + cb * other.1[k];
        }
        D(v, g)
    }
}

fn dual(e: &E, v: [f64; 4]) -> D {
    let var = |k: usize| {
        let mut g = [0.0; 4];
        g[k] = 1.0;
        D(v[k], g)
    };
    let d = |e: &E| dual(e, v);
    match e {
        E::X => var(0),
        E::Y => var(1),
        E::A => var(2),
        E::B => var(3),
        E::C(c) => D(*c, [0.0; 4]),
        E::Add(l, r) => {
            let (l, r) = (d(l), d(r));
            l.lin(r, l.0 + r.0, 1.0, 1.0)
        }
        E::Sub(l, r) => {
            let (l, r) = (d(l), d(r));
            l.lin(r, l.0 - r.0, 1.0, -1.0)
        }
        E::Mul(l, r) => {
            let (l, r) = (d(l), d(r));
            l.lin(r, l.0 * r.0, r.0, l.0)
        }
        E::Div(l, r) => {
            let (l, r) = (d(l), d(r));
            let q = 1.0 + r.0 * r.0;
            l.lin(r, l.0 / q, 1.0 / q, -l.0 * 2.0 * r.0 / (q * q))
        }
        E::Neg(e) => d(e).map(-d(e).0, -1.0),
        E::ExpSin(e) => {
            let x = d(e);
            let y = x.0.sin().exp();
            x.map(y, y * x.0.cos())
        }
        E::Cos(e) => {
            let x = d(e);
            x.map(x.0.cos(), -x.0.sin())
        }
        E::Tanh(e) => {
            let x = d(e);
            let y = x.0.tanh();
            x.map(y, 1.0 - y * y)
        }
        E::Atan(e) => {
            let x = d(e);
            x.map(x.0.atan(), 1.0 / (1.0 + x.0 * x.0))
        }
        E::Hypot(e) => {
            let x = d(e);
            let y = (1.0 + x.0 * x.0).sqrt();
            x.map(y, x.0 / y)
        }
        E::Pow(e, n) => {
            let x = d(e);
            x.map(x.0.powi(*n), *n as f64 * x.0.powi(n - 1))
        }
        E::Rate(e, k) => {
            // a·k·g(s/k); d/ds = a·g'(z), d/da = k·g(z)
            let s = d(e);
            let z = s.0 / k;
            let (g, dg) = if z == 0.0 {
                (1.0, -0.5)
            } else if z > 700.0 {
                let q = (-z).exp();
                (z * q, (1.0 - z) * q)
            } else if z.abs() < 1e-3 {
                (1.0 - z / 2.0 + z * z / 12.0, -0.5 + z / 6.0)
            } else {
                let em1 = z.exp_m1();
                (z / em1, (em1 - z * (em1 + 1.0)) / (em1 * em1))
            };
            let av = var(2);
            s.lin(av, v[2] * k * g, v[2] * dg, k * g)
        }
        E::LnSin(e) => {
            let x = d(e);
            x.map((2.0 + x.0.sin()).ln(), x.0.cos() / (2.0 + x.0.sin()))
        }
    }
}

fn has_variable(e: &E) -> bool {
    match e {
        E::X | E::Y | E::A | E::B => true,
        E::C(_) => false,
        E::Add(l, r) | E::Sub(l, r) | E::Mul(l, r) | E::Div(l, r) => {
            has_variable(l) || has_variable(r)
        }
        E::Neg(e)
        | E::ExpSin(e)
        | E::Cos(e)
        | E::Tanh(e)
        | E::Atan(e)
        | E::Hypot(e)
        | E::LnSin(e)
        | E::Pow(e, _)
        | E::Rate(e, _) => has_variable(e),
    }
}

/// Some `Rate` in `e` has an argument that is exactly 0 here, or constant.
fn zero_rate_argument(e: &E, x: f64, y: f64, a: f64, b: f64) -> bool {
    let z = |e: &E| zero_rate_argument(e, x, y, a, b);
    match e {
        // a constant argument is folded and evaluated literally, as written
        E::Rate(inner, _) => eval(inner, x, y, a, b) == 0.0 || !has_variable(inner) || z(inner),
        E::Add(l, r) | E::Sub(l, r) | E::Mul(l, r) | E::Div(l, r) => z(l) || z(r),
        E::Neg(e)
        | E::ExpSin(e)
        | E::Cos(e)
        | E::Tanh(e)
        | E::Atan(e)
        | E::Hypot(e)
        | E::LnSin(e)
        | E::Pow(e, _) => z(e),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_expressions_evaluate_and_differentiate_correctly(
        f in expr(),
        g in expr(),
        x in -2.0..2.0f64,
        y in -2.0..2.0f64,
        a in 0.5..2.0f64,
        b in -1.5..1.5f64,
    ) {
        let text = format!("par a=1, b=1\ninit x=0, y=0\nx' = {}\ny' = {}\n", render(&f), render(&g));
        let m = OdeModel::from_str(&text).unwrap();
        let mut du = [0.0; 2];
        m.rhs(0.0, &[x, y], &[a, b], &mut du, &mut m.new_work());
        // An identically zero rate argument (like `b - b`) is 0/0 as written,
        // and a constant one is folded (and evaluated) as written.
        prop_assume!(!zero_rate_argument(&f, x, y, a, b) && !zero_rate_argument(&g, x, y, a, b));
        for (i, e) in [&f, &g].into_iter().enumerate() {
            let want = eval(e, x, y, a, b);
            let scale = magnitude(e, x, y, a, b).max(1.0);
            prop_assert!(
                (du[i] - want).abs() <= 1e-12 * scale,
                "component {}: {} vs {} (scale {})\n{}", i, du[i], want, scale, text
            );
        }
        // Jacobian from the VJP with unit seeds against a 4th-order central
        // difference, with an absolute floor for entries that cancel to ~0.
        let mut w = m.new_work();
        let h = 1e-5;
        for i in 0..2 {
            let mut lambda = [0.0; 2];
            lambda[i] = 1.0;
            let (mut out, mut acc) = ([f64::NAN; 2], [0.0; 2]);
            m.vjp(0.0, &[x, y], &[a, b], &lambda, &mut out, 1.0, &mut acc, &mut w);
            let analytic = [out[0], out[1], acc[0], acc[1]];
            let scale = magnitude([&f, &g][i], x, y, a, b).max(1.0);
            for (c, &an) in analytic.iter().enumerate() {
                let f_at = |d: f64, w: &mut revode_ode::OdeWork| {
                    let mut v = [x, y, a, b];
                    v[c] += d;
                    let mut du = [0.0; 2];
                    m.rhs(0.0, &v[..2], &v[2..], &mut du, w);
                    du[i]
                };
                let mut fd_at = |h: f64| {
                    (8.0 * (f_at(h, &mut w) - f_at(-h, &mut w))
                        - (f_at(2.0 * h, &mut w) - f_at(-2.0 * h, &mut w)))
                        / (12.0 * h)
                };
                let exact = dual([&f, &g][i], [x, y, a, b]).1[c];
                // Differences say nothing where the expression moves by more
                // than a tenth of its value over one step (cos((b − y)^16)).
                let value = eval([&f, &g][i], x, y, a, b).abs().max(1.0);
                if exact.abs() * h <= 0.1 * value {
                    let fd = fd_at(h);
                    // the FD's own error, estimated from two more steps
                    let fd_error = (fd - fd_at(2.0 * h)).abs().max((fd - fd_at(0.5 * h)).abs());
                    prop_assert!(
                        (an - fd).abs() <= 1e-6 * an.abs().max(fd.abs()) + 1e-9 * scale + 10.0 * fd_error,
                        "d f{}/d v{}: vjp {} vs fd {}\n{}", i, c, an, fd, text
                    );
                }
                // conditioning: how much 4-ulp changes of the inputs move it
                let nudge = |v: f64| v * (1.0 + 4.0 * f64::EPSILON);
                let moved = dual([&f, &g][i], [nudge(x), nudge(y), nudge(a), nudge(b)]).1[c];
                prop_assert!(
                    (an - exact).abs()
                        <= 1e-11 * (an.abs().max(exact.abs()) + scale) + 100.0 * (exact - moved).abs(),
                    "d f{}/d v{}: vjp {} vs dual {}\n{}", i, c, an, exact, text
                );
                // the Jacobian's entry: the same derivative, derived per row
                if c < 2 {
                    let jac = jacobian_entry(&m, [x, y], [a, b], i, c);
                    prop_assert!(
                        (jac - exact).abs()
                            <= 1e-11 * (jac.abs().max(exact.abs()) + scale) + 100.0 * (exact - moved).abs(),
                        "d f{}/d v{}: jacobian {} vs dual {}\n{}", i, c, jac, exact, text
                    );
                    prop_assert!(
                        (jac - an).abs() <= 1e-12 * (jac.abs().max(an.abs()) + scale),
                        "d f{}/d v{}: jacobian {} vs vjp {}\n{}", i, c, jac, an, text
                    );
                }
            }
        }
    }
}

/// Entry `(i, j)` of the model's Jacobian (0 outside its pattern).
fn jacobian_entry(m: &OdeModel, u: [f64; 2], p: [f64; 2], i: usize, j: usize) -> f64 {
    let pattern = m.jacobian_pattern().unwrap();
    let mut values = vec![f64::NAN; pattern.nnz()];
    m.jacobian(0.0, &u, &p, &mut values, &mut m.new_work());
    pattern.position(i, j).map_or(0.0, |k| values[k])
}
