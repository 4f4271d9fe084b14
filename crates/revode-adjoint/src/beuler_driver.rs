//! The gradient driver and the forward loss for backward Euler.
//!
//! The checkpointed chain is the stepper's state `[u_k, s_k, c_k, Newton
//! memory]` ([`BeulerLayout`], 4n + 4 f64s), so a replayed step reloads the
//! Jacobian and factors the forward step started from and reproduces its
//! iterates bit for bit: the gradient is the same for every schedule. The
//! backward sweep visits u_k in reverse and keeps the previously visited
//! u_{k+1}, at which each step's adjoint is taken ([`BeulerAdjoint`]).

use std::time::Instant;

use log::debug;
use revode_checkpoint::{Chain, CheckpointStore, Schedule, StateShape};
use revode_forward::{
    newton_bytes_needed, BackwardEuler, BeulerEvents, BeulerLayout, BeulerOptions, ForwardError,
    LinearSolver, MatrixShape, NewtonStats, SingularMatrix, StepPlan, Stimulus, TimeGrid,
};
use revode_model::Model;
use serde::Serialize;

use crate::beuler_adjoint::{BackwardSolveStats, BeulerAdjoint, TransposedSolve};
use crate::beuler_events::BeulerEventAdjoint;
use crate::beuler_pipeline::{
    pipeline_bytes, takes_scheduled, with_pipeline, BackwardThreads, Block, ScheduledSolver,
};
use crate::error::check_vector;
use crate::fixed_driver::check_event_loss;
use crate::fixed_pass::{
    check_adjoint, drop_protocol_sums, on_grid, step_had_event, PlanVisitor, SweepSummary,
};
use crate::loss::{EventTimeLoss, StepLoss};
use crate::{Gradient, GradientError, Loss};

/// A backward Euler problem: initial state, parameters, grid and options.
#[derive(Debug, Clone, Copy)]
pub struct BeulerProblem<'a> {
    pub u0: &'a [f64],
    pub params: &'a [f64],
    pub grid: TimeGrid,
    pub options: BeulerOptions,
}

/// What the Newton iterations and the linear solves of an implicit
/// gradient did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ImplicitStats {
    /// `"dense"` or `"sparse"`.
    pub linear_solver: &'static str,
    /// The forward sweep's Newton (recomputations not included).
    pub newton: NewtonStats,
    /// Jacobian evaluations and factorisations of recomputed steps
    /// (a replayed segment first rebuilds the factors it starts from).
    pub replay_jacobian_evaluations: usize,
    pub replay_factorizations: usize,
    /// The backward sweep's transposed solves.
    pub backward: BackwardSolveStats,
}

/// f64s in one checkpointed state of backward Euler for `n_states` states
/// (`[u, s, c, t_J, age, γ_M, ρ, u_J]`).
pub fn beuler_state_len(n_states: usize) -> usize {
    BeulerLayout { n: n_states }.len()
}

/// How backward Euler's chain states sit in its store: whole where a
/// replay may start, only `u` elsewhere, which is all the backward step
/// reads, except with events, whose backward steps replay the step.
pub fn beuler_state_shape(n_states: usize, n_events: usize) -> StateShape {
    let len = beuler_state_len(n_states);
    StateShape {
        len,
        kept: if n_events > 0 { len } else { n_states },
    }
}

/// About the bytes a backward Euler gradient of `model` allocates besides
/// its checkpoint store, which grow with the model: the forward stepper's
/// Newton solver, an event stepper's, and the backward sweep's matrices
/// (the scheduled sweep's blocks, or the adaptive path's one matrix). For
/// checking them against the memory available before a run; `shape` is
/// `MatrixShape::of_model(model)` (made once by the caller: a large
/// model's pattern takes a while to build).
pub fn beuler_gradient_bytes<M: Model>(
    model: &M,
    shape: MatrixShape,
    linear: LinearSolver,
    transposed: TransposedSolve,
) -> usize {
    let newton = newton_bytes_needed(shape, linear);
    let steppers = if model.n_events() > 0 { 2 } else { 1 };
    let backward = if takes_scheduled(model, transposed) {
        pipeline_bytes(shape, model.dims().n_params, linear)
    } else {
        newton
    };
    newton.saturating_mul(steppers).saturating_add(backward)
}

