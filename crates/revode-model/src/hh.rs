//! The single-compartment Hodgkin–Huxley neuron (Traub-type rates, V_T = −63 mV).
//!
//! State `u = [E, m, h, n]`, parameters `p = [g_Na, g_Kd, g_leak]`.
//! Rates, the hand-derived Jacobians and the removable singularities are
//! written out in `docs/models/hh.md`; each partial below names its term.
//! The rates use the `g(z) = z/(e^z − 1)` helpers of [`crate::rates`] with
//! exponentials shared between rates (four `exp` calls per evaluation).

use crate::exp::exp4;
use crate::rates::{exprel_inv_and_deriv_em1, exprel_inv_em1};
use crate::{Dims, Model, SparsityPattern};

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

/// `e^{−5}`: `−(E−V_T−15)/5 = −(E−V_T−40)/5 − 5`, so α_n's exponential is
/// `e^{−5}` times β_h's (checked against `(-5f64).exp()` in the tests).
const EXP_M5: f64 = 0.006737946999085467;

/// The four exponentials the six rates need, and the rate arguments.
///
/// β_m, β_h and α_n share one `exp`: with `w = e^{(E−V_T−40)/5}`,
/// β_m uses `w`, β_h uses `v = 1/w` and α_n uses `e^{−5} v`. α_m, α_h and β_n
/// get one `exp` each. `exp(z) − 1` replaces `exp_m1` in the direct branch
/// of `g`, which is only taken for `|z| ≥ 0.2`, where it costs at most
/// ≈ 5.5 ε relative (see `rates::exprel_inv_em1`). The exponentials come
/// from [`crate::exp::exp4`], whose arguments are clamped to [−708, 709], so
/// far outside the physiological range (|E| ≳ 2900 mV) no `∞ · 0` can
/// appear; the rates there are the correct limits (0, 4, −z) to within
/// `|z|·e^{−709}`.
#[derive(Debug, Clone, Copy)]
struct Exps {
    z_am: f64,
    z_bm: f64,
    z_an: f64,
    /// `e^{z_am}`
    x_am: f64,
    /// `w = e^{z_bm}`
    w: f64,
    /// `v = 1/w = e^{−(E−V_T−40)/5}`
    v: f64,
    /// `e^{z_an} = e^{−5} v`
    x_an: f64,
    /// α_h and β_n (plain exponentials)
    ah: f64,
    bn: f64,
}

