//! The fit file: a problem file's model, solver and adjoint blocks, the
//! free parameters, the recorded sweeps and the optimiser's options.
//! Unknown keys are errors.
//!
//! ```json
//! { "model": {"name": "hh"},
//!   "params": [55.0, 13.0, 0.065],
//!   "free": {"g_Na": {"lower": 1.0, "upper": 200.0}, "g_Kd": {"lower": 0.0}, "g_leak": {}},
//!   "solver": {"method": "euler", "dt": 0.01},
//!   "sweeps": [ {"tspan": [0.0, 600.0], "data": "trace.csv", "component": "E", "weight": 1.0} ],
//!   "optimizer": {"method": "lbfgs", "max_iters": 200, "gtol": 1e-8} }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    model_info, read_spike_csv, read_trace_csv, FitOptions, FitProblem, FreeParameter,
    StimulusSpec, Sweep,
};
use crate::problem::{AdjointSpec, ModelSpec, SolverSpec};
use crate::Error;

/// The bounds of one free parameter; both optional.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bounds {
    #[serde(default)]
    lower: Option<f64>,
    #[serde(default)]
    upper: Option<f64>,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    tspan: [f64; 2],
    /// CSV path of a trace, relative to the fit file (with `component`).
    #[serde(default)]
    data: Option<PathBuf>,
    #[serde(default)]
    component: Option<String>,
    /// CSV path of recorded spike times (column `t`), with `event`
    /// (default 0): the times event `event` fired.
    #[serde(default)]
    spikes: Option<PathBuf>,
    #[serde(default)]
    event: Option<usize>,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    stimulus: Option<StimulusSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FitFile {
    #[serde(deserialize_with = "crate::problem::model_or_file")]
    model: ModelSpec,
    #[serde(default)]
    params: Option<Vec<f64>>,
    #[serde(default)]
    u0: Option<Vec<f64>>,
    free: BTreeMap<String, Bounds>,
    solver: SolverSpec,
    #[serde(default)]
    adjoint: AdjointSpec,
    sweeps: Vec<SweepFile>,
    #[serde(default)]
    optimizer: FitOptions,
}

/// Reads a fit file and the CSV files it names.
pub fn read_fit_file(path: &Path) -> Result<(FitProblem, FitOptions), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    parse_fit_file(&text, base, &path.display().to_string())
}

/// Parses fit-file text; data and model-file paths are taken relative to
/// `base`, and
/// `origin` names the text in errors.
pub fn parse_fit_file(
    text: &str,
    base: &Path,
    origin: &str,
) -> Result<(FitProblem, FitOptions), Error> {
    let mut file: FitFile = serde_json::from_str(text).map_err(|source| Error::Json {
        origin: origin.to_string(),
        source,
    })?;
    // A model file's relative path is taken from the fit file's folder.
    file.model.load_file(Some(base))?;
    // `free` is a JSON object: list it in the model's parameter order so
    // reports read like the model, with unknown names left for the fit's
    // own check (which says which names exist).
    let info = model_info(&file.model)?;
    let names = &info.param_names;
    let mut free: Vec<FreeParameter> = file
        .free
        .into_iter()
        .map(|(name, b)| FreeParameter {
            name,
            lower: b.lower,
            upper: b.upper,
        })
        .collect();
    free.sort_by_key(|f| {
        names
            .iter()
            .position(|n| *n == f.name)
            .unwrap_or(usize::MAX)
    });
    let sweeps =
        file.sweeps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let bad = |message: String| Error::Invalid {
                    origin: format!("{origin}: sweep {}", i + 1),
                    message,
                };
                let (data, component) = match (s.data, s.component, s.spikes) {
                    (None, None, Some(spikes)) => {
                        let path = base.join(&spikes);
                        let times = read_spike_csv(&path)?;
                        return Ok(Sweep {
                            tspan: s.tspan,
                            component: String::new(),
                            times,
                            values: Vec::new(),
                            event: Some(s.event.unwrap_or(0)),
                            weight: s.weight,
                            stimulus: s.stimulus,
                            source: path.display().to_string(),
                        });
                    }
                    (Some(data), Some(component), None) if s.event.is_none() => (data, component),
                    _ => return Err(bad(
                        "give either `data` (a trace CSV) and `component`, or `spikes` (a CSV of \
                         spike times) and optionally `event`"
                            .to_string(),
                    )),
                };
                // Checked before the CSV, so the message is about the model.
                if !info.state_names.contains(&component) {
                    return Err(bad(format!(
                        "model {} has no state `{}` (it has {})",
                        info.name,
                        component,
                        info.state_names.join(", ")
                    )));
                }
                let path = base.join(&data);
                let trace = read_trace_csv(&path, &component)?;
                Ok(Sweep {
                    tspan: s.tspan,
                    component,
                    times: trace.times,
                    values: trace.values,
                    event: None,
                    weight: s.weight,
                    stimulus: s.stimulus,
                    source: path.display().to_string(),
                })
            })
            .collect::<Result<_, Error>>()?;
    Ok((
        FitProblem {
            model: file.model,
            params: file.params,
            u0: file.u0,
            free,
            solver: file.solver,
            adjoint: file.adjoint,
            sweeps,
        },
        file.optimizer,
    ))
}
