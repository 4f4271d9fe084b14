//! Tests of the Hodgkin–Huxley model: rhs against a literal transcription of
//! the formulas, behaviour at the removable singularities, and both VJPs
//! against finite differences of the rhs.

use proptest::prelude::*;
use revode_model::{HodgkinHuxley, Model};

/// E at which α_m, β_m, α_n are 0/0.
const SINGULAR: [f64; 3] = [-50.0, -23.0, -48.0];
const EPS: f64 = f64::EPSILON;

/// The model written out literally from the spec, with a pluggable `e^x − 1`.
fn literal_with(u: &[f64; 4], p: &[f64; 3], em1: fn(f64) -> f64) -> [f64; 4] {
    let [e, m, h, n] = *u;
    let [g_na, g_kd, g_leak] = *p;
    let v_t = -63.0;
    let alpha_m = -0.32 * (e - v_t - 13.0) / em1(-(e - v_t - 13.0) / 4.0);
    let beta_m = 0.28 * (e - v_t - 40.0) / em1((e - v_t - 40.0) / 5.0);
    let alpha_h = 0.128 * (-(e - v_t - 17.0) / 18.0).exp();
    let beta_h = 4.0 / (1.0 + (-(e - v_t - 40.0) / 5.0).exp());
    let alpha_n = -0.032 * (e - v_t - 15.0) / em1(-(e - v_t - 15.0) / 5.0);
    let beta_n = 0.5 * (-(e - v_t - 10.0) / 40.0).exp();
    let area = 20000.0;
    [
        (-(e - 50.0) * g_na * area * m.powi(3) * h
            - (e + 90.0) * g_kd * area * n.powi(4)
            - (e + 65.0) * g_leak * area
            + 1.0 * area)
            / area,
        alpha_m * (1.0 - m) - beta_m * m,
        alpha_h * (1.0 - h) - beta_h * h,
        alpha_n * (1.0 - n) - beta_n * n,
    ]
}

/// The literal formula exactly as in the spec (`exp(x) − 1`).
fn literal(u: &[f64; 4], p: &[f64; 3]) -> [f64; 4] {
    literal_with(u, p, |x| x.exp() - 1.0)
}

/// The literal formula with `exp_m1`: accurate arbitrarily close to (not at)
/// the singular points.
fn literal_m1(u: &[f64; 4], p: &[f64; 3]) -> [f64; 4] {
    literal_with(u, p, f64::exp_m1)
}

/// Per-component magnitude of the terms summed in f (for relative tolerances
/// that survive cancellation in the sum).
fn term_scale(u: &[f64; 4], p: &[f64; 3]) -> [f64; 4] {
    let [e, m, h, n] = *u;
    let dna = ((e - 50.0) * p[0] * m.powi(3) * h).abs();
    let dk = ((e + 90.0) * p[1] * n.powi(4)).abs();
    let dl = ((e + 65.0) * p[2]).abs();
    // rates are below ~40 /ms for E in [−100, 60]
    let gate = |x: f64| 40.0 * (x.abs() + (1.0 - x).abs());
    [dna + dk + dl + 1.0, gate(m), gate(h), gate(n)]
}

fn rhs(u: &[f64; 4], p: &[f64; 3]) -> [f64; 4] {
    let mut du = [0.0; 4];
    HodgkinHuxley.rhs(0.0, u, p, &mut du, &mut ());
    du
}

fn vjp(u: &[f64; 4], p: &[f64; 3], l: &[f64; 4]) -> ([f64; 4], [f64; 3]) {
    let mut out = [f64::NAN; 4];
    let mut acc = [0.0; 3];
    HodgkinHuxley.vjp(0.0, u, p, l, &mut out, 1.0, &mut acc, &mut ());
    (out, acc)
}

/// Deterministic pseudo-random numbers in [0, 1) for the grid tests.
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

fn default_p() -> [f64; 3] {
    [70.0, 10.0, 0.05]
}

