//! The continuous adjoint with a fixed-step solver: the adjoint ODE solved
//! backwards with the forward's own scheme (Euler or RK4) on the same grid.
//!
//! Unlike the exact discrete adjoint ([`crate::gradient_fixed`]), this
//! discretises dλ/dt = −Jᵀλ, dμ/dt = −(∂f/∂p)ᵀλ directly: Euler takes its
//! step from t_{k+1} with J(u_{k+1}); RK4 needs u at the half step, taken from
//! the cubic Hermite interpolant of (u_k, f_k, u_{k+1}, f_{k+1}) (4th order,
//! like RK4). Both converge to the ODE gradient at the scheme's order but
//! are not the exact gradient of the discrete solution (docs/adjoint.md).

use std::time::Instant;

use revode_checkpoint::Schedule;
use revode_forward::{FixedMethod, StepPlan, Stimulus};
use revode_model::Model;

use crate::fixed_pass::{check_adjoint, drop_protocol_sums, on_plan, ForwardPass, PlanVisitor};
use crate::{validate_fixed_with_stimulus, FixedProblem, Gradient, GradientError, Loss};

/// Buffers of the backward fixed-step adjoint.
struct Backward {
    /// u_{k+1} and f(t_{k+1}, u_{k+1}) from the previous visit.
    u_next: Vec<f64>,
    f_next: Vec<f64>,
    f_here: Vec<f64>,
    u_mid: Vec<f64>,
    stage: Vec<f64>,
    v: Vec<f64>,
    sum: Vec<f64>,
}

/// dL/dp and dL/du0 by the continuous adjoint on the forward's fixed grid.
pub fn gradient_continuous_fixed<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    gradient_continuous_fixed_with_stimulus(model, problem, &Stimulus::none(), loss, schedule)
}

/// [`gradient_continuous_fixed`] with parameters following `stimulus`. The
/// adjoint ODE's right-hand side jumps with the parameters; no step straddles
/// a switch time, and each step's stages use its segment's parameters (at the
/// segment's end, the left limit). λ is continuous across a switch.
pub fn gradient_continuous_fixed_with_stimulus<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    validate_fixed_with_stimulus(model, problem, stimulus, loss)?;
    if model.n_events() > 0 {
        return Err(GradientError::EventsNeedFixedSteps {
            what: "the continuous adjoint",
        });
    }
    if let Loss::EventTimes { .. } = loss {
        return Err(GradientError::LossNeedsFixedSteps { loss: loss.name() });
    }
    on_plan(
        problem,
        stimulus,
        Continuous {
            model,
            problem,
            loss,
            schedule,
        },
    )
}

/// The continuous adjoint on one step plan.
struct Continuous<'a, M> {
    model: &'a M,
    problem: &'a FixedProblem<'a>,
    loss: &'a Loss,
    schedule: Schedule,
}

