//! The shipped array models: `models/hh_cable.ode` against a flat file
//! generated here (bitwise the same model) and against a direct
//! transcription of its specification (docs/models/hh_cable.md), and
//! `models/hh_network.ode` against the built-in `hh_network`.

mod common;

use common::assert_same_model;
use revode_model::{HhNetwork, Model};
use revode_ode::OdeModel;

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `models/hh_cable.ode` with `ncomp` compartments.
fn cable(ncomp: usize) -> OdeModel {
    let text = std::fs::read_to_string(repo("models/hh_cable.ode")).unwrap();
    assert!(text.contains("number ncomp=100\n"));
    let text = text.replace("number ncomp=100\n", &format!("number ncomp={ncomp}\n"));
    OdeModel::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// The cable written out without arrays, compartment by compartment: what
/// a generator script would write (the same formulas, so the same DAG).
fn flat_cable_text(n: usize) -> String {
    let mut s = String::from(
        "number radius=1e-4, length=1e-3, R_a=100, C_m=1\n\
         number area=2*pi*radius*length\n\
         number g_axial=radius*1000/(2*R_a*length*length)\n\
         number E_Na=50, E_K=-77, E_L=-54.3\n",
    );
    for (g, v) in [("gNa", 120.0), ("gK", 36.0), ("gL", 0.3)] {
        for k in 1..=n {
            s.push_str(&format!("par {g}{k}={v}\n"));
        }
    }
    s.push_str(
        "par I_inj=0.1\n\
         alpha_m(v) = 0.1*(v+40)/(1-exp(-(v+40)/10))\n\
         beta_m(v) = 4*exp(-(v+65)/18)\n\
         alpha_h(v) = 0.07*exp(-(v+65)/20)\n\
         beta_h(v) = 1/(1+exp(-(v+35)/10))\n\
         alpha_n(v) = 0.01*(v+55)/(1-exp(-(v+55)/10))\n\
         beta_n(v) = 0.125*exp(-(v+65)/80)\n",
    );
    for k in 1..=n {
        let left = if k == 1 { k } else { k - 1 };
        let right = if k == n { k } else { k + 1 };
        let inject = if k == 1 { " + I_inj*1e-3/area" } else { "" };
        s.push_str(&format!(
            "V{k}' = (-gNa{k}*m{k}^3*h{k}*(V{k}-E_Na) - gK{k}*n{k}^4*(V{k}-E_K) - gL{k}*(V{k}-E_L) \
             + g_axial*(V{left} - 2*V{k} + V{right}){inject})/C_m\n"
        ));
        for x in ["m", "h", "n"] {
            s.push_str(&format!(
                "{x}{k}' = alpha_{x}(V{k})*(1-{x}{k}) - beta_{x}(V{k})*{x}{k}\n"
            ));
        }
    }
    for k in 1..=n {
        s.push_str(&format!("init V{k}=-65\n"));
        for x in ["m", "h", "n"] {
            s.push_str(&format!(
                "init {x}{k}=alpha_{x}(-65)/(alpha_{x}(-65)+beta_{x}(-65))\n"
            ));
        }
    }
    s.push_str("aux V_end = V");
    s.push_str(&n.to_string());
    s.push('\n');
    s
}

#[test]
fn cable_names_and_orders_follow_the_specification() {
    let m = cable(100);
    let states = m.state_names();
    assert_eq!(states.len(), 400);
    assert_eq!(
        states[..8],
        ["V1", "m1", "h1", "n1", "V2", "m2", "h2", "n2"]
    );
    assert_eq!(states[396..], ["V100", "m100", "h100", "n100"]);
    let params = m.param_names();
    assert_eq!(params.len(), 301);
    assert_eq!(params[..2], ["gNa1", "gNa2"]);
    assert_eq!(params[99..102], ["gNa100", "gK1", "gK2"]);
    assert_eq!(params[199..202], ["gK100", "gL1", "gL2"]);
    assert_eq!(params[299..], ["gL100", "I_inj"]);
    let p = m.default_params();
    assert!(p[..100].iter().all(|&g| g == 120.0));
    assert!(p[100..200].iter().all(|&g| g == 36.0));
    assert!(p[200..300].iter().all(|&g| g == 0.3));
    assert_eq!(m.aux_names(), ["V_end"]);
}

#[test]
fn cable_equals_its_flat_version() {
    for n in [1, 2, 3, 7, 100] {
        let flat = OdeModel::from_str(&flat_cable_text(n)).unwrap();
        assert_same_model(&cable(n), &flat, &format!("hh_cable with {n} compartments"));
    }
}

/// `a x/(1 − exp(−x/k))` with its limit `a k` at `x = 0`.
fn rate_form(a: f64, x: f64, k: f64) -> f64 {
    if x == 0.0 {
        a * k
    } else {
        a * x / -(-x / k).exp_m1()
    }
}

/// The specification (docs/models/hh_cable.md) transcribed directly: per
/// state, the additive terms of its derivative (their sum is the rhs, the
/// sum of their magnitudes the scale a rounding error is relative to).
fn cable_terms(n: usize, u: &[f64], p: &[f64]) -> Vec<Vec<f64>> {
    let area = 2.0 * std::f64::consts::PI * 1e-4 * 1e-3; // cm^2
    let g_axial = 500.0; // 1000 r/(2 Ra L^2) mS/cm^2
    let mut out = Vec::new();
    for i in 0..n {
        let (v, m, h, g) = (u[4 * i], u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]);
        let left = if i == 0 { v } else { u[4 * i - 4] };
        let right = if i + 1 == n { v } else { u[4 * i + 4] };
        let mut dv = vec![
            -p[i] * m.powi(3) * h * (v - 50.0),
            -p[n + i] * g.powi(4) * (v + 77.0),
            -p[2 * n + i] * (v + 54.3),
            g_axial * (left - v),
            g_axial * (right - v),
        ];
        if i == 0 {
            dv.push(p[3 * n] * 1e-3 / area);
        }
        let am = rate_form(0.1, v + 40.0, 10.0);
        let bm = 4.0 * (-(v + 65.0) / 18.0).exp();
        let ah = 0.07 * (-(v + 65.0) / 20.0).exp();
        let bh = 1.0 / (1.0 + (-(v + 35.0) / 10.0).exp());
        let an = rate_form(0.01, v + 55.0, 10.0);
        let bn = 0.125 * (-(v + 65.0) / 80.0).exp();
        out.push(dv);
        out.push(vec![am * (1.0 - m), -bm * m]);
        out.push(vec![ah * (1.0 - h), -bh * h]);
        out.push(vec![an * (1.0 - g), -bn * g]);
    }
    out
}

