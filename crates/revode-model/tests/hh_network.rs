//! Tests of the `hh_network` model: rhs against a literal transcription,
//! VJPs against finite differences, N = 1 against `hh` bit for bit, the
//! diagonal of W, and the deferred W-gradient against direct accumulation.

use proptest::prelude::*;
use revode_model::{HhNetwork, HodgkinHuxley, Model};

fn net(n: usize) -> HhNetwork {
    HhNetwork::with_neurons(n).unwrap()
}

/// Deterministic pseudo-random numbers in [0, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random state and parameter vector, W with a non-zero diagonal.
fn random_point(n: usize, rng: &mut Lcg) -> (Vec<f64>, Vec<f64>) {
    let mut u = Vec::new();
    for _ in 0..n {
        u.extend([
            -90.0 + 130.0 * rng.next(),
            rng.next(),
            rng.next(),
            rng.next(),
        ]);
    }
    let mut p = Vec::new();
    for scale in [70.0, 10.0, 0.05] {
        p.extend((0..n).map(|_| scale * (0.5 + rng.next())));
    }
    p.extend((0..n * n).map(|_| 0.01 * rng.next()));
    (u, p)
}

/// The model written out literally from the formula.
fn literal(n: usize, i_ext: f64, u: &[f64], p: &[f64]) -> Vec<f64> {
    let v_t = -63.0;
    let em1 = |x: f64| x.exp() - 1.0;
    let mut du = vec![0.0; 4 * n];
    for i in 0..n {
        let (e, m, h, nn) = (u[4 * i], u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]);
        let (g_na, g_kd, g_leak) = (p[i], p[n + i], p[2 * n + i]);
        let alpha_m = -0.32 * (e - v_t - 13.0) / em1(-(e - v_t - 13.0) / 4.0);
        let beta_m = 0.28 * (e - v_t - 40.0) / em1((e - v_t - 40.0) / 5.0);
        let alpha_h = 0.128 * (-(e - v_t - 17.0) / 18.0).exp();
        let beta_h = 4.0 / (1.0 + (-(e - v_t - 40.0) / 5.0).exp());
        let alpha_n = -0.032 * (e - v_t - 15.0) / em1(-(e - v_t - 15.0) / 5.0);
        let beta_n = 0.5 * (-(e - v_t - 10.0) / 40.0).exp();
        let mut coupling = 0.0;
        for j in 0..n {
            if j != i {
                coupling += p[3 * n + i * n + j] * (u[4 * j] - e);
            }
        }
        du[4 * i] = -(e - 50.0) * g_na * m.powi(3) * h
            - (e + 90.0) * g_kd * nn.powi(4)
            - (e + 65.0) * g_leak
            + i_ext
            + coupling;
        du[4 * i + 1] = alpha_m * (1.0 - m) - beta_m * m;
        du[4 * i + 2] = alpha_h * (1.0 - h) - beta_h * h;
        du[4 * i + 3] = alpha_n * (1.0 - nn) - beta_n * nn;
    }
    du
}

fn rhs(m: &HhNetwork, u: &[f64], p: &[f64]) -> Vec<f64> {
    let mut du = vec![f64::NAN; u.len()];
    m.rhs(0.0, u, p, &mut du, &mut m.new_work());
    du
}

/// `(Jᵀλ, α (∂f/∂p)ᵀλ)` from the model, flushed.
fn vjp(m: &HhNetwork, u: &[f64], p: &[f64], l: &[f64], alpha: f64) -> (Vec<f64>, Vec<f64>) {
    let mut w = m.new_work();
    let mut out = vec![f64::NAN; u.len()];
    let mut acc = vec![0.0; p.len()];
    m.vjp(0.0, u, p, l, &mut out, alpha, &mut acc, &mut w);
    m.flush_vjp(&mut acc, &mut w);
    (out, acc)
}

