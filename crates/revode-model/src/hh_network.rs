//! A network of `N` Hodgkin–Huxley neurons coupled through a gap-junction
//! matrix `W`.
//!
//! State `u[4i..4i+4] = [E_i, m_i, h_i, n_i]` (interleaved); parameters
//! `[g_Na_0..N, g_Kd_0..N, g_leak_0..N, W (row-major, N²)]`. Neuron `i`
//! follows the single `hh` neuron plus the coupling current
//! `Σ_{j≠i} W_ij (E_j − E_i) = (W E)_i − E_i · rowsum_i` (diagonal excluded,
//! so `W_ii` has no effect and a zero gradient). The rhs sums the left form,
//! the VJP uses the right one. Derivation:
//! `docs/models/hh_network.md`.
//!
//! The W-gradient `Σ_k α_k λ_i (E_j − E_i)` is deferred: each `vjp` stores
//! `α λ_E` and `E` as one row of a block, a full block is folded into the
//! N×N sum `Σ_k α_k λ_k E_kᵀ` by one blocked outer-product pass, and
//! [`Model::flush_vjp`] subtracts `Σ_k α_k λ_i E_i` and adds the result.

use std::num::NonZeroUsize;

use crate::hh::{neuron_jacobian, neuron_rhs, neuron_vjp, NEURON_ENTRIES};
use crate::{Dims, Model, SparsityPattern};

/// Steps of `α λ_E` and `E` collected before one blocked accumulation.
const BLOCK_STEPS: usize = 32;
/// Independent partial sums in the reductions (breaks the add latency chain).
const LANES: usize = 8;

/// `N` coupled Hodgkin–Huxley neurons (`"hh_network"` in problem files).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HhNetwork {
    n: usize,
    i_ext: f64,
}

/// Scratch of [`HhNetwork`]: gathered voltages and adjoints, and the
/// deferred W-gradient sums. Made once per solve.
#[derive(Debug, Clone)]
pub struct NetworkWork {
    /// `E_i` gathered from the interleaved state (rhs).
    e: Vec<f64>,
    /// `λ_{E_i}` gathered (vjp).
    lam_e: Vec<f64>,
    /// `(Wᵀ λ_E)_j − λ_j rowsum_j`, the coupling part of `Jᵀ λ`.
    coupling: Vec<f64>,
    /// Row `b`: `α_b λ_E(b)`; `BLOCK_STEPS × N`.
    block_lam: Vec<f64>,
    /// Row `b`: `E(b)`; `BLOCK_STEPS × N`.
    block_e: Vec<f64>,
    block_len: usize,
    /// `Σ_k α_k λ_i E_j` (N×N, row-major) over the folded blocks.
    outer: Vec<f64>,
    /// `Σ_k α_k λ_i E_i`.
    diag: Vec<f64>,
    /// Anything deferred since the last flush.
    pending: bool,
}

impl HhNetwork {
    /// `n` neurons with the default injected current `I_ext = 1`.
    pub fn new(n: NonZeroUsize) -> Self {
        HhNetwork {
            n: n.get(),
            i_ext: 1.0,
        }
    }

    /// `n` neurons, or `None` for `n = 0`.
    pub fn with_neurons(n: usize) -> Option<Self> {
        NonZeroUsize::new(n).map(Self::new)
    }

    /// The same network with injected current `i_ext` (per neuron).
    pub fn with_i_ext(self, i_ext: f64) -> Self {
        HhNetwork { i_ext, ..self }
    }

    pub fn neurons(&self) -> usize {
        self.n
    }

    pub fn i_ext(&self) -> f64 {
        self.i_ext
    }

    /// Index of `g_Na_i` in the parameter vector (`g_Kd_i`: `+N`, `g_leak_i`: `+2N`).
    pub fn g_na_index(&self, i: usize) -> usize {
        i
    }

    /// Index of `W_ij` in the parameter vector.
    pub fn w_index(&self, i: usize, j: usize) -> usize {
        3 * self.n + i * self.n + j
    }

    /// The default coupling `W_ij = 0.001 ((i + 2j) mod 7)`, `W_ii = 0`.
    pub fn default_w(i: usize, j: usize) -> f64 {
        if i == j {
            0.0
        } else {
            0.001 * ((i + 2 * j) % 7) as f64
        }
    }
}

impl Model for HhNetwork {
    type Work = NetworkWork;

