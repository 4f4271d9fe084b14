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

use revode_checkpoint::{CheckpointStore, Schedule};
use revode_forward::{all_finite, FixedMethod, FixedStepper};
use revode_model::Model;

use crate::fixed_driver::FixedChain;
use crate::loss::StepLoss;
use crate::{validate_fixed, FixedProblem, Gradient, GradientError, GradientStats, Loss};

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
    validate_fixed(model, problem, loss)?;
    let dims = model.dims();
    let n_states = dims.n_states;
    let grid = problem.grid;
    let n = grid.n_steps();
    let step_loss = StepLoss::new(loss, &grid)?;
    let mut store = CheckpointStore::new(schedule, n, n_states)?;
    let mut chain = FixedChain {
        model,
        stepper: FixedStepper::new(problem.method, n_states),
        grid,
        params: problem.params,
        work: model.new_work(),
    };

    let started = Instant::now();
    let mut loss_value = 0.0;
    let mut last = vec![0.0; n_states];
    store.forward(&mut chain, problem.u0, &mut last, |k, u| {
        loss_value += step_loss.term(k, u);
        Ok(())
    })?;
    let forward_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let params = problem.params;
    let mut work = model.new_work();
    let v = || vec![0.0; n_states];
    let mut b = Backward {
        u_next: last.clone(),
        f_next: v(),
        f_here: v(),
        u_mid: v(),
        stage: v(),
        v: v(),
        sum: v(),
    };
    model.rhs(grid.t1, &last, params, &mut b.f_next, &mut work);
    let mut lambda = vec![0.0; n_states];
    let mut grad_p = vec![0.0; dims.n_params];
    step_loss.add_seed(n, &last, &mut lambda);
    store.reverse(&mut chain, |k, u| {
        let (t, h) = (grid.time(k), grid.step_len(k));
        match problem.method {
            FixedMethod::Euler => {
                // z_k = z_{k+1} − h g(t_{k+1}, z_{k+1})
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
            FixedMethod::Rk4 => rk4_back(
                model,
                params,
                t,
                h,
                u,
                &mut b,
                &mut lambda,
                &mut grad_p,
                &mut work,
            ),
        }
        if !all_finite(&lambda) {
            return Err(GradientError::NonFiniteAdjoint { t, step: k });
        }
        step_loss.add_seed(k, u, &mut lambda);
        b.u_next.copy_from_slice(u);
        if problem.method == FixedMethod::Rk4 {
            std::mem::swap(&mut b.f_next, &mut b.f_here);
        }
        Ok(())
    })?;
    model.flush_vjp(&mut grad_p, &mut work);
    if let Some(index) = grad_p.iter().position(|g| !g.is_finite()) {
        return Err(GradientError::NonFiniteGradient { index });
    }
    let backward_seconds = started.elapsed().as_secs_f64();
    let s = store.stats();
    Ok(Gradient {
        loss: loss_value,
        gradient: grad_p,
        gradient_u0: lambda,
        stats: GradientStats {
            steps: n,
            forward_steps: s.forward_steps,
            backward_steps: s.backward_steps,
            checkpoints_kept: s.checkpoints_kept,
            recomputed_steps: s.recomputed_steps,
            peak_store_bytes: s.peak_bytes,
            forward_seconds,
            backward_seconds,
            ..GradientStats::default()
        },
    })
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