impl<M: Model> PlanVisitor for Continuous<'_, M> {
    type Output = Gradient;

    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<Gradient, GradientError> {
        let Continuous {
            model,
            problem,
            loss,
            schedule,
        } = self;
        let dims = model.dims();
        let n_states = dims.n_states;
        let method = problem.method;
        let n = plan.n_steps();
        let mut pass = ForwardPass::run(model, method, plan, problem.u0, loss, schedule)?;

        let started = Instant::now();
        let mut work = model.new_work();
        let v = || vec![0.0; n_states];
        let mut b = Backward {
            u_next: pass.last.clone(),
            f_next: v(),
            f_here: v(),
            u_mid: v(),
            stage: v(),
            v: v(),
            sum: v(),
        };
        let (_, _, last_params) = plan.step(n - 1);
        model.rhs(plan.t1(), &pass.last, last_params, &mut b.f_next, &mut work);
        let mut lambda = vec![0.0; n_states];
        let mut grad_p = vec![0.0; dims.n_params];
        pass.step_loss.add_seed(n, &pass.last, &mut lambda);
        let step_loss = &pass.step_loss;
        pass.store.reverse(&mut pass.chain, |k, u| {
            let (t, h, params) = plan.step(k);
            match method {
                FixedMethod::Euler => {
                    // z_k = z_{k+1} − h g(t_{k+1}, z_{k+1}), with step k's
                    // parameters (the left limit at a switch).
                    model.vjp(
                        t + h,
                        &b.u_next,
                        params,
                        &lambda,
                        &mut b.v,
                        h,
                        &mut grad_p,
                        &mut work,
                    );
                    for (l, vj) in lambda.iter_mut().zip(&b.v) {
                        *l += h * vj;
                    }
                }
                FixedMethod::Rk4 => {
                    if plan.switches_at(k + 1) {
                        // f at u_{k+1} came from the next segment's parameters.
                        model.rhs(t + h, &b.u_next, params, &mut b.f_next, &mut work);
                    }
                    rk4_back(
                        model,
                        params,
                        t,
                        h,
                        u,
                        &mut b,
                        &mut lambda,
                        &mut grad_p,
                        &mut work,
                    )
                }
            }
            check_adjoint(&lambda, t, k)?;
            drop_protocol_sums(model, &plan, k, &mut grad_p, &mut work);
            step_loss.add_seed(k, u, &mut lambda);
            b.u_next.copy_from_slice(u);
            if method == FixedMethod::Rk4 {
                std::mem::swap(&mut b.f_next, &mut b.f_here);
            }
            Ok(())
        })?;
        pass.finish("continuous adjoint", grad_p, lambda, &mut work, started)
    }
}

/// Classical RK4 on the adjoint ODE from t_{k+1} down to t_k. Stage
/// states: Λ1 = λ, Λ2 = λ + (h/2) v1, Λ3 = λ + (h/2) v2, Λ4 = λ + h v3 with
/// v_i = J(u_i)ᵀ Λ_i at u_{k+1}, u_mid, u_mid, u_k; then
/// λ_k = λ + (h/6)(v1 + 2 v2 + 2 v3 + v4) and μ gains (h/6) Σ w_i (∂f/∂p)ᵀΛ_i.
#[allow(clippy::too_many_arguments)]
#[inline]
fn rk4_back<M: Model>(
    model: &M,
    params: &[f64],
    t: f64,
    h: f64,
    u: &[f64],
    b: &mut Backward,
    lambda: &mut [f64],
    grad_p: &mut [f64],
    work: &mut M::Work,
) {
    model.rhs(t, u, params, &mut b.f_here, work);
    // Cubic Hermite at the midpoint: (u_k + u_{k+1})/2 + h/8 (f_k − f_{k+1}).
    for i in 0..u.len() {
        b.u_mid[i] = 0.5 * (u[i] + b.u_next[i]) + 0.125 * h * (b.f_here[i] - b.f_next[i]);
    }
    const W: [f64; 4] = [1.0, 2.0, 2.0, 1.0];
    const STAGE_FROM: [f64; 3] = [0.5, 0.5, 1.0];
    b.stage.copy_from_slice(lambda);
    b.sum.fill(0.0);
    for i in 0..4 {
        let (ti, ui): (f64, &[f64]) = match i {
            0 => (t + h, &b.u_next),
            1 | 2 => (t + 0.5 * h, &b.u_mid),
            _ => (t, u),
        };
        model.vjp(
            ti,
            ui,
            params,
            &b.stage,
            &mut b.v,
            h * W[i] / 6.0,
            grad_p,
            work,
        );
        for j in 0..u.len() {
            b.sum[j] += W[i] * b.v[j];
            if i < 3 {
                b.stage[j] = lambda[j] + STAGE_FROM[i] * h * b.v[j];
            }
        }
    }
    for (l, s) in lambda.iter_mut().zip(&b.sum) {
        *l += h / 6.0 * s;
    }
}
