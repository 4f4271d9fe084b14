//! The discrete adjoint of a fixed step that holds events.
//!
//! The step is replayed from u_k ([`EventStepper::step`], bitwise the
//! forward's), then its pieces are differentiated in reverse. A piece j from
//! (τ_j, x_j) of length H_j = t_k + h − τ_j whose event fires at σ_j maps
//! x_j to x_{j+1} = R(P_j(σ_j)), with P_j the step's interpolant and σ_j the
//! root of g(P_j(σ)) = 0; the last piece is a plain step. Both P_j(σ) and
//! the step are `x + Σ β_i k_i` over the same stages, so one routine
//! differentiates both, with respect to x, p and H. The event time is
//! differentiated by the implicit function theorem: with σ̄ the adjoint of
//! σ_j, μ = −σ̄ / (∇g · P_j′(σ_j)) and the interpolant's adjoint gains
//! μ ∇_u g (the parameters μ ∇_p g). Derivation: docs/events.md.

use revode_forward::events::{hermite, hermite_slopes, Piece};
use revode_forward::{EventStepper, FixedMethod, FixedStepper, ForwardError};
use revode_model::Model;

use crate::loss::dot;

/// RK4's sub-diagonal a_{i+1,i} and stage times c_i.
const RK4_A_SUB: [f64; 3] = [0.5, 0.5, 1.0];
const RK4_C: [f64; 4] = [0.0, 0.5, 0.5, 1.0];
const RK4_B: [f64; 4] = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];

/// Buffers for the adjoint of steps with events (made once per solve).
#[derive(Debug, Clone)]
pub struct EventAdjointStepper {
    replay: EventStepper,
    stages: FixedStepper,
    next: Vec<f64>,
    /// Adjoint of the state before an event.
    before_bar: Vec<f64>,
    /// Seed of the stage adjoint.
    q_bar: Vec<f64>,
    /// Adjoint of the interpolant's value.
    interp_bar: Vec<f64>,
    /// f(y) at the full step's end (RK4's Hermite interpolant).
    f_y: Vec<f64>,
    tmp: Vec<f64>,
    slope: Vec<f64>,
    g_u: Vec<f64>,
    g_p: Vec<f64>,
    w: Vec<f64>,
    v: Vec<f64>,
    sum: Vec<f64>,
}

impl EventAdjointStepper {
    pub fn new<M: Model>(method: FixedMethod, model: &M) -> Self {
        let dims = model.dims();
        let n = dims.n_states;
        EventAdjointStepper {
            replay: EventStepper::new(method, model),
            stages: FixedStepper::new(method, n),
            next: vec![0.0; n],
            before_bar: vec![0.0; n],
            q_bar: vec![0.0; n],
            interp_bar: vec![0.0; n],
            f_y: vec![0.0; n],
            tmp: vec![0.0; n],
            slope: vec![0.0; n],
            g_u: vec![0.0; n],
            g_p: vec![0.0; dims.n_params],
            w: vec![0.0; n],
            v: vec![0.0; n],
            sum: vec![0.0; n],
        }
    }