/// Checks a backward Euler problem, its options and loss against the
/// model; observation times must lie on the grid split at switch times.
pub fn validate_beuler_with_stimulus<M: Model>(
    model: &M,
    problem: &BeulerProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<(), GradientError> {
    let dims = model.dims();
    problem.options.validate()?;
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
    on_grid(problem.grid, problem.params, stimulus, OnGrid(loss))
}

/// The exact gradient (dL/dp, dL/du0) of the backward Euler solution,
/// parameters following `stimulus`; bitwise the same for every schedule.
pub fn gradient_beuler_with_stimulus<M: Model>(
    model: &M,
    problem: &BeulerProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    schedule: Schedule,
) -> Result<Gradient, GradientError> {
    gradient_beuler_with(
        model,
        problem,
        stimulus,
        loss,
        schedule,
        TransposedSolve::default(),
        BackwardThreads::default(),
    )
}

/// [`gradient_beuler_with_stimulus`] with a chosen way of solving the
/// backward systems and number of backward threads (benches compare them;
/// the gradient does not depend on the threads).
pub fn gradient_beuler_with<M: Model>(
    model: &M,
    problem: &BeulerProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
    schedule: Schedule,
    transposed: TransposedSolve,
    threads: BackwardThreads,
) -> Result<Gradient, GradientError> {
    validate_beuler_with_stimulus(model, problem, stimulus, loss)?;
    on_grid(
        problem.grid,
        problem.params,
        stimulus,
        Discrete {
            model,
            problem,
            loss,
            schedule,
            transposed,
            threads,
        },
    )
}

/// The loss of the backward Euler solution alone (forward only, nothing
/// stored): bitwise the loss [`gradient_beuler_with_stimulus`] reports.
pub fn loss_beuler_with_stimulus<M: Model>(
    model: &M,
    problem: &BeulerProblem<'_>,
    stimulus: &Stimulus,
    loss: &Loss,
) -> Result<f64, GradientError> {
    validate_beuler_with_stimulus(model, problem, stimulus, loss)?;
    on_grid(
        problem.grid,
        problem.params,
        stimulus,
        ForwardLoss {
            model,
            problem,
            loss,
        },
    )
}

/// The backward Euler step as a checkpointable chain.
struct BeulerChain<'a, M: Model, P: StepPlan> {
    model: &'a M,
    stepper: BackwardEuler<'a, M>,
    /// Models with events step through this; others keep the plain step.
    events: Option<BeulerEvents>,
    /// Bit k set when step k had an event (models with events, during the
    /// forward sweep): the backward sweep replays only those steps.
    event_steps: Vec<u64>,
    /// Set once the forward sweep is over (`event_steps` complete): replays
    /// take the plain step where no event was, bitwise the event step there.
    replay_plain_steps: bool,
    plan: P,
    work: M::Work,
}

impl<M: Model, P: StepPlan> Chain for BeulerChain<'_, M, P> {
    type Error = GradientError;

    fn state_len(&self) -> usize {
        self.stepper.layout().len()
    }

    #[inline]
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), GradientError> {
        let (model, plan, work) = (self.model, &self.plan, &mut self.work);
        match self.events.as_mut() {
            Some(ev) if !self.replay_plain_steps || step_had_event(&self.event_steps, k) => {
                ev.step(&mut self.stepper, model, plan, k, x, next, work)?;
                if ev.events_in_step() > 0 {
                    if let Some(word) = self.event_steps.get_mut(k / 64) {
                        *word |= 1 << (k % 64);
                    }
                }
                Ok(())
            }
            _ => Ok(self.stepper.step(model, plan, k, x, next, work)?),
        }
    }
}

