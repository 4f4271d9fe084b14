//! The Jacobian checker passes the built-in models and catches (and names)
//! wrong derivatives.

use revode_model::check::{check_model, CheckOptions, Wrt};
use revode_model::{Dims, HhNetwork, HodgkinHuxley, Model, SparsityPattern};

/// How [`Broken`] gets `hh` wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// ∂(dE/dt)/∂n off by 1 %.
    StatePartial,
    /// ∂(dE/dt)/∂g_leak with the wrong sign.
    ParamPartial,
    /// Adds into `out_u` instead of overwriting it.
    Accumulates,
    /// Ignores `alpha`.
    IgnoresAlpha,
    /// Jacobian entry ∂(dm/dt)/∂E off by 1 %.
    JacobianEntry,
    /// Jacobian pattern without ∂(dE/dt)/∂n (so that entry reads as 0).
    JacobianMissingEntry,
}

/// `hh` with one deliberate mistake in its VJP.
struct Broken(Fault);

impl Model for Broken {
    type Work = ();
    fn name(&self) -> &str {
        "broken_hh"
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
    fn new_work(&self) {}
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], w: &mut ()) {
        HodgkinHuxley.rhs(t, u, p, du, w)
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
        w: &mut (),
    ) {
        let mut own = [0.0; 4];
        let mut own_acc = [0.0; 3];
        let a = if matches!(self.0, Fault::IgnoresAlpha) {
            1.0
        } else {
            alpha
        };
        HodgkinHuxley.vjp(t, u, p, l, &mut own, a, &mut own_acc, w);
        let n = u[3];
        match self.0 {
            // j03 = −4 (E − E_K) g_Kd n³, scaled by 1.01
            Fault::StatePartial => {
                own[3] += 0.01 * (-4.0 * (u[0] + 90.0) * p[1] * n * n * n) * l[0]
            }
            // ∂/∂g_leak = −(E − E_leak); the fault adds 2(E − E_leak) α λ_E
            Fault::ParamPartial => own_acc[2] += 2.0 * (u[0] + 65.0) * alpha * l[0],
            _ => {}
        }
        for k in 0..4 {
            if matches!(self.0, Fault::Accumulates) {
                out[k] += own[k];
            } else {
                out[k] = own[k];
            }
        }
        for k in 0..3 {
            acc[k] += own_acc[k];
        }
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        let full = HodgkinHuxley.jacobian_pattern()?;
        match self.0 {
            Fault::JacobianMissingEntry => Some(SparsityPattern::from_entries(
                4,
                full.entries().filter(|&e| e != (0, 3)),
            )),
            _ => Some(full),
        }
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], w: &mut ()) {
        let full = HodgkinHuxley.jacobian_pattern().unwrap();
        let mut own = vec![0.0; full.nnz()];
        HodgkinHuxley.jacobian(t, u, p, &mut own, w);
        if matches!(self.0, Fault::JacobianEntry) {
            own[full.position(1, 0).unwrap()] *= 1.01;
        }
        let pattern = self.jacobian_pattern().unwrap();
        for (k, (r, c)) in pattern.entries().enumerate() {
            values[k] = own[full.position(r, c).unwrap()];
        }
    }
}

#[test]
fn passes_the_builtin_models() {
    let options = CheckOptions::default();
    let r = check_model(&HodgkinHuxley, &options);
    assert!(r.passed, "{r:#?}");
    // the VJPs (4 × (4 + 3)) and the Jacobian (4 × 4) at each sample
    assert_eq!(r.entries_checked, options.samples * (4 * 7 + 4 * 4));
    let jacobian = r.jacobian.as_ref().expect("hh has its own Jacobian");
    assert_eq!(jacobian.entries_checked, options.samples * 4 * 4);
    assert_eq!(jacobian.nnz, 10);
    for n in [1, 3, 7] {
        let r = check_model(&HhNetwork::with_neurons(n).unwrap(), &options);
        assert!(r.passed, "n = {n}: {r:#?}");
        assert!(r.max_error < 1e-7, "n = {n}: {}", r.max_error);
    }
}

#[test]
fn names_a_wrong_state_partial() {
    let r = check_model(&Broken(Fault::StatePartial), &CheckOptions::default());
    assert!(!r.passed);
    let w = &r.worst[0];
    assert_eq!((w.output, w.wrt), (0, Wrt::State(3)));
    assert_eq!(w.label, "d(dE/dt)/dn");
    assert!((w.error - 0.01).abs() < 1e-4, "{w:?}");
}

#[test]
fn names_a_wrong_parameter_partial() {
    let r = check_model(&Broken(Fault::ParamPartial), &CheckOptions::default());
    assert!(!r.passed);
    let w = &r.worst[0];
    assert_eq!((w.output, w.wrt), (0, Wrt::Param(2)));
    assert_eq!(w.label, "d(dE/dt)/dg_leak");
    assert!(w.analytic * w.finite_difference < 0.0, "{w:?}");
}

#[test]
fn names_a_wrong_jacobian_entry_and_a_missing_one() {
    let r = check_model(&Broken(Fault::JacobianEntry), &CheckOptions::default());
    assert!(!r.passed);
    let w = &r.worst[0];
    assert_eq!((w.output, w.wrt), (1, Wrt::State(0)));
    assert_eq!(w.label, "jacobian d(dm/dt)/dE");
    assert!((w.error - 0.01).abs() < 1e-4, "{w:?}");
    let r = check_model(
        &Broken(Fault::JacobianMissingEntry),
        &CheckOptions::default(),
    );
    assert!(!r.passed);
    let w = &r.worst[0];
    assert_eq!(w.label, "jacobian d(dE/dt)/dn");
    assert_eq!(w.analytic, 0.0);
}

#[test]
fn catches_contract_violations() {
    for fault in [Fault::Accumulates, Fault::IgnoresAlpha] {
        let r = check_model(&Broken(fault), &CheckOptions::default());
        assert!(!r.passed, "{fault:?} not caught");
    }
}

#[test]
fn reports_the_requested_number_of_entries_worst_first() {
    let options = CheckOptions {
        samples: 3,
        worst: 7,
        ..CheckOptions::default()
    };
    let r = check_model(&HhNetwork::with_neurons(2).unwrap(), &options);
    assert_eq!(r.samples, 3);
    assert_eq!(r.worst.len(), 7);
    assert!(r.worst.windows(2).all(|w| w[0].error >= w[1].error));
    assert_eq!(r.worst[0].error, r.max_error);
}
