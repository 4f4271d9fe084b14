//! The problem file: one JSON object describing model, data, solver, loss
//! and adjoint. Unknown keys are errors, so typos never pass silently.
//!
//! ```json
//! { "model": {"name": "hh"},
//!   "params": [70.0, 10.0, 0.05],
//!   "u0": [-59.0, 0.2, 0.9, 0.1],
//!   "tspan": [0.0, 600.0],
//!   "solver": {"method": "euler", "dt": 0.01},
//!   "loss": {"kind": "final", "weights": [1, 1, 1, 1]},
//!   "adjoint": {"method": "discrete", "checkpoints": "all"} }
//! ```
//!
//! Adaptive solves use the continuous adjoint (docs/adjoint.md):
//!
//! ```json
//! { "model": {"name": "hh"}, "tspan": [0.0, 600.0],
//!   "solver": {"method": "dopri5", "rtol": 1e-8, "atol": 1e-8},
//!   "loss": {"kind": "trace_mse", "component": 0, "times": [100, 600], "values": [-60, -65]},
//!   "adjoint": {"method": "continuous", "error_control": "lambda",
//!               "checkpoints": {"budget_bytes": 65536}} }
//! ```
//!
//! A `"stimulus"` makes parameters piecewise constant in time
//! ([`StimulusSpec`], docs/stimulus.md):
//!
//! ```json
//! { "model": {"name": "hh"}, "tspan": [0.0, 600.0],
//!   "solver": {"method": "euler", "dt": 0.01},
//!   "stimulus": {"g_leak": [[0, 0.05], [100, 0.2], [400, 0.05]]} }
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use revode_checkpoint::{Schedule, StateShape};
use revode_model::{HhNetwork, HodgkinHuxley, Model};
use revode_ode::OdeModel;
use serde::{Deserialize, Serialize};

use crate::custom::CustomModel;
use crate::Error;

/// Which built-in model, with its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", deny_unknown_fields)]
pub enum ModelSpec {
    /// The single Hodgkin–Huxley neuron of the seed problem.
    #[serde(rename = "hh")]
    Hh,
    /// `n` coupled Hodgkin–Huxley neurons, injected current `i_ext` each.
    #[serde(rename = "hh_network")]
    HhNetwork {
        #[serde(deserialize_with = "neuron_count")]
        n: NonZeroUsize,
        #[serde(default = "default_i_ext")]
        i_ext: f64,
    },
    /// A Rust model registered at run time under its name
    /// ([`crate::custom::register_model`]); read by [`model_or_file`].
    #[serde(skip)]
    Custom(CustomModel),
    /// A model file: `{"file": "models/seed_hh.ode"}` (docs/model-files.md);
    /// read by [`Problem`]'s `model` key (see [`model_or_file`]).
    #[serde(skip)]
    File(ModelFile),
}

/// `{"file": PATH}`: an `.ode` model file. A relative path is taken from
/// the problem file's folder ([`Problem::from_path`]) or, for problems
/// given as text, from the working directory. The model is read and
/// compiled once and shared by clones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub file: PathBuf,
    #[serde(skip)]
    loaded: Option<Arc<OdeModel>>,
}

impl PartialEq for ModelFile {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

impl ModelFile {
    /// Reads and compiles the file now.
    pub fn load(file: impl Into<PathBuf>) -> Result<Self, Error> {
        let file = file.into();
        let model = OdeModel::from_file(&file)?;
        Ok(ModelFile {
            file,
            loaded: Some(Arc::new(model)),
        })
    }

    /// The compiled model (read now if it was not yet).
    pub fn model(&self) -> Result<Arc<OdeModel>, Error> {
        match &self.loaded {
            Some(m) => Ok(Arc::clone(m)),
            None => Ok(Arc::new(OdeModel::from_file(&self.file)?)),
        }
    }

