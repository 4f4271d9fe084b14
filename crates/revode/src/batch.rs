//! Many gradient problems in one call, in parallel.
//!
//! Each member is solved exactly as [`crate::gradient`] solves it alone (one
//! thread per member, the same code), so results are bitwise identical to
//! one-by-one runs whatever the thread count; only the timings in `stats`
//! differ. A failing member gets its own error; the others still run.
//! Per-member buffers (stepper, model `Work`) are made by the gradient
//! driver once per solve, i.e. per member on its worker; that is a handful
//! of small allocations per solve of tens of thousands of steps. The large
//! one, the checkpoint store, comes from the worker's spare
//! ([`revode_checkpoint::spare`]): a worker's members after its first find
//! their slots resident. One thread means the calling thread: no pool is
//! started, and its spare may already be warm from earlier calls.
//!
//! The batch file is either a JSON array of problem objects or
//! `{"base": {problem}, "overrides": [{...}, ...]}`: member `k` is `base`
//! with the top-level keys of `overrides[k]` replaced (a shallow merge: an
//! override of `"model"`, `"solver"` or `"loss"` replaces the whole object).

use std::path::Path;

use ndarray::{Array2, ArrayView1};
use rayon::prelude::*;
use serde_json::Value;

use crate::{gradient, Error, GradientReport, Problem};

/// How many threads a batch uses (an argument, never a global setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// On the calling thread, in order.
    Sequential,
    /// A dedicated pool of this many threads; 0 means one per core.
    Threads(usize),
    /// One thread per core.
    #[default]
    AllCores,
}

/// The gradient of every problem, in input order.
pub fn gradients(
    problems: &[Problem],
    parallelism: Parallelism,
) -> Result<Vec<Result<GradientReport, Error>>, Error> {
    if on_caller(parallelism) {
        return Ok(problems.iter().map(gradient).collect());
    }
    run(parallelism, || problems.par_iter().map(gradient).collect())
}

/// Like [`gradients`] for members that may already have failed to parse
/// (as returned by [`parse_batch`]); those keep their error.
pub fn gradients_of_members(
    members: Vec<Result<Problem, Error>>,
    parallelism: Parallelism,
) -> Result<Vec<Result<GradientReport, Error>>, Error> {
    let one = |m: Result<Problem, Error>| m.and_then(|p| gradient(&p));
    if on_caller(parallelism) {
        return Ok(members.into_iter().map(one).collect());
    }
    run(parallelism, || members.into_par_iter().map(one).collect())
}

/// Sequential, or one thread: the members run in order on the calling
/// thread (a pool of one would only add a thread start and a cold heap).
fn on_caller(parallelism: Parallelism) -> bool {
    matches!(
        parallelism,
        Parallelism::Sequential | Parallelism::Threads(1)
    )
}

/// The batch's gradients as one matrix, members × parameters: row k is
/// member k's dL/dp, NaN for a member that failed. `None` when the members
/// that ran have different parameter counts (different models), or none ran.
pub fn gradient_matrix(results: &[Result<GradientReport, Error>]) -> Option<Array2<f64>> {
    let mut counts = results.iter().flatten().map(|r| r.gradient.len());
    let n_params = counts.next()?;
    if counts.any(|c| c != n_params) {
        return None;
    }
    let mut matrix = Array2::from_elem((results.len(), n_params), f64::NAN);
    for (mut row, result) in matrix.rows_mut().into_iter().zip(results) {
        if let Ok(r) = result {
            row.assign(&ArrayView1::from(&r.gradient[..]));
        }
    }
    Some(matrix)
}

fn run<T: Send>(parallelism: Parallelism, work: impl FnOnce() -> T + Send) -> Result<T, Error> {
    let threads = match parallelism {
        Parallelism::Sequential => return Ok(work()),
        Parallelism::Threads(t) => t,
        Parallelism::AllCores => 0,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid {
            origin: "batch".into(),
            message: format!("cannot start {threads} threads: {e}"),
        })?;
    Ok(pool.install(work))
}

/// Splits a batch file into members. The file as a whole must be an array
/// or a `{base, overrides}` object; each member parses (or fails) on its
/// own, named `origin[k]` in its error.
pub fn parse_batch(text: &str, origin: &str) -> Result<Vec<Result<Problem, Error>>, Error> {
    parse_batch_in(text, origin, None)
}

/// [`parse_batch`] with relative model-file paths taken from `base` (None:
/// the working directory); each member's file is loaded as it is parsed.
pub fn parse_batch_in(
    text: &str,
    origin: &str,
    base: Option<&Path>,
) -> Result<Vec<Result<Problem, Error>>, Error> {
    let json_error = |source| Error::Json {
        origin: origin.to_string(),
        source,
    };
    let invalid = |message: &str| Error::Invalid {
        origin: origin.to_string(),
        message: message.to_string(),
    };
    let value: Value = serde_json::from_str(text).map_err(json_error)?;
    let raw: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => {
            let (Some(base), Some(overrides)) = (obj.remove("base"), obj.remove("overrides"))
            else {
                return Err(invalid(
                    "a batch object needs the keys \"base\" and \"overrides\"",
                ));
            };
            if let Some(key) = obj.keys().next() {
                return Err(invalid(&format!("unknown key {key:?} in batch object")));
            }
            let Value::Object(base) = base else {
                return Err(invalid("\"base\" must be a problem object"));
            };
            let Value::Array(overrides) = overrides else {
                return Err(invalid("\"overrides\" must be an array of objects"));
            };
            overrides
                .into_iter()
                .map(|o| match o {
                    Value::Object(o) => {
                        let mut merged = base.clone();
                        merged.extend(o);
                        Value::Object(merged)
                    }
                    other => other, // reported by the member's own parse
                })
                .collect()
        }
        _ => {
            return Err(invalid(
                "a batch must be an array of problems or {\"base\", \"overrides\"}",
            ))
        }
    };
    if raw.is_empty() {
        return Err(invalid("the batch is empty"));
    }
    Ok(raw
        .into_iter()
        .enumerate()
        .map(|(k, v)| {
            let mut problem: Problem = serde_json::from_value(v).map_err(|source| Error::Json {
                origin: format!("{origin}[{k}]"),
                source,
            })?;
            problem.model.load_file(base)?;
            Ok(problem)
        })
        .collect())
}

/// Reads and splits a batch file; see [`parse_batch`].
pub fn read_batch(path: &Path) -> Result<Vec<Result<Problem, Error>>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_batch_in(&text, &path.display().to_string(), path.parent())
}
