//! What the two fixed-grid gradient drivers share: the forward step as a
//! checkpointable chain, the set-up and forward sweep, the plan a stimulus
//! asks for, and the end of the backward sweep (deferred sums, finiteness,
//! statistics).

use std::time::Instant;

use log::info;
use revode_checkpoint::{Chain, CheckpointStore, Schedule, StoreStats};
use revode_forward::{
    all_finite, EventStepper, FixedMethod, FixedStepper, ForwardError, ParamSegments, StepPlan,
    Stimulus, SwitchedPlan, TimeGrid, UniformPlan,
};
use revode_model::Model;

use crate::loss::{EventTimeLoss, StepLoss};
use crate::{FixedProblem, Gradient, GradientError, GradientStats, Loss};

/// The forward step as a checkpointable chain.
pub(crate) struct FixedChain<'a, M: Model, P: StepPlan> {
    pub model: &'a M,
    pub stepper: FixedStepper,
    /// Models with events step through this; others keep the plain step.
    pub events: Option<EventStepper>,
    /// Bit k set when step k had an event (models with events, during the
    /// forward sweep; empty otherwise, and then nothing is recorded): the
    /// backward sweep takes the plain adjoint step on the others.
    pub event_steps: Vec<u64>,
    /// Set once the forward sweep is over (`event_steps` complete): replays
    /// take the plain step where no event was, bitwise the event stepper's
    /// step there, without evaluating the event functions.
    pub replay_plain_steps: bool,
    pub plan: P,
    pub work: M::Work,
}

impl<M: Model, P: StepPlan> Chain for FixedChain<'_, M, P> {
    type Error = GradientError;

    fn state_len(&self) -> usize {
        self.model.dims().n_states
    }

    // Forced: the forward sweep is latency-bound, and a call boundary per step
    // (spills and reloads of the state) cost 1.6 ms of 4.1 on the seed problem.
    #[inline(always)]
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), GradientError> {
        let (t, h, p) = self.plan.step(k);
        match self.events.as_mut() {
            None => self
                .stepper
                .step(self.model, t, h, x, p, next, &mut self.work),
            Some(_) if self.replay_plain_steps && !step_had_event(&self.event_steps, k) => self
                .stepper
                .step(self.model, t, h, x, p, next, &mut self.work),
            Some(ev) => {
                ev.step(self.model, t, h, x, p, next, &mut self.work)?;
                if ev.events_in_step() > 0 {
                    if let Some(word) = self.event_steps.get_mut(k / 64) {
                        *word |= 1 << (k % 64);
                    }
                }
            }
        }
        if !all_finite(next) {
            return Err(ForwardError::non_finite(self.plan.time(k + 1), k + 1, next).into());
        }
        Ok(())
    }
}

/// Bit k of `event_steps`: step k held an event.
#[inline(always)]
pub(crate) fn step_had_event(event_steps: &[u64], k: usize) -> bool {
    (event_steps[k / 64] >> (k % 64)) & 1 == 1
}

/// Code generic over the step plan, run by [`on_plan`].
pub(crate) trait PlanVisitor {
    type Output;
    fn visit<P: StepPlan + Copy>(self, plan: P) -> Result<Self::Output, GradientError>;
}

/// Runs `visitor` on the plain grid (no stimulus: the loops of a solve
/// without switches) or on the grid split at the stimulus's switch times.
pub(crate) fn on_plan<V: PlanVisitor>(
    problem: &FixedProblem<'_>,
    stimulus: &Stimulus,
    visitor: V,
) -> Result<V::Output, GradientError> {
    on_grid(problem.grid, problem.params, stimulus, visitor)
}

/// [`on_plan`] for a grid and parameters.
pub(crate) fn on_grid<V: PlanVisitor>(
    grid: TimeGrid,
    params: &[f64],
    stimulus: &Stimulus,
    visitor: V,
) -> Result<V::Output, GradientError> {
    if stimulus.is_empty() {
        return visitor.visit(UniformPlan { grid, params });
    }
    let segments = ParamSegments::new(params, stimulus, grid.t0, grid.t1)?;
    visitor.visit(&SwitchedPlan::new(grid, &segments))
}

/// The forward sweep's results, and what the backward sweep needs of it.
pub(crate) struct ForwardPass<'a, M: Model, P: StepPlan> {
    pub store: CheckpointStore,
    pub chain: FixedChain<'a, M, P>,
    pub step_loss: StepLoss<'a>,
    pub loss: f64,
    /// u_N.
    pub last: Vec<f64>,
    /// Events fired by the forward sweep (None: the model has none).
    pub events: Option<usize>,
    /// The event_times loss's seeds for the backward sweep.
    pub event_loss: Option<EventTimeLoss>,
    pub forward_seconds: f64,
}