#[test]
fn metadata_and_defaults() {
    let m = net(3);
    let d = m.dims();
    assert_eq!((d.n_states, d.n_params), (12, 3 * 3 + 9));
    assert_eq!(m.name(), "hh_network");
    assert_eq!(&m.state_names()[4..8], ["E_1", "m_1", "h_1", "n_1"]);
    let names = m.param_names();
    assert_eq!(names.len(), d.n_params);
    assert_eq!(
        [&names[0], &names[3], &names[6], &names[9 + 5]],
        ["g_Na_0", "g_Kd_0", "g_leak_0", "W_1_2"]
    );
    let u0 = m.default_u0();
    assert_eq!(&u0[4..8], [-59.1, 0.2, 0.9, 0.1]);
    let p = m.default_params();
    assert_eq!(
        &p[..9],
        [70.0, 70.0, 70.0, 10.0, 10.0, 10.0, 0.05, 0.05, 0.05]
    );
    // W_ij = 0.001 ((i + 2j) mod 7), W_ii = 0
    assert_eq!(p[m.w_index(1, 2)], 0.001 * 5.0);
    assert_eq!(p[m.w_index(2, 0)], 0.001 * 2.0);
    assert_eq!(p[m.w_index(2, 2)], 0.0);
    assert_eq!(m.i_ext(), 1.0);
    assert!(HhNetwork::with_neurons(0).is_none());
}

#[test]
fn rhs_matches_literal() {
    let mut rng = Lcg(11);
    for n in [1, 2, 5, 9] {
        for _ in 0..200 {
            let (u, p) = random_point(n, &mut rng);
            // keep clear of the 0/0 points of the literal formula
            if (0..n).any(|i| {
                [-50.0, -23.0, -48.0]
                    .iter()
                    .any(|s| (u[4 * i] - s).abs() < 0.05)
            }) {
                continue;
            }
            let i_ext = 2.0 * rng.next();
            let m = net(n).with_i_ext(i_ext);
            let (got, want) = (rhs(&m, &u, &p), literal(n, i_ext, &u, &p));
            for k in 0..4 * n {
                let scale = 1.0 + want[k].abs() + if k % 4 == 0 { 7000.0 } else { 80.0 };
                assert!(
                    (got[k] - want[k]).abs() <= 1e-12 * scale,
                    "n={n} k={k}: {} vs literal {}",
                    got[k],
                    want[k]
                );
            }
        }
    }
}

#[test]
fn diagonal_of_w_has_no_effect() {
    let mut rng = Lcg(5);
    let m = net(4);
    let (u, mut p) = random_point(4, &mut rng);
    let l: Vec<f64> = (0..16).map(|_| rng.next() - 0.5).collect();
    let before = (rhs(&m, &u, &p), vjp(&m, &u, &p, &l, 0.3));
    for i in 0..4 {
        p[m.w_index(i, i)] = 123.0;
    }
    let after = (rhs(&m, &u, &p), vjp(&m, &u, &p, &l, 0.3));
    assert_eq!(before, after);
    for i in 0..4 {
        assert_eq!(after.1 .1[m.w_index(i, i)], 0.0);
    }
}

#[test]
fn one_neuron_is_hh_bit_for_bit() {
    let mut rng = Lcg(3);
    let m = net(1);
    for _ in 0..2000 {
        let (u, p) = random_point(1, &mut rng);
        let l: Vec<f64> = (0..4).map(|_| rng.next() - 0.5).collect();
        let alpha = rng.next();
        let mut du_hh = [0.0; 4];
        HodgkinHuxley.rhs(0.0, &u, &p[..3], &mut du_hh, &mut ());
        let du = rhs(&m, &u, &p);
        assert_eq!(
            du.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            du_hh.map(f64::to_bits)
        );
        let mut out_hh = [0.0; 4];
        let mut acc_hh = [0.25; 3];
        HodgkinHuxley.vjp(
            0.0,
            &u,
            &p[..3],
            &l,
            &mut out_hh,
            alpha,
            &mut acc_hh,
            &mut (),
        );
        let mut w = m.new_work();
        let mut out = [0.0; 4];
        let mut acc = [0.25, 0.25, 0.25, 0.0];
        m.vjp(0.0, &u, &p, &l, &mut out, alpha, &mut acc, &mut w);
        m.flush_vjp(&mut acc, &mut w);
        assert_eq!(out.map(f64::to_bits), out_hh.map(f64::to_bits));
        assert_eq!(
            acc[..3].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            acc_hh.map(f64::to_bits)
        );
        assert_eq!(acc[3], 0.0);
    }
}

