//! A Jacobian checker: compares a model's hand-written [`Model::vjp`]
//! against central finite differences of its [`Model::rhs`].
//!
//! Each sample point `(t, u, p)` gives the full Jacobians `∂f/∂u` and
//! `∂f/∂p` twice: row by row from `vjp` with unit adjoints `λ = e_i`
//! (followed by [`Model::flush_vjp`], so deferred accumulation is checked
//! too), and column by column from a fourth-order central difference of `rhs`
//! (step: see `fd_step`).
//! The entry error is `|vjp − fd| / max(|fd|, 1e-3 · row scale)`, where the
//! row scale is the largest finite-difference entry of that row; so tiny
//! entries next to large ones are judged on the row's scale.
//!
//! A model with its own Jacobian ([`Model::jacobian_pattern`]) has its
//! Jacobian entries checked against the same differences, and every entry
//! outside its pattern must difference to 0 (labels start `jacobian`).
//!
//! Memory: two or three dense `S × (S + P)` matrices.
//!
//! `out_u` is pre-filled with NaN (a `vjp` that adds instead of
//! overwriting fails) and `alpha = 0.5` (a `vjp` that ignores `alpha` fails).

use crate::Model;

/// How to check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckOptions {
    /// Sample points: the defaults, then `samples − 1` random perturbations.
    pub samples: usize,
    pub seed: u64,
    /// Largest accepted entry error.
    pub tolerance: f64,
    /// How many of the worst entries to report.
    pub worst: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            samples: 4,
            seed: 1,
            tolerance: 1e-6,
            worst: 5,
        }
    }
}

/// What an entry is differentiated with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrt {
    State(usize),
    Param(usize),
}

/// One Jacobian entry `∂f_output/∂wrt` at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryError {
    pub sample: usize,
    pub output: usize,
    pub wrt: Wrt,
    /// `d(output)/d(wrt)` spelled with the model's names.
    pub label: String,
    pub analytic: f64,
    pub finite_difference: f64,
    /// Scaled error (see the module docs); `∞` for a non-finite `vjp` value.
    pub error: f64,
}

/// The outcome of [`check_model`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub model: String,
    pub samples: usize,
    /// All entries compared (the VJP's and, if any, the Jacobian's).
    pub entries_checked: usize,
    pub tolerance: f64,
    pub max_error: f64,
    /// The worst entries, worst first.
    pub worst: Vec<EntryError>,
    pub passed: bool,
    /// The model's own Jacobian, when it has one.
    pub jacobian: Option<JacobianCheck>,
}

/// The part of a [`CheckReport`] about the model's own Jacobian
/// ([`Model::jacobian`]): every state entry of every sample compared, those
/// outside the pattern against a zero.
#[derive(Debug, Clone, PartialEq)]
pub struct JacobianCheck {
    /// Entries of the sparsity pattern (of n × n).
    pub nnz: usize,
    pub n: usize,
    /// Entries compared: n² per sample.
    pub entries_checked: usize,
    pub max_error: f64,
}

/// A sample point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub t: f64,
    pub u: Vec<f64>,
    pub p: Vec<f64>,
}

/// Checks at the defaults and at `samples − 1` random points around them
/// (each coordinate scaled by `1 ± 0.25` and shifted by `± 0.01`).
pub fn check_model<M: Model>(model: &M, options: &CheckOptions) -> CheckReport {
    let mut rng = SplitMix(options.seed);
    let (u0, p0) = (model.default_u0(), model.default_params());
    let mut perturb = |x: &[f64]| -> Vec<f64> {
        x.iter()
            .map(|&v| v * (1.0 + 0.25 * rng.symmetric()) + 0.01 * rng.symmetric())
            .collect()
    };
    let mut points = vec![Point {
        t: 0.0,
        u: u0.clone(),
        p: p0.clone(),
    }];
    for k in 1..options.samples.max(1) {
        points.push(Point {
            t: k as f64 * 0.37,
            u: perturb(&u0),
            p: perturb(&p0),
        });
    }
    check_model_at(model, &points, options)
}