    fn name(&self) -> &str {
        "hh_network"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 4 * self.n,
            n_params: 3 * self.n + self.n * self.n,
        }
    }
    fn state_names(&self) -> Vec<String> {
        (0..self.n)
            .flat_map(|i| ["E", "m", "h", "n"].map(|s| format!("{s}_{i}")))
            .collect()
    }
    fn param_names(&self) -> Vec<String> {
        let n = self.n;
        let mut names: Vec<String> = ["g_Na", "g_Kd", "g_leak"]
            .iter()
            .flat_map(|g| (0..n).map(move |i| format!("{g}_{i}")))
            .collect();
        names.extend((0..n * n).map(|k| format!("W_{}_{}", k / n, k % n)));
        names
    }
    fn default_u0(&self) -> Vec<f64> {
        (0..self.n)
            .flat_map(|i| [-59.0 - 0.1 * i as f64, 0.2, 0.9, 0.1])
            .collect()
    }
    fn default_params(&self) -> Vec<f64> {
        let n = self.n;
        let mut p = Vec::with_capacity(3 * n + n * n);
        for g in [70.0, 10.0, 0.05] {
            p.resize(p.len() + n, g);
        }
        p.extend((0..n * n).map(|k| Self::default_w(k / n, k % n)));
        p
    }
    fn new_work(&self) -> NetworkWork {
        let n = self.n;
        NetworkWork {
            e: vec![0.0; n],
            lam_e: vec![0.0; n],
            coupling: vec![0.0; n],
            block_lam: vec![0.0; BLOCK_STEPS * n],
            block_e: vec![0.0; BLOCK_STEPS * n],
            block_len: 0,
            outer: vec![0.0; n * n],
            diag: vec![0.0; n],
            pending: false,
        }
    }

    #[inline]
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut NetworkWork) {
        let n = self.n;
        let (u, p, du) = (&u[..4 * n], &p[..3 * n + n * n], &mut du[..4 * n]);
        let w = &p[3 * n..];
        let e = &mut work.e;
        for (ei, ui) in e.iter_mut().zip(u.chunks_exact(4)) {
            *ei = ui[0];
        }
        for i in 0..n {
            let g = [p[i], p[n + i], p[2 * n + i]];
            neuron_rhs(
                &u[4 * i..4 * i + 4],
                g,
                self.i_ext,
                &mut du[4 * i..4 * i + 4],
            );
            // coupling Σ_{j≠i} W_ij (E_j − E_i), summed in this form: measured
            // faster than (W E)_i − E_i rowsum_i with the row sum per call,
            // and as fast as with a cached row sum (docs/performance-network.md).
            let row = &w[i * n..(i + 1) * n];
            let ei = e[i];
            du[4 * i] +=
                dot_shifted(&row[..i], &e[..i], ei) + dot_shifted(&row[i + 1..], &e[i + 1..], ei);
        }
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
        work: &mut NetworkWork,
    ) {
        let n = self.n;
        let (u, p, lambda) = (&u[..4 * n], &p[..3 * n + n * n], &lambda[..4 * n]);
        let (out_u, acc_p) = (&mut out_u[..4 * n], &mut acc_p[..3 * n + n * n]);
        let w = &p[3 * n..];

        // Per-neuron Hodgkin–Huxley part, and the conductance gradients.
        for i in 0..n {
            let g = [p[i], p[n + i], p[2 * n + i]];
            let s = 4 * i..4 * i + 4;
            let d_g = neuron_vjp(&u[s.clone()], g, &lambda[s.clone()], &mut out_u[s]);
            let al = alpha * lambda[4 * i];
            acc_p[i] += al * d_g[0];
            acc_p[n + i] += al * d_g[1];
            acc_p[2 * n + i] += al * d_g[2];
        }

        // Coupling part of Jᵀλ: ∂(dE_i/dt)/∂E_j = W_ij (j ≠ i),
        // ∂(dE_i/dt)/∂E_i gains −rowsum_i; so
        // (Jᵀλ)_{E_j} += Σ_{i≠j} W_ij λ_i − λ_j rowsum_j.
        let NetworkWork {
            lam_e,
            coupling,
            block_lam,
            block_e,
            block_len,
            diag,
            pending,
            ..
        } = work;
        let b = *block_len;
        let (blam, be) = (
            &mut block_lam[b * n..(b + 1) * n],
            &mut block_e[b * n..(b + 1) * n],
        );
        for i in 0..n {
            let (l, e) = (lambda[4 * i], u[4 * i]);
            lam_e[i] = l;
            // W-gradient, deferred: ∂(dE_i/dt)/∂W_ij = E_j − E_i, so
            // acc_W_ij += α λ_i E_j − α λ_i E_i.
            let al = alpha * l;
            blam[i] = al;
            be[i] = e;
            diag[i] += al * e;
        }
        coupling_transpose(w, lam_e, n, coupling);
        for (o, c) in out_u.chunks_exact_mut(4).zip(coupling.iter()) {
            o[0] += c;
        }

        *pending = true;
        *block_len = b + 1;
        if *block_len == BLOCK_STEPS {
            fold_block(work, n);
        }
    }

    /// Each neuron's `hh` block (10 entries) plus every voltage–voltage
    /// entry `(E_i, E_j)`: the coupling `W` is a parameter, so no `W_ij` is
    /// structurally 0 and the voltage block is dense; N² + 9N entries in all
    /// (docs/models/hh_network.md, "Jacobian").
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        let n = self.n;
        let blocks = (0..n).flat_map(|k| NEURON_ENTRIES.map(|(r, c)| (4 * k + r, 4 * k + c)));
        let voltages = (0..n).flat_map(|i| (0..n).map(move |j| (4 * i, 4 * j)));
        Some(SparsityPattern::from_entries(4 * n, blocks.chain(voltages)))
    }

    /// Writes neuron by neuron. Neuron `j`'s four columns are the `n + 9`
    /// entries from `j (n + 9)` on: column `E_j` holds rows `E_0 … E_{j−1}`,
    /// `E_j, m_j, h_j, n_j`, `E_{j+1} … E_{n−1}` (so rows past neuron `j`'s
    /// gates sit 3 further down), then columns `m_j, h_j, n_j`, two entries
    /// each (row `E_j`, the gate's own row). The tests check these positions
    /// against `SparsityPattern::position`.
    #[inline]
    fn jacobian(&self, _t: f64, u: &[f64], p: &[f64], values: &mut [f64], _work: &mut NetworkWork) {
        let n = self.n;
        let (u, p) = (&u[..4 * n], &p[..3 * n + n * n]);
        let values = &mut values[..n * (n + 9)];
        let w = &p[3 * n..];
        for (j, col) in values.chunks_exact_mut(n + 9).enumerate() {
            let nj = neuron_jacobian(&u[4 * j..4 * j + 4], [p[j], p[n + j], p[2 * n + j]]);
            // Column E_j, rows E_i (i ≠ j): ∂(dE_i/dt)/∂E_j = W_ij.
            for i in 0..j {
                col[i] = w[i * n + j];
            }
            for i in j + 1..n {
                col[i + 3] = w[i * n + j];
            }
            // Row E_j, column E_j: the neuron's own ∂(dE_j/dt)/∂E_j minus the
            // coupling's row sum r_j = Σ_{k≠j} W_jk (from −E_j Σ_{k≠j} W_jk).
            let row = &w[j * n..(j + 1) * n];
            let r_j = sum_lanes(&row[..j]) + sum_lanes(&row[j + 1..]);
            col[j] = nj.j00 - r_j;
            // Rows m_j, h_j, n_j of column E_j: ∂(dx_j/dt)/∂E_j.
            col[j + 1] = nj.j10;
            col[j + 2] = nj.j20;
            col[j + 3] = nj.j30;
            // Columns m_j, h_j, n_j: row E_j and the gate's own row.
            col[n + 3..].copy_from_slice(&[nj.j01, nj.j11, nj.j02, nj.j22, nj.j03, nj.j33]);
        }
    }

    fn flush_vjp(&self, acc_p: &mut [f64], work: &mut NetworkWork) {
        if !work.pending {
            return;
        }
        let n = self.n;
        fold_block(work, n);
        let acc_w = &mut acc_p[3 * n..3 * n + n * n];
        for i in 0..n {
            let d = work.diag[i];
            let (acc_row, outer_row) = (
                &mut acc_w[i * n..(i + 1) * n],
                &work.outer[i * n..(i + 1) * n],
            );
            for j in (0..n).filter(|&j| j != i) {
                // Σ_k α_k λ_i (E_j − E_i); the diagonal keeps gradient 0.
                acc_row[j] += outer_row[j] - d;
            }
        }
        work.outer.fill(0.0);
        work.diag.fill(0.0);
        work.pending = false;
    }
}

