//! A test model with an event, its derivatives written by hand.
#![allow(dead_code)]

use revode_model::{Dims, Model};

/// Leaky integrate-and-fire with adaptation:
/// v' = (I − v − w)/τ, w' = −w/τ_w; when v crosses θ upward,
/// v ← v_r and w ← w + b. Parameters [I, τ, τ_w, θ, v_r, b].
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveLif;

impl Model for AdaptiveLif {
    type Work = ();
    fn name(&self) -> &str {
        "adaptive_lif"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2,
            n_params: 6,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["v".into(), "w".into()]
    }
    fn param_names(&self) -> Vec<String> {
        ["I", "tau", "tau_w", "theta", "v_r", "b"]
            .map(String::from)
            .to_vec()
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![1.5, 10.0, 30.0, 1.0, 0.0, 0.0]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = (p[0] - u[0] - u[1]) / p[1];
        du[1] = -u[1] / p[2];
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
        out[0] = -l[0] / p[1];
        out[1] = -l[0] / p[1] - l[1] / p[2];
        acc[0] += alpha * l[0] / p[1];
        acc[1] += alpha * -(p[0] - u[0] - u[1]) / (p[1] * p[1]) * l[0];
        acc[2] += alpha * u[1] / (p[2] * p[2]) * l[1];
    }
    fn n_events(&self) -> usize {
        1
    }
    fn event_direction(&self, _e: usize) -> i8 {
        1
    }
    fn event_value(&self, _e: usize, u: &[f64], p: &[f64], _w: &mut ()) -> f64 {
        u[0] - p[3]
    }
    fn event_gradient(
        &self,
        _e: usize,
        _u: &[f64],
        _p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        _w: &mut (),
    ) {
        du.copy_from_slice(&[1.0, 0.0]);
        dp.fill(0.0);
        dp[3] = -1.0;
    }
    fn event_reset(&self, _e: usize, u: &[f64], p: &[f64], out: &mut [f64], _w: &mut ()) {
        out[0] = p[4];
        out[1] = u[1] + p[5];
    }
    fn event_reset_vjp(
        &self,
        _e: usize,
        _u: &[f64],
        _p: &[f64],
        l: &[f64],
        out: &mut [f64],
        acc: &mut [f64],
        _w: &mut (),
    ) {
        out[0] = 0.0;
        out[1] = l[1];
        acc[4] += l[0];
        acc[5] += l[1];
    }
}

/// Leaky integrate-and-fire with two events: v' = (I − v)/τ; when v
/// crosses θ_k upward it is kicked, v ← v + k; when it crosses θ upward it
/// is reset, v ← v_r. Parameters [I, τ, θ, v_r, θ_k, k]; event 0 is the
/// reset, event 1 the kick.
#[derive(Debug, Clone, Copy)]
pub struct KickedLif;

impl Model for KickedLif {
    type Work = ();
    fn name(&self) -> &str {
        "kicked_lif"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 1,
            n_params: 6,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["v".into()]
    }
    fn param_names(&self) -> Vec<String> {
        ["I", "tau", "theta", "v_r", "theta_k", "k"]
            .map(String::from)
            .to_vec()
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![0.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![1.5, 10.0, 1.0, 0.0, 0.5, 0.2]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        du[0] = (p[0] - u[0]) / p[1];
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
        out[0] = -l[0] / p[1];
        acc[0] += alpha * l[0] / p[1];
        acc[1] += alpha * -(p[0] - u[0]) / (p[1] * p[1]) * l[0];
    }
    fn n_events(&self) -> usize {
        2
    }
    fn event_direction(&self, _e: usize) -> i8 {
        1
    }
    fn event_value(&self, e: usize, u: &[f64], p: &[f64], _w: &mut ()) -> f64 {
        u[0] - if e == 0 { p[2] } else { p[4] }
    }
    fn event_gradient(
        &self,
        e: usize,
        _u: &[f64],
        _p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        _w: &mut (),
    ) {
        du[0] = 1.0;
        dp.fill(0.0);
        dp[if e == 0 { 2 } else { 4 }] = -1.0;
    }
    fn event_reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], _w: &mut ()) {
        out[0] = if e == 0 { p[3] } else { u[0] + p[5] };
    }
    fn event_reset_vjp(
        &self,
        e: usize,
        _u: &[f64],
        _p: &[f64],
        l: &[f64],
        out: &mut [f64],
        acc: &mut [f64],
        _w: &mut (),
    ) {
        if e == 0 {
            out[0] = 0.0;
            acc[3] += l[0];
        } else {
            out[0] = l[0];
            acc[5] += l[0];
        }
    }
}
