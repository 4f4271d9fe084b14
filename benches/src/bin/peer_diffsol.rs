//! The diffsol peer of the side-by-side benchmarks.
//!
//! Solves revode's benchmark problems with [diffsol](https://crates.io/crates/diffsol)
//! and prints one JSON document: forward and gradient times (first call,
//! minimum and median after warm-up), the gradients (diffsol's continuous
//! adjoint, its forward sensitivities and its `StepVjp` reverse mode through
//! the steps, with the Tsit45 explicit RK; revode's fixed-step Euler fixtures
//! with an emulated Euler tableau, as diffsol offers no fixed-step method),
//! step counts, closure-call counts and peak-memory deltas, plus the relative
//! error of the `hh` gradient against a high-accuracy revode reference.
//!
//! Built only with `--features diffsol-peer`:
//!
//! ```text
//! cargo run --release -p revode-benches --features diffsol-peer --bin peer_diffsol -- [--reps N] [--max-n N]
//! ```
//!
//! The right-hand side and its Jacobian products are written by hand below
//! (the derivation is `docs/models/hh.md`); the removable `0/0` of the rates
//! are evaluated with revode's `exprel_inv`/`exprel_inv_deriv`, and the
//! single-neuron case is checked against revode's own `HodgkinHuxley`
//! (`rhs` and `vjp`) at start-up; the result of that check is in the JSON.
//! See `benches/peers/diffsol.md`.

use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

use diffsol::{
    AdjointOdeSolverMethod, DenseMatrix, NalgebraMat, OdeBuilder, OdeSolverMethod, OdeSolverState,
    OdeSolverStopReason, SensitivitiesOdeSolverMethod, StepVjp, Tableau, TableauMat, TableauVec,
    Vector,
};
use revode::checkpoint::Schedule;
use revode::model::{exprel_inv, exprel_inv_deriv};
use revode::prelude::*;
use serde_json::{json, Value};

type M = NalgebraMat<f64>;

// ---------------------------------------------------------------------------
// The model: N Hodgkin–Huxley neurons, optionally coupled (N = 1 uncoupled is
// revode's `hh`).
// ---------------------------------------------------------------------------

/// Rates of one neuron and their derivatives with respect to `E`.
struct Rates {
    am: f64,
    bm: f64,
    ah: f64,
    bh: f64,
    an: f64,
    bn: f64,
    dam: f64,
    dbm: f64,
    dah: f64,
    dbh: f64,
    dan: f64,
    dbn: f64,
}

/// `V_T = -63`; every rate written in terms of `E` directly (see hh.md).
fn rates(e: f64) -> Rates {
    let zm = -(e + 50.0) / 4.0;
    let zb = (e + 23.0) / 5.0;
    let zn = -(e + 48.0) / 5.0;
    let ah = 0.128 * (-(e + 46.0) / 18.0).exp();
    let v = (-(e + 23.0) / 5.0).exp();
    let s = 1.0 / (1.0 + v);
    let bn = 0.5 * (-(e + 53.0) / 40.0).exp();
    Rates {
        am: 1.28 * exprel_inv(zm),
        bm: 1.4 * exprel_inv(zb),
        ah,
        bh: 4.0 * s,
        an: 0.16 * exprel_inv(zn),
        bn,
        dam: -0.32 * exprel_inv_deriv(zm),
        dbm: 0.28 * exprel_inv_deriv(zb),
        dah: -ah / 18.0,
        dbh: 0.8 * v * s * s,
        dan: -0.032 * exprel_inv_deriv(zn),
        dbn: -bn / 40.0,
    }
}

#[derive(Clone, Copy, Debug)]
struct Net {
    n: usize,
    /// Whether the `N²` coupling weights `W` are parameters (and the coupling term present).
    coupled: bool,
    i_ext: f64,
}

impl Net {
    fn hh() -> Self {
        Net {
            n: 1,
            coupled: false,
            i_ext: 1.0,
        }
    }
    fn network(n: usize) -> Self {
        Net {
            n,
            coupled: true,
            i_ext: 1.0,
        }
    }
    fn nstates(&self) -> usize {
        4 * self.n
    }
    fn nparams(&self) -> usize {
        3 * self.n + if self.coupled { self.n * self.n } else { 0 }
    }
    fn default_params(&self) -> Vec<f64> {
        let n = self.n;
        let mut p = Vec::with_capacity(self.nparams());
        p.extend(vec![70.0; n]);
        p.extend(vec![10.0; n]);
        p.extend(vec![0.05; n]);
        if self.coupled {
            for i in 0..n {
                for j in 0..n {
                    p.push(if i == j {
                        0.0
                    } else {
                        0.001 * ((i + 2 * j) % 7) as f64
                    });
                }
            }
        }
        p
    }
    fn default_u0(&self) -> Vec<f64> {
        (0..self.n)
            .flat_map(|i| [-59.0 - 0.1 * i as f64, 0.2, 0.9, 0.1])
            .collect()
    }
    /// Loss weights: `hh` sums all four final states, the network sums the `E_i`.
    fn loss_weights(&self) -> Vec<f64> {
        if self.coupled {
            (0..self.nstates())
                .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
                .collect()
        } else {
            vec![1.0; self.nstates()]
        }
    }
    fn w(&self, p: &[f64], i: usize, j: usize) -> f64 {
        p[3 * self.n + i * self.n + j]
    }