    /// Takes a relative path from `base` and loads the file.
    fn resolve_and_load(&mut self, base: Option<&Path>) -> Result<(), Error> {
        if let Some(base) = base.filter(|_| self.file.is_relative()) {
            self.file = base.join(&self.file);
        }
        if self.loaded.is_none() {
            *self = ModelFile::load(self.file.clone())?;
        }
        Ok(())
    }
}

fn default_i_ext() -> f64 {
    1.0
}

/// Largest `hh_network` size a problem file may ask for: W alone is then
/// 128 MiB, and a typo like `n: 1000000` must be an error, not an abort.
pub const MAX_NETWORK_NEURONS: u64 = 4096;

/// `1 ≤ n ≤ MAX_NETWORK_NEURONS`, with a message that names the key.
fn neuron_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NonZeroUsize, D::Error> {
    let n = u64::deserialize(d)?;
    if n > MAX_NETWORK_NEURONS {
        return Err(serde::de::Error::custom(format!(
            "hh_network: n must be at most {MAX_NETWORK_NEURONS}, got {n}"
        )));
    }
    usize::try_from(n)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("hh_network: n must be at least 1, got {n}"))
        })
}

/// The problem file's `model` value: `{"file": …}`, a built-in `{"name": …}`
/// or the name of a registered model (no other keys).
pub fn model_or_file<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ModelSpec, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let custom = value
        .get("name")
        .and_then(|n| n.as_str())
        .and_then(crate::custom::registered);
    let parsed = if let Some(model) = custom {
        match value
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "name"))
        {
            Some(key) => Err(serde::de::Error::custom(format!(
                "model {:?} takes no options, got {key:?}",
                model.name()
            ))),
            None => Ok(ModelSpec::Custom(model)),
        }
    } else if value.get("file").is_some() {
        serde_json::from_value(value).map(ModelSpec::File)
    } else {
        serde_json::from_value(value)
    };
    parsed.map_err(serde::de::Error::custom)
}

pub fn serialize_model<S: serde::Serializer>(spec: &ModelSpec, s: S) -> Result<S::Ok, S::Error> {
    match spec {
        ModelSpec::File(file) => file.serialize(s),
        ModelSpec::Custom(model) => serde_json::json!({ "name": model.name() }).serialize(s),
        builtin => builtin.serialize(s),
    }
}

/// Code generic over the model type, run by [`ModelSpec::visit`].
pub trait ModelVisitor {
    type Output;
    fn visit<M: Model>(self, model: &M) -> Self::Output;
}

impl ModelSpec {
    /// Builds the model and hands it to `visitor` (static dispatch: each
    /// model gets its own monomorphised hot loop). Fails only for a model
    /// file that was not loaded yet and cannot be read.
    pub fn visit<V: ModelVisitor>(&self, visitor: V) -> Result<V::Output, Error> {
        Ok(match self {
            ModelSpec::Hh => visitor.visit(&HodgkinHuxley),
            ModelSpec::HhNetwork { n, i_ext } => {
                visitor.visit(&HhNetwork::new(*n).with_i_ext(*i_ext))
            }
            ModelSpec::Custom(model) => visitor.visit(model),
            ModelSpec::File(file) => visitor.visit(&*file.model()?),
        })
    }

    /// For a model file: takes a relative path from `base` (None: the
    /// working directory) and reads and compiles the file.
    pub fn load_file(&mut self, base: Option<&Path>) -> Result<(), Error> {
        match self {
            ModelSpec::File(file) => file.resolve_and_load(base),
            _ => Ok(()),
        }
    }
}

/// The forward solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum SolverSpec {
    Euler {
        dt: f64,
    },
    Rk4 {
        dt: f64,
    },
    /// Backward (implicit) Euler with modified Newton, for stiff models
    /// (docs/stiff.md): optional `newton_tol` (default
    /// [`revode_forward::BeulerOptions::DEFAULT_NEWTON_TOL`]) and
    /// `linear_solver` (`"auto"`, `"dense"`, `"sparse"`).
    Beuler {
        dt: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        newton_tol: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        linear_solver: Option<revode_forward::LinearSolver>,
    },
    /// Adaptive Dormand–Prince 5(4) with PI control and dense output.
    Dopri5 {
        rtol: f64,
        atol: Atol,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_steps: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        h0: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        h_min: Option<f64>,
    },
    /// Variable-step, variable-order BDF for stiff problems (docs/stiff.md).
    Bdf {
        rtol: f64,
        atol: Atol,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_steps: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        h0: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        h_min: Option<f64>,
        /// Highest order, 1 to 5 (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_order: Option<usize>,
        /// `"auto"` (default), `"dense"` or `"sparse"` LU of I − γJ.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        linear_solver: Option<revode_forward::LinearSolver>,
    },
}

