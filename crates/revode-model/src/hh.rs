//! The single-compartment Hodgkin–Huxley neuron (Traub-type rates, V_T = −63 mV).
//!
//! State `u = [E, m, h, n]`, parameters `p = [g_Na, g_Kd, g_leak]`.
//! Rates, the hand-derived Jacobians and the removable singularities are
//! written out in `docs/models/hh.md`; each partial below names its term.

use crate::rates::{exprel_inv, exprel_inv_and_deriv};
use crate::{Dims, Model};

/// Threshold voltage V_T (mV).
const V_T: f64 = -63.0;
/// `E − V_T − 13 = E − E_AM`: α_m is singular (0/0) at E = −50.
const E_AM: f64 = V_T + 13.0;
/// `E − V_T − 40 = E − E_BM`: β_m is singular at E = −23; β_h's midpoint.
const E_BM: f64 = V_T + 40.0;
/// `E − V_T − 15 = E − E_AN`: α_n is singular at E = −48.
const E_AN: f64 = V_T + 15.0;
/// `E − V_T − 17`: α_h.
const E_AH: f64 = V_T + 17.0;
/// `E − V_T − 10`: β_n.
const E_BN: f64 = V_T + 10.0;
/// Reversal potentials (mV).
const E_NA: f64 = 50.0;
const E_K: f64 = -90.0;
const E_LEAK: f64 = -65.0;
/// Injected current per area: `1.0 · area / area` (the area, 20000, cancels).
const I_INJ: f64 = 1.0;

/// The single-compartment Hodgkin–Huxley neuron of the seed problem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HodgkinHuxley;

/// The six opening/closing rates at one voltage.
#[derive(Debug, Clone, Copy)]
struct Rates {
    am: f64,
    bm: f64,
    ah: f64,
    bh: f64,
    an: f64,
    bn: f64,
}

impl Rates {
    /// Rates only (forward pass): three `exp_m1`s, three `exp`s.
    #[inline(always)]
    fn at(e: f64) -> Rates {
        Rates {
            // α_m = −0.32 (E−V_T−13)/(e^{−(E−V_T−13)/4} − 1) = 1.28 g(z), z = −(E−V_T−13)/4
            am: 1.28 * exprel_inv(-0.25 * (e - E_AM)),
            // β_m = 0.28 (E−V_T−40)/(e^{(E−V_T−40)/5} − 1) = 1.4 g(z), z = (E−V_T−40)/5
            bm: 1.4 * exprel_inv(0.2 * (e - E_BM)),
            // α_h = 0.128 e^{−(E−V_T−17)/18}
            ah: 0.128 * ((e - E_AH) * (-1.0 / 18.0)).exp(),
            // β_h = 4 / (1 + e^{−(E−V_T−40)/5})
            bh: 4.0 / (1.0 + (-0.2 * (e - E_BM)).exp()),
            // α_n = −0.032 (E−V_T−15)/(e^{−(E−V_T−15)/5} − 1) = 0.16 g(z), z = −(E−V_T−15)/5
            an: 0.16 * exprel_inv(-0.2 * (e - E_AN)),
            // β_n = 0.5 e^{−(E−V_T−10)/40}
            bn: 0.5 * ((e - E_BN) * (-1.0 / 40.0)).exp(),
        }
    }

