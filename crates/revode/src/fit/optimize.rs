//! One L-BFGS run from one start: argmin's L-BFGS with its More–Thuente
//! line search, wrapped in a solver that adds revode's stopping rules
//! (gradient norm and relative loss change, in unscaled units), records the
//! loss history and reports each iteration.

use std::time::Instant;

use argmin::core::{
    Error as ArgminError, Executor, IterState, Problem as ArgminProblem, Solver, State,
    TerminationReason, TerminationStatus, KV,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use super::objective::{l2, Evaluate, History, Objective, Point};
use super::{FitOptions, FitProgress, StopReason};
use crate::Error;

type Param = Vec<f64>;
type LineSearch = MoreThuenteLineSearch<Param, Param, f64>;
type Lbfgs = LBFGS<LineSearch, Param, Param, f64>;
type LbfgsState = IterState<Param, Param, (), (), (), f64>;

/// L-BFGS plus our stopping rules and bookkeeping.
struct Stopping<'o> {
    inner: Lbfgs,
    gtol: f64,
    loss_rtol: f64,
    /// The objective's loss scale (argmin sees `scale · L`).
    scale: f64,
    stop: Option<StopReason>,
    history: Vec<f64>,
    start: usize,
    /// Iterations of earlier continuation stages (for progress numbering).
    offset: u64,
    started: Instant,
    observer: &'o (dyn Fn(&FitProgress) + Sync),
    seen: History,
}

impl Stopping<'_> {
    fn report<E: Evaluate + ?Sized>(
        &mut self,
        iteration: u64,
        state: &LbfgsState,
        objective: Option<&Objective<'_, E>>,
    ) {
        let params = match (objective, state.get_param()) {
            (Some(o), Some(x)) => o.free_at(x),
            _ => Vec::new(),
        };
        let loss = state.get_cost() / self.scale;
        let gradient_norm = state.get_gradient().map_or(f64::NAN, |g| l2(g)) / self.scale;
        self.history.push(loss);
        (self.observer)(&FitProgress {
            start: self.start,
            iteration: self.offset + iteration,
            loss,
            gradient_norm,
            params,
            seconds: self.started.elapsed().as_secs_f64(),
        });
    }
}

impl<'a, E: Evaluate + ?Sized> Solver<Objective<'a, E>, LbfgsState> for Stopping<'_> {
    fn name(&self) -> &str {
        "L-BFGS (More-Thuente) with revode's stopping rules"
    }

    fn init(
        &mut self,
        problem: &mut ArgminProblem<Objective<'a, E>>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), ArgminError> {
        let (state, kv) = self.inner.init(problem, state)?;
        self.report(0, &state, problem.problem.as_ref());
        Ok((state, kv))
    }

    fn next_iter(
        &mut self,
        problem: &mut ArgminProblem<Objective<'a, E>>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), ArgminError> {
        let iteration = state.get_iter() + 1;
        let (state, kv) = self.inner.next_iter(problem, state)?;
        if state.terminated() {
            // The line search gave up; its message is in the state.
            return Ok((state, kv));
        }
        // A line search can end (with a warning) on its latest trial point;
        // if that solve failed, there is nowhere sensible to go on from.
        let failed = state.get_param().is_some_and(|x| self.seen.failed_at(x));
        if failed {
            self.stop = Some(StopReason::LineSearch);
        }
        self.report(iteration, &state, problem.problem.as_ref());
        Ok((state, kv))
    }

    fn terminate(&mut self, state: &LbfgsState) -> TerminationStatus {
        if self.stop.is_none() {
            let gradient_norm = state.get_gradient().map_or(f64::INFINITY, |g| l2(g)) / self.scale;
            let (prev, cost) = (state.get_prev_cost(), state.get_cost());
            if gradient_norm <= self.gtol {
                self.stop = Some(StopReason::GradientTolerance);
            } else if state.get_iter() > 0
                && (prev - cost).abs() <= self.loss_rtol * prev.abs().max(cost.abs())
            {
                self.stop = Some(StopReason::LossChange);
            }
        }
        match self.stop {
            Some(_) => TerminationStatus::Terminated(TerminationReason::SolverConverged),
            None => TerminationStatus::NotTerminated,
        }
    }
}