impl Exps {
    #[inline(always)]
    fn at(e: f64) -> Exps {
        // α_m: z = −(E−V_T−13)/4
        let z_am = -0.25 * (e - E_AM);
        // β_m: z = (E−V_T−40)/5
        let z_bm = 0.2 * (e - E_BM);
        // α_n: z = −(E−V_T−15)/5
        let z_an = -0.2 * (e - E_AN);
        // The four exponentials in one vectorisable call; `exp4` clamps its
        // arguments, so every result is finite, normal and positive.
        let [x_am, w, ah, bn] = exp4([
            z_am,
            z_bm,
            // α_h = 0.128 e^{−(E−V_T−17)/18}
            (e - E_AH) * (-1.0 / 18.0),
            // β_n = 0.5 e^{−(E−V_T−10)/40}
            (e - E_BN) * (-1.0 / 40.0),
        ]);
        let v = 1.0 / w;
        Exps {
            z_am,
            z_bm,
            z_an,
            x_am,
            w,
            v,
            x_an: EXP_M5 * v,
            ah: 0.128 * ah,
            bn: 0.5 * bn,
        }
    }
}

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
    /// Rates only (forward pass).
    #[inline(always)]
    fn at(e: f64) -> Rates {
        let x = Exps::at(e);
        Rates {
            // α_m = −0.32 (E−V_T−13)/(e^{−(E−V_T−13)/4} − 1) = 1.28 g(z_am)
            am: 1.28 * exprel_inv_em1(x.z_am, x.x_am - 1.0),
            // β_m = 0.28 (E−V_T−40)/(e^{(E−V_T−40)/5} − 1) = 1.4 g(z_bm)
            bm: 1.4 * exprel_inv_em1(x.z_bm, x.w - 1.0),
            ah: x.ah,
            // β_h = 4 / (1 + e^{−(E−V_T−40)/5}) = 4 / (1 + v)
            bh: 4.0 / (1.0 + x.v),
            // α_n = −0.032 (E−V_T−15)/(e^{−(E−V_T−15)/5} − 1) = 0.16 g(z_an)
            an: 0.16 * exprel_inv_em1(x.z_an, x.x_an - 1.0),
            bn: x.bn,
        }
    }

    /// Rates and their E-derivatives (backward pass), same exponentials.
    #[inline(always)]
    fn with_derivs(e: f64) -> (Rates, Rates) {
        let x = Exps::at(e);
        let (g_am, dg_am) = exprel_inv_and_deriv_em1(x.z_am, x.x_am - 1.0);
        let (g_bm, dg_bm) = exprel_inv_and_deriv_em1(x.z_bm, x.w - 1.0);
        let (g_an, dg_an) = exprel_inv_and_deriv_em1(x.z_an, x.x_an - 1.0);
        // β_h = 4 s with s = 1/(1 + v)
        let s = 1.0 / (1.0 + x.v);
        let r = Rates {
            am: 1.28 * g_am,
            bm: 1.4 * g_bm,
            ah: x.ah,
            bh: 4.0 * s,
            an: 0.16 * g_an,
            bn: x.bn,
        };
        let d = Rates {
            // dα_m/dE = 1.28 g'(z_am) · dz_am/dE, dz_am/dE = −1/4
            am: -0.32 * dg_am,
            // dβ_m/dE = 1.4 g'(z_bm) · dz_bm/dE, dz_bm/dE = 1/5
            bm: 0.28 * dg_bm,
            // dα_h/dE = −α_h/18
            ah: x.ah * (-1.0 / 18.0),
            // dβ_h/dE = 4 (v/5)/(1 + v)² = 0.8 · s · (v s)   (dv/dE = −v/5)
            bh: 0.8 * s * (x.v * s),
            // dα_n/dE = 0.16 g'(z_an) · dz_an/dE, dz_an/dE = −1/5
            an: -0.032 * dg_an,
            // dβ_n/dE = −β_n/40
            bn: x.bn * (-1.0 / 40.0),
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

    #[inline(always)]
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _work: &mut ()) {
        neuron_rhs(&u[..4], [p[0], p[1], p[2]], I_INJ, &mut du[..4]);
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
        let d_g = neuron_vjp(&u[..4], [p[0], p[1], p[2]], &lambda[..4], &mut out_u[..4]);
        let acc_p = &mut acc_p[..3];
        let al0 = alpha * lambda[0];
        for (acc, d) in acc_p.iter_mut().zip(d_g) {
            *acc += al0 * d;
        }
    }

    /// The parameter part alone skips the six rates and their derivatives
    /// (the implicit adjoints take the state part from the Jacobian).
    #[inline]
    fn vjp_params(
        &self,
        _t: f64,
        u: &[f64],
        _p: &[f64],
        lambda: &[f64],
        alpha: f64,
        acc_p: &mut [f64],
        _scratch_u: &mut [f64],
        _work: &mut (),
    ) {
        let d_g = neuron_param_partials(&u[..4]);
        let al0 = alpha * lambda[0];
        for (acc, d) in acc_p[..3].iter_mut().zip(d_g) {
            *acc += al0 * d;
        }
    }

    /// The ten entries of [`NEURON_ENTRIES`]: `∂m'/∂h`, `∂h'/∂n`, … are
    /// structurally 0 (docs/models/hh.md, "Jacobian").
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        Some(SparsityPattern::from_entries(4, NEURON_ENTRIES))
    }

    #[inline]
    fn jacobian(&self, _t: f64, u: &[f64], p: &[f64], values: &mut [f64], _work: &mut ()) {
        let j = neuron_jacobian(&u[..4], [p[0], p[1], p[2]]);
        values[..10].copy_from_slice(&j.csc_values());
    }
}

/// One neuron's `f` into `du[..4]`: `u = [E, m, h, n]`, `g = [g_Na, g_Kd,
/// g_leak]`, injected current `i_ext`. Shared by `hh` and `hh_network`.
#[inline(always)]
pub(crate) fn neuron_rhs(u: &[f64], g: [f64; 3], i_ext: f64, du: &mut [f64]) {
    let (u, du) = (&u[..4], &mut du[..4]);
    let (e, m, h, n) = (u[0], u[1], u[2], u[3]);
    let r = Rates::at(e);
    let m3 = m * m * m;
    let n2 = n * n;
    // dE/dt = −(E−E_Na) g_Na m³h − (E−E_K) g_Kd n⁴ − (E−E_leak) g_leak + I
    du[0] =
        -(e - E_NA) * g[0] * m3 * h - (e - E_K) * g[1] * (n2 * n2) - (e - E_LEAK) * g[2] + i_ext;
    // dx/dt = α_x (1 − x) − β_x x
    du[1] = r.am * (1.0 - m) - r.bm * m;
    du[2] = r.ah * (1.0 - h) - r.bh * h;
    du[3] = r.an * (1.0 - n) - r.bn * n;
}

