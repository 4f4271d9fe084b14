//! The firing times of a model's events in a forward solve: spike times
//! for synthetic data and for comparing a fit with its recording.

use revode_forward::{
    BackwardEuler, Bdf, BdfLayout, BeulerEvents, BeulerOptions, Dopri5, EventStepper, FixedMethod,
    ParamSegments, StepLayout, StepPlan, SwitchedPlan, UniformPlan,
};
use revode_model::Model;

use crate::run::{check_events, explicit_setup, fixed_grid};
use crate::{Error, ModelVisitor, Problem};

/// The times at which event `event` (a `global` line, from 0 in file
/// order) fires when `problem` is solved forward (euler, rk4, beuler,
/// dopri5 or bdf). An event located exactly at t1 is not applied, and not
/// listed.
pub fn event_times(problem: &Problem, event: usize) -> Result<Vec<f64>, Error> {
    problem.model.visit(EventTimes(problem, event))?
}

struct EventTimes<'a>(&'a Problem, usize);

impl ModelVisitor for EventTimes<'_> {
    type Output = Result<Vec<f64>, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let EventTimes(problem, event) = self;
        if event >= model.n_events() {
            return Err(Error::Invalid {
                origin: "problem".to_string(),
                message: format!(
                    "event {event} asked for, but the model has {} event(s) ('global' lines, from 0)",
                    model.n_events()
                ),
            });
        }
        check_events(model, problem, false)?;
        let (u0, params, _) = problem.resolved_inputs(model);
        let stimulus = problem.stimulus_for(model)?;
        let [t0, t1] = problem.tspan;
        if let Some((method, grid)) = explicit_setup(problem)? {
            if stimulus.is_empty() {
                let plan = UniformPlan {
                    grid,
                    params: &params,
                };
                return Ok(on_grid(model, method, &plan, &u0, event)?);
            }
            let segments = ParamSegments::new(&params, &stimulus, t0, t1)?;
            let plan = SwitchedPlan::new(grid, &segments);
            return Ok(on_grid(model, method, &plan, &u0, event)?);
        }
        if let (Some(options), Some(grid)) = (problem.solver.beuler_options(), fixed_grid(problem)?)
        {
            if stimulus.is_empty() {
                let plan = UniformPlan {
                    grid,
                    params: &params,
                };
                return Ok(on_beuler_grid(model, options, &plan, &u0, event)?);
            }
            let segments = ParamSegments::new(&params, &stimulus, t0, t1)?;
            let plan = SwitchedPlan::new(grid, &segments);
            return Ok(on_beuler_grid(model, options, &plan, &u0, event)?);
        }
        if let Some(options) = problem.solver.bdf_options() {
            return Ok(on_bdf(
                model,
                &options,
                [t0, t1],
                &params,
                &stimulus,
                &u0,
                event,
            )?);
        }
        let options = problem
            .solver
            .adaptive_options()
            .ok_or_else(|| Error::Invalid {
                origin: "problem".to_string(),
                message: format!("{} does not locate events", problem.solver.name()),
            })?;
        let mut solver = Dopri5::new(&options, u0.len(), t0, t1, &[])?;
        if !stimulus.is_empty() {
            solver = solver.with_switches(ParamSegments::new(&params, &stimulus, t0, t1)?);
        }
        let layout = solver.layout();
        let mut work = model.new_work();
        let mut x = vec![0.0; layout.len()];
        let mut next = x.clone();
        solver.initial_state(model, &params, &mut work, &u0, &mut x)?;
        let mut times = Vec::new();
        let mut k = 0;
        while !solver.is_last(&x) {
            solver.advance(model, &params, &mut work, k, &x, &mut next)?;
            std::mem::swap(&mut x, &mut next);
            k += 1;
            if StepLayout::pending_event(&x) == Some(event) {
                times.push(x[StepLayout::T]);
            }
        }
        Ok(times)
    }
}

fn on_bdf<M: Model>(
    model: &M,
    options: &revode_forward::BdfOptions,
    [t0, t1]: [f64; 2],
    params: &[f64],
    stimulus: &revode_forward::Stimulus,
    u0: &[f64],
    event: usize,
) -> Result<Vec<f64>, revode_forward::ForwardError> {
    let mut solver = Bdf::new(model, options, t0, t1, &[])?;
    if !stimulus.is_empty() {
        solver = solver.with_switches(ParamSegments::new(params, stimulus, t0, t1)?);
    }
    let layout = solver.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    solver.initial_state(params, &mut work, u0, &mut x)?;
    let mut times = Vec::new();
    let mut k = 0;
    while !solver.is_last(&x) {
        solver.advance(params, &mut work, k, &x, &mut next)?;
        std::mem::swap(&mut x, &mut next);
        k += 1;
        if BdfLayout::pending_event(&x) == Some(event) && !solver.is_last(&x) {
            times.push(x[BdfLayout::T]);
        }
    }
    Ok(times)
}

fn on_grid<M: Model, P: StepPlan>(
    model: &M,
    method: FixedMethod,
    plan: &P,
    u0: &[f64],
    event: usize,
) -> Result<Vec<f64>, revode_forward::ForwardError> {
    let mut stepper = EventStepper::new(method, model);
    let mut work = model.new_work();
    let (mut u, mut next) = (u0.to_vec(), u0.to_vec());
    let mut times = Vec::new();
    for k in 0..plan.n_steps() {
        let (t, h, p) = plan.step(k);
        stepper.step(model, t, h, &u, p, &mut next, &mut work)?;
        for seg in stepper.segments() {
            if seg.event == Some(event) {
                times.push(seg.tau + seg.sigma);
            }
        }
        std::mem::swap(&mut u, &mut next);
    }
    Ok(times)
}

fn on_beuler_grid<M: Model, P: StepPlan>(
    model: &M,
    options: BeulerOptions,
    plan: &P,
    u0: &[f64],
    event: usize,
) -> Result<Vec<f64>, revode_forward::ForwardError> {
    options.validate()?;
    let mut stepper = BackwardEuler::new(model, options);
    let mut events = BeulerEvents::new(model);
    let layout = stepper.layout();
    let mut work = model.new_work();
    let mut x = vec![0.0; layout.len()];
    let mut next = x.clone();
    layout.initial_state(model, plan.time(0), u0, plan.step(0).2, &mut work, &mut x);
    let mut times = Vec::new();
    for k in 0..plan.n_steps() {
        events.step(&mut stepper, model, plan, k, &x, &mut next, &mut work)?;
        for seg in events.segments() {
            if seg.event == Some(event) {
                times.push(seg.tau + seg.sigma);
            }
        }
        std::mem::swap(&mut x, &mut next);
    }
    Ok(times)
}