    /// Rates and their E-derivatives (backward pass), same exponentials.
    #[inline(always)]
    fn with_derivs(e: f64) -> (Rates, Rates) {
        let (g_am, dg_am) = exprel_inv_and_deriv(-0.25 * (e - E_AM));
        let (g_bm, dg_bm) = exprel_inv_and_deriv(0.2 * (e - E_BM));
        let (g_an, dg_an) = exprel_inv_and_deriv(-0.2 * (e - E_AN));
        let ah = 0.128 * ((e - E_AH) * (-1.0 / 18.0)).exp();
        let bn = 0.5 * ((e - E_BN) * (-1.0 / 40.0)).exp();
        // β_h = 4 s with s = 1/(1 + w), w = e^{−(E−V_T−40)/5}
        let w = (-0.2 * (e - E_BM)).exp();
        let s = 1.0 / (1.0 + w);
        // w s = w/(1 + w) → 1 when w overflows (E < −3500 mV); avoid ∞·0
        let ws = if w.is_finite() { w * s } else { 1.0 };
        let r = Rates {
            am: 1.28 * g_am,
            bm: 1.4 * g_bm,
            ah,
            bh: 4.0 * s,
            an: 0.16 * g_an,
            bn,
        };
        let d = Rates {
            // dα_m/dE = 1.28 g'(z) · dz/dE, dz/dE = −1/4
            am: -0.32 * dg_am,
            // dβ_m/dE = 1.4 g'(z) · 1/5
            bm: 0.28 * dg_bm,
            // dα_h/dE = −α_h/18
            ah: ah * (-1.0 / 18.0),
            // dβ_h/dE = 4 · (w/5)/(1 + w)² = 0.8 · s · (w s)
            bh: 0.8 * s * ws,
            // dα_n/dE = 0.16 g'(z) · (−1/5)
            an: -0.032 * dg_an,
            // dβ_n/dE = −β_n/40
            bn: bn * (-1.0 / 40.0),
        };
        (r, d)
    }
}

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

    #[inline]
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _work: &mut ()) {
        let (u, p, du) = (&u[..4], &p[..3], &mut du[..4]);
        let (e, m, h, n) = (u[0], u[1], u[2], u[3]);
        let r = Rates::at(e);
        let m3 = m * m * m;
        let n2 = n * n;
        // dE/dt = −(E−E_Na) g_Na m³h − (E−E_K) g_Kd n⁴ − (E−E_leak) g_leak + I
        du[0] = -(e - E_NA) * p[0] * m3 * h - (e - E_K) * p[1] * (n2 * n2) - (e - E_LEAK) * p[2]
            + I_INJ;
        // dx/dt = α_x (1 − x) − β_x x
        du[1] = r.am * (1.0 - m) - r.bm * m;
        du[2] = r.ah * (1.0 - h) - r.bh * h;
        du[3] = r.an * (1.0 - n) - r.bn * n;
    }

    #[inline]
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        _work: &mut (),
    ) {
        let (u, p, l) = (&u[..4], &p[..3], &lambda[..4]);
        let (out_u, acc_p) = (&mut out_u[..4], &mut acc_p[..3]);
        let (e, m, h, n) = (u[0], u[1], u[2], u[3]);
        let (g_na, g_k, g_l) = (p[0], p[1], p[2]);
        let (r, d) = Rates::with_derivs(e);
        let (m2, n2) = (m * m, n * n);
        let (m3, n3) = (m2 * m, n2 * n);
        let n4 = n2 * n2;
        let (e_na, e_k, e_l) = (e - E_NA, e - E_K, e - E_LEAK);

        // Row 0 of J, ∂(dE/dt)/∂u:
        // ∂/∂E = −g_Na m³h − g_Kd n⁴ − g_leak
        let j00 = -g_na * m3 * h - g_k * n4 - g_l;
        // ∂/∂m = −3 (E−E_Na) g_Na m² h
        let j01 = -3.0 * e_na * g_na * m2 * h;
        // ∂/∂h = −(E−E_Na) g_Na m³
        let j02 = -e_na * g_na * m3;
        // ∂/∂n = −4 (E−E_K) g_Kd n³
        let j03 = -4.0 * e_k * g_k * n3;
        // Gate rows, ∂(dx/dt)/∂E = α_x'(1 − x) − β_x' x
        let j10 = d.am * (1.0 - m) - d.bm * m;
        let j20 = d.ah * (1.0 - h) - d.bh * h;
        let j30 = d.an * (1.0 - n) - d.bn * n;
        // and ∂(dx/dt)/∂x = −(α_x + β_x); other gate entries are 0.
        let j11 = -(r.am + r.bm);
        let j22 = -(r.ah + r.bh);
        let j33 = -(r.an + r.bn);

        // out_u ← Jᵀ λ
        out_u[0] = j00 * l[0] + j10 * l[1] + j20 * l[2] + j30 * l[3];
        out_u[1] = j01 * l[0] + j11 * l[1];
        out_u[2] = j02 * l[0] + j22 * l[2];
        out_u[3] = j03 * l[0] + j33 * l[3];

        // acc_p += α (∂f/∂p)ᵀ λ; only dE/dt depends on p:
        let al0 = alpha * l[0];
        // ∂(dE/dt)/∂g_Na = −(E−E_Na) m³h
        acc_p[0] += al0 * (-e_na * m3 * h);
        // ∂(dE/dt)/∂g_Kd = −(E−E_K) n⁴
        acc_p[1] += al0 * (-e_k * n4);
        // ∂(dE/dt)/∂g_leak = −(E−E_leak)
        acc_p[2] += al0 * (-e_l);
    }
}
