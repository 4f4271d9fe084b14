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

use std::num::NonZeroUsize;
use std::path::Path;

use revode_checkpoint::Schedule;
use revode_model::{HhNetwork, HodgkinHuxley, Model};
use serde::{Deserialize, Serialize};

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
    /// Test-only: HH with a deliberately wrong parameter VJP, so that tests
    /// can see `revode check` fail (see [`crate::testing`]). Not in the
    /// problem format unless the `test-models` feature is on (tests only).
    #[doc(hidden)]
    #[serde(rename = "hh_broken_vjp")]
    #[cfg_attr(not(feature = "test-models"), serde(skip))]
    HhBrokenVjp,
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

/// Code generic over the model type, run by [`ModelSpec::visit`].
pub trait ModelVisitor {
    type Output;
    fn visit<M: Model>(self, model: &M) -> Self::Output;
}

impl ModelSpec {
    /// Builds the model and hands it to `visitor` (static dispatch: each
    /// model gets its own monomorphised hot loop).
    pub fn visit<V: ModelVisitor>(&self, visitor: V) -> V::Output {
        match self {
            ModelSpec::Hh => visitor.visit(&HodgkinHuxley),
            ModelSpec::HhNetwork { n, i_ext } => {
                visitor.visit(&HhNetwork::new(*n).with_i_ext(*i_ext))
            }
            ModelSpec::HhBrokenVjp => visitor.visit(&crate::testing::HhBrokenVjp::default()),
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
            SolverSpec::Dopri5 { .. } => "dopri5",
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
    /// Continuous adjoint of dopri5 only: tolerances of the backward
    /// integration (default: the solver's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<Atol>,
    /// Continuous adjoint of dopri5 only: `"lambda"` (default) or
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
}

impl Problem {
    /// Parses a problem from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|source| Error::Json {
            origin: origin.to_string(),
            source,
        })
    }

    /// Reads and parses a problem file.
    pub fn from_path(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
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
        }
    }

    /// The checkpoint schedule for a fixed-step run of `n_steps` steps.
    pub fn schedule_for(&self, n_steps: usize, n_states: usize) -> Schedule {
        self.adjoint.checkpoints.unwrap_or_else(|| {
            if Schedule::All.bytes_needed(n_steps, n_states) <= AUTO_ALL_BYTES {
                Schedule::All
            } else {
                Schedule::Every(((n_steps as f64).sqrt().ceil() as usize).max(1))
            }
        })
    }
}

#[cfg(all(test, not(feature = "test-models")))]
mod tests {
    use super::*;

    #[test]
    fn test_models_are_not_in_the_problem_format() {
        let text = r#"{"model": {"name": "hh_broken_vjp"}, "tspan": [0, 1],
                       "solver": {"method": "euler", "dt": 0.1}}"#;
        let e = Problem::from_json(text, "p").unwrap_err().to_string();
        assert!(e.contains("unknown variant `hh_broken_vjp`"), "{e}");
        assert!(e.contains("expected `hh` or `hh_network`"), "{e}");
    }
}
