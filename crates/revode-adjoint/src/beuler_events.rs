//! The discrete adjoint of a backward Euler step that holds events.
//!
//! The step is replayed from its chain state ([`BeulerEvents::step`] with a
//! stepper of its own, bitwise the forward's), then its pieces are
//! differentiated in reverse. Piece j from (τ_j, x_j) of length
//! H_j = t_k + h − τ_j solves y_j = x_j + H_j f(y_j) (at the grid time
//! τ_j + H_j). If its event fires at σ_j, x_{j+1} = R(P_j(σ_j)) with the
//! chord P_j(σ) = x_j + (σ/H_j)(y_j − x_j) and σ_j the root of
//! g(P_j(σ)) = 0 (implicit function theorem, as for Euler); the last piece
//! ends the step, u_{k+1} = y_m. Through y: w = (I − H J(y))⁻ᵀ ȳ gives
//! x̄ = w, H̄ = w·f(y), p̄ += H (∂f/∂p)ᵀ w ([`BeulerAdjoint::step_back`]).
//! Derivation: docs/events.md.

use revode_forward::events::Piece;
use revode_forward::{BackwardEuler, BeulerEvents, BeulerOptions, ForwardError, StepPlan};
use revode_model::Model;

use crate::beuler_adjoint::BeulerAdjoint;
use crate::events::crossing_back;
use crate::loss::dot;
use crate::GradientError;

/// Buffers for the adjoint of backward Euler steps with events (made once
/// per solve).
pub(crate) struct BeulerEventAdjoint<'m, M: Model> {
    stepper: BackwardEuler<'m, M>,
    replay: BeulerEvents,
    /// The replayed chain state k + 1.
    next: Vec<f64>,
    /// Adjoint of the state before an event.
    before_bar: Vec<f64>,
    /// Adjoint of the chord's value at σ.
    interp_bar: Vec<f64>,
    /// Adjoint of a piece's end y (becomes w).
    y_bar: Vec<f64>,
    slope: Vec<f64>,
    f_y: Vec<f64>,
    g_u: Vec<f64>,
    g_p: Vec<f64>,
}

impl<'m, M: Model> BeulerEventAdjoint<'m, M> {
    pub fn new(model: &'m M, options: BeulerOptions) -> Self {
        let dims = model.dims();
        let n = dims.n_states;
        let stepper = BackwardEuler::new(model, options);
        let next = vec![0.0; stepper.layout().len()];
        BeulerEventAdjoint {
            stepper,
            replay: BeulerEvents::new(model),
            next,
            before_bar: vec![0.0; n],
            interp_bar: vec![0.0; n],
            y_bar: vec![0.0; n],
            slope: vec![0.0; n],
            f_y: vec![0.0; n],
            g_u: vec![0.0; n],
            g_p: vec![0.0; dims.n_params],
        }
    }

    /// In place: `lambda ← (∂u_{k+1}/∂u_k)ᵀ lambda`, `grad_p += (∂u_{k+1}/∂p)ᵀ
    /// lambda` for step k of `plan` from the chain state `x`, events
    /// included; transposed solves by `back`. `time_seed(e)` is ∂L/∂t* of
    /// each event of the step, asked in reverse time order.
    #[allow(clippy::too_many_arguments)]
    pub fn step_back<P: StepPlan>(
        &mut self,
        model: &M,
        plan: &P,
        k: usize,
        x: &[f64],
        back: &mut BeulerAdjoint<'_, M>,
        lambda: &mut [f64],
        grad_p: &mut [f64],
        work: &mut M::Work,
        mut time_seed: impl FnMut(usize) -> f64,
    ) -> Result<(), GradientError> {
        let BeulerEventAdjoint {
            stepper,
            replay,
            next,
            before_bar,
            interp_bar,
            y_bar,
            slope,
            f_y,
            g_u,
            g_p,
        } = self;
        replay.step(stepper, model, plan, k, x, next, work)?;
        let p = plan.step(k).2;
        let t_next = plan.time(k + 1);
        let singular = |len: f64| {
            move |s: revode_forward::SingularMatrix| ForwardError::SingularIterationMatrix {
                t: t_next,
                step: k + 1,
                index: s.index,
                h: len,
            }
        };
        // Adjoint of the start time of the piece after the current one.
        let mut tau_bar = 0.0;
        for j in (0..replay.segments().len()).rev() {
            let seg = replay.segments()[j];
            let (x_j, y) = (replay.start_state(j), replay.end_state(j));
            let len = seg.h;
            // The first piece starts on the grid with the step's length:
            // neither its start time nor its length has an adjoint.
            let wants_len = j > 0;
            tau_bar = match seg.event {
                None => {
                    // u_{k+1} = y: lambda ← w.
                    back.step_back(model, t_next, len, y, p, lambda, grad_p, work)
                        .map_err(singular(len))?;
                    if wants_len {
                        model.rhs(t_next, y, p, f_y, work);
                        -dot(lambda, f_y)
                    } else {
                        0.0
                    }
                }
                Some(e) => {
                    let next_tau_bar = tau_bar + time_seed(e);
                    let before = replay.state_before(j);
                    model.event_reset_vjp(e, before, p, lambda, before_bar, grad_p, work);
                    let piece = Piece::chord(x_j, y, len);
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
                    // P = (1 − θ) x + θ y at fixed σ, θ = σ/H: ∂P/∂H = −(θ/H)(y − x)
                    // (= −θ slope) besides y's own dependence on H.
                    let theta = seg.sigma / len;
                    let mut h_bar = -theta * dot(interp_bar, slope);
                    for (yb, q) in y_bar.iter_mut().zip(interp_bar.iter()) {
                        *yb = theta * q;
                    }
                    back.step_back(model, t_next, len, y, p, y_bar, grad_p, work)
                        .map_err(singular(len))?;
                    if wants_len {
                        model.rhs(t_next, y, p, f_y, work);
                        h_bar += dot(y_bar, f_y);
                    }
                    for ((l, q), w) in lambda.iter_mut().zip(interp_bar.iter()).zip(y_bar.iter()) {
                        *l = (1.0 - theta) * q + w;
                    }
                    // τ_{j+1} = τ_j + σ_j at fixed σ_j, and H_j = t_k + h − τ_j.
                    next_tau_bar - h_bar
                }
            };
        }
        Ok(())
    }
}