/// Adds the collected block into `outer`: `outer_ij += Σ_b blam_bi · be_bj`,
/// four block rows per pass over `outer`'s row (a rank-4 update).
///
/// This is the matrix product `outer += blamᵀ · be`, written out by hand:
/// `ndarray::linalg::general_mat_mul` (matrixmultiply) does it in 3 % fewer
/// instructions at N = 100 but allocates its packing buffer on every call,
/// i.e. once per block, and the solve must not allocate per step
/// (docs/performance-network.md).
fn fold_block(work: &mut NetworkWork, n: usize) {
    let rows = work.block_len;
    let (blam, be, outer) = (&work.block_lam, &work.block_e, &mut work.outer);
    for i in 0..n {
        let acc = &mut outer[i * n..(i + 1) * n];
        let mut b = 0;
        while b + 4 <= rows {
            let c = [
                blam[b * n + i],
                blam[(b + 1) * n + i],
                blam[(b + 2) * n + i],
                blam[(b + 3) * n + i],
            ];
            let e0 = &be[b * n..(b + 1) * n];
            let e1 = &be[(b + 1) * n..(b + 2) * n];
            let e2 = &be[(b + 2) * n..(b + 3) * n];
            let e3 = &be[(b + 3) * n..(b + 4) * n];
            for j in 0..n {
                acc[j] += (c[0] * e0[j] + c[1] * e1[j]) + (c[2] * e2[j] + c[3] * e3[j]);
            }
            b += 4;
        }
        for b in b..rows {
            let c = blam[b * n + i];
            for (a, e) in acc.iter_mut().zip(&be[b * n..(b + 1) * n]) {
                *a += c * e;
            }
        }
    }
    work.block_len = 0;
}