/// An absolute tolerance: one number, or one per component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Atol {
    Scalar(f64),
    PerComponent(Vec<f64>),
}

impl Atol {
    pub fn to_vec(&self) -> Vec<f64> {
        match self {
            Atol::Scalar(a) => vec![*a],
            Atol::PerComponent(v) => v.clone(),
        }
    }
}

impl SolverSpec {
    pub fn name(&self) -> &'static str {
        match self {
            SolverSpec::Euler { .. } => "euler",
            SolverSpec::Rk4 { .. } => "rk4",
            SolverSpec::Beuler { .. } => "beuler",
            SolverSpec::Dopri5 { .. } => "dopri5",
            SolverSpec::Bdf { .. } => "bdf",
        }
    }

    /// The options of a `bdf` solver (None for the others).
    pub fn bdf_options(&self) -> Option<revode_forward::BdfOptions> {
        match self {
            SolverSpec::Bdf {
                rtol,
                atol,
                max_steps,
                h0,
                h_min,
                max_order,
                linear_solver,
            } => Some(revode_forward::BdfOptions {
                adaptive: revode_forward::AdaptiveOptions {
                    rtol: *rtol,
                    atol: atol.to_vec(),
                    max_steps: max_steps.unwrap_or(revode_forward::DEFAULT_MAX_STEPS),
                    h0: *h0,
                    h_min: *h_min,
                },
                max_order: max_order.unwrap_or(revode_forward::bdf::MAX_ORDER),
                linear_solver: linear_solver.unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// The fixed step of `euler`, `rk4` and `beuler` (None for dopri5, bdf).
    pub fn fixed_dt(&self) -> Option<f64> {
        match self {
            SolverSpec::Euler { dt } | SolverSpec::Rk4 { dt } | SolverSpec::Beuler { dt, .. } => {
                Some(*dt)
            }
            SolverSpec::Dopri5 { .. } | SolverSpec::Bdf { .. } => None,
        }
    }

    /// The options of a `beuler` solver, defaults filled in (None otherwise).
    pub fn beuler_options(&self) -> Option<revode_forward::BeulerOptions> {
        match self {
            SolverSpec::Beuler {
                newton_tol,
                linear_solver,
                ..
            } => {
                let default = revode_forward::BeulerOptions::default();
                Some(revode_forward::BeulerOptions {
                    newton_tol: newton_tol.unwrap_or(default.newton_tol),
                    linear_solver: linear_solver.unwrap_or(default.linear_solver),
                })
            }
            _ => None,
        }
    }

    /// The checkpointed states of a model of `n_states` states and
    /// `n_events` events: the state itself, or backward Euler's `[u,
    /// slope, curvature, Newton memory]`, of which the backward sweep reads
    /// `u` only (without events: [`revode_adjoint::beuler_state_shape`]).
    pub fn checkpoint_shape(&self, n_states: usize, n_events: usize) -> StateShape {
        match self {
            SolverSpec::Beuler { .. } => revode_adjoint::beuler_state_shape(n_states, n_events),
            _ => StateShape::whole(n_states),
        }
    }

    /// The adaptive options of a `dopri5` solver (None for fixed steps).
    pub fn adaptive_options(&self) -> Option<revode_forward::AdaptiveOptions> {
        match self {
            SolverSpec::Dopri5 {
                rtol,
                atol,
                max_steps,
                h0,
                h_min,
            } => Some(revode_forward::AdaptiveOptions {
                rtol: *rtol,
                atol: atol.to_vec(),
                max_steps: max_steps.unwrap_or(revode_forward::DEFAULT_MAX_STEPS),
                h0: *h0,
                h_min: *h_min,
            }),
            _ => None,
        }
    }
}

/// The scalar loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LossSpec {
    /// `Σ w_i u_i(t1)`; weights default to all ones.
    Final {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
    },
    /// `Σ_k w · u_k` over every step k = 0..N; weights default to all ones.
    AllSteps {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
    },
    /// `(1/m) Σ_j (u_c(t_j) − y_j)²` over observations of component c.
    TraceMse {
        component: usize,
        times: Vec<f64>,
        values: Vec<f64>,
    },
    /// `Σ_k (t_k − τ_k)²` over the first K firings of event `event` (a
    /// `global` line, from 0 in file order); euler and rk4 only.
    EventTimes { event: usize, times: Vec<f64> },
}

/// How the gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdjointMethod {
    /// The exact adjoint of the discrete solver steps.
    #[default]
    Discrete,
    /// The adjoint ODE integrated backwards (adaptively for dopri5, with
    /// the forward's scheme for euler/rk4).
    Continuous,
}

/// The adjoint block; every key is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdjointSpec {
    #[serde(default)]
    pub method: AdjointMethod,
    /// Continuous adjoint of dopri5 and bdf only: tolerances of the
    /// backward integration (default: the solver's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<Atol>,
    /// Continuous adjoint of dopri5 and bdf only: `"lambda"` (default) or
    /// `"lambda_and_mu"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_control: Option<revode_adjoint::ErrorControl>,
    /// Omitted: keep all states if they take at most [`AUTO_ALL_BYTES`],
    /// otherwise every ⌈√N⌉-th.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<Schedule>,
}