    /// `y = f(x, p)`.
    fn rhs(&self, x: &[f64], p: &[f64], y: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let (e, m, h, k) = (x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]);
            let r = rates(e);
            let mut de = -(e - 50.0) * p[i] * m * m * m * h
                - (e + 90.0) * p[n + i] * k * k * k * k
                - (e + 65.0) * p[2 * n + i]
                + self.i_ext;
            if self.coupled {
                for j in (0..n).filter(|&j| j != i) {
                    de += self.w(p, i, j) * (x[4 * j] - e);
                }
            }
            y[4 * i] = de;
            y[4 * i + 1] = r.am * (1.0 - m) - r.bm * m;
            y[4 * i + 2] = r.ah * (1.0 - h) - r.bh * h;
            y[4 * i + 3] = r.an * (1.0 - k) - r.bn * k;
        }
    }

    /// Row `E_i` of `∂f/∂u` restricted to neuron `i`'s own states, and the
    /// gate rows' `E` derivatives: `(dE/dE (without coupling), dE/dm, dE/dh,
    /// dE/dn, dm/dE, dm/dm, dh/dE, dh/dh, dn/dE, dn/dn)`.
    fn local_jac(&self, x: &[f64], p: &[f64], i: usize) -> [f64; 10] {
        let n = self.n;
        let (e, m, h, k) = (x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]);
        let (gna, gkd, gl) = (p[i], p[n + i], p[2 * n + i]);
        let r = rates(e);
        [
            -gna * m * m * m * h - gkd * k * k * k * k - gl,
            -3.0 * (e - 50.0) * gna * m * m * h,
            -(e - 50.0) * gna * m * m * m,
            -4.0 * (e + 90.0) * gkd * k * k * k,
            r.dam * (1.0 - m) - r.dbm * m,
            -(r.am + r.bm),
            r.dah * (1.0 - h) - r.dbh * h,
            -(r.ah + r.bh),
            r.dan * (1.0 - k) - r.dbn * k,
            -(r.an + r.bn),
        ]
    }

    /// `y = (∂f/∂u) v`.
    fn jvp(&self, x: &[f64], p: &[f64], v: &[f64], y: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let j = self.local_jac(x, p, i);
            let (ve, vm, vh, vn) = (v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
            let mut ye = j[0] * ve + j[1] * vm + j[2] * vh + j[3] * vn;
            if self.coupled {
                for q in (0..n).filter(|&q| q != i) {
                    ye += self.w(p, i, q) * (v[4 * q] - ve);
                }
            }
            y[4 * i] = ye;
            y[4 * i + 1] = j[4] * ve + j[5] * vm;
            y[4 * i + 2] = j[6] * ve + j[7] * vh;
            y[4 * i + 3] = j[8] * ve + j[9] * vn;
        }
    }

    /// `y = -(∂f/∂u)ᵀ v` (diffsol's adjoint closures return the negated transpose).
    fn vjp_neg(&self, x: &[f64], p: &[f64], v: &[f64], y: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let j = self.local_jac(x, p, i);
            let (ve, vm, vh, vn) = (v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
            let mut ye = j[0] * ve + j[4] * vm + j[6] * vh + j[8] * vn;
            if self.coupled {
                for q in (0..n).filter(|&q| q != i) {
                    // d(dE_q)/dE_i = W_qi, d(dE_i)/dE_i gets -W_iq.
                    ye += self.w(p, q, i) * v[4 * q] - self.w(p, i, q) * ve;
                }
            }
            y[4 * i] = -ye;
            y[4 * i + 1] = -(j[1] * ve + j[5] * vm);
            y[4 * i + 2] = -(j[2] * ve + j[7] * vh);
            y[4 * i + 3] = -(j[3] * ve + j[9] * vn);
        }
    }

    /// `y = (∂f/∂p) v` (`v` has one entry per parameter).
    fn sens(&self, x: &[f64], p: &[f64], v: &[f64], y: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let (e, m, h, k) = (x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]);
            let mut ye = -(e - 50.0) * m * m * m * h * v[i]
                - (e + 90.0) * k * k * k * k * v[n + i]
                - (e + 65.0) * v[2 * n + i];
            if self.coupled {
                for q in (0..n).filter(|&q| q != i) {
                    ye += (x[4 * q] - e) * v[3 * n + i * n + q];
                }
            }
            y[4 * i] = ye;
            y[4 * i + 1] = 0.0;
            y[4 * i + 2] = 0.0;
            y[4 * i + 3] = 0.0;
        }
        let _ = p;
    }

    /// `y = -(∂f/∂p)ᵀ v` (`y` has one entry per parameter).
    fn sens_adj_neg(&self, x: &[f64], v: &[f64], y: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let (e, m, h, k) = (x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]);
            let ve = v[4 * i];
            y[i] = (e - 50.0) * m * m * m * h * ve;
            y[n + i] = (e + 90.0) * k * k * k * k * ve;
            y[2 * n + i] = (e + 65.0) * ve;
            if self.coupled {
                for q in 0..n {
                    y[3 * n + i * n + q] = if q == i { 0.0 } else { -(x[4 * q] - e) * ve };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checks of the hand-written products (run once, reported in the JSON).
// ---------------------------------------------------------------------------

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f64::max)
}

