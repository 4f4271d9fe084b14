//! Fitting a model's parameters to recorded traces (docs/fitting.md).
//!
//! The loss is `Σ_sweeps weight · (1/m) Σ_j (u_c(t_j) − y_j)²`, one
//! `trace_mse` problem per sweep, whose exact adjoint gradients are computed
//! in parallel. L-BFGS (argmin, More–Thuente line search) minimises it in
//! scaled, unconstrained coordinates that keep every parameter inside its
//! bounds. Several seeded starts may run in parallel; the best is kept.
//!
//! ```no_run
//! use revode::fit::{fit, read_fit_file};
//! let (problem, options) = read_fit_file("fit.json".as_ref()).unwrap();
//! let report = fit(&problem, &options).unwrap();
//! println!("{:?} = {:?}, loss {}", report.param_names, report.params, report.loss);
//! ```

mod data;
mod file;
mod objective;
mod optimize;
mod starts;
mod transform;

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use data::{
    check_times, parse_spike_csv, parse_trace_csv, read_spike_csv, read_trace_csv, Trace,
    ON_GRID_TOLERANCE,
};
pub use file::{parse_fit_file, read_fit_file};
pub use objective::{BLOW_UP_FACTOR, FIRST_STEP};
pub use starts::DEFAULT_SPREAD;

use crate::problem::{AdjointSpec, LossSpec, ModelSpec, SolverSpec};
use crate::{Error, ModelVisitor, Problem};
use objective::{Objective, PreparedSweep};
use transform::Coordinate;

pub use crate::problem::StimulusSpec;

/// A fitted parameter and its optional bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeParameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
}

/// One recorded sweep: its span, the observed state and its samples — or,
/// with `event`, the recorded firing times of that event (spike times; a
/// `global` line, from 0 in file order), fitted by the `event_times` loss
/// `Σ_k (t_k − τ_k)²` (docs/events.md); `component` and `values` are then
/// unused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub tspan: [f64; 2],
    /// The observed state, named as the model names it.
    #[serde(default)]
    pub component: String,
    pub times: Vec<f64>,
    #[serde(default)]
    pub values: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<usize>,
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stimulus: Option<StimulusSpec>,
    /// Where the samples came from (a file name), for messages.
    #[serde(default)]
    pub source: String,
}

impl Sweep {
    /// Synthetic data: `problem` solved forward, its state `component`
    /// sampled every `sample_every` steps (from t0; with dopri5, every
    /// `sample_every` accepted steps), weight 1.
    pub fn synthetic(
        problem: &Problem,
        component: &str,
        sample_every: usize,
    ) -> Result<Sweep, Error> {
        let solved = crate::solve(problem, Some(sample_every.max(1)))?;
        let c = solved
            .state_names
            .iter()
            .position(|n| n == component)
            .ok_or_else(|| invalid(format!("model {} has no state `{component}`", solved.model)))?;
        let (times, values) = solved
            .samples
            .iter()
            .map(|row| (row[0], row[1 + c]))
            .unzip();
        Ok(Sweep {
            tspan: problem.tspan,
            component: component.to_string(),
            times,
            values,
            event: None,
            weight: 1.0,
            stimulus: problem.stimulus.clone(),
            source: "synthetic".to_string(),
        })
    }

    /// Synthetic spike data: the times at which `problem`'s forward solve
    /// fires event `event`, weight 1.
    pub fn synthetic_spikes(problem: &Problem, event: usize) -> Result<Sweep, Error> {
        Ok(Sweep {
            tspan: problem.tspan,
            component: String::new(),
            times: crate::spikes::event_times(problem, event)?,
            values: Vec::new(),
            event: Some(event),
            weight: 1.0,
            stimulus: problem.stimulus.clone(),
            source: "synthetic spikes".to_string(),
        })
    }
}

/// What to fit: the model and its fixed inputs, the free parameters and
/// the recorded sweeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitProblem {
    #[serde(
        deserialize_with = "crate::problem::model_or_file",
        serialize_with = "crate::problem::serialize_model"
    )]
    pub model: ModelSpec,
    /// All parameters (default: the model's); the free ones start here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u0: Option<Vec<f64>>,
    pub free: Vec<FreeParameter>,
    pub solver: SolverSpec,
    #[serde(default)]
    pub adjoint: AdjointSpec,
    pub sweeps: Vec<Sweep>,
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerMethod {
    #[default]
    Lbfgs,
}