impl<'a, M: Model, P: StepPlan> ForwardPass<'a, M, P> {
    /// Allocates the store and runs the forward sweep, summing the loss.
    pub fn run(
        model: &'a M,
        method: FixedMethod,
        plan: P,
        u0: &[f64],
        loss: &'a Loss,
        schedule: Schedule,
    ) -> Result<Self, GradientError> {
        let n_states = model.dims().n_states;
        let step_loss = StepLoss::new(loss, &plan)?;
        let mut store = CheckpointStore::new(schedule, plan.n_steps(), n_states)?;
        let mut chain = FixedChain {
            model,
            stepper: FixedStepper::new(method, n_states),
            events: (model.n_events() > 0).then(|| EventStepper::new(method, model)),
            event_steps: if model.n_events() > 0 {
                vec![0; plan.n_steps().div_ceil(64)]
            } else {
                Vec::new()
            },
            replay_plain_steps: false,
            plan,
            work: model.new_work(),
        };
        if let (Loss::EventTimes { event, times }, Some(ev)) = (loss, chain.events.as_mut()) {
            ev.record_times(*event, times.len());
        }
        let started = Instant::now();
        let mut loss_value = 0.0;
        let mut last = vec![0.0; n_states];
        store.forward(&mut chain, u0, &mut last, |k, u| {
            loss_value += step_loss.term(k, u);
            Ok(())
        })?;
        let events = chain.events.as_ref().map(|ev| ev.fired());
        let mut event_loss = None;
        if let Some(recorded) = chain.events.as_mut().and_then(EventStepper::stop_recording) {
            if let Loss::EventTimes { event, times } = loss {
                let (seeds, value) = EventTimeLoss::new(*event, times, recorded, chain.plan.t1());
                loss_value += value;
                event_loss = Some(seeds);
            }
        }
        Ok(ForwardPass {
            events,
            event_loss,
            store,
            chain,
            step_loss,
            loss: loss_value,
            last,
            forward_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Ends the backward sweep begun at `backward_started`: adds the model's
    /// deferred parameter sums, checks the gradient and gathers statistics.
    pub fn finish(
        self,
        what: &str,
        grad_p: Vec<f64>,
        lambda: Vec<f64>,
        work: &mut M::Work,
        backward_started: Instant,
    ) -> Result<Gradient, GradientError> {
        let summary = SweepSummary {
            what,
            method: self.chain.stepper.method().name(),
            loss: self.loss,
            store: self.store.stats(),
            steps: self.chain.plan.n_steps(),
            forward_seconds: self.forward_seconds,
            events: self.events,
        };
        summary.finish(self.chain.model, grad_p, lambda, work, backward_started)
    }
}

/// What a finished fixed-grid sweep reports, for [`SweepSummary::finish`].
pub(crate) struct SweepSummary<'a> {
    pub what: &'a str,
    pub method: &'a str,
    pub loss: f64,
    pub store: StoreStats,
    pub steps: usize,
    pub forward_seconds: f64,
    /// Events fired (models with `global` lines).
    pub events: Option<usize>,
}

impl SweepSummary<'_> {
    /// Ends the backward sweep begun at `backward_started`: adds the model's
    /// deferred parameter sums, checks the gradient and gathers statistics.
    pub fn finish<M: Model>(
        self,
        model: &M,
        mut grad_p: Vec<f64>,
        lambda: Vec<f64>,
        work: &mut M::Work,
        backward_started: Instant,
    ) -> Result<Gradient, GradientError> {
        model.flush_vjp(&mut grad_p, work);
        if let Some(index) = grad_p.iter().position(|g| !g.is_finite()) {
            return Err(GradientError::NonFiniteGradient { index });
        }
        let backward_seconds = backward_started.elapsed().as_secs_f64();
        let s = self.store;
        let n = self.steps;
        info!(
            "{}: {} {n} steps, loss {:e}, forward {:.3} ms, backward {:.3} ms, store {} B",
            self.what,
            self.method,
            self.loss,
            self.forward_seconds * 1e3,
            backward_seconds * 1e3,
            s.peak_bytes
        );
        Ok(Gradient {
            loss: self.loss,
            gradient: grad_p,
            gradient_u0: lambda,
            stats: GradientStats {
                steps: n,
                forward_steps: s.forward_steps,
                backward_steps: s.backward_steps,
                checkpoints_kept: s.checkpoints_kept,
                slim_states_kept: s.slim_slots,
                recomputed_steps: s.recomputed_steps,
                peak_store_bytes: s.peak_bytes,
                forward_seconds: self.forward_seconds,
                backward_seconds,
                events: self.events,
                ..GradientStats::default()
            },
        })
    }
}

/// The backward sweep's check after each step.
#[inline(always)]
pub(crate) fn check_adjoint(lambda: &[f64], t: f64, step: usize) -> Result<(), GradientError> {
    if all_finite(lambda) {
        Ok(())
    } else {
        Err(GradientError::NonFiniteAdjoint { t, step })
    }
}

/// After the backward step k: a parameter whose protocol begins with step k
/// acts, through its value in `params`, only before step k, so what step k
/// and later steps added to its entry (the derivative with respect to its
/// protocol's values) is dropped. No cost without a stimulus.
#[inline(always)]
pub(crate) fn drop_protocol_sums<M: Model, P: StepPlan>(
    model: &M,
    plan: &P,
    k: usize,
    grad_p: &mut [f64],
    work: &mut M::Work,
) {
    let begins = plan.protocol_begins(k);
    if !begins.is_empty() {
        model.flush_vjp(grad_p, work);
        for &i in begins {
            grad_p[i] = 0.0;
        }
    }
}
