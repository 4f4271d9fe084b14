//! The first step of a BDF start (or restart): long enough not to waste
//! steps, short enough that order 1 passes its error test (CVODE's
//! estimate: the second derivative from a difference of g along an Euler
//! step, a few passes, then half the step whose local error 1/2·h²·‖y''‖
//! would be 1).

use super::core::{error_weights, wrms, Corrector};
use crate::Tolerance;

/// Fraction of the distance to the next stop the first step may take.
const SPAN_FRACTION: f64 = 0.1;
/// Fraction of each component's size one Euler step may change it by.
const CHANGE_FRACTION: f64 = 0.1;
const PASSES: usize = 4;

/// Scratch of [`initial_step`] (made once).
#[derive(Debug, Clone)]
pub struct InitialStepWork {
    ewt: Vec<f64>,
    y1: Vec<f64>,
    f1: Vec<f64>,
}

impl InitialStepWork {
    pub fn new(len: usize) -> Self {
        InitialStepWork {
            ewt: vec![0.0; len],
            y1: vec![0.0; len],
            f1: vec![0.0; len],
        }
    }

    pub fn buffer_bytes(&self) -> usize {
        3 * self.ewt.len() * std::mem::size_of::<f64>()
    }
}

/// A first step from `(t, y)`, with `f0 = g(t, y)`, towards `t_out` (the
/// result has the sign of `t_out − t`), at most `bound` long. Costs up to
/// eight evaluations of g.
#[allow(clippy::too_many_arguments)]
pub fn initial_step<C: Corrector>(
    corrector: &mut C,
    t: f64,
    t_out: f64,
    y: &[f64],
    f0: &[f64],
    tol: &Tolerance,
    bound: f64,
    work: &mut InitialStepWork,
) -> f64 {
    let controlled = tol.controlled.min(y.len());
    let tdiff = t_out - t;
    let sign = if tdiff < 0.0 { -1.0 } else { 1.0 };
    let tdist = tdiff.abs();
    let tround = f64::EPSILON * t.abs().max(t_out.abs());
    if tdist < 2.0 * tround {
        return tdiff;
    }
    error_weights(y, tol, &mut work.ewt);
    let hlb = 100.0 * tround;
    let mut hub = (SPAN_FRACTION * tdist).min(bound);
    let mut hub_inv: f64 = 0.0;
    for i in 0..controlled {
        let scale = CHANGE_FRACTION * y[i].abs() + 1.0 / work.ewt[i];
        hub_inv = hub_inv.max(f0[i].abs() / scale);
    }
    if hub * hub_inv > 1.0 {
        hub = 1.0 / hub_inv;
    }
    if hub < hlb {
        // Tiny tolerances on a component that starts at 0 with a nonzero
        // slope: the bound would not move t. Take the smallest step that does.
        return sign * hlb;
    }
    let mut hg = (hlb * hub).sqrt();
    let mut hnew = hg;
    for pass in 1..=PASSES {
        // ‖y''‖ ≈ ‖(g(t + h, y + h f0) − f0)/h‖.
        let mut ydd = f64::NAN;
        for _ in 0..PASSES {
            let hs = sign * hg;
            for i in 0..y.len() {
                work.y1[i] = y[i] + hs * f0[i];
            }
            corrector.rhs(t + hs, &work.y1, &mut work.f1);
            for i in 0..y.len() {
                work.f1[i] = (work.f1[i] - f0[i]) / hs;
            }
            ydd = wrms(&work.f1, &work.ewt, controlled);
            if ydd.is_finite() {
                break;
            }
            hg *= 0.2;
        }
        if !ydd.is_finite() {
            hnew = hg;
            break;
        }
        hnew = if ydd * hub * hub > 2.0 {
            (2.0 / ydd).sqrt()
        } else {
            (hg * hub).sqrt()
        };
        if pass == PASSES {
            break;
        }
        let ratio = hnew / hg;
        if ratio > 0.5 && ratio < 2.0 {
            break;
        }
        if pass > 1 && ratio > 2.0 {
            hnew = hg;
            break;
        }
        hg = hnew;
    }
    sign * (0.5 * hnew).clamp(hlb, hub)
}
