//! Coefficients of the variable-step BDF in fixed-leading-coefficient
//! Nordsieck form (docs/stiff.md, "BDF"): the correction vector `l` and the
//! error-test quantities `tq` of one step, and the history adjustments of
//! an order change. Everything is a function of the order q, the step h and
//! the last step sizes `tau` (`tau[1]` the most recent), so a step replayed
//! from its restart state gets the same numbers.

/// Largest order.
pub const MAX_ORDER: usize = 5;
/// Entries of `tau` kept: `tau[1..=MAX_ORDER]` (index 0 unused).
pub const TAU_LEN: usize = MAX_ORDER + 1;

/// Safety factor of the Newton tolerance: the corrector stops when the
/// estimated remaining error is below 0.1 of the error-test bound.
const NEWTON_COEF: f64 = 0.1;

/// The coefficients of one step of order q.
///
/// * `l[0..=q]`: the step updates the history by `z_j += l_j Δ` (Δ the
///   corrector's change of y), with `l_0 = 1`; `γ = h / l_1`.
/// * `tq[1]`, `tq[2]`, `tq[3]`: the local error at orders q − 1, q, q + 1 is
///   `tq[·]` times a norm (of `z_q`, of Δ, of a difference of Δs);
///   `tq[4]` is the corrector's tolerance, `tq[5]` relates consecutive Δs for
///   the order q + 1 estimate. `tq[1]`, `tq[3]` are set only when an order
///   change is being considered (`qwait == 1`), else left as they were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoefficients {
    pub l: [f64; MAX_ORDER + 1],
    pub tq: [f64; 6],
}

impl Default for StepCoefficients {
    fn default() -> Self {
        StepCoefficients {
            l: [0.0; MAX_ORDER + 1],
            tq: [0.0; 6],
        }
    }
}

impl StepCoefficients {
    /// Sets the coefficients for order `q`, step `h` and history `tau`.
    pub fn set(&mut self, q: usize, h: f64, tau: &[f64; TAU_LEN + 1], qwait: usize) {
        debug_assert!((1..=MAX_ORDER).contains(&q));
        let l = &mut self.l;
        l.fill(0.0);
        l[0] = 1.0;
        l[1] = 1.0;
        let mut xi_inv = 1.0;
        let mut xistar_inv = 1.0;
        let mut alpha0 = -1.0;
        let mut alpha0_hat = -1.0;
        let mut hsum = h;
        if q > 1 {
            // l holds the coefficients of Π_{i<j} (1 + x/ξ_i), ξ_i = (t_n − t_{n−i})/h.
            for j in 2..q {
                hsum += tau[j - 1];
                xi_inv = h / hsum;
                alpha0 -= 1.0 / j as f64;
                for i in (1..=j).rev() {
                    l[i] += l[i - 1] * xi_inv;
                }
            }
            alpha0 -= 1.0 / q as f64;
            xistar_inv = -l[1] - alpha0;
            hsum += tau[q - 1];
            xi_inv = h / hsum;
            alpha0_hat = -l[1] - xi_inv;
            for i in (1..=q).rev() {
                l[i] += l[i - 1] * xistar_inv;
            }
        }
        let tq = &mut self.tq;
        let qf = q as f64;
        let a1 = 1.0 - alpha0_hat + alpha0;
        let a2 = 1.0 + qf * a1;
        tq[2] = (a1 / (alpha0 * a2)).abs();
        tq[5] = (a2 * xistar_inv / (l[q] * xi_inv)).abs();
        if qwait == 1 {
            tq[1] = if q > 1 {
                let c = xistar_inv / l[q];
                let a3 = alpha0 + 1.0 / qf;
                let a4 = alpha0_hat + xi_inv;
                let cp_inv = (1.0 - a4 + a3) / a3;
                (c * cp_inv).abs()
            } else {
                1.0
            };
            hsum += tau[q];
            let xi_inv = h / hsum;
            let a5 = alpha0 - 1.0 / (qf + 1.0);
            let a6 = alpha0_hat - xi_inv;
            let cpp_inv = (1.0 - a6 + a5) / a2;
            tq[3] = (cpp_inv / (xi_inv * (qf + 2.0) * a5)).abs();
        }
        tq[4] = NEWTON_COEF / tq[2];
    }
}