#[test]
fn cable_matches_its_specification() {
    let n = 6;
    let m = cable(n);
    let p: Vec<f64> = m
        .default_params()
        .iter()
        .enumerate()
        .map(|(k, &x)| x * (1.0 + 0.05 * (k as f64).sin()))
        .collect();
    let mut points = vec![m.default_u0()];
    // the 0/0 voltages of alpha_m and alpha_n, and ordinary ones
    for (k, v) in [(0usize, -40.0), (1, -55.0), (2, 20.0), (3, -90.0)] {
        let mut u = m.default_u0();
        for i in 0..n {
            u[4 * i] = if i == k { v } else { -65.0 + 7.0 * i as f64 };
            u[4 * i + 1] = 0.1 + 0.1 * i as f64;
            u[4 * i + 2] = 0.7 - 0.1 * i as f64;
            u[4 * i + 3] = 0.3 + 0.05 * i as f64;
        }
        points.push(u);
    }
    let mut work = m.new_work();
    for u in &points {
        let mut du = vec![f64::NAN; 4 * n];
        m.rhs(0.0, u, &p, &mut du, &mut work);
        for (i, terms) in cable_terms(n, u, &p).iter().enumerate() {
            let want: f64 = terms.iter().sum();
            let scale: f64 = terms.iter().map(|t| t.abs()).sum();
            assert!(
                (du[i] - want).abs() <= 1e-13 * scale,
                "{} at {u:?}: {} vs {want} (scale {scale})",
                m.state_names()[i],
                du[i]
            );
        }
    }
}