#[test]
fn deferred_w_gradient_equals_direct_accumulation() {
    // More calls than one block, a partial last block, varying alpha.
    let mut rng = Lcg(17);
    let n = 6;
    let m = net(n);
    let (_, p) = random_point(n, &mut rng);
    let mut w = m.new_work();
    let mut acc = vec![0.0; p.len()];
    let mut direct = vec![0.0; n * n];
    let mut out = vec![0.0; 4 * n];
    for _ in 0..77 {
        let (u, _) = random_point(n, &mut rng);
        let l: Vec<f64> = (0..4 * n).map(|_| rng.next() - 0.5).collect();
        let alpha = rng.next();
        m.vjp(0.0, &u, &p, &l, &mut out, alpha, &mut acc, &mut w);
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    direct[i * n + j] += alpha * l[4 * i] * (u[4 * j] - u[4 * i]);
                }
            }
        }
    }
    assert!(
        acc[3 * n..].iter().all(|&a| a == 0.0),
        "deferred until flush"
    );
    m.flush_vjp(&mut acc, &mut w);
    for k in 0..n * n {
        let scale: f64 = 77.0 * 0.5 * 130.0;
        assert!(
            (acc[3 * n + k] - direct[k]).abs() <= 1e-14 * scale,
            "W entry {k}: {} vs {}",
            acc[3 * n + k],
            direct[k]
        );
    }
    // a second flush adds nothing
    let again = acc.clone();
    m.flush_vjp(&mut acc, &mut w);
    assert_eq!(acc, again);
}

/// `∂(λ·f)/∂x_c` for every state and parameter coordinate, central differences.
fn fd_vjp(m: &HhNetwork, u: &[f64], p: &[f64], l: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let lf = |u: &[f64], p: &[f64]| -> f64 { rhs(m, u, p).iter().zip(l).map(|(a, b)| a * b).sum() };
    let h_of = |x: f64| 1e-6 * x.abs().max(1.0);
    let mut gu = vec![0.0; u.len()];
    let mut uu = u.to_vec();
    for c in 0..u.len() {
        let h = h_of(u[c]);
        uu[c] = u[c] + h;
        let plus = lf(&uu, p);
        uu[c] = u[c] - h;
        let minus = lf(&uu, p);
        uu[c] = u[c];
        gu[c] = (plus - minus) / (2.0 * h);
    }
    let mut gp = vec![0.0; p.len()];
    let mut pp = p.to_vec();
    for c in 0..p.len() {
        // f is affine in p: a large step has no truncation error and less rounding.
        let h = 1e-2 * p[c].abs().max(1.0);
        pp[c] = p[c] + h;
        let plus = lf(u, &pp);
        pp[c] = p[c] - h;
        let minus = lf(u, &pp);
        pp[c] = p[c];
        gp[c] = (plus - minus) / (2.0 * h);
    }
    (gu, gp)
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * (w.abs() + 1e-3 * scale) + 1e-9,
            "{what}[{k}]: vjp {g} vs fd {w}"
        );
    }
}