/// A few states in the range the solution visits (including the 0/0 points
/// E = -50, -23, -48 of the rates).
fn probe_states(net: Net) -> Vec<Vec<f64>> {
    let es = [-59.0, -50.0, -23.0, -48.0, 20.0, -75.3];
    es.iter()
        .enumerate()
        .map(|(s, &e)| {
            (0..net.n)
                .flat_map(|i| {
                    let d = 0.37 * (i + s) as f64;
                    [e + d, 0.1 + 0.05 * d, 0.7 - 0.03 * d, 0.3 + 0.02 * d]
                })
                .collect()
        })
        .collect()
}

fn self_check() -> Value {
    // 1. The single neuron against revode's HodgkinHuxley (rhs and vjp).
    let net = Net::hh();
    let model = HodgkinHuxley;
    // `HodgkinHuxley::Work` is `()`; kept as a binding so this reads like any model.
    #[allow(clippy::let_unit_value)]
    let mut work = model.new_work();
    let p = net.default_params();
    let (mut rhs_err, mut vjp_err, mut vjp_p_err) = (0.0f64, 0.0f64, 0.0f64);
    let lam = [0.3, -1.1, 0.7, 2.0];
    for x in probe_states(net) {
        let mut a = vec![0.0; 4];
        let mut b = vec![0.0; 4];
        net.rhs(&x, &p, &mut a);
        model.rhs(0.0, &x, &p, &mut b, &mut work);
        rhs_err = rhs_err.max(max_abs_diff(&a, &b));
        net.vjp_neg(&x, &p, &lam, &mut a);
        let mut acc_p = vec![0.0; 3];
        model.vjp(0.0, &x, &p, &lam, &mut b, 1.0, &mut acc_p, &mut work);
        let a: Vec<f64> = a.iter().map(|v| -v).collect();
        vjp_err = vjp_err.max(max_abs_diff(&a, &b));
        let mut sp = vec![0.0; 3];
        net.sens_adj_neg(&x, &lam, &mut sp);
        let sp: Vec<f64> = sp.iter().map(|v| -v).collect();
        vjp_p_err = vjp_p_err.max(max_abs_diff(&sp, &acc_p));
    }
    // 2. The network: JVP and sens against central differences of rhs, and
    //    the adjoint products as exact transposes of them.
    let net = Net::network(5);
    let p = net.default_params();
    let (ns, np) = (net.nstates(), net.nparams());
    let (mut jvp_fd, mut sens_fd, mut transp) = (0.0f64, 0.0f64, 0.0f64);
    let vec_of = |len: usize, seed: f64| -> Vec<f64> {
        (0..len)
            .map(|k| ((k as f64 + 1.0) * seed).sin())
            .collect::<Vec<_>>()
    };
    for x in probe_states(net) {
        let v = vec_of(ns, 0.77);
        let w = vec_of(ns, 1.31);
        let vp = vec_of(np, 0.53);
        let eps = 1e-6;
        let (mut fp, mut fm) = (vec![0.0; ns], vec![0.0; ns]);
        let xp: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
        let xm: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
        net.rhs(&xp, &p, &mut fp);
        net.rhs(&xm, &p, &mut fm);
        let fd: Vec<f64> = fp
            .iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let mut jv = vec![0.0; ns];
        net.jvp(&x, &p, &v, &mut jv);
        jvp_fd = jvp_fd.max(max_abs_diff(&jv, &fd));
        let pp: Vec<f64> = p.iter().zip(&vp).map(|(a, b)| a + eps * b).collect();
        let pm: Vec<f64> = p.iter().zip(&vp).map(|(a, b)| a - eps * b).collect();
        net.rhs(&x, &pp, &mut fp);
        net.rhs(&x, &pm, &mut fm);
        let fd: Vec<f64> = fp
            .iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let mut sv = vec![0.0; ns];
        net.sens(&x, &p, &vp, &mut sv);
        sens_fd = sens_fd.max(max_abs_diff(&sv, &fd));
        // <w, J v> = <J^T w, v>,  <w, F_p vp> = <F_p^T w, vp>
        let mut jtw = vec![0.0; ns];
        net.vjp_neg(&x, &p, &w, &mut jtw);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = -jtw.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
        transp = transp.max((lhs - rhs).abs() / (1.0 + lhs.abs()));
        let mut ftw = vec![0.0; np];
        net.sens_adj_neg(&x, &w, &mut ftw);
        let lhs: f64 = w.iter().zip(&sv).map(|(a, b)| a * b).sum();
        let rhs: f64 = -ftw.iter().zip(&vp).map(|(a, b)| a * b).sum::<f64>();
        transp = transp.max((lhs - rhs).abs() / (1.0 + lhs.abs()));
    }
    json!({
        "hh_rhs_vs_revode_max_rel": rhs_err,
        "hh_vjp_u_vs_revode_max_rel": vjp_err,
        "hh_vjp_p_vs_revode_max_rel": vjp_p_err,
        "network5_jvp_vs_central_difference_max_rel": jvp_fd,
        "network5_sens_vs_central_difference_max_rel": sens_fd,
        "network5_adjoint_products_transpose_identity_max_rel": transp,
    })
}

