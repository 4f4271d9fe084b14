//! A model that is wrong on purpose: `revode check` and `check-model` must be
//! seen to fail when an adjoint is wrong. Library tests put it in a problem
//! as `ModelSpec::Custom`; the CLI tests run it through `revode-test-cli`,
//! which registers it under its name `hh_broken_vjp`.

use revode_model::{Dims, HodgkinHuxley, Model};

/// Hodgkin–Huxley with the VJP contribution of one parameter scaled by
/// `factor` (1 % too large by default, for g_Kd): the forward solve is
/// right, the gradient of that one parameter is wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HhBrokenVjp {
    pub param: usize,
    pub factor: f64,
}

impl Default for HhBrokenVjp {
    fn default() -> Self {
        HhBrokenVjp {
            param: 1,
            factor: 1.01,
        }
    }
}

impl Model for HhBrokenVjp {
    type Work = <HodgkinHuxley as Model>::Work;

    fn name(&self) -> &str {
        "hh_broken_vjp"
    }
    fn dims(&self) -> Dims {
        HodgkinHuxley.dims()
    }
    fn state_names(&self) -> Vec<String> {
        HodgkinHuxley.state_names()
    }
    fn param_names(&self) -> Vec<String> {
        HodgkinHuxley.param_names()
    }
    fn default_u0(&self) -> Vec<f64> {
        HodgkinHuxley.default_u0()
    }
    fn default_params(&self) -> Vec<f64> {
        HodgkinHuxley.default_params()
    }
    fn new_work(&self) -> Self::Work {
        HodgkinHuxley.new_work()
    }

    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut Self::Work) {
        HodgkinHuxley.rhs(t, u, p, du, work);
    }

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
    ) {
        let before = acc_p[self.param];
        HodgkinHuxley.vjp(t, u, p, lambda, out_u, alpha, acc_p, work);
        // The deliberate error: this parameter's increment times `factor`.
        acc_p[self.param] += (self.factor - 1.0) * (acc_p[self.param] - before);
    }
}
