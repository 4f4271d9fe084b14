//! The BDF forward solver: Robertson's stiff kinetics, a linear stiff
//! system in closed form, bitwise replay from restart states, landing on
//! stop times, and its failures.

use revode_forward::{
    solve_bdf, Bdf, BdfLayout, BdfOptions, ForwardError, LinearSolver, Stimulus, StimulusTrack,
    ParamSegments,
};
use revode_model::{Dims, Model, SparsityPattern};

/// Robertson's kinetics (k1, k2, k3), with its Jacobian.
struct Robertson;

impl Model for Robertson {
    type Work = ();
    fn name(&self) -> &str {
        "robertson"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 3,
            n_params: 3,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["y1".into(), "y2".into(), "y3".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["k1".into(), "k2".into(), "k3".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 0.0, 0.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.04, 3e7, 1e4]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        let a = p[0] * u[0];
        let b = p[1] * u[1] * u[1];
        let c = p[2] * u[1] * u[2];
        du[0] = -a + c;
        du[1] = a - b - c;
        du[2] = b;
    }
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        _w: &mut (),
    ) {
        out[0] = p[0] * (l[1] - l[0]);
        out[1] = p[2] * u[2] * (l[0] - l[1]) + 2.0 * p[1] * u[1] * (l[2] - l[1]);
        out[2] = p[2] * u[1] * (l[0] - l[1]);
        acc[0] += alpha * u[0] * (l[1] - l[0]);
        acc[1] += alpha * u[1] * u[1] * (l[2] - l[1]);
        acc[2] += alpha * u[1] * u[2] * (l[0] - l[1]);
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        Some(SparsityPattern::dense(3))
    }
    fn jacobian(&self, _t: f64, u: &[f64], p: &[f64], v: &mut [f64], _w: &mut ()) {
        // Column-major.
        v[0] = -p[0];
        v[1] = p[0];
        v[2] = 0.0;
        v[3] = p[2] * u[2];
        v[4] = -2.0 * p[1] * u[1] - p[2] * u[2];
        v[5] = 2.0 * p[1] * u[1];
        v[6] = p[2] * u[1];
        v[7] = -p[2] * u[1];
        v[8] = 0.0;
    }
}

#[test]
fn robertson_counts() {
    let m = Robertson;
    for (rtol, atol) in [(1e-6, 1e-8), (1e-8, 1e-12), (1e-4, 1e-8)] {
        let opts = BdfOptions::new(rtol, atol);
        let sol = solve_bdf(&m, &opts, 0.0, 4e5, &m.default_u0(), &m.default_params(), &Stimulus::none(), None).unwrap();
        eprintln!("{rtol:e} {atol:e}: {:?} {:?}", sol.counts, sol.final_state);
    }
}