impl<'a, M: Model, P: StepPlan> BeulerChain<'a, M, P> {
    /// The chain of `plan`; with events, `loss`'s event times are recorded.
    fn new(model: &'a M, options: BeulerOptions, plan: P, loss: &Loss) -> Self {
        let with_events = model.n_events() > 0;
        let mut events = with_events.then(|| BeulerEvents::new(model));
        if let (Loss::EventTimes { event, times }, Some(ev)) = (loss, events.as_mut()) {
            ev.record_times(*event, times.len());
        }
        BeulerChain {
            model,
            stepper: BackwardEuler::new(model, options),
            events,
            event_steps: if with_events {
                vec![0; plan.n_steps().div_ceil(64)]
            } else {
                Vec::new()
            },
            replay_plain_steps: false,
            plan,
            work: model.new_work(),
        }
    }

    /// Ends the forward sweep: the events fired, and the event_times loss's
    /// seeds with its value (recording stops, so replays do not record).
    fn finish_forward(&mut self, loss: &Loss) -> (Option<usize>, Option<(EventTimeLoss, f64)>) {
        let t1 = self.plan.t1();
        let Some(ev) = self.events.as_mut() else {
            return (None, None);
        };
        let recorded = ev.stop_recording();
        let event_loss = match (loss, recorded) {
            (Loss::EventTimes { event, times }, Some(recorded)) => {
                Some(EventTimeLoss::new(*event, times, recorded, t1))
            }
            _ => None,
        };
        (Some(ev.fired()), event_loss)
    }

    /// The chain state of `u0`.
    fn initial_state(&mut self, u0: &[f64]) -> Vec<f64> {
        let layout = self.stepper.layout();
        let mut x = vec![0.0; layout.len()];
        let p = self.plan.step(0).2;
        layout.initial_state(self.model, self.plan.time(0), u0, p, &mut self.work, &mut x);
        x
    }
}

struct ForwardLoss<'a, M> {
    model: &'a M,
    problem: &'a BeulerProblem<'a>,
    loss: &'a Loss,
}

impl<M: Model> PlanVisitor for ForwardLoss<'_, M> {
    type Output = f64;

    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<f64, GradientError> {
        let ForwardLoss {
            model,
            problem,
            loss,
        } = self;
        let step_loss = StepLoss::new(loss, &plan)?;
        let mut chain = BeulerChain::new(model, problem.options, plan, loss);
        let layout = chain.stepper.layout();
        let mut x = chain.initial_state(problem.u0);
        let mut next = vec![0.0; x.len()];
        let mut value = step_loss.term(0, layout.u(&x));
        for k in 0..plan.n_steps() {
            chain.advance(k, &x, &mut next)?;
            std::mem::swap(&mut x, &mut next);
            value += step_loss.term(k + 1, layout.u(&x));
        }
        if let (_, Some((_, event_value))) = chain.finish_forward(loss) {
            value += event_value;
        }
        Ok(value)
    }
}

/// The discrete adjoint of backward Euler on one step plan.
struct Discrete<'a, M> {
    model: &'a M,
    problem: &'a BeulerProblem<'a>,
    loss: &'a Loss,
    schedule: Schedule,
    transposed: TransposedSolve,
    threads: BackwardThreads,
}