/// Largest store the default schedule keeps every state in.
pub const AUTO_ALL_BYTES: usize = 256 << 20;

/// A problem file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    #[serde(deserialize_with = "model_or_file", serialize_with = "serialize_model")]
    pub model: ModelSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u0: Option<Vec<f64>>,
    pub tspan: [f64; 2],
    pub solver: SolverSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossSpec>,
    #[serde(default)]
    pub adjoint: AdjointSpec,
    /// Parameters that follow a protocol instead of their `params` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stimulus: Option<StimulusSpec>,
}

/// A problem as written, before its model file's `@` options fill what it
/// leaves out: with a model file, `tspan` and `solver` are optional
/// (docs/model-files.md, "`@` options"); with a built-in model they are
/// required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemInput {
    #[serde(deserialize_with = "model_or_file")]
    pub model: ModelSpec,
    #[serde(default)]
    pub params: Option<Vec<f64>>,
    #[serde(default)]
    pub u0: Option<Vec<f64>>,
    #[serde(default)]
    pub tspan: Option<[f64; 2]>,
    #[serde(default)]
    pub solver: Option<SolverSpec>,
    #[serde(default)]
    pub loss: Option<LossSpec>,
    #[serde(default)]
    pub adjoint: AdjointSpec,
    #[serde(default)]
    pub stimulus: Option<StimulusSpec>,
}

impl ProblemInput {
    /// Just a model file: it runs with its own `@` options.
    pub fn for_model_file(file: impl Into<PathBuf>) -> Self {
        ProblemInput {
            model: ModelSpec::File(ModelFile {
                file: file.into(),
                loaded: None,
            }),
            params: None,
            u0: None,
            tspan: None,
            solver: None,
            loss: None,
            adjoint: AdjointSpec::default(),
            stimulus: None,
        }
    }

    /// Loads the model file (a relative path from `base`) and fills a
    /// missing `tspan` or `solver` from its `@` options.
    pub fn complete(self, origin: &str, base: Option<&Path>) -> Result<Problem, Error> {
        let mut model = self.model;
        model.load_file(base)?;
        let (tspan, solver) = match (self.tspan, self.solver) {
            (Some(tspan), Some(solver)) => (tspan, solver),
            (tspan, solver) => {
                let ModelSpec::File(file) = &model else {
                    let key = if tspan.is_none() { "tspan" } else { "solver" };
                    return Err(Error::Invalid {
                        origin: origin.to_string(),
                        message: format!(
                            "missing field `{key}` (only a model file's `@` options can stand in for it)"
                        ),
                    });
                };
                let (file_tspan, file_solver) = crate::file_options::tspan_and_solver(
                    file.model()?.options(),
                    &file.file.display().to_string(),
                )?;
                (tspan.unwrap_or(file_tspan), solver.unwrap_or(file_solver))
            }
        };
        Ok(Problem {
            model,
            params: self.params,
            u0: self.u0,
            tspan,
            solver,
            loss: self.loss,
            adjoint: self.adjoint,
            stimulus: self.stimulus,
        })
    }
}