/// `Σ w_k (x_k − shift)` with `LANES` independent partial sums.
#[inline(always)]
fn dot_shifted(w: &[f64], x: &[f64], shift: f64) -> f64 {
    let (wc, xc) = (w.chunks_exact(LANES), x.chunks_exact(LANES));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    let mut dot = [0.0; LANES];
    for (wk, xk) in wc.zip(xc) {
        for l in 0..LANES {
            dot[l] += wk[l] * (xk[l] - shift);
        }
    }
    let mut d: f64 = dot.iter().sum();
    for (wk, xk) in wr.iter().zip(xr) {
        d += wk * (xk - shift);
    }
    d
}

/// `y ← W̃ᵀ λ − λ ∘ r` (W̃: W without its diagonal, `r_i = Σ_{j≠i} W_ij`).
///
/// Rows are taken four at a time, so `y` is loaded and stored once per four
/// rows; the 4×4 diagonal block is done entry by entry (skipping `W_ii`),
/// and leftover rows one at a time.
fn coupling_transpose(w: &[f64], lam: &[f64], n: usize, y: &mut [f64]) {
    y.fill(0.0);
    let mut i = 0;
    while i + 4 <= n {
        let c = [lam[i], lam[i + 1], lam[i + 2], lam[i + 3]];
        let rows = [
            &w[i * n..(i + 1) * n],
            &w[(i + 1) * n..(i + 2) * n],
            &w[(i + 2) * n..(i + 3) * n],
            &w[(i + 3) * n..(i + 4) * n],
        ];
        // ∂(dE_{i+r}/dt)/∂E_j = W_{i+r,j}: columns outside the diagonal block
        for range in [0..i, i + 4..n] {
            for j in range {
                y[j] += (c[0] * rows[0][j] + c[1] * rows[1][j])
                    + (c[2] * rows[2][j] + c[3] * rows[3][j]);
            }
        }
        for r in 0..4 {
            let diag = i + r;
            // inside the block, j ≠ i + r
            for j in i..i + 4 {
                if j != diag {
                    y[j] += c[r] * rows[r][j];
                }
            }
            // ∂(dE_k/dt)/∂E_k gains −r_k
            let rs = sum_lanes(&rows[r][..diag]) + sum_lanes(&rows[r][diag + 1..]);
            y[diag] -= c[r] * rs;
        }
        i += 4;
    }
    for i in i..n {
        let c = lam[i];
        let row = &w[i * n..(i + 1) * n];
        let rs = axpy_and_sum(c, &row[..i], &mut y[..i])
            + axpy_and_sum(c, &row[i + 1..], &mut y[i + 1..]);
        y[i] -= c * rs;
    }
}

/// `Σ w_k` with `LANES` independent partial sums.
#[inline(always)]
fn sum_lanes(w: &[f64]) -> f64 {
    let wc = w.chunks_exact(LANES);
    let wr = wc.remainder();
    let mut sum = [0.0; LANES];
    for wk in wc {
        for l in 0..LANES {
            sum[l] += wk[l];
        }
    }
    let mut s: f64 = sum.iter().sum();
    for wk in wr {
        s += wk;
    }
    s
}

/// `y += c w`; returns `Σ w_k` (with `LANES` partial sums).
#[inline(always)]
fn axpy_and_sum(c: f64, w: &[f64], y: &mut [f64]) -> f64 {
    let mut sum = [0.0; LANES];
    let wc = w.chunks_exact(LANES);
    let wr = wc.remainder();
    let mut yc = y.chunks_exact_mut(LANES);
    for (wk, yk) in wc.zip(&mut yc) {
        for l in 0..LANES {
            yk[l] += c * wk[l];
            sum[l] += wk[l];
        }
    }
    let mut s: f64 = sum.iter().sum();
    for (wk, yk) in wr.iter().zip(yc.into_remainder()) {
        *yk += c * wk;
        s += wk;
    }
    s
}