/// The ten structurally nonzero entries of one neuron's `∂f/∂u`
/// ([`neuron_rhs`]), `j_rc` = `∂f_r/∂u_c` with `u = [E, m, h, n]`. The other
/// six are identically 0: a gate's rate depends only on E and its own value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeuronJacobian {
    pub j00: f64,
    pub j01: f64,
    pub j02: f64,
    pub j03: f64,
    pub j10: f64,
    pub j11: f64,
    pub j20: f64,
    pub j22: f64,
    pub j30: f64,
    pub j33: f64,
}

/// `(row, col)` of the entries of one neuron's Jacobian in compressed
/// sparse column order: column E (all four rows), then m, h, n (row E and
/// the gate's own row). [`NeuronJacobian::csc_values`] lists the values in
/// the same order.
pub(crate) const NEURON_ENTRIES: [(usize, usize); 10] = [
    (0, 0),
    (1, 0),
    (2, 0),
    (3, 0),
    (0, 1),
    (1, 1),
    (0, 2),
    (2, 2),
    (0, 3),
    (3, 3),
];

impl NeuronJacobian {
    /// The values in [`NEURON_ENTRIES`] order.
    #[inline(always)]
    pub fn csc_values(&self) -> [f64; 10] {
        [
            self.j00, self.j10, self.j20, self.j30, self.j01, self.j11, self.j02, self.j22,
            self.j03, self.j33,
        ]
    }
}

/// One neuron's `∂f/∂u` at `u = [E, m, h, n]` with conductances `g`; the
/// rate derivatives come from the same exponentials and the same series
/// switch as the VJP, so the entries stay accurate at the removable
/// singularities (E = −50, −23, −48 mV; docs/models/hh.md).
#[inline(always)]
pub(crate) fn neuron_jacobian(u: &[f64], g: [f64; 3]) -> NeuronJacobian {
    let u = &u[..4];
    let (e, m, h, n) = (u[0], u[1], u[2], u[3]);
    let [g_na, g_k, g_l] = g;
    let (r, d) = Rates::with_derivs(e);
    let (m2, n2) = (m * m, n * n);
    let (m3, n3) = (m2 * m, n2 * n);
    let n4 = n2 * n2;
    let (e_na, e_k) = (e - E_NA, e - E_K);
    NeuronJacobian {
        // Row 0, ∂(dE/dt)/∂u:
        // ∂/∂E = −g_Na m³h − g_Kd n⁴ − g_leak
        j00: -g_na * m3 * h - g_k * n4 - g_l,
        // ∂/∂m = −3 (E−E_Na) g_Na m² h
        j01: -3.0 * e_na * g_na * m2 * h,
        // ∂/∂h = −(E−E_Na) g_Na m³
        j02: -e_na * g_na * m3,
        // ∂/∂n = −4 (E−E_K) g_Kd n³
        j03: -4.0 * e_k * g_k * n3,
        // Gate rows, ∂(dx/dt)/∂E = α_x'(1 − x) − β_x' x
        j10: d.am * (1.0 - m) - d.bm * m,
        j20: d.ah * (1.0 - h) - d.bh * h,
        j30: d.an * (1.0 - n) - d.bn * n,
        // and ∂(dx/dt)/∂x = −(α_x + β_x); other gate entries are 0.
        j11: -(r.am + r.bm),
        j22: -(r.ah + r.bh),
        j33: -(r.an + r.bn),
    }
}

