//! The gradient driver for fixed-step solves.

use std::time::Instant;

use log::debug;
use revode_checkpoint::Schedule;
use revode_forward::{FixedMethod, StepPlan, Stimulus, TimeGrid};
use revode_model::Model;
use serde::Serialize;

use crate::error::check_vector;
use crate::fixed_pass::{
    check_adjoint, drop_protocol_sums, on_plan, step_had_event, ForwardPass, PlanVisitor,
};
use crate::loss::StepLoss;
use crate::{EventAdjointStepper, FixedAdjointStepper, GradientError, Loss};

/// A fixed-step problem: initial state, parameters, grid and method.
#[derive(Debug, Clone, Copy)]
pub struct FixedProblem<'a> {
    pub u0: &'a [f64],
    pub params: &'a [f64],
    pub grid: TimeGrid,
    pub method: FixedMethod,
}

/// Counters and timings of one gradient computation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GradientStats {
    /// Forward steps N (accepted steps of an adaptive solve).
    pub steps: usize,
    /// Rejected forward attempts (adaptive solves).
    pub rejected_steps: usize,
    /// Steps taken by the forward sweep (N; recomputations not included).
    pub forward_steps: usize,
    /// Adjoint steps taken backward (accepted, for adaptive adjoints).
    pub backward_steps: usize,
    /// Rejected adjoint attempts (adaptive adjoints).
    pub backward_rejected: usize,
    pub checkpoints_kept: usize,
    /// States kept besides the checkpoints with only what the backward
    /// sweep reads (backward Euler: u, not the Newton memory); 0 otherwise.
    pub slim_states_kept: usize,
    pub recomputed_steps: usize,
    /// Largest number of bytes the checkpoint store held.
    pub peak_store_bytes: usize,
    pub forward_seconds: f64,
    pub backward_seconds: f64,
    /// bdf: Newton iterations, Jacobian evaluations and factorisations of
    /// the forward sweep and of the backward pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newton: Option<BdfNewtonStats>,
    /// Newton and linear-solver counts of a backward Euler solve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implicit: Option<crate::ImplicitStats>,
    /// Events fired by the forward solve (models with `global` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<usize>,
}

/// The work of an implicit solve's linear algebra, forward and backward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BdfNewtonStats {
    /// The forward sweep's Newton solver (recomputations not included).
    pub forward: revode_forward::NewtonStats,
    /// The backward pass: `iterations` are its refinement iterations of
    /// the linear adjoint systems.
    pub backward: revode_forward::NewtonStats,
}

/// A loss value with its gradients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gradient {
    pub loss: f64,
    /// dL/dp, in parameter order.
    pub gradient: Vec<f64>,
    /// dL/du0, in state order.
    pub gradient_u0: Vec<f64>,
    pub stats: GradientStats,
}

/// Checks a fixed-step problem and loss against the model's dimensions.
pub fn validate_fixed<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    loss: &Loss,
) -> Result<(), GradientError> {
    validate_fixed_with_stimulus(model, problem, &Stimulus::none(), loss)
}

/// [`validate_fixed`], and the stimulus against the parameters and span;
/// observation times must lie on the grid split at the switch times.
pub fn validate_fixed_with_stimulus<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<(), GradientError> {
    let dims = model.dims();
    check_vector("u0", problem.u0, dims.n_states)?;
    check_vector("params", problem.params, dims.n_params)?;
    loss.validate(dims.n_states, problem.grid.t0, problem.grid.t1)?;
    check_event_loss(model, loss)?;
    struct OnGrid<'a>(&'a Loss);
    impl PlanVisitor for OnGrid<'_> {
        type Output = ();
        fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<(), GradientError> {
            StepLoss::new(self.0, &plan).map(|_| ())
        }
    }
    on_plan(problem, stimulus, OnGrid(loss))
}

/// The exact gradient of the discrete fixed-step solution: dL/dp and dL/du0.
///
/// Bitwise identical for every [`Schedule`]: recomputed states are the
/// forward's states to the last bit, and the reverse sweep visits them in the
/// same order.
pub fn gradient_fixed<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    gradient_fixed_with_stimulus(model, problem, &Stimulus::none(), loss, schedule)
}

