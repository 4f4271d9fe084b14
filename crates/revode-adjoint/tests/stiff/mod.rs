//! A stiff test model with known derivatives: a linear stiff system with a
//! closed-form solution and gradient (Robertson's kinetics: revode_testing).
#![allow(dead_code)]

use revode_model::{Dims, Model};

/// u1' = −a u1 + b u2, u2' = −c u2 with c ≫ a: stiff, linear, and solved in
/// closed form (`linear_exact`). Parameters (a, b, c).
#[derive(Debug, Clone, Copy)]
pub struct StiffLinear;

impl Model for StiffLinear {
    type Work = ();
    fn name(&self) -> &str {
        "stiff_linear"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 3,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["u1".into(), "u2".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 2.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.5, 3.0, 1e4]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = -p[0] * u[0] + p[1] * u[1];
        du[1] = -p[2] * u[1];
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
        out[1] = p[1] * l[0] - p[2] * l[1];
        acc[0] += alpha * (-u[0] * l[0]);
        acc[1] += alpha * u[1] * l[0];
        acc[2] += alpha * (-u[1] * l[1]);
    }
}

/// u(T) of [`StiffLinear`] and the gradient of w·u(T) with respect to
/// (a, b, c) and u0, differentiated by hand:
/// u2 = u20 e^{−cT}, u1 = u10 e^{−aT} + b u20 (e^{−aT} − e^{−cT})/(c − a).
pub fn linear_exact(p: &[f64], u0: &[f64], w: &[f64], t: f64) -> ([f64; 2], [f64; 3], [f64; 2]) {
    let (a, b, c) = (p[0], p[1], p[2]);
    let (ea, ec) = ((-a * t).exp(), (-c * t).exp());
    let d = c - a;
    let g = (ea - ec) / d;
    let u = [u0[0] * ea + b * u0[1] * g, u0[1] * ec];
    // ∂g/∂a = (−T e^{−aT})/d + (ea − ec)/d², ∂g/∂c = (T e^{−cT})/d − (ea − ec)/d².
    let dg_da = -t * ea / d + g / d;
    let dg_dc = t * ec / d - g / d;
    let du1 = [
        -t * u0[0] * ea + b * u0[1] * dg_da,
        u0[1] * g,
        b * u0[1] * dg_dc,
    ];
    let du2 = [0.0, 0.0, -t * u0[1] * ec];
    let dp = [
        w[0] * du1[0] + w[1] * du2[0],
        w[0] * du1[1] + w[1] * du2[1],
        w[0] * du1[2] + w[1] * du2[2],
    ];
    let du0 = [w[0] * ea, w[0] * b * g + w[1] * ec];
    (u, dp, du0)
}
