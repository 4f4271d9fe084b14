//! **revode** — fast, exact, bounded-memory gradients of ODE solutions.
//!
//! The façade a library user depends on. It re-exports the building blocks
//! (models, steppers, checkpoint schedules, adjoint drivers) and adds the
//! problem-file format shared with the `revode` command-line tool.
//!
//! ```
//! use revode::prelude::*;
//!
//! let model = HodgkinHuxley;
//! let grid = TimeGrid::new(0.0, 10.0, 0.01).unwrap();
//! let (u0, p) = (model.default_u0(), model.default_params());
//! let problem = FixedProblem { u0: &u0, params: &p, grid, method: FixedMethod::Euler };
//! let loss = Loss::Final { weights: vec![1.0; 4] };
//! let g = gradient_fixed(&model, &problem, &loss, Schedule::All).unwrap();
//! assert_eq!(g.gradient.len(), 3);
//! ```

pub mod batch;
pub mod check;
pub mod custom;
mod error;
pub mod file_options;
pub mod fit;
pub mod golden;
pub mod memory;
pub mod model_check;
pub mod problem;
mod run;
mod run_bdf;
pub mod spikes;
pub mod tune;

pub use custom::register_model;
pub use error::Error;
pub use problem::{ModelSpec, ModelVisitor, Problem, ProblemInput, StimulusSpec};
pub use run::{gradient, loss, solve, solve_observed, GradientReport, SolveReport};

pub use revode_adjoint as adjoint;
pub use revode_checkpoint as checkpoint;
pub use revode_forward as forward;
/// The model trait, the built-in models, and [`model::OdeModel`] for model files.
pub mod model {
    pub use revode_model::*;
    pub use revode_ode::{OdeError, OdeModel, OdeWork};
}

/// The names most programs need.
pub mod prelude {
    pub use revode_adjoint::{gradient_fixed, FixedProblem, Gradient, GradientError, Loss};
    pub use revode_checkpoint::Schedule;
    pub use revode_forward::{solve_fixed, FixedMethod, TimeGrid};
    pub use revode_model::{Dims, HhNetwork, HodgkinHuxley, Model};
    pub use revode_ode::OdeModel;
}
