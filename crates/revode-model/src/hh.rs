//! Placeholder: the Hodgkin–Huxley model is being written on the `hh` branch.

use crate::{Dims, Model};

/// The single-compartment Hodgkin–Huxley neuron of the seed problem.
#[derive(Debug, Clone, Default)]
pub struct HodgkinHuxley;

impl Model for HodgkinHuxley {
    type Work = ();
    fn name(&self) -> &str {
        "hh"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 4,
            n_params: 3,
        }
    }
    fn state_names(&self) -> Vec<String> {
        ["E", "m", "h", "n"].map(String::from).to_vec()
    }
    fn param_names(&self) -> Vec<String> {
        ["g_Na", "g_Kd", "g_leak"].map(String::from).to_vec()
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![-59.0, 0.2, 0.9, 0.1]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![70.0, 10.0, 0.05]
    }
    fn new_work(&self) -> Self::Work {}
    fn rhs(&self, _t: f64, _u: &[f64], _p: &[f64], _du: &mut [f64], _w: &mut ()) {
        unimplemented!()
    }
    fn vjp(
        &self,
        _t: f64,
        _u: &[f64],
        _p: &[f64],
        _l: &[f64],
        _o: &mut [f64],
        _a: f64,
        _acc: &mut [f64],
        _w: &mut (),
    ) {
        unimplemented!()
    }
}
