//! Test models with known derivatives, independent of the built-in models.
#![allow(dead_code)]

use revode_model::{Dims, Model};

/// Nonlinear, non-autonomous 2-state model with 3 parameters:
/// du0 = p0 u0 − p1 u0 u1 + 0.1 sin t,  du1 = −p2 u1 + 0.5 u0 u1.
#[derive(Debug, Clone, Copy)]
pub struct Predator;

impl Model for Predator {
    type Work = ();
    fn name(&self) -> &str {
        "predator"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 3,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 0.5]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.8, 0.6, 0.4]
    }
    fn new_work(&self) {}
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = p[0] * u[0] - p[1] * u[0] * u[1] + 0.1 * t.sin();
        du[1] = -p[2] * u[1] + 0.5 * u[0] * u[1];
    }
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        _w: &mut (),
    ) {
        out[0] = (p[0] - p[1] * u[1]) * l[0] + 0.5 * u[1] * l[1];
        out[1] = -p[1] * u[0] * l[0] + (-p[2] + 0.5 * u[0]) * l[1];
        acc[0] += alpha * u[0] * l[0];
        acc[1] += alpha * (-u[0] * u[1]) * l[0];
        acc[2] += alpha * (-u[1]) * l[1];
    }
}

/// du/dt = −p0 u (one state), gradient known in closed form.
#[derive(Debug, Clone, Copy)]
pub struct Decay;

impl Model for Decay {
    type Work = ();
    fn name(&self) -> &str {
        "decay"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 1,
            n_params: 1,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["u".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["k".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![2.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.7]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = -p[0] * u[0];
    }
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        _w: &mut (),
    ) {
        out[0] = -p[0] * l[0];
        acc[0] += alpha * (-u[0]) * l[0];
    }
}

/// du/dt = A u with A = [[−p0, p1], [−p1, −p0]]: u(t) = e^{−p0 t} R(p1 t) u0,
/// R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]].
#[derive(Debug, Clone, Copy)]
pub struct Spiral;

impl Model for Spiral {
    type Work = ();
    fn name(&self) -> &str {
        "spiral"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 2,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["decay".into(), "omega".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 0.5]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.3, 2.0]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = -p[0] * u[0] + p[1] * u[1];
        du[1] = -p[1] * u[0] - p[0] * u[1];
    }
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        _w: &mut (),
    ) {
        out[0] = -p[0] * l[0] - p[1] * l[1];
        out[1] = p[1] * l[0] - p[0] * l[1];
        acc[0] += alpha * (-u[0] * l[0] - u[1] * l[1]);
        acc[1] += alpha * (u[1] * l[0] - u[0] * l[1]);
    }
}

/// Exact (L, dL/dp, dL/du0) of L = w · u(T) for [`Spiral`].
pub fn spiral_exact(p: &[f64], u0: &[f64], w: &[f64], t: f64) -> (f64, [f64; 2], [f64; 2]) {
    let (c, s) = ((p[1] * t).cos(), (p[1] * t).sin());
    let e = (-p[0] * t).exp();
    let u = [e * (c * u0[0] + s * u0[1]), e * (-s * u0[0] + c * u0[1])];
    let loss = w[0] * u[0] + w[1] * u[1];
    // d/dp1 of R(p1 t) u0 = t [[−s, c], [−c, −s]] u0
    let du_dw = [
        e * t * (-s * u0[0] + c * u0[1]),
        e * t * (-c * u0[0] - s * u0[1]),
    ];
    let grad_p = [-t * loss, w[0] * du_dw[0] + w[1] * du_dw[1]];
    // dL/du0 = e Rᵀ w
    let grad_u0 = [e * (c * w[0] - s * w[1]), e * (s * w[0] + c * w[1])];
    (loss, grad_p, grad_u0)
}