    /// In place: `lambda ← (∂u_{k+1}/∂u_k)ᵀ lambda`, `grad_p += (∂u_{k+1}/∂p)ᵀ lambda`
    /// for the step from `u` at `t` of length `h`, events included.
    /// `time_seed(e)` is ∂L/∂t* of each event of the step, asked in
    /// reverse time order (0 when the loss does not see event times).
    /// Returns the number of events in the step.
    #[allow(clippy::too_many_arguments)]
    pub fn step_back<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
        mut time_seed: impl FnMut(usize) -> f64,
    ) -> Result<usize, ForwardError> {
        let EventAdjointStepper {
            replay,
            stages,
            next,
            before_bar,
            q_bar,
            interp_bar,
            f_y,
            tmp,
            slope,
            g_u,
            g_p,
            w,
            v,
            sum,
        } = self;
        replay.step(model, t, h, u, p, next, work)?;
        let method = replay.method();
        let mut buffers = StageAdjoint { q_bar, w, v, sum };
        // Adjoint of the start time of the piece after the current one.
        let mut tau_bar = 0.0;
        for j in (0..replay.segments().len()).rev() {
            let seg = replay.segments()[j];
            let x = replay.start_state(j);
            // The replay's own stepper still holds the last piece's stages
            // (the only piece of a step without events): recompute the others.
            let (stages, next): (&FixedStepper, &[f64]) = if j + 1 == replay.segments().len() {
                (replay.stepper(), replay.end_state())
            } else {
                stages.step(model, seg.tau, seg.h, x, p, next, work);
                (stages, next)
            };
            tau_bar = match seg.event {
                None => {
                    let (beta, d_beta) = full_step_weights(method, seg.h);
                    buffers.q_bar.copy_from_slice(lambda);
                    let h_bar = buffers.back(
                        model, stages, seg.tau, seg.h, x, p, beta, d_beta, lambda, grad_p, work,
                    );
                    // H_j = t + h − τ_j.
                    -h_bar
                }
                Some(e) => {
                    let next_tau_bar = tau_bar + time_seed(e);
                    let before = replay.state_before(j);
                    model.event_reset_vjp(e, before, p, lambda, before_bar, grad_p, work);
                    if method == FixedMethod::Rk4 {
                        model.rhs(seg.tau + seg.h, next, p, f_y, work);
                    }
                    let piece = Piece {
                        interpolant: method.into(),
                        x,
                        k1: &stages.slopes()[0],
                        y: next,
                        f_y,
                        len: seg.h,
                    };
                    piece.slope(seg.sigma, slope);
                    crossing_back(
                        model,
                        e,
                        before,
                        p,
                        slope,
                        next_tau_bar,
                        before_bar,
                        [g_u, g_p],
                        interp_bar,
                        grad_p,
                        work,
                    );
                    let h_bar = match method {
                        FixedMethod::Euler => {
                            // u(σ) = x + σ f(x): no dependence on the length.
                            buffers.q_bar.copy_from_slice(interp_bar);
                            let beta = [seg.sigma, 0.0, 0.0, 0.0];
                            buffers.back(
                                model, stages, seg.tau, seg.h, x, p, beta, [0.0; 4], lambda,
                                grad_p, work,
                            )
                        }
                        FixedMethod::Rk4 => {
                            let (len, theta) = (seg.h, seg.sigma / seg.h);
                            let [h00, h10, h01, h11] = hermite(theta);
                            let [d00, d10, d01, d11] = hermite_slopes(theta);
                            let k1 = &stages.slopes()[0];
                            // ∂u(σ)/∂len at fixed σ, x, y, f(x), f(y).
                            let mut h_bar = 0.0;
                            for i in 0..x.len() {
                                let d = -theta / len * (d00 * x[i] + d01 * next[i])
                                    + (h10 - theta * d10) * k1[i]
                                    + (h11 - theta * d11) * f_y[i];
                                h_bar += interp_bar[i] * d;
                            }
                            // f(y) and f(x) terms.
                            for (t, q) in tmp.iter_mut().zip(interp_bar.iter()) {
                                *t = len * h11 * q;
                            }
                            model.vjp(
                                seg.tau + len,
                                next,
                                p,
                                tmp,
                                buffers.q_bar,
                                1.0,
                                grad_p,
                                work,
                            );
                            for (y_bar, q) in buffers.q_bar.iter_mut().zip(interp_bar.iter()) {
                                *y_bar += h01 * q;
                            }
                            for (t, q) in tmp.iter_mut().zip(interp_bar.iter()) {
                                *t = len * h10 * q;
                            }
                            model.vjp(seg.tau, x, p, tmp, slope, 1.0, grad_p, work);
                            // Through y = x + len Σ b_i k_i.
                            let (beta, d_beta) = full_step_weights(method, len);
                            h_bar += buffers.back(
                                model, stages, seg.tau, len, x, p, beta, d_beta, lambda, grad_p,
                                work,
                            );
                            for i in 0..x.len() {
                                lambda[i] += h00 * interp_bar[i] + slope[i];
                            }
                            h_bar
                        }
                    };
                    // τ_{j+1} = τ_j + σ_j at fixed σ_j, and H_j = t + h − τ_j.
                    next_tau_bar - h_bar
                }
            };
        }
        Ok(replay.events_in_step())
    }
}

/// The stage adjoint's buffers, borrowed from [`EventAdjointStepper`].
struct StageAdjoint<'a> {
    q_bar: &'a mut [f64],
    w: &'a mut [f64],
    v: &'a mut [f64],
    sum: &'a mut [f64],
}