// ---------------------------------------------------------------------------
// Measurement helpers.
// ---------------------------------------------------------------------------

/// Calls of the user closures, counted inside them.
#[derive(Default)]
struct Counts {
    rhs: Cell<u64>,
    jvp: Cell<u64>,
    vjp: Cell<u64>,
    sens: Cell<u64>,
    sens_adj: Cell<u64>,
}

impl Counts {
    fn reset(&self) {
        for c in [&self.rhs, &self.jvp, &self.vjp, &self.sens, &self.sens_adj] {
            c.set(0);
        }
    }
    fn json(&self) -> Value {
        json!({
            "rhs": self.rhs.get(),
            "jac_vec": self.jvp.get(),
            "neg_jac_transpose_vec": self.vjp.get(),
            "sens_vec": self.sens.get(),
            "neg_sens_transpose_vec": self.sens_adj.get(),
        })
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How a case is run: timed in this process, or once in a fresh child process
/// that reports its peak-RSS growth.
#[derive(Clone, Copy)]
enum Mode {
    Bench { reps: usize },
    Probe,
}

/// Runs `once` according to `mode`; returns the timing (or memory) JSON and
/// the result of the first call.
fn measure<R>(mode: Mode, mut once: impl FnMut() -> R) -> (Value, R) {
    match mode {
        Mode::Probe => {
            let before = proc_status_kib("VmHWM:").unwrap_or(0);
            let r = once();
            let after = proc_status_kib("VmHWM:").unwrap_or(0);
            (
                json!({ "vmhwm_delta_kib": after.saturating_sub(before) }),
                r,
            )
        }
        Mode::Bench { reps } => {
            let t = Instant::now();
            let r = once();
            let first = t.elapsed().as_secs_f64() * 1e3;
            let mut ms: Vec<f64> = (0..reps.max(1))
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(once());
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            (
                json!({
                    "first_call_ms": first,
                    "min_ms": ms[0],
                    "median_ms": ms[ms.len() / 2],
                    "reps_after_first": ms.len(),
                }),
                r,
            )
        }
    }
}

// ---------------------------------------------------------------------------
// The three runs of one problem with diffsol's Tsit45.
// ---------------------------------------------------------------------------

struct Spec {
    net: Net,
    t1: f64,
    tol: f64,
    /// Fixed-step explicit Euler emulated with a custom one-stage tableau
    /// (only for the `step_vjp` run).
    euler_dt: Option<f64>,
}

/// Explicit Euler as a tableau with a zero error estimate; with the step
/// growth pinned to 1 the solver keeps the initial step. diffsol's ExplicitRk
/// requires first-same-as-last (last row of `a` = `b`), so Euler is written
/// with a second stage `f(y_{n+1})`, which is the next step's first stage.
/// (`TableauMat::from_slice` is column-major: a(1, 0) = 1.)
fn euler_tableau() -> Tableau<f64> {
    Tableau::new(
        TableauMat::from_slice(2, 2, &[0.0, 1.0, 0.0, 0.0]),
        TableauVec::from_slice(&[1.0, 0.0]),
        TableauVec::from_slice(&[0.0, 1.0]),
        TableauVec::from_slice(&[0.0, 0.0]),
        1,
        None,
    )
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Forward solve only: step to `t1` (no output stored), loss of the final state.
fn run_forward(spec: &Spec, mode: Mode) -> Value {
    let net = spec.net;
    let u0 = net.default_u0();
    let w = net.loss_weights();
    let counts = Rc::new(Counts::default());
    let (c1, c2) = (counts.clone(), counts.clone());
    let problem = OdeBuilder::<M>::new()
        .rtol(spec.tol)
        .atol([spec.tol])
        .p(net.default_params())
        .rhs_implicit(
            move |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                bump(&c1.rhs);
                net.rhs(x, p, y)
            },
            move |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c2.jvp);
                net.jvp(x, p, v, y)
            },
        )
        .init(
            move |_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(&u0),
            net.nstates(),
        )
        .build()
        .expect("forward problem builds");
    counts.reset();
    let (timing, (loss, steps, fails)) = measure(mode, || {
        let tableau = match spec.euler_dt {
            Some(_) => euler_tableau(),
            None => Tableau::tsit45(),
        };
        let mut state = problem.rk_state(&tableau).expect("rk state");
        if let Some(dt) = spec.euler_dt {
            *state.as_mut().h = dt;
        }
        let mut s = problem
            .explicit_rk_solver::<M>(state, tableau)
            .expect("explicit rk solver");
        if spec.euler_dt.is_some() {
            s.config_mut().maximum_timestep_growth = 1.0;
        }
        s.set_stop_time(spec.t1).expect("stop time");
        loop {
            match s.step().expect("forward step") {
                OdeSolverStopReason::TstopReached => break,
                OdeSolverStopReason::InternalTimestep => {}
                OdeSolverStopReason::RootFound(..) => unreachable!("no roots"),
            }
        }
        let y: Vec<f64> = (0..net.nstates())
            .map(|k| s.state().y.get_index(k))
            .collect();
        let st = s.get_statistics();
        (
            dot(&y, &w),
            st.number_of_steps,
            st.number_of_error_test_failures,
        )
    });
    json!({
        "timing": timing,
        "loss": loss,
        "steps": steps,
        "rejected_steps": fails,
        "calls_per_solve": calls_per(&counts, mode),
    })
}

