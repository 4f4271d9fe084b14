//! Checking an adjoint gradient against finite differences of the loss.
//!
//! Each checked input x_i (a parameter, or with `include_u0` an initial
//! state) gets central differences of the forward loss ([`crate::loss`]) at
//! a ladder of halving steps, combined by Richardson extrapolation; the
//! level where neighbouring estimates agree best gives the FD value and an
//! error estimate ([`central_richardson`]). A disagreement with the adjoint
//! far above that estimate is the adjoint's fault, not the FD's.

use rayon::prelude::*;
use revode_model::num::Num;
use revode_model::Model;
use serde::Serialize;

use crate::problem::AdjointMethod;
use crate::{gradient, Error, GradientReport, ModelVisitor, Problem};

/// Largest relative FD step; [`central_richardson`] halves it
/// [`FD_LEVELS`] times and keeps the best-converged level. The seed
/// problems converge best between 1e-3 and 1e-5 (docs/check-and-tune.md).
pub const DEFAULT_REL_STEP: f64 = 1e-2;

/// Default relative tolerance for an adjoint method: the discrete adjoint is
/// exact to rounding, so only FD error and rounding remain.
pub fn default_rtol(method: AdjointMethod) -> f64 {
    match method {
        AdjointMethod::Discrete => 1e-6,
        // The ODE gradient, not the discrete solution's: FD of the loss
        // differs by the solver's discretisation error (docs/adjoint.md).
        AdjointMethod::Continuous => 1e-3,
    }
}

/// Which parameters to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSelection {
    All,
    /// These indices (any order, duplicates ignored).
    Indices(Vec<usize>),
    /// `count` distinct indices drawn with a seeded generator.
    Sample {
        count: usize,
        seed: u64,
    },
}

/// What to check and how strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    pub params: ParamSelection,
    /// Also check dL/du0 (every state).
    pub include_u0: bool,
    /// `None`: [`default_rtol`] of the problem's adjoint method.
    pub rtol: Option<f64>,
    pub atol: f64,
    pub rel_step: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            params: ParamSelection::All,
            include_u0: false,
            rtol: None,
            atol: 0.0,
            rel_step: DEFAULT_REL_STEP,
        }
    }
}

/// Whether an entry is a parameter or an initial state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Param,
    U0,
}

/// One checked derivative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckEntry {
    pub kind: InputKind,
    pub index: usize,
    pub name: String,
    /// x_i.
    pub value: f64,
    /// The FD step the value was taken at.
    pub step: f64,
    pub adjoint: f64,
    pub fd: f64,
    /// Estimated error of `fd`.
    pub fd_error: f64,
    pub abs_error: f64,
    /// `abs_error / max(|adjoint|, |fd|)` (0 when both are 0).
    pub rel_error: f64,
    /// `abs_error ≤ atol + rtol · max(|adjoint|, |fd|)`.
    pub pass: bool,
    /// `fd_error` is within the same tolerance, so the FD can judge.
    pub fd_converged: bool,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub model: String,
    pub solver: String,
    pub adjoint_method: AdjointMethod,
    pub loss_kind: String,
    pub loss: f64,
    pub steps: usize,
    pub rtol: f64,
    pub atol: f64,
    pub rel_step: f64,
    pub entries: Vec<CheckEntry>,
    pub n_failed: usize,
    pub passed: bool,
    /// The full adjoint gradient the entries were taken from.
    #[serde(skip)]
    pub gradient: GradientReport,
}

impl CheckReport {
    pub fn failed(&self) -> impl Iterator<Item = &CheckEntry> {
        self.entries.iter().filter(|e| !e.pass)
    }
}

/// A converged central-difference derivative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdEstimate {
    pub value: f64,
    pub error: f64,
    /// The step the value was taken at.
    pub step: f64,
}

/// Steps tried per derivative: h0, h0/2, …, h0/2^FD_LEVELS.
pub const FD_LEVELS: usize = 12;

/// `f'(x)` from central differences d_j at steps h_j = h0/2^j, j = 0..=levels
/// (each pair of points evaluated once, in parallel).
///
/// Richardson's `r_j = d_{j+1} + (d_{j+1} − d_j)/3` cancels the h² term.
/// Too large a step leaves h⁴ truncation, too small a step amplifies the
/// loss's rounding noise by 1/h; neighbouring r_j disagree in both cases,
/// so the pair (r_j, r_{j+1}) that agrees best is taken: the value is their
/// mean, the error estimate the largest disagreement among that pair and
/// its two neighbouring pairs (a margin against a lucky agreement).
pub fn central_richardson<E: Send>(
    x: f64,
    h0: f64,
    levels: usize,
    f: impl Fn(f64) -> Result<f64, E> + Sync,
) -> Result<FdEstimate, E> {
    assert!(levels >= 2, "three differences make the smallest estimate");
    let step = |j: usize| h0 / (1u64 << j) as f64;
    let d: Vec<f64> = (0..=levels)
        .into_par_iter()
        .map(|j| {
            // Divide by the distance of the points actually evaluated.
            let (hi, lo) = (x + step(j), x - step(j));
            Ok((f(hi)? - f(lo)?) / (hi - lo))
        })
        .collect::<Result<_, E>>()?;
    let r: Vec<f64> = d.windows(2).map(|w| w[1] + (w[1] - w[0]) / 3.0).collect();
    let e: Vec<f64> = r.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let best = (0..e.len())
        .min_by(|&a, &b| e[a].total_cmp(&e[b]))
        .expect("levels ≥ 2");
    let around = best.saturating_sub(1)..=(best + 1).min(e.len() - 1);
    Ok(FdEstimate {
        value: 0.5 * (r[best] + r[best + 1]),
        error: e[around].iter().fold(0.0, |m, &x| m.max(x)),
        step: step(best + 1),
    })
}