fn vjp_matches_fd(n: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let (u, p) = random_point(n, &mut rng);
    let l: Vec<f64> = (0..4 * n).map(|_| rng.next() - 0.5).collect();
    let m = net(n).with_i_ext(rng.next());
    let (out, acc) = vjp(&m, &u, &p, &l, 1.0);
    let (gu, gp) = fd_vjp(&m, &u, &p, &l);
    assert_close("dλf/du", &out, &gu);
    assert_close("dλf/dp", &acc, &gp);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn vjp_matches_finite_differences_n1(seed in any::<u64>()) { vjp_matches_fd(1, seed) }
    #[test]
    fn vjp_matches_finite_differences_n2(seed in any::<u64>()) { vjp_matches_fd(2, seed) }
    #[test]
    fn vjp_matches_finite_differences_n5(seed in any::<u64>()) { vjp_matches_fd(5, seed) }
}

// ---- the state Jacobian `Model::jacobian` ----

/// E at which α_m, β_m, α_n are 0/0.
const SINGULAR: [f64; 3] = [-50.0, -23.0, -48.0];

/// `∂f/∂u` from `Model::jacobian`, dense row-major (0 outside the pattern).
fn jacobian(m: &HhNetwork, u: &[f64], p: &[f64]) -> Vec<f64> {
    let pattern = m.jacobian_pattern().unwrap();
    let s = u.len();
    let mut values = vec![f64::NAN; pattern.nnz()];
    m.jacobian(0.0, u, p, &mut values, &mut m.new_work());
    let mut j = vec![0.0; s * s];
    for (k, (r, c)) in pattern.entries().enumerate() {
        j[r * s + c] = values[k];
    }
    j
}

/// The structural pattern: each neuron's `hh` block (column E full, a gate
/// column has row E and its own row) and every voltage–voltage entry.
fn structural(r: usize, c: usize) -> bool {
    let hh = |r: usize, c: usize| c == 0 || r == 0 || r == c;
    (r / 4 == c / 4 && hh(r % 4, c % 4)) || (r.is_multiple_of(4) && c.is_multiple_of(4))
}

/// Magnitude of the terms summed in `f_r` (rounding floors for the FD).
fn term_scale(n: usize, i_ext: f64, u: &[f64], p: &[f64], r: usize) -> f64 {
    let i = r / 4;
    let x = u[r];
    if !r.is_multiple_of(4) {
        // rates are below ~40 /ms for E in [−100, 60]
        return 40.0 * (x.abs() + (1.0 - x).abs());
    }
    let (m, h, nn) = (u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]);
    let coupling: f64 = (0..n)
        .filter(|&j| j != i)
        .map(|j| (p[3 * n + i * n + j] * (u[4 * j] - x)).abs())
        .sum();
    ((x - 50.0) * p[i] * m.powi(3) * h).abs()
        + ((x + 90.0) * p[n + i] * nn.powi(4)).abs()
        + ((x + 65.0) * p[2 * n + i]).abs()
        + i_ext.abs()
        + coupling
}

/// Every entry against the 4th-order central difference of `f_r` in `u_c`
/// (exact for the polynomial dependence on gates and on the other voltages;
/// truncation ≈ 1e−14 in the neuron's own E).
fn check_jacobian(m: &HhNetwork, u: &[f64], p: &[f64]) {
    let s = u.len();
    let j = jacobian(m, u, p);
    let h = 1e-3;
    let mut fd = vec![0.0; s * s];
    let mut v = u.to_vec();
    for c in 0..s {
        let mut f_at = |dx: f64| {
            v[c] = u[c] + dx;
            rhs(m, &v, p)
        };
        let (p1, m1, p2, m2) = (f_at(h), f_at(-h), f_at(2.0 * h), f_at(-2.0 * h));
        v[c] = u[c];
        for r in 0..s {
            fd[r * s + c] = (8.0 * (p1[r] - m1[r]) - (p2[r] - m2[r])) / (12.0 * h);
        }
    }
    for r in 0..s {
        let floor = 1e-10 * term_scale(m.neurons(), m.i_ext(), u, p, r);
        for c in 0..s {
            let (got, want) = (j[r * s + c], fd[r * s + c]);
            assert!(
                got.is_finite() && (got - want).abs() <= 1e-6 * want.abs() + floor,
                "J[{r}][{c}] (n = {}) at u={u:?}: {got} vs fd {want}",
                m.neurons()
            );
        }
    }
}