/// Starts of a fit unless `starts` says otherwise: on the seed model's
/// 600 ms trace from guesses within ±30 %, one start recovers the truth in
/// about 1 trial in 8, eight starts in about 6 in 8 (docs/fitting.md).
pub const DEFAULT_STARTS: usize = 8;

/// Default spread of the extra starts around `params`: ±30 %.
pub const DEFAULT_START_SPREAD: f64 = 0.3;

/// The `optimizer` block; every key is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitOptions {
    pub method: OptimizerMethod,
    /// L-BFGS iterations per start.
    pub max_iters: u64,
    /// Stop when ‖dL/dx‖₂ ≤ gtol (x: the optimiser's coordinates).
    pub gtol: f64,
    /// Stop when an iteration changes the loss by at most this fraction.
    pub loss_rtol: f64,
    /// L-BFGS history length.
    pub memory: usize,
    /// Number of starts: the given parameters, then seeded draws; run in
    /// parallel, the lowest loss wins. Default [`DEFAULT_STARTS`] (see
    /// docs/fitting.md for the measurement behind it).
    pub starts: usize,
    /// Draw starts within `params · [1 − spread, 1 + spread]` (default
    /// [`DEFAULT_START_SPREAD`]); `null`: within the bounds (±
    /// [`DEFAULT_SPREAD`] for a parameter lacking one).
    pub spread: Option<f64>,
    pub seed: u64,
    /// Time-window continuation: fit the leading fraction `w` of every
    /// sweep for each `w` here (ascending, in (0, 1)), each stage starting
    /// from the last one's result, then the whole sweeps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            method: OptimizerMethod::Lbfgs,
            max_iters: 200,
            gtol: 1e-8,
            loss_rtol: 1e-12,
            memory: 10,
            starts: DEFAULT_STARTS,
            spread: Some(DEFAULT_START_SPREAD),
            seed: 0,
            windows: Vec::new(),
        }
    }
}

/// One iteration of one start, for progress displays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitProgress {
    pub start: usize,
    /// 0 is the start point.
    pub iteration: u64,
    pub loss: f64,
    /// ‖dL/dx‖₂ in the optimiser's coordinates.
    pub gradient_norm: f64,
    /// The free parameters at this iterate.
    pub params: Vec<f64>,
    pub seconds: f64,
}

/// Why a start stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    GradientTolerance,
    LossChange,
    MaxIterations,
    LineSearch,
    StartFailed,
}

impl StopReason {
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::GradientTolerance => "gradient norm below gtol",
            StopReason::LossChange => "relative loss change below loss_rtol",
            StopReason::MaxIterations => "max_iters reached",
            StopReason::LineSearch => "the line search found no better point",
            StopReason::StartFailed => "the solve failed at the start point",
        }
    }

    /// Gradient or loss-change tolerance met.
    pub fn converged(self) -> bool {
        matches!(self, StopReason::GradientTolerance | StopReason::LossChange)
    }
}

/// One start's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartReport {
    /// Free parameters at the start.
    pub start: Vec<f64>,
    /// Free parameters at the lowest loss found.
    pub params: Vec<f64>,
    pub loss: f64,
    pub gradient_norm: f64,
    pub iterations: u64,
    pub converged: bool,
    pub stop_reason: StopReason,
    pub stop_message: String,
    /// Loss at the start and after each iteration.
    pub history: Vec<f64>,
    pub evaluations: usize,
    /// Trial points whose solve failed (counted as a wall, not an error).
    pub failed_evaluations: usize,
    pub seconds: f64,
}

/// The result of a fit: the best start's outcome, and every start's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    pub model: String,
    /// Names of the free parameters.
    pub param_names: Vec<String>,
    /// Fitted values of the free parameters.
    pub params: Vec<f64>,
    /// The given start values of the free parameters.
    pub start: Vec<f64>,
    pub lower: Vec<Option<f64>>,
    pub upper: Vec<Option<f64>>,
    /// Every model parameter, fitted ones in place.
    pub all_params: Vec<f64>,
    pub loss: f64,
    pub gradient_norm: f64,
    pub iterations: u64,
    pub converged: bool,
    pub stop_reason: StopReason,
    pub stop_message: String,
    /// Loss per iteration of the best start.
    pub history: Vec<f64>,
    pub evaluations: usize,
    pub failed_evaluations: usize,
    /// Wall time of the whole fit (all starts).
    pub seconds: f64,
    pub best_start: usize,
    pub starts: Vec<StartReport>,
}