/// Checks at the given points.
pub fn check_model_at<M: Model>(
    model: &M,
    points: &[Point],
    options: &CheckOptions,
) -> CheckReport {
    let dims = model.dims();
    let (ns, np) = (dims.n_states, dims.n_params);
    let mut work = model.new_work();
    let alpha = 0.5;
    let mut worst: Vec<EntryError> = Vec::new();
    let mut max_error = 0.0f64;
    let mut checked = 0;
    let (mut jac_checked, mut jac_max_error) = (0, 0.0f64);
    let names_u = model.state_names();
    let names_p = model.param_names();

    // jac[i * (ns + np) + c]: row i (output), column c (state, then param).
    let width = ns + np;
    let mut fd = vec![0.0; ns * width];
    let pattern = model.jacobian_pattern();
    // Rows 0..ns from the VJPs; rows ns..2ns (state columns) from the
    // model's Jacobian, when it has one.
    let mut an = vec![0.0; if pattern.is_some() { 2 } else { 1 } * ns * width];
    let mut jac = vec![0.0; pattern.as_ref().map_or(0, |p| p.nnz())];
    let (mut f_plus, mut f_minus) = (vec![0.0; ns], vec![0.0; ns]);
    let (mut lambda, mut out_u, mut acc_p) = (vec![0.0; ns], vec![0.0; ns], vec![0.0; np]);

    for (s, point) in points.iter().enumerate() {
        let (mut u, mut p) = (point.u.clone(), point.p.clone());
        // Finite differences, one column at a time.
        for c in 0..width {
            let x = if c < ns { u[c] } else { p[c - ns] };
            let h = fd_step(x);
            let mut eval = |value: f64, out: &mut [f64]| {
                if c < ns {
                    u[c] = value;
                } else {
                    p[c - ns] = value;
                }
                model.rhs(point.t, &u, &p, out, &mut work);
            };
            // Fourth-order central stencil:
            // (8 (f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h.
            eval(x + h, &mut f_plus);
            eval(x - h, &mut f_minus);
            for i in 0..ns {
                fd[i * width + c] = 8.0 * (f_plus[i] - f_minus[i]);
            }
            eval(x + 2.0 * h, &mut f_plus);
            eval(x - 2.0 * h, &mut f_minus);
            for i in 0..ns {
                fd[i * width + c] = (fd[i * width + c] - (f_plus[i] - f_minus[i])) / (12.0 * h);
            }
            if c < ns {
                u[c] = x;
            } else {
                p[c - ns] = x;
            }
        }
        // The hand-written VJPs, one row at a time.
        for i in 0..ns {
            lambda.fill(0.0);
            lambda[i] = 1.0;
            out_u.fill(f64::NAN);
            acc_p.fill(0.0);
            model.vjp(
                point.t, &u, &p, &lambda, &mut out_u, alpha, &mut acc_p, &mut work,
            );
            model.flush_vjp(&mut acc_p, &mut work);
            let row = &mut an[i * width..(i + 1) * width];
            row[..ns].copy_from_slice(&out_u);
            for (a, g) in row[ns..].iter_mut().zip(&acc_p) {
                *a = g / alpha;
            }
        }
        // The model's own Jacobian, if it has one: its entries (and zeros
        // outside its pattern) against the same differences.
        if let Some(pattern) = &pattern {
            jac.fill(f64::NAN);
            model.jacobian(point.t, &u, &p, &mut jac, &mut work);
            let an_j = &mut an[ns * width..];
            an_j.fill(0.0);
            for (k, (r, c)) in pattern.entries().enumerate() {
                an_j[r * width + c] = jac[k];
            }
        }
        let rows = if pattern.is_some() { 2 * ns } else { ns };
        for row in 0..rows {
            let i = row % ns;
            let from_jacobian = row >= ns;
            let fd_row = &fd[i * width..(i + 1) * width];
            let an_row = &an[row * width..(row + 1) * width];
            let scale = fd_row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let columns = if from_jacobian { ns } else { width };
            for c in 0..columns {
                let (a, d) = (an_row[c], fd_row[c]);
                let error = if a.is_finite() && d.is_finite() {
                    (a - d).abs() / d.abs().max(1e-3 * scale).max(f64::MIN_POSITIVE)
                } else {
                    f64::INFINITY
                };
                checked += 1;
                max_error = max_error.max(error);
                if from_jacobian {
                    jac_checked += 1;
                    jac_max_error = jac_max_error.max(error);
                }
                if options.worst > 0
                    && (worst.len() < options.worst || error > worst[worst.len() - 1].error)
                {
                    let wrt = if c < ns {
                        Wrt::State(c)
                    } else {
                        Wrt::Param(c - ns)
                    };
                    let wrt_name = match wrt {
                        Wrt::State(j) => &names_u[j],
                        Wrt::Param(j) => &names_p[j],
                    };
                    let source = if from_jacobian { "jacobian " } else { "" };
                    let entry = EntryError {
                        sample: s,
                        output: i,
                        wrt,
                        label: format!("{source}d(d{}/dt)/d{}", names_u[i], wrt_name),
                        analytic: a,
                        finite_difference: d,
                        error,
                    };
                    let at = worst.partition_point(|w| w.error >= error);
                    worst.insert(at, entry);
                    worst.truncate(options.worst);
                }
            }
        }
    }
    CheckReport {
        model: model.name().to_string(),
        samples: points.len(),
        entries_checked: checked,
        tolerance: options.tolerance,
        max_error,
        worst,
        passed: max_error <= options.tolerance,
        jacobian: pattern.map(|p| JacobianCheck {
            nnz: p.nnz(),
            n: ns,
            entries_checked: jac_checked,
            max_error: jac_max_error,
        }),
    }
}

/// The finite-difference step for a coordinate of value `x`: `ε^{1/5}`
/// (balancing the fourth-order stencil's truncation against rounding) times
/// `max(|x|, 1)`, but not more than `|x|/4` unless that is below 1e-6: then
/// `x ± 2h` keeps the sign of `x`, so small gates (m ≈ 2e-5 at rest in the
/// cortical model) are differenced on their own scale and a concentration
/// under a `log` is not pushed across 0, while values within 1e-6 of 0 (where
/// a step of `|x|/4` would drown in rounding) keep a step of at least 1e-6.
fn fd_step(x: f64) -> f64 {
    let h = f64::EPSILON.powf(0.2) * x.abs().max(1.0);
    h.min((0.25 * x.abs()).max(1e-6))
}

/// SplitMix64: a small, seedable generator (no dependency needed).
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [−1, 1).
    fn symmetric(&mut self) -> f64 {
        2.0 * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) - 1.0
    }
}
