//! Backward integrators, losses and the gradient driver of revode.
//!
//! [`gradient_fixed`] computes the exact gradient of a fixed-step (Euler or
//! RK4) discrete solution with respect to the parameters and the initial
//! state: a forward sweep through a [`revode_checkpoint::CheckpointStore`],
//! then the discrete adjoint of each step in reverse, with the model's
//! hand-written vector–Jacobian products. Nothing is taped and nothing is
//! allocated per step.
//!
//! [`gradient_beuler_with_stimulus`] does the same for backward Euler, by
//! the implicit function theorem at each converged step.
//!
//! [`gradient_continuous`] solves the continuous adjoint ODE backwards
//! (adaptively, forward state from Dormand–Prince dense output);
//! [`gradient_continuous_bdf`] does so with backward BDF against a BDF
//! forward's Nordsieck polynomials (stiff problems);
//! [`gradient_continuous_fixed`] does so with the forward's fixed scheme.

mod adjoint_bdf;
mod adjoint_ode;
mod beuler_adjoint;
mod beuler_driver;
mod beuler_events;
mod beuler_pipeline;
mod continuous_adaptive;
mod continuous_bdf;
mod continuous_fixed;
mod discrete;
mod error;
mod event_jump;
mod events;
mod fixed_driver;
mod fixed_pass;
mod forward_loss;
mod forward_terms;
mod loss;

pub use adjoint_ode::{ContinuousOptions, ErrorControl};
pub use beuler_adjoint::{BackwardSolveStats, BeulerAdjoint, TransposedSolve};
pub use beuler_driver::{
    beuler_gradient_bytes, beuler_state_len, beuler_state_shape, gradient_beuler_with,
    gradient_beuler_with_stimulus, loss_beuler_with_stimulus, validate_beuler_with_stimulus,
    BeulerProblem, ImplicitStats,
};
pub use beuler_pipeline::{BackwardThreads, FACTOR_EVERY, SCHEDULED_MIN_STATES};
pub use continuous_adaptive::{
    adaptive_budget, gradient_continuous, gradient_continuous_with_stimulus, validate_adaptive,
    AdaptiveBudget, AdaptiveProblem,
};
pub use continuous_bdf::{
    bdf_budget, bdf_gradient_bytes, gradient_continuous_bdf, gradient_continuous_bdf_with_stimulus,
    validate_bdf, BdfProblem,
};
pub use continuous_fixed::{gradient_continuous_fixed, gradient_continuous_fixed_with_stimulus};
pub use discrete::FixedAdjointStepper;
pub use error::{check_vector, GradientError};
pub use events::EventAdjointStepper;
pub use fixed_driver::{
    gradient_fixed, gradient_fixed_with_stimulus, validate_fixed, validate_fixed_with_stimulus,
    BdfNewtonStats, FixedProblem, Gradient, GradientStats,
};
pub use forward_loss::{
    loss_adaptive, loss_adaptive_with_stimulus, loss_bdf_with_stimulus, loss_fixed,
    loss_fixed_with_stimulus,
};
pub use loss::{Loss, StepLoss};