/// Closure calls of one solve: the counters ran over the first call and all
/// repetitions, so divide by the number of calls.
fn calls_per(counts: &Counts, mode: Mode) -> Value {
    let k = match mode {
        Mode::Bench { reps } => 1 + reps.max(1) as u64,
        Mode::Probe => 1,
    };
    let v = counts.json();
    let mut out = serde_json::Map::new();
    for (name, c) in v.as_object().unwrap() {
        out.insert(name.clone(), json!(c.as_u64().unwrap() / k));
    }
    Value::Object(out)
}

/// Continuous adjoint: forward solve with checkpointing, then diffsol's
/// backwards pass with the final-time loss gradient `dL/du(t1) = w` applied as
/// a discrete jump at `t1` (no output function; one cost functional).
fn run_adjoint(spec: &Spec, mode: Mode, param_error_control: bool, discrete: bool) -> Value {
    let net = spec.net;
    let u0 = net.default_u0();
    let u0_here = u0.clone();
    let w = net.loss_weights();
    let np = net.nparams();
    let counts = Rc::new(Counts::default());
    let (c1, c2, c3, c4) = (
        counts.clone(),
        counts.clone(),
        counts.clone(),
        counts.clone(),
    );
    let mut builder = OdeBuilder::<M>::new()
        .rtol(spec.tol)
        .atol([spec.tol])
        .p(net.default_params());
    if param_error_control {
        builder = builder.param_rtol(spec.tol).param_atol([spec.tol]);
    }
    let problem = builder
        .rhs_adjoint_implicit(
            move |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                bump(&c1.rhs);
                net.rhs(x, p, y)
            },
            move |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c2.jvp);
                net.jvp(x, p, v, y)
            },
            move |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c3.vjp);
                net.vjp_neg(x, p, v, y)
            },
            move |x: &[f64], _p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c4.sens_adj);
                net.sens_adj_neg(x, v, y)
            },
        )
        .init_adjoint(
            move |_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(&u0),
            // u0 does not depend on p.
            |_p: &[f64], _t: f64, _v: &[f64], y: &mut [f64]| y.fill(0.0),
            net.nstates(),
        )
        .build()
        .expect("adjoint problem builds");
    let ctx = *problem.context();
    let dgdu = M::from_vec(net.nstates(), 1, w.clone(), ctx);
    counts.reset();
    if discrete {
        // Reverse mode through the Tsit45 steps actually taken (StepVjp): save
        // the state after every step, then pull dL/du(t1) = w back through them.
        let (timing, (loss, grad, steps, fails)) = measure(mode, || {
            let tableau = match spec.euler_dt {
                Some(_) => euler_tableau(),
                None => Tableau::tsit45(),
            };
            let mut state = problem.rk_state(&tableau).expect("rk state");
            if let Some(dt) = spec.euler_dt {
                *state.as_mut().h = dt;
            }
            let mut s = problem
                .explicit_rk_solver::<M>(state, tableau)
                .expect("explicit rk solver");
            if spec.euler_dt.is_some() {
                // The error estimate is zero, so the step would grow by the
                // maximum factor: pin it to 1 to keep h = dt.
                s.config_mut().maximum_timestep_growth = 1.0;
            }
            s.set_stop_time(spec.t1).expect("stop time");
            let mut ends = Vec::new();
            loop {
                let r = s.step().expect("forward step");
                ends.push(s.state_clone());
                match r {
                    OdeSolverStopReason::TstopReached => break,
                    OdeSolverStopReason::InternalTimestep => {}
                    OdeSolverStopReason::RootFound(..) => unreachable!("no roots"),
                }
            }
            let y: Vec<f64> = (0..net.nstates())
                .map(|k| s.state().y.get_index(k))
                .collect();
            let st = s.get_statistics();
            let (steps, fails) = (st.number_of_steps, st.number_of_error_test_failures);
            let mut cot = s.state_clone().zeros_like();
            for (k, wk) in w.iter().enumerate() {
                cot.as_mut().y.set_index(k, *wk);
            }
            let mut p_bar = diffsol::NalgebraVec::<f64>::zeros(np, ctx);
            for end in ends.iter().rev() {
                s.step_vjp(end, &mut cot, &mut p_bar).expect("step vjp");
            }
            // The first step starts from dy0 = f(u0, p), computed when the
            // solver was made (first-same-as-last), not by a step: pull the
            // remaining dy cotangent back through it, p_bar += F_pᵀ dy_bar.
            let dy_bar: Vec<f64> = (0..net.nstates())
                .map(|k| cot.as_ref().dy.get_index(k))
                .collect();
            let mut neg = vec![0.0; np];
            net.sens_adj_neg(&u0_here, &dy_bar, &mut neg);
            let grad: Vec<f64> = (0..np).map(|k| p_bar.get_index(k) - neg[k]).collect();
            (dot(&y, &w), grad, steps, fails)
        });
        return json!({
            "timing": timing,
            "loss": loss,
            "gradient": grad,
            "forward_steps": steps,
            "forward_rejected_steps": fails,
            "what": format!("diffsol StepVjp: reverse mode through the accepted {} steps (step sizes held fixed), every step's end state stored; plus F_p^T dy_bar for the initial FSAL stage dy0 = f(u0, p), which no step computes", if spec.euler_dt.is_some() { "emulated Euler dt = 0.01" } else { "Tsit45" }),
            "calls_per_gradient": calls_per(&counts, mode),
        });
    }
    counts.reset();
    let (timing, (loss, grad, steps, fails)) = measure(mode, || {
        let mut s = problem.tsit45().expect("tsit45 solver");
        let (checkpoints, _ys, _ts, _stop) = s
            .solve_with_checkpointing(spec.t1, None)
            .expect("forward solve with checkpointing");
        let y: Vec<f64> = (0..net.nstates())
            .map(|k| s.state().y.get_index(k))
            .collect();
        let st = s.get_statistics();
        let (steps, fails) = (st.number_of_steps, st.number_of_error_test_failures);
        let adjoint = problem
            .tsit45_solver_adjoint(checkpoints, Some(s), Some(1))
            .expect("adjoint solver");
        let (state, _) = adjoint
            .solve_adjoint_backwards_pass(&[spec.t1], &[&dgdu])
            .expect("adjoint backwards pass");
        let sg = state.as_ref().sg;
        let grad: Vec<f64> = (0..np).map(|k| sg.get_index(k)).collect();
        (dot(&y, &w), grad, steps, fails)
    });
    json!({
        "timing": timing,
        "loss": loss,
        "gradient": grad,
        "forward_steps": steps,
        "forward_rejected_steps": fails,
        "param_quadrature_in_error_control": param_error_control,
        "note": "diffsol's continuous adjoint interpolates the forward state between checkpointed steps (cubic Hermite); the loss enters as a jump dL/du(t1) at t1 with no output function, so param_rtol/param_atol do not apply (diffsol error-controls the parameter quadrature only for problems with an output function)",
        "calls_per_gradient": calls_per(&counts, mode),
    })
}