/// What a fit needs to know of its model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub param_names: Vec<String>,
    pub state_names: Vec<String>,
    pub default_params: Vec<f64>,
    pub default_u0: Vec<f64>,
    /// Events (`global` lines).
    pub n_events: usize,
}

struct Info;

impl ModelVisitor for Info {
    type Output = ModelInfo;
    fn visit<M: revode_model::Model>(self, m: &M) -> ModelInfo {
        ModelInfo {
            name: m.name().to_string(),
            param_names: m.param_names(),
            state_names: m.state_names(),
            default_params: m.default_params(),
            default_u0: m.default_u0(),
            n_events: m.n_events(),
        }
    }
}

/// A model's name, parameter and state names and defaults.
pub fn model_info(model: &ModelSpec) -> Result<ModelInfo, Error> {
    model.visit(Info)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid {
        origin: "fit".to_string(),
        message: message.into(),
    }
}

/// A fit checked and laid out for running.
struct Prepared {
    info: ModelInfo,
    params: Vec<f64>,
    free_index: Vec<usize>,
    bounds: Vec<(Option<f64>, Option<f64>)>,
    sweeps: Vec<PreparedSweep>,
}

fn check_length(what: &str, v: &[f64], expected: usize) -> Result<(), Error> {
    if v.len() != expected {
        return Err(invalid(format!(
            "{what} has {} entries, the model has {expected}",
            v.len()
        )));
    }
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(invalid(format!("{what}[{i}] is not finite ({x})")));
    }
    Ok(())
}

fn prepare(problem: &FitProblem) -> Result<Prepared, Error> {
    let info = model_info(&problem.model)?;
    let params = problem
        .params
        .clone()
        .unwrap_or_else(|| info.default_params.clone());
    let u0 = problem
        .u0
        .clone()
        .unwrap_or_else(|| info.default_u0.clone());
    check_length("params", &params, info.param_names.len())?;
    check_length("u0", &u0, info.state_names.len())?;

    if problem.free.is_empty() {
        return Err(invalid("`free` names no parameter to fit"));
    }
    let mut free_index = Vec::new();
    let mut bounds = Vec::new();
    for f in &problem.free {
        let index = param_index(&info, &f.name, "free")?;
        if free_index.contains(&index) {
            return Err(invalid(format!("`{}` is listed twice in free", f.name)));
        }
        check_bounds(f, params[index])?;
        free_index.push(index);
        bounds.push((f.lower, f.upper));
    }

    if problem.sweeps.is_empty() {
        return Err(invalid(
            "`sweeps` is empty: give at least one recorded sweep",
        ));
    }
    let sweeps = problem
        .sweeps
        .iter()
        .enumerate()
        .map(|(i, sweep)| prepare_sweep(problem, &info, &params, &u0, &free_index, i, sweep))
        .collect::<Result<_, _>>()?;
    Ok(Prepared {
        info,
        params,
        free_index,
        bounds,
        sweeps,
    })
}

fn param_index(info: &ModelInfo, name: &str, what: &str) -> Result<usize, Error> {
    info.param_names
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| {
            invalid(format!(
                "{what}: model {} has no parameter `{name}` (it has {})",
                info.name,
                info.param_names.join(", ")
            ))
        })
}