/// [`gradient_fixed`] with parameters following `stimulus`: the grid is split
/// at every switch time and each step uses its segment's parameters, so the
/// gradient stays the exact gradient of the discrete solution. The entry of
/// a stimulated parameter is the derivative with respect to its value in
/// `params`, which acts only before the protocol's first switch time (0 when
/// that is t0). Derivation: docs/stimulus.md.
pub fn gradient_fixed_with_stimulus<M: Model>(
    model: &M,
    problem: &FixedProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    validate_fixed_with_stimulus(model, problem, stimulus, loss)?;
    on_plan(
        problem,
        stimulus,
        Discrete {
            model,
            problem,
            loss,
            schedule,
        },
    )
}

/// The discrete adjoint on one step plan.
struct Discrete<'a, M> {
    model: &'a M,
    problem: &'a FixedProblem<'a>,
    loss: &'a Loss,
    schedule: Schedule,
}

impl<M: Model> PlanVisitor for Discrete<'_, M> {
    type Output = Gradient;

    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<Gradient, GradientError> {
        let Discrete {
            model,
            problem,
            loss,
            schedule,
        } = self;
        let dims = model.dims();
        let method = problem.method;
        let mut pass = ForwardPass::run(model, method, plan, problem.u0, loss, schedule)?;
        debug!(
            "forward sweep: {} steps in {:.6} s",
            plan.n_steps(),
            pass.forward_seconds
        );

        let started = Instant::now();
        let mut lambda = vec![0.0; dims.n_states];
        let mut grad_p = vec![0.0; dims.n_params];
        pass.step_loss
            .add_seed(plan.n_steps(), &pass.last, &mut lambda);
        let mut adj_work = model.new_work();
        let step_loss = &pass.step_loss;
        if model.n_events() > 0 {
            let mut back = EventAdjointStepper::new(method, model);
            let mut plain = FixedAdjointStepper::new(method, dims.n_states);
            let mut event_loss = pass.event_loss.take();
            // Complete after the forward sweep: replays and the backward
            // steps look events up instead of searching for them.
            let event_steps = pass.chain.event_steps.clone();
            pass.chain.replay_plain_steps = true;
            pass.store.reverse(&mut pass.chain, |k, u| {
                let (t, h, p) = plan.step(k);
                if !step_had_event(&event_steps, k) {
                    // No event in this step: the plain step's adjoint, without
                    // replaying the step to look for one.
                    plain.step_back(model, t, h, u, p, &mut lambda, &mut grad_p, &mut adj_work);
                } else {
                    let seed = |e| event_loss.as_mut().map_or(0.0, |l| l.seed(e));
                    back.step_back(
                        model,
                        t,
                        h,
                        u,
                        p,
                        &mut lambda,
                        &mut grad_p,
                        &mut adj_work,
                        seed,
                    )?;
                }
                check_adjoint(&lambda, t, k)?;
                drop_protocol_sums(model, &plan, k, &mut grad_p, &mut adj_work);
                step_loss.add_seed(k, u, &mut lambda);
                Ok(())
            })?;
            return pass.finish("discrete adjoint", grad_p, lambda, &mut adj_work, started);
        }
        let mut back = FixedAdjointStepper::new(method, dims.n_states);
        pass.store.reverse(&mut pass.chain, |k, u| {
            let (t, h, p) = plan.step(k);
            back.step_back(model, t, h, u, p, &mut lambda, &mut grad_p, &mut adj_work);
            check_adjoint(&lambda, t, k)?;
            drop_protocol_sums(model, &plan, k, &mut grad_p, &mut adj_work);
            step_loss.add_seed(k, u, &mut lambda);
            Ok(())
        })?;
        pass.finish("discrete adjoint", grad_p, lambda, &mut adj_work, started)
    }
}

/// An event_times loss names one of the model's events.
pub fn check_event_loss<M: Model>(model: &M, loss: &Loss) -> Result<(), GradientError> {
    match loss {
        Loss::EventTimes { event, .. } if *event >= model.n_events() => {
            Err(GradientError::NoSuchEvent {
                event: *event,
                n_events: model.n_events(),
            })
        }
        _ => Ok(()),
    }
}