impl<M: Model> PlanVisitor for Discrete<'_, M> {
    type Output = Gradient;

    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<Gradient, GradientError> {
        let Discrete {
            model,
            problem,
            loss,
            schedule,
            transposed,
            threads,
        } = self;
        let dims = model.dims();
        let n = dims.n_states;
        let n_steps = plan.n_steps();
        let step_loss = StepLoss::new(loss, &plan)?;
        let mut chain = BeulerChain::new(model, problem.options, plan, loss);
        let layout = chain.stepper.layout();
        let shape = beuler_state_shape(n, model.n_events());
        let mut store = CheckpointStore::new_shaped(schedule, n_steps, shape)?;

        let started = Instant::now();
        let x0 = chain.initial_state(problem.u0);
        let mut last = vec![0.0; layout.len()];
        let mut loss_value = 0.0;
        store.forward(&mut chain, &x0, &mut last, |k, x| {
            loss_value += step_loss.term(k, layout.u(x));
            Ok(())
        })?;
        let (events, event_loss) = chain.finish_forward(loss);
        let mut event_loss = event_loss.map(|(seeds, value)| {
            loss_value += value;
            seeds
        });
        let forward_seconds = started.elapsed().as_secs_f64();
        let forward_newton = chain.stepper.stats();
        debug!("beuler forward sweep: {n_steps} steps, {forward_newton:?}");

        let started = Instant::now();
        let mut lambda = vec![0.0; n];
        let mut grad_p = vec![0.0; dims.n_params];
        let mut u_next = layout.u(&last).to_vec();
        step_loss.add_seed(n_steps, &u_next, &mut lambda);
        let mut work = model.new_work();
        // Replays take the plain step where no event was (event_steps is
        // complete after the forward sweep).
        chain.replay_plain_steps = true;
        let backward = if takes_scheduled(model, transposed) {
            let linear = problem.options.linear_solver;
            let backward = with_pipeline(model, linear, threads, |pipeline| {
                let mut process = |solver: &mut ScheduledSolver, block: &mut Block| {
                    for j in 0..block.len() {
                        let k = block.step(j);
                        solver
                            .step_back(model, block, j, &mut lambda, &mut grad_p, &mut work)
                            .map_err(|s| {
                                let (t, h) = block.time_and_width(j);
                                singular_step(t, h, k, s)
                            })?;
                        check_adjoint(&lambda, plan.time(k), k)?;
                        drop_protocol_sums(model, &plan, k, &mut grad_p, &mut work);
                        step_loss.add_seed(k, block.u(j), &mut lambda);
                    }
                    Ok(())
                };
                store.reverse(&mut chain, |k, x| {
                    let (_, h, p) = plan.step(k);
                    let u = layout.u(x);
                    pipeline.push(k, plan.time(k + 1), h, p, &u_next, u, &mut process)?;
                    u_next.copy_from_slice(u);
                    Ok(())
                })?;
                pipeline.finish(&mut process)
            })?;
            backward
        } else {
            let mut back = BeulerAdjoint::new(model, problem.options.linear_solver, transposed);
            let mut event_back = events.map(|_| BeulerEventAdjoint::new(model, problem.options));
            // The backward steps look events up instead of searching for them.
            let event_steps = chain.event_steps.clone();
            store.reverse(&mut chain, |k, x| {
                let (_, h, p) = plan.step(k);
                let t_next = plan.time(k + 1);
                match event_back.as_mut() {
                    Some(eb) if step_had_event(&event_steps, k) => {
                        let seed = |e| event_loss.as_mut().map_or(0.0, |l| l.seed(e));
                        eb.step_back(
                            model,
                            &plan,
                            k,
                            x,
                            &mut back,
                            &mut lambda,
                            &mut grad_p,
                            &mut work,
                            seed,
                        )?;
                    }
                    _ => back
                        .step_back(
                            model,
                            t_next,
                            h,
                            &u_next,
                            p,
                            &mut lambda,
                            &mut grad_p,
                            &mut work,
                        )
                        .map_err(|s| singular_step(t_next, h, k, s))?,
                }
                check_adjoint(&lambda, plan.time(k), k)?;
                drop_protocol_sums(model, &plan, k, &mut grad_p, &mut work);
                let u = layout.u(x);
                step_loss.add_seed(k, u, &mut lambda);
                u_next.copy_from_slice(u);
                Ok(())
            })?;
            back.stats()
        };
        let summary = SweepSummary {
            what: "discrete adjoint",
            method: "beuler",
            loss: loss_value,
            store: store.stats(),
            steps: n_steps,
            forward_seconds,
            events,
        };
        let total_newton = chain.stepper.stats();
        let implicit = ImplicitStats {
            linear_solver: chain.stepper.linear_solver().name(),
            newton: forward_newton,
            replay_jacobian_evaluations: total_newton.jacobian_evaluations
                - forward_newton.jacobian_evaluations,
            replay_factorizations: total_newton.factorizations - forward_newton.factorizations,
            backward,
        };
        let mut g = summary.finish(model, grad_p, lambda, &mut work, started)?;
        g.stats.implicit = Some(implicit);
        Ok(g)
    }
}

/// A singular iteration matrix met by the backward step k (ending at t).
fn singular_step(t: f64, h: f64, k: usize, s: SingularMatrix) -> ForwardError {
    ForwardError::SingularIterationMatrix {
        t,
        step: k + 1,
        index: s.index,
        h,
    }
}