/// What one start produced.
pub(crate) struct RunOutcome {
    pub best: Point,
    pub iterations: u64,
    pub stop: StopReason,
    pub message: String,
    pub history: Vec<f64>,
    pub evaluations: usize,
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Runs L-BFGS from `x0`; the start's own evaluation failing is an error,
/// anything later is handled inside (see [`Objective`]).
pub(crate) fn run<E: Evaluate + ?Sized>(
    mut objective: Objective<'_, E>,
    x0: Vec<f64>,
    options: &FitOptions,
    start: usize,
    offset: u64,
    observer: &(dyn Fn(&FitProgress) + Sync),
) -> Result<RunOutcome, Error> {
    let started = Instant::now();
    let first = objective.start(&x0)?;
    let seen = objective.history();
    let scale = objective.scale();
    let invalid = |e: ArgminError| Error::Invalid {
        origin: "optimizer".to_string(),
        message: e.to_string(),
    };
    // argmin's own tolerances are switched off (0): ours work on unscaled
    // values and the relative loss change.
    let inner = LBFGS::new(LineSearch::new(), options.memory)
        .with_tolerance_grad(0.0)
        .and_then(|l| l.with_tolerance_cost(0.0))
        .map_err(invalid)?;
    let solver = Stopping {
        inner,
        gtol: options.gtol,
        loss_rtol: options.loss_rtol,
        scale,
        stop: None,
        history: Vec::new(),
        start,
        offset,
        started,
        observer,
        seen: objective.history(),
    };
    let grad0: Vec<f64> = first.gradient.iter().map(|g| scale * g).collect();
    let result = Executor::new(objective, solver)
        .configure(|state| {
            state
                .param(x0)
                .cost(scale * first.loss)
                .gradient(grad0)
                .max_iters(options.max_iters)
        })
        .run()
        .map_err(invalid)?;
    let iterations = result.state.get_iter();
    let (stop, message) = match (result.solver.stop, result.state.get_termination_reason()) {
        (Some(reason), _) => (reason, reason.describe().to_string()),
        (None, Some(TerminationReason::MaxItersReached)) => (
            StopReason::MaxIterations,
            StopReason::MaxIterations.describe().to_string(),
        ),
        (None, Some(TerminationReason::SolverExit(message))) => {
            (StopReason::LineSearch, message.clone())
        }
        (None, other) => (
            StopReason::LineSearch,
            format!("optimiser stopped: {other:?}"),
        ),
    };
    let (best, evaluations, failures) = seen.outcome();
    Ok(RunOutcome {
        best,
        iterations,
        stop,
        message,
        history: result.solver.history,
        evaluations,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::transform::Coordinate;

    /// A pseudo-Huber bowl around p = 5 whose "solve" fails for p > 8: its
    /// bounded gradient makes early secant steps overshoot into the
    /// failing region.
    struct FailsAboveEight;

    impl Evaluate for FailsAboveEight {
        fn loss_and_gradient(&self, p: &[f64]) -> Result<(f64, Vec<f64>), Error> {
            if p[0] > 8.0 {
                return Err(Error::Invalid {
                    origin: "test".into(),
                    message: "blew up".into(),
                });
            }
            let r = p[0] - 5.0;
            let s = (1.0 + r * r).sqrt();
            Ok((s - 1.0, vec![r / s]))
        }
    }

    #[test]
    fn a_failed_trial_point_does_not_end_the_fit() {
        let coordinates = vec![Coordinate::new(1.0, None, None)];
        let objective = Objective::new(&FailsAboveEight, &[1.0], &[0], coordinates.clone());
        let options = FitOptions::default();
        let out = run(objective, vec![0.0], &options, 0, 0, &|_| {}).unwrap();
        let p = coordinates[0].to_param(out.best.x[0]);
        assert!(
            !out.failures.is_empty(),
            "the test must hit the failing region"
        );
        assert!(out.stop.converged(), "{:?}: {}", out.stop, out.message);
        assert!((p - 5.0).abs() < 1e-6, "p = {p}");
    }

    /// A flat gradient with a non-zero loss: the search direction is zero,
    /// argmin's line search fails with an error and keeps the problem.
    struct Flat;

    impl Evaluate for Flat {
        fn loss_and_gradient(&self, _: &[f64]) -> Result<(f64, Vec<f64>), Error> {
            Ok((1.0, vec![0.0]))
        }
    }

    #[test]
    fn a_failed_line_search_is_a_stop_reason_not_a_panic() {
        let coordinates = vec![Coordinate::new(1.0, None, None)];
        let objective = Objective::new(&Flat, &[1.0], &[0], coordinates);
        // gtol < 0 keeps the zero gradient from stopping the run first.
        let options = FitOptions {
            gtol: -1.0,
            ..FitOptions::default()
        };
        let out = run(objective, vec![0.0], &options, 0, 0, &|_| {}).unwrap();
        assert_eq!(out.stop, StopReason::LineSearch);
        assert_eq!(out.best.loss, 1.0);
    }
}