fn check_bounds(f: &FreeParameter, start: f64) -> Result<(), Error> {
    let name = &f.name;
    for (what, b) in [("lower", f.lower), ("upper", f.upper)] {
        if let Some(b) = b.filter(|b| !b.is_finite()) {
            return Err(invalid(format!(
                "free `{name}`: {what} bound {b} is not finite (leave it out for no bound)"
            )));
        }
    }
    if let (Some(a), Some(b)) = (f.lower, f.upper) {
        if a >= b {
            return Err(invalid(format!(
                "free `{name}`: lower bound {a} must be below upper bound {b}"
            )));
        }
    }
    let above_lower = match f.lower {
        Some(a) => a < start,
        None => true,
    };
    let below_upper = match f.upper {
        Some(b) => start < b,
        None => true,
    };
    let inside = above_lower && below_upper;
    if !inside {
        return Err(invalid(format!(
            "free `{name}`: start value {start} is not strictly inside its bounds [{}, {}]",
            f.lower.map_or("-inf".to_string(), |a| a.to_string()),
            f.upper.map_or("inf".to_string(), |b| b.to_string()),
        )));
    }
    Ok(())
}

fn prepare_sweep(
    problem: &FitProblem,
    info: &ModelInfo,
    params: &[f64],
    u0: &[f64],
    free_index: &[usize],
    i: usize,
    sweep: &Sweep,
) -> Result<PreparedSweep, Error> {
    let origin = if sweep.source.is_empty() {
        format!("sweep {}", i + 1)
    } else {
        format!("sweep {} ({})", i + 1, sweep.source)
    };
    let bad = |message: String| Error::Invalid {
        origin: origin.clone(),
        message,
    };
    if let Some(event) = sweep.event {
        return prepare_spike_sweep(problem, info, params, u0, sweep, event).map_err(bad);
    }
    let component = info
        .state_names
        .iter()
        .position(|n| *n == sweep.component)
        .ok_or_else(|| {
            bad(format!(
                "model {} has no state `{}` (it has {})",
                info.name,
                sweep.component,
                info.state_names.join(", ")
            ))
        })?;
    if !(sweep.weight.is_finite() && sweep.weight > 0.0) {
        return Err(bad(format!(
            "weight must be positive and finite, got {}",
            sweep.weight
        )));
    }
    let [t0, t1] = sweep.tspan;
    if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
        return Err(bad(format!(
            "tspan must satisfy t0 < t1 with both finite, got [{t0}, {t1}]"
        )));
    }
    if sweep.times.len() != sweep.values.len() || sweep.times.is_empty() {
        return Err(bad(format!(
            "needs as many values as times and at least one: got {} times, {} values",
            sweep.times.len(),
            sweep.values.len()
        )));
    }
    check_sorted(&sweep.times).map_err(bad)?;
    let times = check_times(&sweep.times, sweep.tspan, &problem.solver, &origin)?;
    if let Some(stimulus) = &sweep.stimulus {
        let free_names = free_index.iter().map(|&i| info.param_names[i].as_str());
        let located = |e: Error| bad(e.to_string());
        stimulus.check_not_fitted(free_names).map_err(located)?;
        stimulus
            .resolve(&info.param_names, sweep.tspan)
            .map_err(located)?;
    }

    // A sample at t0 sees u0, which no parameter moves: it stays in the
    // mean as a constant and the trace_mse loss takes the rest.
    let m = times.len() as f64;
    let (times, values, constant) = if times[0] == t0 {
        let r = u0[component] - sweep.values[0];
        (
            times[1..].to_vec(),
            sweep.values[1..].to_vec(),
            sweep.weight * r * r / m,
        )
    } else {
        (times, sweep.values.clone(), 0.0)
    };
    if times.is_empty() {
        return Err(bad(format!(
            "the only sample is at t0 = {t0}, where the state does not depend on the parameters"
        )));
    }
    let loss_weight = sweep.weight * times.len() as f64 / m;
    let sweep_problem = Problem {
        model: problem.model.clone(),
        params: Some(params.to_vec()),
        u0: Some(u0.to_vec()),
        tspan: sweep.tspan,
        solver: problem.solver.clone(),
        loss: Some(LossSpec::TraceMse {
            component,
            times,
            values,
        }),
        adjoint: problem.adjoint.clone(),
        stimulus: sweep.stimulus.clone(),
    };
    Ok(PreparedSweep {
        problem: sweep_problem,
        loss_weight,
        constant,
    })
}