/// FD step for entry `i` of `xs`: `rel_step · |x_i|`, relative to each
/// entry's own scale (parameters of one model can differ by 10⁸, like an
/// area of 3·10⁴ µm² and a rate of 5·10⁻⁴/ms). For `x_i = 0` the scale is
/// 1e-3 of the vector's largest magnitude, or 1 when it is all zeros.
pub fn fd_step(xs: &[f64], i: usize, rel_step: f64) -> f64 {
    if xs[i] != 0.0 {
        return rel_step * xs[i].abs();
    }
    let largest = xs.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    rel_step * if largest > 0.0 { 1e-3 * largest } else { 1.0 }
}

/// Indices `count` of `0..n`, distinct, drawn by a seeded partial
/// Fisher–Yates shuffle with SplitMix64 (stable across platforms), sorted.
pub fn sample_indices(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut all: Vec<usize> = (0..n).collect();
    let count = count.min(n);
    for i in 0..count {
        let j = i + (next() % (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count);
    all.sort_unstable();
    all
}

fn invalid(name: &'static str, message: String) -> Error {
    Error::Argument { name, message }
}

/// Resolves a selection to sorted, distinct parameter indices.
pub fn resolve_selection(
    selection: &ParamSelection,
    n_params: usize,
    model: &str,
) -> Result<Vec<usize>, Error> {
    match selection {
        ParamSelection::All => Ok((0..n_params).collect()),
        ParamSelection::Indices(list) => {
            if let Some(&bad) = list.iter().find(|&&i| i >= n_params) {
                return Err(invalid(
                    "params",
                    format!("index {bad} out of range: model {model} has {n_params} parameters (0..{n_params})"),
                ));
            }
            let mut v = list.clone();
            v.sort_unstable();
            v.dedup();
            Ok(v)
        }
        &ParamSelection::Sample { count, seed } => {
            if count == 0 || count > n_params {
                return Err(invalid(
                    "sample",
                    format!("{count} is not between 1 and the number of parameters of model {model} ({n_params})"),
                ));
            }
            Ok(sample_indices(n_params, count, seed))
        }
    }
}

/// The problem's parameters and initial state, defaults filled in.
struct Inputs<'a>(&'a Problem);

impl ModelVisitor for Inputs<'_> {
    type Output = (Vec<f64>, Vec<f64>);
    fn visit<M: Model>(self, model: &M) -> Self::Output {
        (self.0.params_or_default(model), self.0.u0_or_default(model))
    }
}