/// `Jᵀλ` from the Jacobian's entries against the (flushed) `vjp`, to a few
/// roundings of `Σ_r |J_rc λ_r|` (the VJP sums the coupling in another order).
fn check_jacobian_against_vjp(m: &HhNetwork, u: &[f64], p: &[f64], l: &[f64]) {
    let s = u.len();
    let j = jacobian(m, u, p);
    let (out, _) = vjp(m, u, p, l, 1.0);
    for c in 0..s {
        let jt_l: f64 = (0..s).map(|r| j[r * s + c] * l[r]).sum();
        let size: f64 = (0..s).map(|r| (j[r * s + c] * l[r]).abs()).sum();
        // the diagonal also carries the rounding of the row sums r_i
        let row_sums: f64 = if c.is_multiple_of(4) {
            let i = c / 4;
            (0..m.neurons())
                .map(|k| p[3 * m.neurons() + i * m.neurons() + k].abs())
                .sum::<f64>()
                * l[c].abs()
        } else {
            0.0
        };
        assert!(
            (jt_l - out[c]).abs() <= 4.0 * s as f64 * f64::EPSILON * (size + row_sums),
            "(Jᵀλ)[{c}] (n = {}): {jt_l} vs vjp {}",
            m.neurons(),
            out[c]
        );
    }
}

/// A random point with some voltages exactly at a singular value.
fn random_point_with_singular(n: usize, rng: &mut Lcg) -> (Vec<f64>, Vec<f64>) {
    let (mut u, p) = random_point(n, rng);
    for i in 0..n {
        if rng.next() < 0.4 {
            u[4 * i] = SINGULAR[(3.0 * rng.next()) as usize];
        }
    }
    (u, p)
}

fn jacobian_checks(n: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let (u, p) = random_point_with_singular(n, &mut rng);
    let m = net(n).with_i_ext(rng.next());
    check_jacobian(&m, &u, &p);
    let l: Vec<f64> = (0..4 * n).map(|_| rng.next() - 0.5).collect();
    check_jacobian_against_vjp(&m, &u, &p, &l);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn jacobian_matches_fd_and_vjp_n1(seed in any::<u64>()) { jacobian_checks(1, seed) }
    #[test]
    fn jacobian_matches_fd_and_vjp_n2(seed in any::<u64>()) { jacobian_checks(2, seed) }
    #[test]
    fn jacobian_matches_fd_and_vjp_n5(seed in any::<u64>()) { jacobian_checks(5, seed) }
    #[test]
    fn jacobian_matches_fd_and_vjp_n9(seed in any::<u64>()) { jacobian_checks(9, seed) }
}

#[test]
fn jacobian_at_singular_voltages_exactly() {
    let mut rng = Lcg(41);
    for n in [1, 3, 6] {
        for k in 0..60 {
            let (mut u, p) = random_point(n, &mut rng);
            for i in 0..n {
                u[4 * i] = SINGULAR[(k + i) % 3];
            }
            check_jacobian(&net(n), &u, &p);
            let l: Vec<f64> = (0..4 * n).map(|_| rng.next() - 0.5).collect();
            check_jacobian_against_vjp(&net(n), &u, &p, &l);
        }
    }
}