/// A spike-time sweep: the `event_times` loss of its event.
fn prepare_spike_sweep(
    problem: &FitProblem,
    info: &ModelInfo,
    params: &[f64],
    u0: &[f64],
    sweep: &Sweep,
    event: usize,
) -> Result<PreparedSweep, String> {
    if event >= info.n_events {
        return Err(format!(
            "spike times of event {event}, but model {} has {} event(s) ('global' lines, from 0)",
            info.name, info.n_events
        ));
    }
    if !(sweep.weight.is_finite() && sweep.weight > 0.0) {
        return Err(format!(
            "weight must be positive and finite, got {}",
            sweep.weight
        ));
    }
    let [t0, t1] = sweep.tspan;
    if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
        return Err(format!(
            "tspan must satisfy t0 < t1 with both finite, got [{t0}, {t1}]"
        ));
    }
    if sweep.times.is_empty() {
        return Err("no spike times".to_string());
    }
    check_sorted(&sweep.times)?;
    if let Some(t) = sweep.times.iter().find(|&&t| t <= t0 || t > t1) {
        return Err(format!(
            "spike time {t} is outside the sweep's tspan ({t0}, {t1}]"
        ));
    }
    Ok(PreparedSweep {
        problem: Problem {
            model: problem.model.clone(),
            params: Some(params.to_vec()),
            u0: Some(u0.to_vec()),
            tspan: sweep.tspan,
            solver: problem.solver.clone(),
            loss: Some(LossSpec::EventTimes {
                event,
                times: sweep.times.clone(),
            }),
            adjoint: problem.adjoint.clone(),
            stimulus: sweep.stimulus.clone(),
        },
        loss_weight: sweep.weight,
        constant: 0.0,
    })
}

fn check_sorted(times: &[f64]) -> Result<(), String> {
    for (i, w) in times.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(format!(
                "sample times must increase strictly: time {} = {} follows {}",
                i + 1,
                w[1],
                w[0]
            ));
        }
    }
    if let Some(t) = times.iter().find(|t| !t.is_finite()) {
        return Err(format!("sample time {t} is not finite"));
    }
    Ok(())
}

/// Fits the free parameters; see [`fit_observed`].
pub fn fit(problem: &FitProblem, options: &FitOptions) -> Result<FitReport, Error> {
    fit_observed(problem, options, &|_| {})
}

fn check_options(o: &FitOptions) -> Result<(), Error> {
    if o.max_iters == 0 {
        return Err(invalid("optimizer: max_iters must be at least 1"));
    }
    if !(o.gtol.is_finite() && o.gtol >= 0.0) {
        return Err(invalid(format!(
            "optimizer: gtol must be finite and ≥ 0, got {}",
            o.gtol
        )));
    }
    if !(o.loss_rtol.is_finite() && o.loss_rtol >= 0.0) {
        return Err(invalid(format!(
            "optimizer: loss_rtol must be finite and ≥ 0, got {}",
            o.loss_rtol
        )));
    }
    if o.memory == 0 {
        return Err(invalid("optimizer: memory must be at least 1"));
    }
    if o.starts == 0 || o.starts > 10_000 {
        return Err(invalid(format!(
            "optimizer: starts must be between 1 and 10000, got {}",
            o.starts
        )));
    }
    if let Some(s) = o.spread {
        if !(s.is_finite() && s > 0.0 && s < 1.0) {
            return Err(invalid(format!(
                "optimizer: spread must be a fraction in (0, 1), got {s}"
            )));
        }
    }
    for (i, &w) in o.windows.iter().enumerate() {
        if !(w > 0.0 && w < 1.0) || (i > 0 && w <= o.windows[i - 1]) {
            return Err(invalid(format!(
                "optimizer: windows must be increasing fractions in (0, 1), got {:?}",
                o.windows
            )));
        }
    }
    Ok(())
}

