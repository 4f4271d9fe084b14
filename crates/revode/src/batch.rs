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
//! Memory: every member checks its own allocations against the memory
//! available, but members run side by side, so a batch runs on no more
//! threads than its largest members need together
//! ([`fitting_concurrency`]): if the `t` largest members
//! ([`crate::memory::gradient_bytes`]) do not fit at once, fewer threads are
//! used. Results do not depend on the thread count.
//!
//! The batch file is either a JSON array of problem objects or
//! `{"base": {problem}, "overrides": [{...}, ...]}`: member `k` is `base`
//! with the top-level keys of `overrides[k]` replaced (a shallow merge: an
//! override of `"model"`, `"solver"` or `"loss"` replaces the whole object).

use std::path::Path;

use ndarray::{Array2, ArrayView1};
use rayon::prelude::*;
use serde_json::Value;

use revode_checkpoint::memory::{Available, MemoryLimit};

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

/// How many batch members run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Threads asked for (1 for [`Parallelism::Sequential`]; one per core
    /// resolved to the count), at most one per member.
    pub requested: usize,
    /// Threads to use: at most `requested`, and only as many as the largest
    /// members can run side by side within the memory available.
    pub threads: usize,
    /// What the `requested` largest members hold together (at most), bytes.
    pub requested_bytes: usize,
    /// The memory available (`None`: no limit).
    pub available: Option<Available>,
}

impl Concurrency {
    /// The parallelism to run with.
    pub fn parallelism(&self) -> Parallelism {
        if self.threads <= 1 {
            Parallelism::Sequential
        } else {
            Parallelism::Threads(self.threads)
        }
    }
}

/// The threads a batch may use: `parallelism`'s, reduced until the members
/// that could run together fit in the memory available. The worst case is
/// the largest members running at once, so `t` threads are allowed when the
/// `t` largest members' [`crate::memory::gradient_bytes`] add up to no more
/// than what is available. A member too large on its own does not count: it
/// fails its own memory check before allocating. A member that did not parse,
/// or whose size cannot be told, counts as 0 (it fails on its own too).
pub fn fitting_concurrency(
    members: &[Result<Problem, Error>],
    parallelism: Parallelism,
) -> Result<Concurrency, Error> {
    let requested = match parallelism {
        Parallelism::Sequential => 1,
        Parallelism::Threads(t) if t > 0 => t,
        _ => rayon::current_num_threads(),
    }
    .clamp(1, members.len().max(1));
    let available = MemoryLimit::FromSystem.available()?;
    let needs: Vec<usize> = members
        .iter()
        .map(|m| match m {
            Ok(p) => crate::memory::gradient_bytes(p).unwrap_or(0),
            Err(_) => 0,
        })
        .collect();
    let (threads, requested_bytes) = threads_within(needs, requested, available.map(|a| a.bytes));
    Ok(Concurrency {
        requested,
        threads,
        requested_bytes,
        available,
    })
}

/// The most threads (1 at least, `requested` at most) whose largest
/// members fit together in `available` bytes, and what the `requested`
/// largest hold together. Members larger than `available` alone do not
/// count (they fail on their own).
fn threads_within(
    mut needs: Vec<usize>,
    requested: usize,
    available: Option<usize>,
) -> (usize, usize) {
    if let Some(a) = available {
        needs.retain(|&b| b <= a);
    }
    needs.sort_unstable_by(|a, b| b.cmp(a));
    let together = |t: usize| {
        needs
            .iter()
            .take(t)
            .fold(0usize, |s, &b| s.saturating_add(b))
    };
    let mut threads = requested.max(1);
    if let Some(a) = available {
        while threads > 1 && together(threads) > a {
            threads -= 1;
        }
    }
    (threads, together(requested))
}

/// The gradient of every problem, in input order.
pub fn gradients(
    problems: &[Problem],
    parallelism: Parallelism,
) -> Result<Vec<Result<GradientReport, Error>>, Error> {
    if on_caller(parallelism) {
        return Ok(problems.iter().map(gradient).collect());
    }
    let members: Vec<Result<Problem, Error>> = problems.iter().cloned().map(Ok).collect();
    gradients_of_members(members, parallelism)
}

/// Like [`gradients`] for members that may already have failed to parse
/// (as returned by [`parse_batch`]); those keep their error. Runs on the
/// threads [`fitting_concurrency`] allows.
pub fn gradients_of_members(
    members: Vec<Result<Problem, Error>>,
    parallelism: Parallelism,
) -> Result<Vec<Result<GradientReport, Error>>, Error> {
    let one = |m: Result<Problem, Error>| m.and_then(|p| gradient(&p));
    if on_caller(parallelism) {
        return Ok(members.into_iter().map(one).collect());
    }
    let c = fitting_concurrency(&members, parallelism)?;
    if c.threads < c.requested {
        log::warn!(
            "batch: {} members at a time instead of {}: the {} largest need up to {} bytes \
             together",
            c.threads,
            c.requested,
            c.requested,
            c.requested_bytes
        );
    }
    let parallelism = c.parallelism();
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
            let member = format!("{origin}[{k}]");
            let input: crate::problem::ProblemInput =
                serde_json::from_value(v).map_err(|source| Error::Json {
                    origin: member.clone(),
                    source,
                })?;
            input.complete(&member, base)
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

#[cfg(test)]
mod tests {
    use super::threads_within;

    #[test]
    fn threads_are_limited_by_the_largest_members_together() {
        let needs = vec![30, 50, 10, 40, 20];
        // the 4 largest: 50 + 40 + 30 + 20 = 140
        assert_eq!(threads_within(needs.clone(), 4, None), (4, 140));
        assert_eq!(threads_within(needs.clone(), 4, Some(140)), (4, 140));
        // 50 + 40 + 30 = 120 > 100: two at once (50 + 40)
        assert_eq!(threads_within(needs.clone(), 4, Some(100)), (2, 140));
        assert_eq!(threads_within(needs.clone(), 4, Some(89)), (1, 140));
        // a member too large alone does not hold the others back
        assert_eq!(threads_within(vec![500, 10, 10], 2, Some(100)), (2, 20));
        assert_eq!(threads_within(vec![], 3, Some(1)), (3, 0));
    }
}
