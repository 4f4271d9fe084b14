//! The [`Model`] trait and the built-in models of revode.
//!
//! A model is an ODE right-hand side `du/dt = f(t, u, p)` together with its
//! hand-derived vector–Jacobian products. Every hot call writes into buffers
//! the caller owns; per-model scratch (`Work`) is made once per solve by
//! [`Model::new_work`] and passed back in on every call, so nothing allocates
//! per step.

pub mod check;
pub mod exp;
mod hh;
mod hh_network;
pub mod jacobian;
pub mod num;
mod rates;
mod rates_reference;

pub use hh::HodgkinHuxley;
pub use hh_network::{HhNetwork, NetworkWork};
pub use jacobian::{JacobianEval, JacobianSource, SparsityPattern};
pub use rates::{exprel_inv, exprel_inv_and_deriv_em1, exprel_inv_deriv, exprel_inv_em1};

/// The two forms of `z/(eᶻ − 1)` and the switch between them, for the
/// accuracy scan in `benches` (`rate_switch_scan`); not a stable API.
#[doc(hidden)]
pub mod rate_forms {
    pub use crate::rates::{
        direct_pair, series, series_deriv, SERIES_BELOW, SERIES_DERIV_ODD, SERIES_EVEN,
    };
    pub use crate::rates_reference::{logspace, reference, rel, worst};
}

/// Sizes of a model's state and parameter vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub n_states: usize,
    pub n_params: usize,
}

/// An ODE `du/dt = f(t, u, p)` with hand-written vector–Jacobian products.
///
/// Conventions (plain transposes, no sign folded in):
/// * [`Model::rhs`] writes `f(t, u, p)` into `du`;
/// * [`Model::vjp`] writes `(∂f/∂u)ᵀ λ` into `out_u` (overwriting) and
///   adds `alpha · (∂f/∂p)ᵀ λ` into `acc_p` (accumulating).
///
/// A model may defer part of its parameter accumulation inside its `Work`
/// (for example to batch outer products into one matrix product); it must
/// then add what it deferred in [`Model::flush_vjp`], which drivers call once
/// after the last `vjp` of a backward pass and before reading `acc_p`.
pub trait Model: Send + Sync {
    /// Scratch space for one solve (one thread): rates, caches, deferred sums.
    type Work: Send;

    /// Short identifier used in problem files (`"hh"`).
    fn name(&self) -> &str;
    fn dims(&self) -> Dims;
    fn state_names(&self) -> Vec<String>;
    fn param_names(&self) -> Vec<String>;
    fn default_u0(&self) -> Vec<f64>;
    fn default_params(&self) -> Vec<f64>;

    fn new_work(&self) -> Self::Work;

    /// `du ← f(t, u, p)`.
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut Self::Work);

    /// `out_u ← (∂f/∂u)ᵀ λ`; `acc_p += alpha · (∂f/∂p)ᵀ λ`.
    #[allow(clippy::too_many_arguments)]
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        work: &mut Self::Work,
    );

    /// `acc_p += alpha · (∂f/∂p)ᵀ λ` alone, for callers that have the state
    /// part another way (implicit adjoints with a Jacobian). The default
    /// runs [`Model::vjp`] and drops its state part into `scratch_u` (n
    /// long); a model that can skip the state part overrides it. Deferred
    /// contributions are flushed by [`Model::flush_vjp`] as for `vjp`.
    #[allow(clippy::too_many_arguments)]
    fn vjp_params(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        alpha: f64,
        acc_p: &mut [f64],
        scratch_u: &mut [f64],
        work: &mut Self::Work,
    ) {
        self.vjp(t, u, p, lambda, scratch_u, alpha, acc_p, work);
    }

    /// Adds any parameter contributions deferred by [`Model::vjp`] into `acc_p`
    /// and resets the deferral. The default defers nothing.
    fn flush_vjp(&self, _acc_p: &mut [f64], _work: &mut Self::Work) {}

    /// The sparsity pattern of the state Jacobian `∂f/∂u`, when the model
    /// computes it itself ([`Model::jacobian`]); fixed for the model's life.
    /// `None` (the default): implicit steppers assemble a dense Jacobian
    /// from `n` VJPs ([`JacobianEval`]), exact but n VJPs per evaluation.
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        None
    }

    /// `values ← ∂f/∂u (t, u, p)`, one value per entry of
    /// [`Model::jacobian_pattern`] in its (column-major) order. Called only
    /// when that is `Some`; must not allocate.
    fn jacobian(
        &self,
        _t: f64,
        _u: &[f64],
        _p: &[f64],
        values: &mut [f64],
        _work: &mut Self::Work,
    ) {
        values.fill(f64::NAN);
    }

    /// Number of events (a model file's `global` lines): state resets
    /// `u ← R_e(u, p)` fired when `g_e(u, p)` crosses 0 in the direction
    /// [`Model::event_direction`]. None by default: solvers then take
    /// exactly their event-free code path. Event functions and resets do
    /// not depend on t (docs/events.md).
    fn n_events(&self) -> usize {
        0
    }

    /// Direction of event `e`: 1 upward (g goes from < 0 to ≥ 0), −1
    /// downward (> 0 to ≤ 0), 0 either way.
    fn event_direction(&self, _e: usize) -> i8 {
        0
    }

    /// `g_e(u, p)`. Must not allocate.
    fn event_value(&self, _e: usize, _u: &[f64], _p: &[f64], _work: &mut Self::Work) -> f64 {
        f64::NAN
    }

    /// `du ← ∂g_e/∂u`, `dp ← ∂g_e/∂p` (both overwritten). Must not allocate.
    fn event_gradient(
        &self,
        _e: usize,
        _u: &[f64],
        _p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        _work: &mut Self::Work,
    ) {
        du.fill(f64::NAN);
        dp.fill(f64::NAN);
    }

    /// `out ← R_e(u, p)`: the state just after event `e`, every assignment
    /// reading `u` (the state just before it). Must not allocate.
    fn event_reset(
        &self,
        _e: usize,
        u: &[f64],
        _p: &[f64],
        out: &mut [f64],
        _work: &mut Self::Work,
    ) {
        out.copy_from_slice(u);
    }

    /// `out_u ← (∂R_e/∂u)ᵀ λ`, `acc_p += (∂R_e/∂p)ᵀ λ`. Must not allocate.
    #[allow(clippy::too_many_arguments)]
    fn event_reset_vjp(
        &self,
        _e: usize,
        _u: &[f64],
        _p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        _acc_p: &mut [f64],
        _work: &mut Self::Work,
    ) {
        out_u.copy_from_slice(lambda);
    }

    /// Names of extra outputs (a model file's `aux` lines) that `solve`
    /// reports; none by default.
    fn aux_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// The extra outputs at `(t, u, p)` into `out` (`aux_names().len()`
    /// long). Not on a hot path: it may allocate.
    fn aux(&self, _t: f64, _u: &[f64], _p: &[f64], _out: &mut [f64]) {}
}
