//! The continuous adjoint's jump at an event, shared by the dopri5 and BDF
//! adjoints (docs/events.md, "Events in dopri5"): with `a = (∂R/∂u)ᵀλ⁺`
//! and `c = −(a·f⁻ − λ⁺·f⁺ + s) / (∇g·f⁻)`,
//! `λ⁻ = a + c ∇_u g` and `μ += (∂R/∂p)ᵀλ⁺ + c ∇_p g`
//! (EventProp, Wunderlich & Pehle 2021; s: the loss's ∂L/∂t*).

use revode_model::Model;

use crate::loss::dot;

/// Scratch of the jump, made once.
pub(crate) struct EventJump {
    a: Vec<f64>,
    g_u: Vec<f64>,
    g_p: Vec<f64>,
    f_minus: Vec<f64>,
    f_plus: Vec<f64>,
}

impl EventJump {
    pub fn new<M: Model>(model: &M) -> Self {
        let dims = model.dims();
        let n = dims.n_states;
        EventJump {
            a: vec![0.0; n],
            g_u: vec![0.0; n],
            g_p: vec![0.0; dims.n_params],
            f_minus: vec![0.0; n],
            f_plus: vec![0.0; n],
        }
    }

    /// The jump of `z` = (λ⁺, μ) to (λ⁻, μ) at event `e`, with u⁻ = `u_minus`
    /// and `[f⁻, f⁺]` the right-hand sides just before and just after it;
    /// `params` are those of the event's condition and reset.
    #[allow(clippy::too_many_arguments)]
    pub fn apply<M: Model>(
        &mut self,
        model: &M,
        params: &[f64],
        e: usize,
        u_minus: &[f64],
        [f_minus, f_plus]: [&[f64]; 2],
        seed: f64,
        z: &mut [f64],
        work: &mut M::Work,
    ) {
        let n = u_minus.len();
        let (lambda, mu) = z.split_at_mut(n);
        model.event_reset_vjp(e, u_minus, params, lambda, &mut self.a, mu, work);
        model.event_gradient(e, u_minus, params, &mut self.g_u, &mut self.g_p, work);
        let rate = dot(&self.g_u, f_minus);
        let k = dot(&self.a, f_minus) - dot(lambda, f_plus) + seed;
        let c = -k / rate;
        for ((l, a), g) in lambda.iter_mut().zip(&self.a).zip(&self.g_u) {
            *l = a + c * g;
        }
        for (m, g) in mu.iter_mut().zip(&self.g_p) {
            *m += c * g;
        }
    }

    /// [`Self::apply`] for a solver that keeps no f in its states:
    /// f⁻ = f(t, u⁻, p⁻) with the parameters of the step that ended at the
    /// event, f⁺ = f(t, u⁺, p) with those of the reset.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_at<M: Model>(
        &mut self,
        model: &M,
        [params_before, params]: [&[f64]; 2],
        t: f64,
        e: usize,
        [u_minus, u_plus]: [&[f64]; 2],
        seed: f64,
        z: &mut [f64],
        work: &mut M::Work,
    ) {
        let mut f_minus = std::mem::take(&mut self.f_minus);
        let mut f_plus = std::mem::take(&mut self.f_plus);
        model.rhs(t, u_minus, params_before, &mut f_minus, work);
        model.rhs(t, u_plus, params, &mut f_plus, work);
        self.apply(
            model,
            params,
            e,
            u_minus,
            [&f_minus, &f_plus],
            seed,
            z,
            work,
        );
        self.f_minus = f_minus;
        self.f_plus = f_plus;
    }
}