/// Piecewise-constant parameters, by name: `{"I_inj": [[0, 0.0], [100,
/// 0.6], [400, 0.0]]}` makes `I_inj` 0 from t = 0, 0.6 from t = 100 and 0
/// from t = 400 to the end of the span. Before a protocol's first time the
/// parameter keeps its value in `params`. Times strictly increasing within
/// the span; a time on t1 changes nothing.
///
/// A stimulated parameter's entry in the gradient is the derivative with
/// respect to its value in `params`, which only acts before the protocol's
/// first time: 0 when the protocol starts at t0. It cannot be fitted
/// ([`StimulusSpec::check_not_fitted`]).
///
/// ```
/// use revode::problem::StimulusSpec;
///
/// let stim = StimulusSpec::new().with("g_leak", &[[0.0, 0.05], [100.0, 0.2]]);
/// let names = ["g_Na", "g_Kd", "g_leak"].map(String::from);
/// let resolved = stim.resolve(&names, [0.0, 600.0]).unwrap();
/// assert_eq!(resolved.tracks[0].param, 2);
/// assert!(stim.check_not_fitted(["g_Na"]).is_ok());
/// assert!(stim.check_not_fitted(["g_leak"]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StimulusSpec(pub BTreeMap<String, Vec<[f64; 2]>>);

fn stimulus_error(message: String) -> Error {
    Error::Invalid {
        origin: "stimulus".to_string(),
        message,
    }
}

impl StimulusSpec {
    /// No protocol.
    pub fn new() -> Self {
        StimulusSpec::default()
    }

    /// Adds (or replaces) the protocol of parameter `name`.
    pub fn with(mut self, name: &str, switches: &[[f64; 2]]) -> Self {
        self.0.insert(name.to_string(), switches.to_vec());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stimulated parameters' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Resolves names against the model's `param_names` and checks every
    /// protocol against `tspan`: one-line errors naming the parameter.
    pub fn resolve(
        &self,
        param_names: &[String],
        tspan: [f64; 2],
    ) -> Result<revode_forward::Stimulus, Error> {
        let mut tracks = Vec::with_capacity(self.0.len());
        for (name, switches) in &self.0 {
            let param = param_names.iter().position(|p| p == name).ok_or_else(|| {
                stimulus_error(format!(
                    "unknown parameter {name:?}; the model's parameters are {}",
                    param_names.join(", ")
                ))
            })?;
            tracks.push(revode_forward::StimulusTrack {
                param,
                switches: switches.clone(),
            });
        }
        let stimulus = revode_forward::Stimulus { tracks };
        let [t0, t1] = tspan;
        stimulus
            .validate(param_names.len(), t0, t1)
            .map_err(|e| match e {
                revode_forward::ForwardError::Stimulus { param, fault } => {
                    stimulus_error(format!("{}: {fault}", param_names[param]))
                }
                other => other.into(),
            })?;
        Ok(stimulus)
    }

    /// An error when a parameter is both stimulated and fitted (`fitted`:
    /// the names of the free parameters).
    pub fn check_not_fitted<'a>(
        &self,
        fitted: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        for name in fitted {
            if self.0.contains_key(name) {
                return Err(stimulus_error(format!(
                    "{name} is stimulated and cannot also be fitted: its value follows the protocol"
                )));
            }
        }
        Ok(())
    }
}