#[test]
fn metadata() {
    // `default()` must keep working for callers that use it
    #[allow(clippy::default_constructed_unit_structs)]
    let hh = HodgkinHuxley::default();
    assert_eq!(hh, HodgkinHuxley);
    assert_eq!(hh.name(), "hh");
    let d = hh.dims();
    assert_eq!((d.n_states, d.n_params), (4, 3));
    assert_eq!(hh.state_names(), ["E", "m", "h", "n"]);
    assert_eq!(hh.param_names(), ["g_Na", "g_Kd", "g_leak"]);
    assert_eq!(hh.default_u0(), [-59.0, 0.2, 0.9, 0.1]);
    assert_eq!(hh.default_params(), [70.0, 10.0, 0.05]);
}

#[test]
fn rhs_matches_literal_away_from_singularities() {
    let mut rng = Lcg(7);
    let mut checked = 0;
    for i in 0..=16000 {
        let e = -100.0 + 0.01 * i as f64;
        if SINGULAR.iter().any(|s| (e - s).abs() < 0.05) {
            continue;
        }
        let u = [e, rng.next(), rng.next(), rng.next()];
        let p = [
            70.0 * (0.5 + rng.next()),
            10.0 * (0.5 + rng.next()),
            0.05 * (0.5 + rng.next()),
        ];
        let (got, want, sc) = (rhs(&u, &p), literal(&u, &p), term_scale(&u, &p));
        for k in 0..4 {
            assert!(
                (got[k] - want[k]).abs() <= 1e-12 * sc[k],
                "component {k} at {u:?}: {} vs literal {}",
                got[k],
                want[k]
            );
        }
        checked += 1;
    }
    assert!(checked > 15000);
    // the default initial state as a spot check
    let u = [-59.0, 0.2, 0.9, 0.1];
    let (got, want) = (rhs(&u, &default_p()), literal(&u, &default_p()));
    for k in 0..4 {
        assert!(
            (got[k] - want[k]).abs() <= 1e-13 * want[k].abs(),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn rhs_limits_at_singular_points() {
    let p = default_p();
    // α_m(−50) = 1.28: with m = 0, dm/dt = α_m
    assert_eq!(rhs(&[-50.0, 0.0, 0.5, 0.5], &p)[1], 1.28);
    // β_m(−23) = 1.4: with m = 1, dm/dt = −β_m
    assert_eq!(rhs(&[-23.0, 1.0, 0.5, 0.5], &p)[1], -1.4);
    // α_n(−48) = 0.16: with n = 0, dn/dt = α_n
    assert_eq!(rhs(&[-48.0, 0.5, 0.5, 0.0], &p)[3], 0.16);
    for s in SINGULAR {
        let du = rhs(&[s, 0.3, 0.6, 0.4], &p);
        assert!(du.iter().all(|x| x.is_finite()), "rhs at E = {s}: {du:?}");
        let (out, acc) = vjp(&[s, 0.3, 0.6, 0.4], &p, &[1.0, 1.0, 1.0, 1.0]);
        assert!(
            out.iter().chain(&acc).all(|x| x.is_finite()),
            "vjp at E = {s}"
        );
    }
}

#[test]
fn rhs_continuous_around_singular_points() {
    let p = default_p();
    for s in SINGULAR {
        let at = rhs(&[s, 0.3, 0.6, 0.4], &p);
        for k in 3..=12 {
            let d = 10f64.powi(-k);
            for e in [s - d, s + d] {
                let u = [e, 0.3, 0.6, 0.4];
                let du = rhs(&u, &p);
                let sc = term_scale(&u, &p);
                for c in 0..4 {
                    assert!(du[c].is_finite());
                    // Lipschitz in E with |∂f/∂E| < 100 here
                    assert!(
                        (du[c] - at[c]).abs() <= 100.0 * d + 1e-14 * sc[c],
                        "component {c} jumps at E = {s} ± 1e-{k}: {} vs {}",
                        du[c],
                        at[c]
                    );
                    // accurate: the exp_m1 transcription is exact to rounding here
                    let want = literal_m1(&u, &p)[c];
                    assert!(
                        (du[c] - want).abs() <= 1e-14 * sc[c],
                        "component {c} at E = {s} ± 1e-{k}: {} vs {want}",
                        du[c]
                    );
                }
            }
        }
    }
}

#[test]
fn rhs_matches_plain_literal_near_singular_points() {
    // The plain `exp(x) − 1` of the spec loses ~ε/|z| relative accuracy near
    // the singular points, so the tolerance grows as the distance shrinks.
    let p = default_p();
    let mut rng = Lcg(11);
    for s in SINGULAR {
        for i in 0..=60 {
            let d = 1e-3 * 10f64.powf(-5.5 * i as f64 / 60.0); // 1e-3 … 3e-9
            for e in [s - d, s + d] {
                let u = [e, rng.next(), rng.next(), rng.next()];
                let (got, want, sc) = (rhs(&u, &p), literal(&u, &p), term_scale(&u, &p));
                let tol = 1e-12 + 8.0 * 5.0 * EPS / d;
                for c in 0..4 {
                    assert!(
                        (got[c] - want[c]).abs() <= tol * sc[c],
                        "component {c} at E = {e}: {} vs {}",
                        got[c],
                        want[c]
                    );
                }
            }
        }
    }
}

/// `λ · f(u, p)`.
fn dot(l: &[f64; 4], f: &[f64; 4]) -> f64 {
    l.iter().zip(f).map(|(a, b)| a * b).sum()
}

/// Fourth-order central difference (−φ(2h) + 8φ(h) − 8φ(−h) + φ(−2h)) / 12h.
/// Exact for the polynomial dependence on gates and parameters, so the step
/// can be large (h = 1e−3) and rounding stays ~ε·|terms|/h ≈ 2e−13·|terms|;
/// in E the truncation is h⁴ φ⁽⁵⁾/30 ≈ 1e−14.
fn fd(phi: impl Fn(f64) -> f64, h: f64) -> f64 {
    (-phi(2.0 * h) + 8.0 * phi(h) - 8.0 * phi(-h) + phi(-2.0 * h)) / (12.0 * h)
}

const FD_H: f64 = 1e-3;

/// Checks both VJPs against finite differences at one point.
fn check_vjp(u: [f64; 4], p: [f64; 3], l: [f64; 4]) -> Result<(), TestCaseError> {
    let (out, acc) = vjp(&u, &p, &l);
    let sc = term_scale(&u, &p);
    // rounding floor of the FD: ε·Σ|λ_i|·|terms_i|/h with a wide margin
    let floor = 1e-10 * l.iter().zip(&sc).map(|(a, b)| a.abs() * b).sum::<f64>();
    for j in 0..4 {
        let want = fd(
            |dx| {
                let mut v = u;
                v[j] += dx;
                dot(&l, &rhs(&v, &p))
            },
            FD_H,
        );
        prop_assert!(
            (out[j] - want).abs() <= 1e-6 * want.abs() + floor,
            "d/du[{}] at u={:?} p={:?} l={:?}: vjp {} vs fd {}",
            j,
            u,
            p,
            l,
            out[j],
            want
        );
    }
    for k in 0..3 {
        let hp = FD_H * p[k].abs().max(1.0);
        let want = fd(
            |dx| {
                let mut q = p;
                q[k] += dx;
                dot(&l, &rhs(&u, &q))
            },
            hp,
        );
        prop_assert!(
            (acc[k] - want).abs() <= 1e-6 * want.abs() + floor,
            "d/dp[{}] at u={:?} p={:?} l={:?}: vjp {} vs fd {}",
            k,
            u,
            p,
            l,
            acc[k],
            want
        );
    }
    Ok(())
}

fn gates() -> impl Strategy<Value = (f64, f64, f64)> {
    (0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64)
}

fn params() -> impl Strategy<Value = [f64; 3]> {
    (35.0..140.0f64, 5.0..20.0f64, 0.025..0.1f64).prop_map(|(a, b, c)| [a, b, c])
}

fn lambda() -> impl Strategy<Value = [f64; 4]> {
    prop::array::uniform4(-1.0..1.0f64)
}

/// E within 1e−6 … 1e−2 of one of the singular points, either side.
fn near_singular() -> impl Strategy<Value = f64> {
    (0..3usize, -6.0..-2.0f64, prop::bool::ANY).prop_map(|(i, k, neg)| {
        let d = 10f64.powf(k);
        SINGULAR[i] + if neg { -d } else { d }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vjp_matches_fd(
        e in -100.0..60.0f64, (m, h, n) in gates(), p in params(), l in lambda(),
    ) {
        check_vjp([e, m, h, n], p, l)?;
    }

    #[test]
    fn vjp_matches_fd_near_singular_points(
        e in near_singular(), (m, h, n) in gates(), p in params(), l in lambda(),
    ) {
        check_vjp([e, m, h, n], p, l)?;
    }

    #[test]
    fn vjp_overwrites_out_and_accumulates_params(
        e in -100.0..60.0f64, (m, h, n) in gates(), p in params(), l in lambda(),
        alpha in -3.0..3.0f64, junk in prop::array::uniform4(-1e6..1e6f64),
        acc0 in prop::array::uniform3(-10.0..10.0f64),
    ) {
        let u = [e, m, h, n];
        let (out1, acc1) = vjp(&u, &p, &l);

        let mut out = junk;
        let mut acc = acc0;
        HodgkinHuxley.vjp(0.0, &u, &p, &l, &mut out, alpha, &mut acc, &mut ());
        // out_u is overwritten, independent of its old content and of alpha
        prop_assert_eq!(out, out1);
        // acc_p gets alpha · (∂f/∂p)ᵀλ added
        for k in 0..3 {
            let want = acc0[k] + alpha * acc1[k];
            prop_assert!((acc[k] - want).abs() <= 1e-14 * (acc0[k].abs() + (alpha * acc1[k]).abs()),
                "acc[{}] = {} vs {}", k, acc[k], want);
        }
        // a second call adds again
        let before = acc;
        HodgkinHuxley.vjp(0.0, &u, &p, &l, &mut out, alpha, &mut acc, &mut ());
        for k in 0..3 {
            let want = before[k] + alpha * acc1[k];
            prop_assert!((acc[k] - want).abs() <= 1e-14 * (before[k].abs() + (alpha * acc1[k]).abs()));
        }
        // alpha = 0 leaves the accumulator untouched
        let mut acc_z = acc0;
        HodgkinHuxley.vjp(0.0, &u, &p, &l, &mut out, 0.0, &mut acc_z, &mut ());
        prop_assert_eq!(acc_z, acc0);
    }
}

#[test]
fn vjp_matches_fd_at_singular_points_exactly() {
    let mut rng = Lcg(3);
    for s in SINGULAR {
        for _ in 0..200 {
            let u = [s, rng.next(), rng.next(), rng.next()];
            let l = [
                rng.next() - 0.5,
                rng.next() - 0.5,
                rng.next() - 0.5,
                rng.next() - 0.5,
            ];
            check_vjp(u, default_p(), l).unwrap();
        }
    }
}

/// The E-derivative of each gate rate, isolated with one-hot λ and a gate at
/// 0 or 1, against FD on a fine grid through the singular points.
#[test]
fn gate_rate_derivatives_on_grid() {
    let p = default_p();
    for i in 0..=16000 {
        let e = -100.0 + 0.01 * i as f64;
        for (row, x) in [(1, 0.0), (1, 1.0), (2, 0.0), (2, 1.0), (3, 0.0), (3, 1.0)] {
            let mut u = [e, 0.5, 0.5, 0.5];
            u[row] = x;
            let mut l = [0.0; 4];
            l[row] = 1.0;
            let (out, _) = vjp(&u, &p, &l);
            let want = fd(
                |dx| {
                    let mut v = u;
                    v[0] += dx;
                    rhs(&v, &p)[row]
                },
                FD_H,
            );
            assert!(
                (out[0] - want).abs() <= 1e-8 * want.abs() + 1e-11,
                "row {row}, gate {x}, E = {e}: {} vs fd {want}",
                out[0]
            );
        }
    }
}

// ---- the state Jacobian `Model::jacobian` ----

/// `∂f/∂u` from `Model::jacobian`, dense, `j[r][c]` (0 outside the pattern).
fn jacobian(u: &[f64; 4], p: &[f64; 3]) -> [[f64; 4]; 4] {
    let pattern = HodgkinHuxley.jacobian_pattern().unwrap();
    let mut values = vec![f64::NAN; pattern.nnz()];
    HodgkinHuxley.jacobian(0.0, u, p, &mut values, &mut ());
    let mut j = [[0.0; 4]; 4];
    for (k, (r, c)) in pattern.entries().enumerate() {
        j[r][c] = values[k];
    }
    j
}

/// The structural pattern of `hh`: column E is full, each gate column has
/// row E and the gate's own row.
fn structural(r: usize, c: usize) -> bool {
    c == 0 || r == 0 || r == c
}

/// Every entry of the Jacobian against the 4th-order difference of `f_r`
/// in `u_c` (the same step and floor as `check_vjp`, with one-hot λ).
fn check_jacobian(u: [f64; 4], p: [f64; 3]) -> Result<(), TestCaseError> {
    let j = jacobian(&u, &p);
    let sc = term_scale(&u, &p);
    for (r, row) in j.iter().enumerate() {
        let floor = 1e-10 * sc[r];
        for (c, &got) in row.iter().enumerate() {
            let want = fd(
                |dx| {
                    let mut v = u;
                    v[c] += dx;
                    rhs(&v, &p)[r]
                },
                FD_H,
            );
            prop_assert!(
                got.is_finite() && (got - want).abs() <= 1e-6 * want.abs() + floor,
                "J[{}][{}] at u={:?} p={:?}: {} vs fd {}",
                r,
                c,
                u,
                p,
                got,
                want
            );
        }
    }
    Ok(())
}

/// `Jᵀλ` from the Jacobian's entries against `vjp`: the same partials in
/// the same order, so equal to a few roundings of `Σ|J_rc λ_r|`.
fn check_jacobian_against_vjp(u: [f64; 4], p: [f64; 3], l: [f64; 4]) -> Result<(), TestCaseError> {
    let j = jacobian(&u, &p);
    let (out, _) = vjp(&u, &p, &l);
    for c in 0..4 {
        let jt_l: f64 = (0..4).map(|r| j[r][c] * l[r]).sum();
        let size: f64 = (0..4).map(|r| (j[r][c] * l[r]).abs()).sum();
        prop_assert!(
            (jt_l - out[c]).abs() <= 4.0 * EPS * size,
            "(Jᵀλ)[{}] at u={:?}: {} vs vjp {}",
            c,
            u,
            jt_l,
            out[c]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn jacobian_matches_fd(e in -100.0..60.0f64, (m, h, n) in gates(), p in params()) {
        check_jacobian([e, m, h, n], p)?;
    }

    #[test]
    fn jacobian_matches_fd_near_singular_points(
        e in near_singular(), (m, h, n) in gates(), p in params(),
    ) {
        check_jacobian([e, m, h, n], p)?;
    }

    #[test]
    fn jacobian_transposed_times_lambda_is_the_vjp(
        e in prop_oneof![-100.0..60.0f64, near_singular()], (m, h, n) in gates(),
        p in params(), l in lambda(),
    ) {
        check_jacobian_against_vjp([e, m, h, n], p, l)?;
    }
}

#[test]
fn jacobian_at_singular_points_exactly() {
    let mut rng = Lcg(19);
    for s in SINGULAR {
        for _ in 0..200 {
            let u = [s, rng.next(), rng.next(), rng.next()];
            let l = [0; 4].map(|_| rng.next() - 0.5);
            check_jacobian(u, default_p()).unwrap();
            check_jacobian_against_vjp(u, default_p(), l).unwrap();
        }
    }
    // the rate-derivative limits of docs/models/hh.md, through J[gate][E]
    // with the gate at 0 (J = α') or 1 (J = −β')
    let p = default_p();
    assert_eq!(jacobian(&[-50.0, 0.0, 0.5, 0.5], &p)[1][0], 0.16);
    assert_eq!(jacobian(&[-23.0, 1.0, 0.5, 0.5], &p)[1][0], 0.14);
    assert_eq!(jacobian(&[-48.0, 0.5, 0.5, 0.0], &p)[3][0], 0.016);
}

#[test]
fn jacobian_pattern_is_exactly_the_structural_pattern() {
    let pattern = HodgkinHuxley.jacobian_pattern().unwrap();
    assert_eq!((pattern.n(), pattern.nnz()), (4, 10));
    for r in 0..4 {
        for c in 0..4 {
            assert_eq!(
                pattern.position(r, c).is_some(),
                structural(r, c),
                "({r}, {c})"
            );
        }
    }
    let mut rng = Lcg(23);
    let mut seen_nonzero = [[false; 4]; 4];
    for _ in 0..2000 {
        let u = [
            -100.0 + 160.0 * rng.next(),
            rng.next(),
            rng.next(),
            rng.next(),
        ];
        let p = [
            70.0 * (0.5 + rng.next()),
            10.0 * (0.5 + rng.next()),
            0.05 * (0.5 + rng.next()),
        ];
        let f = rhs(&u, &p);
        let j = jacobian(&u, &p);
        for c in 0..4 {
            let mut v = u;
            v[c] += 0.37 * (1.0 + u[c].abs());
            let moved = rhs(&v, &p);
            for r in 0..4 {
                if structural(r, c) {
                    seen_nonzero[r][c] |= j[r][c] != 0.0 && moved[r] != f[r];
                } else {
                    // outside the pattern f_r does not depend on u_c at all
                    assert_eq!(moved[r].to_bits(), f[r].to_bits(), "f_{r} moved with u_{c}");
                }
            }
        }
    }
    for r in 0..4 {
        for c in 0..4 {
            assert_eq!(seen_nonzero[r][c], structural(r, c), "entry ({r}, {c})");
        }
    }
}

#[test]
fn check_model_passes_with_the_jacobian_at_singular_points() {
    use revode_model::check::{check_model_at, CheckOptions, Point};
    let mut rng = Lcg(29);
    let mut points = Vec::new();
    for k in 0..300 {
        // every fourth point exactly at a singular voltage
        let e = if k % 4 == 0 {
            SINGULAR[(k / 4) % 3]
        } else {
            -100.0 + 160.0 * rng.next()
        };
        points.push(Point {
            t: 0.1 * k as f64,
            u: vec![e, rng.next(), rng.next(), rng.next()],
            p: vec![
                70.0 * (0.5 + rng.next()),
                10.0 * (0.5 + rng.next()),
                0.05 * (0.5 + rng.next()),
            ],
        });
    }
    let options = CheckOptions::default();
    let r = check_model_at(&HodgkinHuxley, &points, &options);
    assert!(r.passed, "{r:#?}");
    // 4 × (4 + 3) VJP entries and 4 × 4 Jacobian entries per point
    assert_eq!(r.entries_checked, points.len() * (4 * 7 + 4 * 4));
}