/// Forward sensitivities: the state and the `n_p` sensitivity vectors in one
/// Tsit45 solve; `dL/dp_j = w · s_j(t1)`.
fn run_forward_sens(spec: &Spec, mode: Mode, sens_error_control: bool) -> Value {
    let net = spec.net;
    let u0 = net.default_u0();
    let w = net.loss_weights();
    let np = net.nparams();
    let counts = Rc::new(Counts::default());
    let (c1, c2, c3) = (counts.clone(), counts.clone(), counts.clone());
    let mut builder = OdeBuilder::<M>::new()
        .rtol(spec.tol)
        .atol([spec.tol])
        .p(net.default_params());
    if sens_error_control {
        builder = builder.sens_rtol(spec.tol).sens_atol([spec.tol]);
    }
    let problem = builder
        .rhs_sens_implicit(
            move |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                bump(&c1.rhs);
                net.rhs(x, p, y)
            },
            move |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c2.jvp);
                net.jvp(x, p, v, y)
            },
            move |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                bump(&c3.sens);
                net.sens(x, p, v, y)
            },
        )
        .init_sens(
            move |_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(&u0),
            |_p: &[f64], _t: f64, _v: &[f64], y: &mut [f64]| y.fill(0.0),
            net.nstates(),
        )
        .build()
        .expect("sensitivity problem builds");
    counts.reset();
    let (timing, (loss, grad, steps, fails)) = measure(mode, || {
        let mut s = problem.tsit45_sens().expect("tsit45 sens solver");
        let (ys, sens, _stop) = s
            .solve_dense_sensitivities(&[spec.t1])
            .expect("forward sensitivities");
        let y: Vec<f64> = (0..net.nstates()).map(|k| ys.get_index(k, 0)).collect();
        let grad: Vec<f64> = (0..np)
            .map(|j| {
                (0..net.nstates())
                    .map(|k| w[k] * sens[j].get_index(k, 0))
                    .sum()
            })
            .collect();
        let st = s.get_statistics();
        (
            dot(&y, &w),
            grad,
            st.number_of_steps,
            st.number_of_error_test_failures,
        )
    });
    json!({
        "timing": timing,
        "loss": loss,
        "gradient": grad,
        "steps": steps,
        "rejected_steps": fails,
        "sensitivities_in_error_control": sens_error_control,
        "calls_per_gradient": calls_per(&counts, mode),
    })
}

