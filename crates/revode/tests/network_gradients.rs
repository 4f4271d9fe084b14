//! Whole-solve gradients of `hh_network`: against Richardson-extrapolated
//! finite differences of the loss, and N = 1 against `hh` bit for bit.

use revode::checkpoint::Schedule;
use revode::prelude::*;

fn loss_of<M: Model>(
    m: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    w: &[f64],
) -> f64 {
    let sol = solve_fixed(m, method, grid, u0, p, None).unwrap();
    sol.final_state.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// `dL/dp_k` by central differences at h and h/2, Richardson-extrapolated
/// (error O(h⁴)).
fn fd_param<M: Model>(
    m: &M,
    method: FixedMethod,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
    w: &[f64],
    k: usize,
) -> f64 {
    let h = 1e-3 * p[k].abs().max(1e-2);
    let central = |h: f64| {
        let mut pp = p.to_vec();
        pp[k] = p[k] + h;
        let plus = loss_of(m, method, grid, u0, &pp, w);
        pp[k] = p[k] - h;
        let minus = loss_of(m, method, grid, u0, &pp, w);
        (plus - minus) / (2.0 * h)
    };
    let (d1, d2) = (central(h), central(0.5 * h));
    (4.0 * d2 - d1) / 3.0
}

/// Loss Σ_i E_i(t1): weight 1 on the voltages only.
fn voltage_weights(n: usize) -> Vec<f64> {
    (0..4 * n)
        .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
        .collect()
}

fn check_params(n: usize, t1: f64, method: FixedMethod, params: &[usize]) -> usize {
    let m = HhNetwork::with_neurons(n).unwrap();
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
    let w = voltage_weights(n);
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method,
    };
    let g = gradient_fixed(
        &m,
        &problem,
        &Loss::Final { weights: w.clone() },
        Schedule::All,
    )
    .unwrap();
    let scale = g.gradient.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let names = m.param_names();
    let mut nonzero = 0;
    for &k in params {
        let fd = fd_param(&m, method, &grid, &u0, &p, &w, k);
        let i = (k >= 3 * n).then(|| (k - 3 * n) / n);
        let j = (k >= 3 * n).then(|| (k - 3 * n) % n);
        if i.is_some() && i == j {
            assert_eq!(g.gradient[k], 0.0, "diagonal {}", names[k]);
        }
        let err = (g.gradient[k] - fd).abs() / fd.abs().max(1e-4 * scale);
        assert!(
            err < 1e-6,
            "n={n} {}: adjoint {} vs fd {fd} (rel {err:e})",
            names[k],
            g.gradient[k]
        );
        if g.gradient[k] != 0.0 {
            nonzero += 1;
        }
    }
    nonzero
}

#[test]
fn three_neurons_all_parameters_match_finite_differences() {
    let n = 3;
    let all: Vec<usize> = (0..3 * n + n * n).collect();
    // 20 ms include the first spike of every neuron; 2003 steps leave a
    // partial block of deferred W-gradient rows.
    let nonzero = check_params(n, 20.03, FixedMethod::Euler, &all);
    assert_eq!(
        nonzero,
        all.len() - n,
        "only the diagonal of W has zero gradient"
    );
    check_params(n, 5.01, FixedMethod::Rk4, &all);
}

#[test]
fn twenty_neurons_sampled_parameters_match_finite_differences() {
    let n = 20;
    let p_len = 3 * n + n * n;
    // 40 distinct indices, a fixed pseudo-random sample (LCG), plus one of each kind.
    let mut x: u64 = 0x5eed;
    let mut picked = vec![0, n, 2 * n, 3 * n + 1];
    while picked.len() < 40 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = (x >> 33) as usize % p_len;
        if !picked.contains(&k) {
            picked.push(k);
        }
    }
    check_params(n, 10.0, FixedMethod::Euler, &picked);
}

#[test]
fn one_neuron_gradient_is_hh_bit_for_bit() {
    let net = HhNetwork::with_neurons(1).unwrap();
    let (u0, mut p) = (HodgkinHuxley.default_u0(), HodgkinHuxley.default_params());
    assert_eq!(net.default_u0(), u0);
    p.push(0.0); // W_00
    assert_eq!(net.default_params(), p);
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for loss in [
            Loss::Final {
                weights: vec![1.0, 0.5, -2.0, 3.0],
            },
            Loss::AllSteps {
                weights: vec![1.0; 4],
            },
        ] {
            let grid = TimeGrid::new(0.0, 40.0, 0.01).unwrap();
            let hh = gradient_fixed(
                &HodgkinHuxley,
                &FixedProblem {
                    u0: &u0,
                    params: &p[..3],
                    grid,
                    method,
                },
                &loss,
                Schedule::Every(50),
            )
            .unwrap();
            let nw = gradient_fixed(
                &net,
                &FixedProblem {
                    u0: &u0,
                    params: &p,
                    grid,
                    method,
                },
                &loss,
                Schedule::Every(50),
            )
            .unwrap();
            assert_eq!(nw.loss.to_bits(), hh.loss.to_bits());
            assert_eq!(nw.gradient[..3], hh.gradient[..], "{method:?} {loss:?}");
            assert_eq!(nw.gradient[3], 0.0);
            assert_eq!(nw.gradient_u0, hh.gradient_u0);
        }
    }
}