/// Multipliers `c_j` (j = 2..=q) of the history adjustment when the order
/// rises from q to q + 1: `z_{q+1} = a · (saved Δ)` and then
/// `z_j += c_j z_{q+1}`. Returns `a`; `c` gets the multipliers.
/// `hscale` is the step the history is scaled to.
pub fn raise_order(q: usize, hscale: f64, tau: &[f64; TAU_LEN + 1], c: &mut [f64; 7]) -> f64 {
    c.fill(0.0);
    c[2] = 1.0;
    let (mut alpha0, mut alpha1, mut prod, mut xiold) = (-1.0, 1.0, 1.0, 1.0);
    let mut hsum = hscale;
    for j in 1..q {
        hsum += tau[j + 1];
        let xi = hsum / hscale;
        prod *= xi;
        alpha0 -= 1.0 / (j + 1) as f64;
        alpha1 += 1.0 / xi;
        for i in (2..=j + 2).rev() {
            c[i] = c[i] * xiold + c[i - 1];
        }
        xiold = xi;
    }
    (-alpha0 - alpha1) / prod
}

/// Multipliers `c_j` (j = 2..q) of the history adjustment when the order
/// falls from q to q − 1: `z_j −= c_j z_q`. Nothing to do for q ≤ 2.
pub fn lower_order(q: usize, hscale: f64, tau: &[f64; TAU_LEN + 1], c: &mut [f64; 7]) {
    c.fill(0.0);
    c[2] = 1.0;
    let mut hsum = 0.0;
    for j in 1..=q.saturating_sub(2) {
        hsum += tau[j];
        let xi = hsum / hscale;
        for i in (2..=j + 2).rev() {
            c[i] = c[i] * xi + c[i - 1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With constant steps the coefficients are the classical BDF ones:
    /// `l` holds the coefficients of Π_{j=1}^{q} (1 + x/j), so γ = h/l_1 =
    /// β_q h (2h/3 at q = 2, 6h/11 at q = 3, …), and the error constant is
    /// tq[2] = β_q/(q + 1) (h²y''/2 per Δ = h²y'' at q = 1).
    #[test]
    fn constant_step_coefficients_are_the_classical_ones() {
        let h = 0.1;
        let tau = [h; TAU_LEN + 1];
        let mut c = StepCoefficients::default();
        let beta = [1.0, 2.0 / 3.0, 6.0 / 11.0, 12.0 / 25.0, 60.0 / 137.0];
        for q in 1..=MAX_ORDER {
            c.set(q, h, &tau, 1);
            let mut poly = vec![1.0];
            for j in 1..=q {
                let mut next = vec![0.0; poly.len() + 1];
                for (i, &a) in poly.iter().enumerate() {
                    next[i] += a;
                    next[i + 1] += a / j as f64;
                }
                poly = next;
            }
            for i in 0..=q {
                assert!((c.l[i] - poly[i]).abs() < 1e-13, "q {q} l{i}");
            }
            let b = beta[q - 1];
            assert!((1.0 / c.l[1] - b).abs() < 1e-14, "q {q}: γ/h");
            assert!((c.tq[2] - b / (q as f64 + 1.0)).abs() < 1e-14, "q {q}: tq2");
            assert!((c.tq[4] - 0.1 / c.tq[2]).abs() < 1e-15);
        }
    }

    #[test]
    fn backward_steps_give_the_same_coefficients() {
        let tau = [0.0, 0.1, 0.2, 0.15, 0.3, 0.1, 0.1];
        let neg = tau.map(|x| -x);
        let (mut a, mut b) = (StepCoefficients::default(), StepCoefficients::default());
        for q in 1..=MAX_ORDER {
            a.set(q, 0.12, &tau, 1);
            b.set(q, -0.12, &neg, 1);
            assert_eq!(a, b, "q {q}");
        }
    }
}