/// The fit restricted to the leading fraction `w` of every sweep: each
/// span ends at its last sample at or before `t0 + w·(t1 − t0)`; a sweep
/// with no sample after t0 there drops out, and so do stimulus switches
/// after the new end. None when no sweep is left.
fn leading_window(problem: &FitProblem, w: f64) -> Option<FitProblem> {
    let sweeps: Vec<Sweep> = problem
        .sweeps
        .iter()
        .filter_map(|s| {
            let [t0, t1] = s.tspan;
            let cut = t0 + w * (t1 - t0);
            let n = s.times.iter().take_while(|&&t| t <= cut).count();
            let end = *s.times[..n].last()?;
            if end <= t0 {
                return None;
            }
            let mut window = s.clone();
            // A spike window ends at the cut, not on its last spike (an
            // event exactly at t1 may fall just past it).
            window.tspan = [t0, if s.event.is_some() { cut } else { end }];
            window.times.truncate(n);
            window.values.truncate(n);
            if let Some(stimulus) = &mut window.stimulus {
                for switches in stimulus.0.values_mut() {
                    switches.retain(|sw| sw[0] <= end);
                }
                stimulus.0.retain(|_, switches| !switches.is_empty());
            }
            Some(window)
        })
        .collect();
    (!sweeps.is_empty()).then(|| FitProblem {
        sweeps,
        ..problem.clone()
    })
}

/// Fits the free parameters, calling `observer` after every iteration of
/// every start (starts run in parallel, so calls interleave).
pub fn fit_observed(
    problem: &FitProblem,
    options: &FitOptions,
    observer: &(dyn Fn(&FitProgress) + Sync),
) -> Result<FitReport, Error> {
    check_options(options)?;
    let started = Instant::now();
    let prep = prepare(problem)?;
    let mut stages = Vec::new();
    for &w in &options.windows {
        if let Some(window) = leading_window(problem, w) {
            stages.push(prepare(&window)?);
        }
    }
    let given: Vec<f64> = prep.free_index.iter().map(|&i| prep.params[i]).collect();
    let starts = starts::sample_starts(
        &given,
        &prep.bounds,
        options.starts,
        options.spread,
        options.seed,
    );
    let runs: Vec<Result<StartReport, Error>> = starts
        .par_iter()
        .enumerate()
        .map(|(k, start)| {
            let stages = stages.iter().chain(std::iter::once(&prep));
            run_start(stages, start, options, k, observer)
        })
        .collect();
    let mut reports = Vec::with_capacity(runs.len());
    for (k, run) in runs.into_iter().enumerate() {
        match run {
            Ok(r) => reports.push(r),
            // The given start failing is the user's problem to fix.
            Err(e) if k == 0 => return Err(e),
            Err(e) => reports.push(StartReport {
                start: starts[k].clone(),
                params: starts[k].clone(),
                loss: f64::INFINITY,
                gradient_norm: f64::NAN,
                iterations: 0,
                converged: false,
                stop_reason: StopReason::StartFailed,
                stop_message: e.to_string(),
                history: Vec::new(),
                evaluations: 1,
                failed_evaluations: 1,
                seconds: 0.0,
            }),
        }
    }
    let best_start = (0..reports.len())
        .min_by(|&a, &b| reports[a].loss.total_cmp(&reports[b].loss))
        .expect("at least one start");
    let best = reports[best_start].clone();
    let mut all_params = prep.params.clone();
    for (&i, &v) in prep.free_index.iter().zip(&best.params) {
        all_params[i] = v;
    }
    Ok(FitReport {
        model: prep.info.name.clone(),
        param_names: prep
            .free_index
            .iter()
            .map(|&i| prep.info.param_names[i].clone())
            .collect(),
        params: best.params,
        start: given,
        lower: prep.bounds.iter().map(|b| b.0).collect(),
        upper: prep.bounds.iter().map(|b| b.1).collect(),
        all_params,
        loss: best.loss,
        gradient_norm: best.gradient_norm,
        iterations: best.iterations,
        converged: best.converged,
        stop_reason: best.stop_reason,
        stop_message: best.stop_message,
        history: best.history,
        evaluations: best.evaluations,
        failed_evaluations: best.failed_evaluations,
        seconds: started.elapsed().as_secs_f64(),
        best_start,
        starts: reports,
    })
}