impl Problem {
    /// Parses a problem from JSON text; `origin` names it in errors. A
    /// model file's relative path is taken from the working directory.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        Self::from_json_in(text, origin, None)
    }

    /// Like [`Problem::from_json`], with relative model-file paths taken
    /// from `base`.
    pub fn from_json_in(text: &str, origin: &str, base: Option<&Path>) -> Result<Self, Error> {
        let input: ProblemInput = serde_json::from_str(text).map_err(|source| Error::Json {
            origin: origin.to_string(),
            source,
        })?;
        input.complete(origin, base)
    }

    /// Reads and parses a problem file; a model file (`.ode`) is a problem
    /// of its own, run with its `@` options ([`crate::file_options`]), the
    /// default loss and the model's parameters and initial state.
    pub fn from_path(path: &Path) -> Result<Self, Error> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ode"))
        {
            return ProblemInput::for_model_file(path).complete(&path.display().to_string(), None);
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_in(&text, &path.display().to_string(), path.parent())
    }

    /// Parameters, or the model's defaults.
    pub fn params_or_default<M: Model>(&self, model: &M) -> Vec<f64> {
        self.params
            .clone()
            .unwrap_or_else(|| model.default_params())
    }

    /// Initial state, or the model's default.
    pub fn u0_or_default<M: Model>(&self, model: &M) -> Vec<f64> {
        self.u0.clone().unwrap_or_else(|| model.default_u0())
    }

    /// `(u0, params, loss)` with the model's defaults filled in: what every
    /// run of the problem starts from.
    pub fn resolved_inputs<M: Model>(
        &self,
        model: &M,
    ) -> (Vec<f64>, Vec<f64>, revode_adjoint::Loss) {
        (
            self.u0_or_default(model),
            self.params_or_default(model),
            self.loss_for(model),
        )
    }

    /// The stimulus, resolved against the model's parameter names and
    /// checked against the span (empty without a `stimulus` key).
    pub fn stimulus_for<M: Model>(&self, model: &M) -> Result<revode_forward::Stimulus, Error> {
        match &self.stimulus {
            Some(spec) => spec.resolve(&model.param_names(), self.tspan),
            None => Ok(revode_forward::Stimulus::none()),
        }
    }

    /// The loss (default: `final` with unit weights), weights filled in.
    pub fn loss_for<M: Model>(&self, model: &M) -> revode_adjoint::Loss {
        let ones = || vec![1.0; model.dims().n_states];
        match &self.loss {
            None => revode_adjoint::Loss::Final { weights: ones() },
            Some(LossSpec::Final { weights }) => revode_adjoint::Loss::Final {
                weights: weights.clone().unwrap_or_else(ones),
            },
            Some(LossSpec::AllSteps { weights }) => revode_adjoint::Loss::AllSteps {
                weights: weights.clone().unwrap_or_else(ones),
            },
            Some(LossSpec::TraceMse {
                component,
                times,
                values,
            }) => revode_adjoint::Loss::TraceMse {
                component: *component,
                times: times.clone(),
                values: values.clone(),
            },
            Some(LossSpec::EventTimes { event, times }) => revode_adjoint::Loss::EventTimes {
                event: *event,
                times: times.clone(),
            },
        }
    }

    /// The checkpoint schedule for a fixed-step run of `n_steps` steps of
    /// a model with `n_states` states and `n_events` events.
    pub fn schedule_for(&self, n_steps: usize, n_states: usize, n_events: usize) -> Schedule {
        let shape = self.solver.checkpoint_shape(n_states, n_events);
        self.adjoint.checkpoints.unwrap_or_else(|| {
            if Schedule::All.bytes_needed_shaped(n_steps, shape) <= AUTO_ALL_BYTES {
                Schedule::All
            } else {
                Schedule::Every(((n_steps as f64).sqrt().ceil() as usize).max(1))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_every_beuler_state_while_their_u_fits() {
        let text = r#"{"model": {"name": "hh"}, "tspan": [0, 1],
                       "solver": {"method": "beuler", "dt": 0.1}}"#;
        let problem = Problem::from_json(text, "p").unwrap();
        // 2 000 000 whole chain states of HH (20 f64s) take 320 MB, more
        // than AUTO_ALL_BYTES; their u alone 64 MB.
        let n = 2_000_000;
        let whole = Schedule::All.bytes_needed(n, revode_adjoint::beuler_state_len(4));
        assert!(whole > AUTO_ALL_BYTES);
        assert_eq!(problem.schedule_for(n, 4, 0), Schedule::All);
        // With events the backward steps replay from whole states.
        assert_eq!(problem.schedule_for(n, 4, 1), Schedule::Every(1415));
    }

    #[test]
    fn test_models_are_not_in_the_problem_format() {
        let text = r#"{"model": {"name": "hh_broken_vjp"}, "tspan": [0, 1],
                       "solver": {"method": "euler", "dt": 0.1}}"#;
        let e = Problem::from_json(text, "p").unwrap_err().to_string();
        assert!(e.contains("unknown variant `hh_broken_vjp`"), "{e}");
        assert!(e.contains("expected `hh` or `hh_network`"), "{e}");
    }
}