// ---------------------------------------------------------------------------
// Cases, memory probes in child processes, the reference, main.
// ---------------------------------------------------------------------------

fn spec_of(problem: &str) -> Spec {
    if problem == "hh_dopri5_final" {
        return Spec {
            net: Net::hh(),
            t1: 600.0,
            tol: 1e-8,
            euler_dt: None,
        };
    }
    if problem == "hh_seed_final" {
        return Spec {
            net: Net::hh(),
            t1: 600.0,
            tol: 1e-8,
            euler_dt: Some(0.01),
        };
    }
    let n: usize = problem
        .strip_prefix("hh_network_")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unknown problem {problem}"));
    Spec {
        net: Net::network(n),
        t1: 100.0,
        tol: 1e-8,
        euler_dt: None,
    }
}

/// `run` names: forward | adjoint | adjoint_param_ec | step_vjp | fsens | fsens_ec
/// | euler_forward | euler_step_vjp.
fn run_case(problem: &str, run: &str, mode: Mode) -> Value {
    let mut spec = spec_of(problem);
    match run {
        // revode's Euler dt = 0.01 fixtures, emulated (see euler_tableau).
        "euler_forward" => {
            spec.euler_dt = Some(0.01);
            run_forward(&spec, mode)
        }
        "euler_step_vjp" => {
            spec.euler_dt = Some(0.01);
            run_adjoint(&spec, mode, false, true)
        }
        "forward" => run_forward(&spec, mode),
        "adjoint" => run_adjoint(&spec, mode, false, false),
        "adjoint_param_ec" => run_adjoint(&spec, mode, true, false),
        "step_vjp" => run_adjoint(&spec, mode, false, true),
        "fsens" => run_forward_sens(&spec, mode, false),
        "fsens_ec" => run_forward_sens(&spec, mode, true),
        _ => panic!("unknown run {run}"),
    }
}

/// Peak-RSS growth of one call, measured in a fresh child process (so that
/// memory the allocator kept from earlier runs cannot hide it).
fn probe_memory(problem: &str, run: &str) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--probe", problem, run])
        .output()
        .expect("probe child runs");
    if !out.status.success() {
        return json!({ "error": String::from_utf8_lossy(&out.stderr).to_string() });
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.get("timing").cloned())
        .unwrap_or(Value::Null)
}

/// revode's Euler dt = 0.01 discrete gradient of `hh_seed` (what the
/// emulated Euler should reproduce).
fn reference_euler() -> (f64, Vec<f64>) {
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).expect("grid");
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let g = gradient_fixed(&model, &problem, &loss, Schedule::All).expect("euler gradient");
    (g.loss, g.gradient)
}

/// revode's exact discrete adjoint of RK4 at dt = 5e-4 on [0, 600].
fn reference_hh() -> (f64, Vec<f64>, f64) {
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 5e-4).expect("grid");
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let t = Instant::now();
    let g = gradient_fixed(&model, &problem, &loss, Schedule::Every(1100)).expect("reference");
    (g.loss, g.gradient, t.elapsed().as_secs_f64())
}