fn run_start<'p>(
    stages: impl Iterator<Item = &'p Prepared>,
    start: &[f64],
    options: &FitOptions,
    k: usize,
    observer: &(dyn Fn(&FitProgress) + Sync),
) -> Result<StartReport, Error> {
    let mut current = start.to_vec();
    let mut total: Option<StartReport> = None;
    for prep in stages {
        let coordinates: Vec<Coordinate> = current
            .iter()
            .zip(&prep.bounds)
            .map(|(&p0, &(lower, upper))| Coordinate::new(p0, lower, upper))
            .collect();
        let x0: Vec<f64> = coordinates
            .iter()
            .zip(&current)
            .map(|(c, &p)| c.to_coordinate(p))
            .collect();
        let mut base = prep.params.clone();
        for (&i, &v) in prep.free_index.iter().zip(&current) {
            base[i] = v;
        }
        let objective = Objective::new(
            &prep.sweeps[..],
            &base,
            &prep.free_index,
            coordinates.clone(),
        );
        let offset = total.as_ref().map_or(0, |t| t.iterations);
        let run = optimize::run(objective, x0, options, k, offset, observer)?;
        current = coordinates
            .iter()
            .zip(&run.best.x)
            .map(|(c, &x)| c.to_param(x))
            .collect();
        let stage = StartReport {
            start: start.to_vec(),
            params: current.clone(),
            loss: run.best.loss,
            gradient_norm: objective::l2(&run.best.gradient),
            iterations: run.iterations,
            converged: run.stop.converged(),
            stop_reason: run.stop,
            stop_message: run.message,
            history: run.history,
            evaluations: run.evaluations,
            failed_evaluations: run.failures.len(),
            seconds: run.seconds,
        };
        total = Some(match total {
            None => stage,
            // Earlier windows count towards the work; the outcome is the
            // last stage's.
            Some(t) => StartReport {
                iterations: t.iterations + stage.iterations,
                history: t.history.into_iter().chain(stage.history).collect(),
                evaluations: t.evaluations + stage.evaluations,
                failed_evaluations: t.failed_evaluations + stage.failed_evaluations,
                seconds: t.seconds + stage.seconds,
                ..stage
            },
        });
    }
    Ok(total.expect("the whole sweeps are the last stage"))
}

/// The fitted model's trace of each sweep's observed state next to its
/// data, for plots: `(times, model values)` sampled about `points` times.
pub fn fitted_traces(
    problem: &FitProblem,
    report: &FitReport,
    points: usize,
) -> Result<Vec<SweepTrace>, Error> {
    let prep = prepare(problem)?;
    prep.sweeps
        .iter()
        .zip(&problem.sweeps)
        .map(|(prepared, sweep)| {
            let mut p = prepared.problem.clone();
            p.params = Some(report.all_params.clone());
            // A spike sweep is drawn on the first state, its spikes marked
            // at the top of the trace.
            let component = prep
                .info
                .state_names
                .iter()
                .position(|n| *n == sweep.component)
                .unwrap_or(0);
            let steps = match p.solver.fixed_dt() {
                Some(dt) => ((sweep.tspan[1] - sweep.tspan[0]) / dt).round() as usize,
                None => points,
            };
            let every = (steps / points.max(1)).max(1);
            let solved = crate::solve(&p, Some(every))?;
            let (times, model): (Vec<f64>, Vec<f64>) = solved
                .samples
                .iter()
                .map(|row| (row[0], row[1 + component]))
                .unzip();
            let (label, data_values) = match sweep.event {
                None => (sweep.component.clone(), sweep.values.clone()),
                Some(e) => {
                    let top = model.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (
                        format!("{} (spikes of event {e})", prep.info.state_names[component]),
                        vec![top; sweep.times.len()],
                    )
                }
            };
            Ok(SweepTrace {
                component: label,
                source: sweep.source.clone(),
                times,
                model,
                data_times: sweep.times.clone(),
                data_values,
            })
        })
        .collect()
}

/// One sweep's fitted trace and data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepTrace {
    pub component: String,
    pub source: String,
    pub times: Vec<f64>,
    pub model: Vec<f64>,
    pub data_times: Vec<f64>,
    pub data_values: Vec<f64>,
}

/// A problem file for sweep `index` with the fitted parameters, ready for
/// `revode grad` or `revode solve`.
pub fn fitted_problem(
    problem: &FitProblem,
    report: &FitReport,
    index: usize,
) -> Result<Problem, Error> {
    let prep = prepare(problem)?;
    let sweep = prep
        .sweeps
        .get(index)
        .ok_or_else(|| invalid(format!("no sweep {}", index + 1)))?;
    let mut p = sweep.problem.clone();
    p.params = Some(report.all_params.clone());
    Ok(p)
}