impl StageAdjoint<'_> {
    /// For `q = x + Σ β_i k_i` over the stages of the step from `x` of
    /// length `len` (in `stages`), with adjoint `self.q_bar`:
    /// `x_bar ← (∂q/∂x)ᵀ q̄`, `grad_p += (∂q/∂p)ᵀ q̄`; returns `∂(q̄·q)/∂len`
    /// at fixed σ (`d_beta` = ∂β/∂len).
    #[allow(clippy::too_many_arguments)]
    fn back<M: Model>(
        &mut self,
        model: &M,
        stages: &FixedStepper,
        tau: f64,
        len: f64,
        x: &[f64],
        p: &[f64],
        beta: [f64; 4],
        d_beta: [f64; 4],
        x_bar: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
    ) -> f64 {
        let StageAdjoint { q_bar, w, v, sum } = self;
        let k = stages.slopes();
        match stages.method() {
            FixedMethod::Euler => {
                for (wj, q) in w.iter_mut().zip(q_bar.iter()) {
                    *wj = beta[0] * q;
                }
                let h_bar = d_beta[0] * dot(q_bar, &k[0]);
                model.vjp(tau, x, p, w, v, 1.0, grad_p, work);
                for ((xb, q), vj) in x_bar.iter_mut().zip(q_bar.iter()).zip(v.iter()) {
                    *xb = q + vj;
                }
                h_bar
            }
            FixedMethod::Rk4 => {
                let stage_states = stages.stage_states();
                sum.fill(0.0);
                let mut h_bar = 0.0;
                for i in (0..4).rev() {
                    h_bar += d_beta[i] * dot(q_bar, &k[i]);
                    if i == 3 {
                        for (wj, q) in w.iter_mut().zip(q_bar.iter()) {
                            *wj = beta[i] * q;
                        }
                    } else {
                        // U_{i+1} = x + len a_{i+1,i} k_i, and v = Ū_{i+1}.
                        h_bar += RK4_A_SUB[i] * dot(v, &k[i]);
                        let ha = len * RK4_A_SUB[i];
                        for j in 0..w.len() {
                            w[j] = beta[i] * q_bar[j] + ha * v[j];
                        }
                    }
                    let stage_u: &[f64] = if i == 0 { x } else { &stage_states[i - 1] };
                    model.vjp(tau + RK4_C[i] * len, stage_u, p, w, v, 1.0, grad_p, work);
                    for (s, vj) in sum.iter_mut().zip(v.iter()) {
                        *s += vj;
                    }
                }
                for ((xb, q), s) in x_bar.iter_mut().zip(q_bar.iter()).zip(sum.iter()) {
                    *xb = q + s;
                }
                h_bar
            }
        }
    }
}

/// The crossing of event `e` on the way back (docs/events.md), shared by
/// the explicit and backward-Euler event steps. The state `before` the
/// reset lies on the step's interpolant at σ, which moves along `slope`
/// (u'(σ)) as σ moves, and σ moves with u and p so that g(u(σ), p) stays
/// 0. With `before_bar` the adjoint of `before` and `tau_bar` that of the
/// event time: μ = −(τ̄ + before_bar·slope)/(∇_u g·slope), `interp_bar ←
/// before_bar + μ ∇_u g` (the adjoint of the interpolant at σ) and
/// `grad_p += μ ∂g/∂p`; `g_u`, `g_p` are scratch for g's gradients.
#[allow(clippy::too_many_arguments)]
pub(crate) fn crossing_back<M: Model>(
    model: &M,
    e: usize,
    before: &[f64],
    p: &[f64],
    slope: &[f64],
    tau_bar: f64,
    before_bar: &[f64],
    [g_u, g_p]: [&mut [f64]; 2],
    interp_bar: &mut [f64],
    grad_p: &mut [f64],
    work: &mut M::Work,
) {
    model.event_gradient(e, before, p, g_u, g_p, work);
    let g_rate = dot(g_u, slope);
    let sigma_bar = tau_bar + dot(before_bar, slope);
    let mu = -sigma_bar / g_rate;
    for ((q, b), g) in interp_bar.iter_mut().zip(before_bar).zip(g_u.iter()) {
        *q = b + mu * g;
    }
    for (a, g) in grad_p.iter_mut().zip(g_p.iter()) {
        *a += mu * g;
    }
}

/// β and ∂β/∂len of the full step.
fn full_step_weights(method: FixedMethod, len: f64) -> ([f64; 4], [f64; 4]) {
    match method {
        FixedMethod::Euler => ([len, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
        FixedMethod::Rk4 => (RK4_B.map(|b| len * b), RK4_B),
    }
}