fn rel_error(g: &Value, reference: &[f64]) -> Value {
    let Some(g) = g.get("gradient").and_then(|v| v.as_array()) else {
        return Value::Null;
    };
    let g: Vec<f64> = g.iter().filter_map(|v| v.as_f64()).collect();
    let num: f64 = g
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let den: f64 = reference.iter().map(|b| b * b).sum();
    let per: Vec<f64> = g
        .iter()
        .zip(reference)
        .map(|(a, b)| ((a - b) / b).abs())
        .collect();
    json!({ "l2": (num / den).sqrt(), "per_parameter": per })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--probe") {
        let v = run_case(&args[1], &args[2], Mode::Probe);
        println!("{v}");
        return;
    }
    let mut reps = 11usize;
    let mut max_n = 100usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().and_then(|s| s.parse().ok()).expect("--reps N"),
            "--max-n" => max_n = it.next().and_then(|s| s.parse().ok()).expect("--max-n N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let mode = Mode::Bench { reps };
    let mut problems = serde_json::Map::new();

    // 1. hh_dopri5_final.
    let runs = ["forward", "adjoint", "step_vjp", "fsens", "fsens_ec"];
    let (ref_loss, reference, ref_seconds) = reference_hh();
    let mut hh = serde_json::Map::new();
    for run in runs {
        eprintln!("hh_dopri5_final: {run}");
        let mut v = run_case("hh_dopri5_final", run, mode);
        v["peak_memory"] = probe_memory("hh_dopri5_final", run);
        if run != "forward" {
            v["rel_error"] = rel_error(&v, &reference);
        }
        hh.insert(run.to_string(), v);
    }
    hh.insert(
        "reference_gradient".into(),
        json!({
            "what": "revode gradient_fixed: exact discrete adjoint of RK4, dt = 5e-4 on [0, 600], Schedule::Every(1100)",
            "loss": ref_loss,
            "gradient": reference,
            "seconds": ref_seconds,
        }),
    );
    hh.insert(
        "setup".into(),
        json!({
            "method": "diffsol Tsit45 (explicit adaptive RK 5(4), Tsitouras)",
            "rtol": 1e-8, "atol": 1e-8, "tspan": [0.0, 600.0],
            "loss": "sum of the 4 final state components",
            "params": ["g_Na", "g_Kd", "g_leak"],
        }),
    );
    problems.insert("hh_dopri5_final".into(), Value::Object(hh));

    // 2. hh_seed_final: fixed-step explicit Euler, not offered; emulated.
    let euler_ref = reference_euler();
    let mut emu = run_case("hh_seed_final", "step_vjp", mode);
    emu["peak_memory"] = probe_memory("hh_seed_final", "step_vjp");
    emu["rel_error_vs_revode_euler_discrete_gradient"] = rel_error(&emu, &euler_ref.1);
    emu["rel_error_vs_reference_gradient"] = rel_error(&emu, &reference);
    problems.insert(
        "hh_seed_final".into(),
        json!({
            "status": "not offered",
            "why": "diffsol 0.18 has no fixed-step method: its solvers are adaptive (Bdf, Sdirk with tr_bdf2/esdirk34, ExplicitRk with tsit45).",
            "emulation": {
                "how": "ExplicitRk with a custom Tableau (explicit Euler written first-same-as-last: c = [0, 1], a = [[0, 0], [1, 0]], b = [1, 0], zero error estimate), initial step h = 0.01, maximum_timestep_growth = 1, stop time 600; gradient by StepVjp through all steps (plus F_p^T dy_bar at u0)",
                "revode_euler_discrete_gradient": {"loss": euler_ref.0, "gradient": euler_ref.1},
                "result": emu,
            },
        }),
    );

    // 3. hh_network_N with Tsit45 at 1e-8 (Euler is not offered).
    for n in [10usize, 50, 100].into_iter().filter(|&n| n <= max_n) {
        let name = format!("hh_network_{n}");
        let mut v = serde_json::Map::new();
        v.insert(
            "setup".into(),
            json!({
                "method": "forward, adjoint, step_vjp, fsens: diffsol Tsit45 at rtol = atol = 1e-8 (NOT the Euler dt = 0.01 of revode's fixture); euler_forward, euler_step_vjp: Euler dt = 0.01 emulated with a custom tableau (diffsol offers no fixed-step Euler), gradient by StepVjp",
                "tspan": [0.0, 100.0],
                "n_states": 4 * n, "n_params": 3 * n + n * n,
                "loss": "sum of E_i(100)",
            }),
        );
        let net_runs: &[&str] = if n <= 10 {
            &[
                "forward",
                "adjoint",
                "step_vjp",
                "fsens",
                "euler_forward",
                "euler_step_vjp",
            ]
        } else {
            // Forward sensitivities carry n_p = 3N + N² vectors of length 4N.
            &[
                "forward",
                "adjoint",
                "step_vjp",
                "euler_forward",
                "euler_step_vjp",
            ]
        };
        for run in net_runs {
            eprintln!("{name}: {run}");
            let net_reps = if *run == "fsens" {
                reps.min(3)
            } else {
                reps.min(5)
            };
            let mut r = run_case(&name, run, Mode::Bench { reps: net_reps });
            r["peak_memory"] = probe_memory(&name, run);
            r["reps_note"] = json!("networks: at most 5 repetitions (3 for forward sensitivities)");
            v.insert(run.to_string(), r);
        }
        problems.insert(name, Value::Object(v));
    }

    let out = json!({
        "peer": "diffsol",
        "diffsol_version": "0.18.0",
        "diffsol_features": "default-features = false, features = [\"nalgebra\"] (diffsol-la/nl still pull faer in)",
        "linear_algebra": "NalgebraMat<f64> / NalgebraVec<f64> (dense)",
        "jacobian_products": "hand-written in peer_diffsol.rs from docs/models/hh.md; rates use revode's exprel_inv/exprel_inv_deriv (removable 0/0 handled); checked against revode's HodgkinHuxley rhs/vjp, see self_check",
        "timing": "wall time per call in ms; first call, then min/median of the repetitions after it",
        "peak_memory_method": "VmHWM growth (KiB) over one call in a fresh child process (VmHWM after minus VmHWM before the call, problem already built)",
        "self_check": self_check(),
        "problems": problems,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