/// Compares the adjoint gradient of `problem` with finite differences.
pub fn check(problem: &Problem, options: &CheckOptions) -> Result<CheckReport, Error> {
    let rtol = options.rtol.unwrap_or(default_rtol(problem.adjoint.method));
    for (flag, v) in [
        ("rtol", rtol),
        ("atol", options.atol),
        ("rel_step", options.rel_step),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(
                flag,
                format!("{} is not a finite number ≥ 0", Num(v)),
            ));
        }
    }
    if options.rel_step == 0.0 {
        return Err(invalid("rel_step", "must be positive".to_string()));
    }
    let report = gradient(problem)?;
    let (params, u0) = problem.model.visit(Inputs(problem))?;
    let indices = resolve_selection(&options.params, params.len(), &report.model)?;

    let mut todo: Vec<(InputKind, usize)> =
        indices.into_iter().map(|i| (InputKind::Param, i)).collect();
    if options.include_u0 {
        todo.extend((0..u0.len()).map(|i| (InputKind::U0, i)));
    }

    let estimates: Vec<FdEstimate> = todo
        .par_iter()
        .map(|&(kind, i)| {
            let xs = match kind {
                InputKind::Param => &params,
                InputKind::U0 => &u0,
            };
            let h = fd_step(xs, i, options.rel_step);
            let fd = central_richardson(xs[i], h, FD_LEVELS, |xi| {
                let mut moved = problem.clone();
                let mut v = xs.clone();
                v[i] = xi;
                match kind {
                    InputKind::Param => moved.params = Some(v),
                    InputKind::U0 => moved.u0 = Some(v),
                }
                crate::loss(&moved)
            })?;
            Ok(fd)
        })
        .collect::<Result<_, Error>>()?;

    let entries: Vec<CheckEntry> = todo
        .iter()
        .zip(estimates)
        .map(|(&(kind, index), fd)| {
            let (value, adjoint, name) = match kind {
                InputKind::Param => (
                    params[index],
                    report.gradient[index],
                    &report.param_names[index],
                ),
                InputKind::U0 => (
                    u0[index],
                    report.gradient_u0[index],
                    &report.state_names[index],
                ),
            };
            let scale = adjoint.abs().max(fd.value.abs());
            let abs_error = (adjoint - fd.value).abs();
            let tolerance = options.atol + rtol * scale;
            CheckEntry {
                kind,
                index,
                name: match kind {
                    InputKind::Param => name.clone(),
                    InputKind::U0 => format!("u0.{name}"),
                },
                value,
                step: fd.step,
                adjoint,
                fd: fd.value,
                fd_error: fd.error,
                abs_error,
                rel_error: if scale > 0.0 { abs_error / scale } else { 0.0 },
                // Written so that a NaN anywhere fails.
                pass: abs_error <= tolerance,
                fd_converged: fd.error <= tolerance,
            }
        })
        .collect();

    let n_failed = entries.iter().filter(|e| !e.pass).count();
    Ok(CheckReport {
        model: report.model.clone(),
        solver: report.solver.clone(),
        adjoint_method: problem.adjoint.method,
        loss_kind: report.loss_kind.clone(),
        loss: report.loss,
        steps: report.stats.steps,
        rtol,
        atol: options.atol,
        rel_step: options.rel_step,
        entries,
        n_failed,
        passed: n_failed == 0,
        gradient: report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn richardson_is_accurate_and_its_error_estimate_bounds_the_truth() {
        for (x, exact, f) in [
            (0.7_f64, 0.7_f64.cos(), f64::sin as fn(f64) -> f64),
            (1.3, 1.3_f64.exp(), f64::exp),
            (2.0, 1.0 / 2.0, f64::ln),
        ] {
            let est = central_richardson(x, 1e-2 * x, 12, |y| Ok::<_, ()>(f(y))).unwrap();
            let err = (est.value - exact).abs();
            assert!(err < 1e-10, "x {x}: fd {} vs {exact}", est.value);
            assert!(
                err <= est.error.max(1e-13),
                "x {x}: true error {err:e} above estimate {:e}",
                est.error
            );
        }
    }

    /// `sin` plus deterministic noise of relative size 1e-9, like a loss
    /// computed over many rounded steps.
    fn noisy_sin(y: f64) -> f64 {
        let mut z = y.to_bits().wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z ^= z >> 29;
        let unit = (z % 2001) as f64 / 1000.0 - 1.0;
        y.sin() * (1.0 + 1e-9 * unit)
    }

    #[test]
    fn noise_stops_the_ladder_and_shows_in_the_error_estimate() {
        let est = central_richardson(0.7, 0.1, 16, |y| Ok::<_, ()>(noisy_sin(y))).unwrap();
        let err = (est.value - 0.7_f64.cos()).abs();
        // Neither the largest nor the smallest step; error well below the
        // smallest step's noise (1e-9/1.5e-6 ≈ 7e-4) and bounded by the estimate.
        assert!(est.step < 0.05 && est.step > 1e-5, "{est:?}");
        assert!(err < 1e-5 && err <= est.error, "true {err:e}, {est:?}");
    }

    #[test]
    fn errors_of_the_function_propagate() {
        let r = central_richardson(
            1.0,
            0.1,
            4,
            |y| if y > 1.05 { Err("blew up") } else { Ok(y) },
        );
        assert_eq!(r, Err("blew up"));
    }

    #[test]
    fn fd_step_is_relative_with_a_floor_for_zero() {
        let xs = [70.0, 0.0, 0.05, 4.57e-4];
        assert_eq!(fd_step(&xs, 0, 1e-3), 70.0 * 1e-3);
        assert_eq!(fd_step(&xs, 1, 1e-3), 70.0 * 1e-3 * 1e-3);
        assert_eq!(fd_step(&xs, 2, 1e-3), 0.05 * 1e-3);
        assert_eq!(fd_step(&xs, 3, 1e-3), 4.57e-4 * 1e-3);
        assert_eq!(fd_step(&[0.0, 0.0], 0, 1e-3), 1e-3);
    }

    #[test]
    fn samples_are_distinct_sorted_in_range_and_seeded() {
        let a = sample_indices(1000, 17, 42);
        assert_eq!(a.len(), 17);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[16] < 1000);
        assert_eq!(a, sample_indices(1000, 17, 42));
        assert_ne!(a, sample_indices(1000, 17, 43));
        assert_eq!(sample_indices(5, 5, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn selections_out_of_range_are_errors() {
        let e = resolve_selection(&ParamSelection::Indices(vec![0, 3]), 3, "hh").unwrap_err();
        assert!(e.to_string().contains("index 3 out of range"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e =
            resolve_selection(&ParamSelection::Sample { count: 4, seed: 0 }, 3, "hh").unwrap_err();
        assert!(e.to_string().starts_with("sample: 4"), "{e}");
        let ok = resolve_selection(&ParamSelection::Indices(vec![2, 0, 2]), 3, "hh").unwrap();
        assert_eq!(ok, vec![0, 2]);
    }
}