#[test]
fn cable_rests_with_gates_at_steady_state_and_sealed_ends() {
    let m = cable(5);
    let u0 = m.default_u0();
    let mut p = m.default_params();
    p[15] = 0.0; // no injected current
    let mut du = vec![f64::NAN; 20];
    m.rhs(0.0, &u0, &p, &mut du, &mut m.new_work());
    for i in 0..5 {
        // the gates do not move at their steady state
        for x in 1..4 {
            assert!(du[4 * i + x].abs() < 1e-15, "{:?}", &du[4 * i..4 * i + 4]);
        }
        // a uniform cable with sealed ends has no axial current: every
        // compartment is the same single HH membrane, whose rest is within
        // 0.05 mV of −65 (dV/dt ≈ 0.03 mV/ms there, τ ≈ 1.4 ms)
        assert_eq!(du[4 * i], du[0]);
        assert!(du[0].abs() < 0.05, "{}", du[0]);
    }
    // the injected current enters compartment 1 only: 1e-3/area per nA
    let mut with_current = vec![f64::NAN; 20];
    p[15] = 1.0;
    m.rhs(0.0, &u0, &p, &mut with_current, &mut m.new_work());
    let area = 2.0 * std::f64::consts::PI * 1e-4 * 1e-3;
    assert!((with_current[0] - du[0] - 1e-3 / area).abs() < 1e-9);
    assert_eq!(with_current[4..], du[4..]);
}

/// `models/hh_network.ode` (with `N = n`) against the built-in at a state.
fn compare_network(n: usize, u: &[f64], p: &[f64], lambda: &[f64]) {
    let text = std::fs::read_to_string(repo("models/hh_network.ode")).unwrap();
    let text = text.replace("number N=10\n", &format!("number N={n}\n"));
    let file = OdeModel::from_str(&text).unwrap();
    let builtin = HhNetwork::with_neurons(n).unwrap();
    assert_eq!(file.state_names(), builtin.state_names());
    assert_eq!(file.param_names(), builtin.param_names());
    assert_eq!(file.default_u0(), builtin.default_u0());
    assert_eq!(file.default_params(), builtin.default_params());
    let (mut wf, mut wb) = (file.new_work(), builtin.new_work());
    let (mut df, mut db) = (vec![0.0; 4 * n], vec![0.0; 4 * n]);
    file.rhs(0.0, u, p, &mut df, &mut wf);
    builtin.rhs(0.0, u, p, &mut db, &mut wb);
    for i in 0..4 * n {
        let scale = db[i].abs().max(1.0);
        assert!(
            (df[i] - db[i]).abs() <= 1e-13 * scale,
            "rhs {i}: {} vs {}",
            df[i],
            db[i]
        );
    }
    let np = p.len();
    let (mut of, mut ob) = (vec![0.0; 4 * n], vec![0.0; 4 * n]);
    let (mut pf, mut pb) = (vec![0.0; np], vec![0.0; np]);
    file.vjp(0.0, u, p, lambda, &mut of, 0.7, &mut pf, &mut wf);
    builtin.vjp(0.0, u, p, lambda, &mut ob, 0.7, &mut pb, &mut wb);
    builtin.flush_vjp(&mut pb, &mut wb);
    for i in 0..4 * n {
        let scale = ob[i].abs().max(1.0);
        assert!(
            (of[i] - ob[i]).abs() <= 1e-12 * scale,
            "vjp u {i}: {} vs {}",
            of[i],
            ob[i]
        );
    }
    for k in 0..np {
        let scale = pb[k].abs().max(1.0);
        assert!(
            (pf[k] - pb[k]).abs() <= 1e-12 * scale,
            "vjp p {k}: {} vs {}",
            pf[k],
            pb[k]
        );
    }
}

#[test]
fn network_file_matches_the_builtin() {
    for n in [1, 2, 5, 10] {
        let builtin = HhNetwork::with_neurons(n).unwrap();
        let mut u = builtin.default_u0();
        let mut p = builtin.default_params();
        let lambda: Vec<f64> = (0..4 * n).map(|i| 1.0 + 0.3 * (i as f64).sin()).collect();
        compare_network(n, &u, &p, &lambda);
        // the singular voltages, and a non-zero diagonal of W (no effect)
        for (i, v) in [-50.0, -48.0, -23.0, 10.0].iter().enumerate() {
            u[4 * (i % n)] = *v;
        }
        for k in 0..n {
            p[3 * n + k * n + k] = 0.5;
        }
        compare_network(n, &u, &p, &lambda);
    }
}
