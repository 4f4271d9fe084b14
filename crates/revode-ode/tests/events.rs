//! `global` lines: parsing, errors, and the compiled event programs against
//! finite differences.

use revode_model::Model;
use revode_ode::OdeModel;

const TWO_EVENTS: &str = "\
par a=0.02, b=0.2, c=-65, d=8
init v=-70, w=-14
v' = 0.04*v^2 + 5*v + 140 - w
w' = a*(b*v - w)
global 1 v-30 {v=c; w=w+d}
global -1 w*w - b {w = w*c/d;}
";

#[test]
fn events_are_read_in_file_order() {
    let m = OdeModel::from_str(TWO_EVENTS).unwrap();
    assert_eq!(m.n_events(), 2);
    assert_eq!((m.event_direction(0), m.event_direction(1)), (1, -1));
    let mut work = m.new_work();
    let (u, p) = ([31.0, 2.0], [0.02, 0.2, -65.0, 8.0]);
    assert_eq!(m.event_value(0, &u, &p, &mut work), 1.0);
    assert_eq!(m.event_value(1, &u, &p, &mut work), 4.0 - 0.2);
    let mut out = [0.0; 2];
    m.event_reset(0, &u, &p, &mut out, &mut work);
    // Every assignment reads the state just before the event.
    assert_eq!(out, [-65.0, 10.0]);
    m.event_reset(1, &u, &p, &mut out, &mut work);
    assert_eq!(out, [31.0, 2.0 * -65.0 / 8.0]);
    let plain = OdeModel::from_str("x' = -x\ninit x=1\n").unwrap();
    assert_eq!(plain.n_events(), 0);
}

fn fd<F: Fn(&[f64]) -> f64>(f: F, x: &[f64], i: usize) -> f64 {
    let h = 1e-6 * x[i].abs().max(1.0);
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    a[i] += h;
    b[i] -= h;
    (f(&a) - f(&b)) / (2.0 * h)
}

#[test]
fn event_derivatives_match_finite_differences() {
    let m = OdeModel::from_str(TWO_EVENTS).unwrap();
    let mut work = m.new_work();
    let u = [12.5, -3.0];
    let p = [0.03, 0.25, -60.0, 6.0];
    let lambda = [0.7, -1.3];
    for e in 0..2 {
        let (mut du, mut dp) = ([0.0; 2], [0.0; 4]);
        m.event_gradient(e, &u, &p, &mut du, &mut dp, &mut work);
        let g = |u: &[f64], p: &[f64]| {
            let mut w = m.new_work();
            m.event_value(e, u, p, &mut w)
        };
        for i in 0..2 {
            let want = fd(|x| g(x, &p), &u, i);
            assert!(
                (du[i] - want).abs() < 1e-6 * want.abs().max(1.0),
                "g{e} u{i}"
            );
        }
        for k in 0..4 {
            let want = fd(|x| g(&u, x), &p, k);
            assert!(
                (dp[k] - want).abs() < 1e-6 * want.abs().max(1.0),
                "g{e} p{k}"
            );
        }
        let (mut ru, mut rp) = ([0.0; 2], [0.0; 4]);
        m.event_reset_vjp(e, &u, &p, &lambda, &mut ru, &mut rp, &mut work);
        let r = |u: &[f64], p: &[f64]| {
            let mut w = m.new_work();
            let mut out = [0.0; 2];
            m.event_reset(e, u, p, &mut out, &mut w);
            lambda[0] * out[0] + lambda[1] * out[1]
        };
        for i in 0..2 {
            let want = fd(|x| r(x, &p), &u, i);
            assert!(
                (ru[i] - want).abs() < 1e-6 * want.abs().max(1.0),
                "R{e} u{i}"
            );
        }
        for k in 0..4 {
            let want = fd(|x| r(&u, x), &p, k);
            assert!(
                (rp[k] - want).abs() < 1e-6 * want.abs().max(1.0),
                "R{e} p{k}"
            );
        }
    }
}

#[test]
fn the_shipped_lif_model_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/lif.ode");
    let m = OdeModel::from_file(path).unwrap();
    assert_eq!(m.n_events(), 1);
    assert_eq!(m.event_direction(0), 1);
}

fn error_of(text: &str) -> (usize, usize, String) {
    let e = OdeModel::from_str(text).unwrap_err();
    (e.line, e.col, e.message)
}

#[test]
fn malformed_globals_are_located() {
    let head = "par a=1\ninit v=0\nv' = a - v\n";
    for (line, col, fragment) in [
        ("global 2 v-1 {v=0}", 8, "direction"),
        ("global v-1 {v=0}", 8, "direction"),
        ("global 1 {v=0}", 10, "condition"),
        ("global 1 v-1 v=0", 14, "'{'"),
        ("global 1 v-1 {v=0", 18, "'}'"),
        ("global 1 v-1 {v 0}", 17, "'='"),
        ("global 1 v-1 {}", 15, "state name"),
        ("global 1 v-1 {v=0} x", 20, "unexpected"),
        ("global 1 v-1 {a=0}", 15, "parameter"),
        ("global 1 v-1 {q=0}", 15, "not defined"),
        ("global 1 v-1 {v=0; v=1}", 20, "twice"),
        ("global 1 v-t {v=0}", 1, "depend on t"),
    ] {
        let (l, c, message) = error_of(&format!("{head}{line}\n"));
        assert_eq!((l, c), (4, col), "{line}: {message}");
        assert!(message.contains(fragment), "{line}: {message}");
    }
    let (l, _, message) = error_of("init v=0\nv' = sin(t) - v\nglobal 1 v-1 {v=0}\n");
    assert_eq!(l, 3);
    assert!(
        message.contains("right-hand sides cannot depend on t"),
        "{message}"
    );
}