#[test]
fn jacobian_pattern_is_exactly_the_structural_pattern() {
    let mut rng = Lcg(43);
    for n in [1, 2, 5] {
        let m = net(n);
        let s = 4 * n;
        let pattern = m.jacobian_pattern().unwrap();
        assert_eq!((pattern.n(), pattern.nnz()), (s, n * n + 9 * n));
        for r in 0..s {
            for c in 0..s {
                assert_eq!(pattern.position(r, c).is_some(), structural(r, c));
            }
        }
        let mut seen_nonzero = vec![false; s * s];
        for _ in 0..300 {
            let (u, p) = random_point(n, &mut rng);
            let f = rhs(&m, &u, &p);
            let j = jacobian(&m, &u, &p);
            for c in 0..s {
                let mut v = u.clone();
                v[c] += 0.37 * (1.0 + u[c].abs());
                let moved = rhs(&m, &v, &p);
                for r in 0..s {
                    if structural(r, c) {
                        seen_nonzero[r * s + c] |= j[r * s + c] != 0.0 && moved[r] != f[r];
                    } else {
                        // outside the pattern f_r does not depend on u_c at all
                        assert_eq!(moved[r].to_bits(), f[r].to_bits(), "n={n}: f_{r}, u_{c}");
                    }
                }
            }
        }
        for r in 0..s {
            for c in 0..s {
                assert_eq!(
                    seen_nonzero[r * s + c],
                    structural(r, c),
                    "n={n}: ({r}, {c})"
                );
            }
        }
    }
}

#[test]
fn jacobian_places_each_coupling_weight_at_its_entry() {
    // Distinct weights: W_ij lands at (E_i, E_j), nowhere else; the diagonal
    // of W has no effect.
    let n = 5;
    let m = net(n);
    let mut rng = Lcg(47);
    let (u, mut p) = random_point(n, &mut rng);
    for i in 0..n {
        for j in 0..n {
            p[m.w_index(i, j)] = 1e-3 * (1 + i * n + j) as f64;
        }
    }
    let pattern = m.jacobian_pattern().unwrap();
    let mut values = vec![f64::NAN; pattern.nnz()];
    m.jacobian(0.0, &u, &p, &mut values, &mut m.new_work());
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            let k = pattern.position(4 * i, 4 * j).unwrap();
            assert_eq!(values[k], p[m.w_index(i, j)], "W_{i}{j}");
        }
    }
    let before = values.clone();
    for i in 0..n {
        p[m.w_index(i, i)] = 123.0;
    }
    m.jacobian(0.0, &u, &p, &mut values, &mut m.new_work());
    assert_eq!(before, values);
}

#[test]
fn one_neuron_jacobian_is_hh_bit_for_bit() {
    let mut rng = Lcg(53);
    let m = net(1);
    let pattern = m.jacobian_pattern().unwrap();
    assert_eq!(Some(&pattern), HodgkinHuxley.jacobian_pattern().as_ref());
    for _ in 0..2000 {
        let (u, p) = random_point(1, &mut rng);
        let mut hh = [0.0; 10];
        HodgkinHuxley.jacobian(0.0, &u, &p[..3], &mut hh, &mut ());
        let mut values = [0.0; 10];
        m.jacobian(0.0, &u, &p, &mut values, &mut m.new_work());
        assert_eq!(values.map(f64::to_bits), hh.map(f64::to_bits));
    }
}

#[test]
fn check_model_passes_with_the_jacobian_at_singular_voltages() {
    use revode_model::check::{check_model_at, CheckOptions, Point};
    let mut rng = Lcg(59);
    for n in [1, 3, 8] {
        let points: Vec<Point> = (0..40)
            .map(|k| {
                let (u, p) = random_point_with_singular(n, &mut rng);
                Point {
                    t: 0.1 * k as f64,
                    u,
                    p,
                }
            })
            .collect();
        let r = check_model_at(&net(n), &points, &CheckOptions::default());
        assert!(r.passed, "n = {n}: {r:#?}");
        let (s, np) = (4 * n, 3 * n + n * n);
        assert_eq!(r.entries_checked, points.len() * (s * (s + np) + s * s));
    }
}
