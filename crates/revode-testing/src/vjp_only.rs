//! A model with its own Jacobian hidden.

use revode_model::{Dims, Model};

/// `M` without its own Jacobian, so `JacobianEval` (and the implicit
/// steppers) assemble one from VJPs. Events are not forwarded.
pub struct VjpOnly<M>(pub M);

impl<M: Model> Model for VjpOnly<M> {
    type Work = M::Work;
    fn name(&self) -> &str {
        self.0.name()
    }
    fn dims(&self) -> Dims {
        self.0.dims()
    }
    fn state_names(&self) -> Vec<String> {
        self.0.state_names()
    }
    fn param_names(&self) -> Vec<String> {
        self.0.param_names()
    }
    fn default_u0(&self) -> Vec<f64> {
        self.0.default_u0()
    }
    fn default_params(&self) -> Vec<f64> {
        self.0.default_params()
    }
    fn new_work(&self) -> M::Work {
        self.0.new_work()
    }
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], w: &mut M::Work) {
        self.0.rhs(t, u, p, du, w)
    }
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        w: &mut M::Work,
    ) {
        self.0.vjp(t, u, p, l, out, alpha, acc, w)
    }
    fn flush_vjp(&self, acc: &mut [f64], w: &mut M::Work) {
        self.0.flush_vjp(acc, w)
    }
}