/// One neuron's `out[..4] ← Jᵀ λ` (J = ∂f/∂u of [`neuron_rhs`], from
/// [`neuron_jacobian`]); returns `∂(dE/dt)/∂[g_Na, g_Kd, g_leak]`, which the
/// caller scales by `α λ_E` (only dE/dt depends on the conductances).
#[inline(always)]
pub(crate) fn neuron_vjp(u: &[f64], g: [f64; 3], l: &[f64], out_u: &mut [f64]) -> [f64; 3] {
    let (u, l, out_u) = (&u[..4], &l[..4], &mut out_u[..4]);
    let j = neuron_jacobian(u, g);

    // out_u ← Jᵀ λ
    out_u[0] = j.j00 * l[0] + j.j10 * l[1] + j.j20 * l[2] + j.j30 * l[3];
    out_u[1] = j.j01 * l[0] + j.j11 * l[1];
    out_u[2] = j.j02 * l[0] + j.j22 * l[2];
    out_u[3] = j.j03 * l[0] + j.j33 * l[3];

    neuron_param_partials(u)
}

/// `∂(dE/dt)/∂[g_Na, g_Kd, g_leak]` at `u = [E, m, h, n]`: no rate enters,
/// so the parameter part of the VJP costs a few products.
#[inline(always)]
pub(crate) fn neuron_param_partials(u: &[f64]) -> [f64; 3] {
    let (e, m, h, n) = (u[0], u[1], u[2], u[3]);
    let m3 = m * m * m;
    let n2 = n * n;
    let n4 = n2 * n2;
    let (e_na, e_k, e_l) = (e - E_NA, e - E_K, e - E_LEAK);
    [
        // ∂(dE/dt)/∂g_Na = −(E−E_Na) m³h
        -e_na * m3 * h,
        // ∂(dE/dt)/∂g_Kd = −(E−E_K) n⁴
        -e_k * n4,
        // ∂(dE/dt)/∂g_leak = −(E−E_leak)
        -e_l,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neuron_entries_are_in_csc_order() {
        // `jacobian` copies `csc_values` straight into the pattern's order.
        let p = SparsityPattern::from_entries(4, NEURON_ENTRIES);
        assert!(p.entries().eq(NEURON_ENTRIES));
    }

    #[test]
    fn vjp_params_is_the_parameter_part_of_vjp() {
        let model = HodgkinHuxley;
        let p = [70.0, 10.0, 0.05];
        for (i, e) in [-90.0, -50.0, -23.0, 0.0, 40.0].into_iter().enumerate() {
            let u = [e, 0.1 + 0.2 * i as f64, 0.9 - 0.1 * i as f64, 0.3];
            let lambda = [0.7, -1.3, 2.1, -0.4];
            let (mut full, mut alone) = ([0.5, -0.25, 1.0], [0.5, -0.25, 1.0]);
            let mut out_u = [0.0; 4];
            model.vjp(0.0, &u, &p, &lambda, &mut out_u, 0.01, &mut full, &mut ());
            model.vjp_params(0.0, &u, &p, &lambda, 0.01, &mut alone, &mut out_u, &mut ());
            // Same expressions in the same order: bitwise equal.
            assert_eq!(full, alone, "at E = {e}");
            assert_ne!(full, [0.5, -0.25, 1.0], "the parameter part is not zero");
        }
    }

    #[test]
    fn exp_m5_is_e_to_minus_5() {
        assert!((EXP_M5 - (-5f64).exp()).abs() <= f64::EPSILON * EXP_M5);
    }

    #[test]
    fn shared_exponentials_match_their_definitions() {
        for i in 0..=1600 {
            let e = -100.0 + 0.1 * i as f64;
            let x = Exps::at(e);
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
            assert!(rel(x.v, (-(e + 23.0) / 5.0).exp()) < 1e-14, "v at {e}");
            assert!(
                rel(x.x_an, (-(e + 48.0) / 5.0).exp()) < 1e-14,
                "x_an at {e}"
            );
            assert!(
                rel(x.x_am, (-(e + 50.0) / 4.0).exp()) < 1e-14,
                "x_am at {e}"
            );
        }
    }

    #[test]
    fn finite_far_outside_physiological_range() {
        for e in [-1e300, -1e6, -4000.0, -3000.0, 3000.0, 4000.0, 1e6, 1e300] {
            let (r, d) = Rates::with_derivs(e);
            let f = Rates::at(e);
            for (k, v) in [
                r.am, r.bm, r.bh, r.an, d.am, d.bm, d.bh, d.an, f.am, f.bm, f.bh, f.an,
            ]
            .into_iter()
            .enumerate()
            {
                assert!(v.is_finite(), "entry {k} at E = {e}: {v}");
            }
        }
    }
}
