//! Sweeping checkpoint schedules: time, memory and recomputation of each,
//! against the forward solve alone, and the fastest one that fits a budget.

use std::time::Instant;

use revode_checkpoint::{Schedule, StateShape};
use serde::Serialize;

use crate::problem::{AdjointMethod, AdjointSpec, SolverSpec};
use crate::{gradient, loss, Error, GradientReport, Problem};

/// How a problem's checkpoint store is sized: slot contents and what a
/// byte budget must cover besides the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSizing {
    /// f64s of one kept state: the model's states for fixed steps, a packed
    /// restart state for dopri5.
    pub state_len: usize,
    /// f64s of a state kept between checkpoints (beuler without events:
    /// its `u`; otherwise `state_len`).
    pub kept_len: usize,
    /// Bytes a budget covers besides the slots (dopri5: the dense output
    /// and a restart state; fixed steps: none).
    pub beside_bytes: usize,
    /// The smallest valid budget.
    pub min_budget: usize,
}

impl StoreSizing {
    /// A fixed-step store of `n_steps` steps of `n_states` f64s each.
    pub fn fixed(n_steps: usize, n_states: usize) -> Self {
        Self::fixed_shaped(n_steps, StateShape::whole(n_states))
    }

    /// A fixed-step store of `n_steps` steps of states shaped `shape` (for
    /// beuler, its chain state: [`SolverSpec::checkpoint_shape`]).
    pub fn fixed_shaped(n_steps: usize, shape: StateShape) -> Self {
        StoreSizing {
            state_len: shape.len,
            kept_len: shape.kept,
            beside_bytes: 0,
            min_budget: Schedule::min_budget_bytes(n_steps, shape.len),
        }
    }

    /// The continuous adjoint of a dopri5 solve of `n_states` states.
    pub fn adaptive(n_states: usize) -> Self {
        let b = revode_adjoint::adaptive_budget(n_states);
        StoreSizing {
            state_len: b.state_len,
            kept_len: b.state_len,
            beside_bytes: b.beside_bytes,
            min_budget: b.min_bytes,
        }
    }

    /// The continuous adjoint of a bdf solve of `n_states` states, orders
    /// up to `max_order`.
    pub fn bdf(n_states: usize, max_order: usize) -> Self {
        let b = revode_adjoint::bdf_budget(n_states, max_order);
        StoreSizing {
            state_len: b.state_len,
            kept_len: b.state_len,
            beside_bytes: b.beside_bytes,
            min_budget: b.min_bytes,
        }
    }

    /// Bytes a schedule holds over `n_steps` steps, as a budget counts them
    /// (for dopri5's growing `all`/`every` stores: what they would hold
    /// without growth slack).
    pub fn bytes(&self, schedule: Schedule, n_steps: usize) -> usize {
        match schedule {
            Schedule::BudgetBytes(b) => b,
            other => {
                let shape = StateShape {
                    len: self.state_len,
                    kept: self.kept_len,
                };
                other.bytes_needed_shaped(n_steps, shape) + self.beside_bytes
            }
        }
    }
}

/// The schedules a sweep tries for `n_steps` steps:
///
/// * `all` (K = 1) and `every K` for K = 2, 4, 8, … below N, ⌈√N⌉ and N,
///   sorted by K;
/// * byte budgets, ascending: one the size of each `every K` store for
///   K ≤ ⌈√N⌉ (the same memory, placed by the binomial rule instead), and
///   the user's memory budget itself if it is valid. The smallest valid
///   budget (3 slots) is left out: its recomputation grows like N²/4.
///
/// Extension point: new schedule kinds are added here.
pub fn candidate_schedules(
    n_steps: usize,
    sizing: StoreSizing,
    memory_budget: Option<usize>,
) -> Vec<Schedule> {
    let n = n_steps.max(1);
    let sqrt_n = (n as f64).sqrt().ceil() as usize;
    let mut ks: Vec<usize> = std::iter::successors(Some(2usize), |k| k.checked_mul(2))
        .take_while(|&k| k < n)
        .collect();
    ks.push(sqrt_n);
    ks.push(n);
    ks.retain(|&k| k >= 2);
    ks.sort_unstable();
    ks.dedup();

    let min_budget = sizing.min_budget;
    let mut budgets: Vec<usize> = std::iter::once(Schedule::All)
        .chain(ks.iter().map(|&k| Schedule::Every(k)))
        .filter(|s| interval_of(*s).is_some_and(|k| k <= sqrt_n))
        .map(|s| sizing.bytes(s, n_steps))
        .chain(memory_budget.filter(|&b| b >= min_budget))
        .collect();
    // An every-K store can be smaller than the smallest valid budget (a
    // budget slot also holds the step number).
    budgets.retain(|&b| b >= min_budget);
    budgets.sort_unstable();
    budgets.dedup();

    std::iter::once(Schedule::All)
        .chain(ks.into_iter().map(Schedule::Every))
        .chain(budgets.into_iter().map(Schedule::BudgetBytes))
        .collect()
}

/// The row label of a schedule.
pub fn label(schedule: Schedule) -> String {
    match schedule {
        Schedule::All => "all".to_string(),
        Schedule::Every(k) => format!("every {k}"),
        Schedule::BudgetBytes(b) => format!("budget {b} B"),
    }
}

/// The checkpoint interval K a schedule stands for on a plot (None: no K).
pub fn interval_of(schedule: Schedule) -> Option<usize> {
    match schedule {
        Schedule::All => Some(1),
        Schedule::Every(k) => Some(k),
        Schedule::BudgetBytes(_) => None,
    }
}

/// Sweep settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneOptions {
    /// Timed runs per setting; the median is reported.
    pub repeat: usize,
    /// Largest store allowed for the recommendation, in bytes.
    pub memory_budget: Option<usize>,
}

/// One measured setting; the baseline row has no schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneRow {
    /// `forward` for the baseline, `all`, `every K`, `budget B B`.
    pub setting: String,
    pub schedule: Option<Schedule>,
    /// K on the plot's axis.
    pub interval: Option<usize>,
    /// Median wall time of `repeat` runs.
    pub median_seconds: f64,
    /// `median_seconds` over the baseline's.
    pub ratio_to_forward: f64,
    pub peak_store_bytes: usize,
    pub checkpoints_kept: usize,
    pub recomputed_steps: usize,
    /// Peak store within the memory budget (true without a budget).
    pub fits_budget: bool,
    /// Loss and gradient bitwise equal to those of the problem's own
    /// schedule: every adjoint replays the forward's states to the last bit,
    /// so any difference is a bug.
    pub same_gradient: bool,
}

/// A sweep's results and recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneReport {
    pub model: String,
    pub solver: String,
    pub adjoint_method: AdjointMethod,
    pub steps: usize,
    pub repeat: usize,
    pub memory_budget: Option<usize>,
    /// Row 0 is the forward-only baseline.
    pub rows: Vec<TuneRow>,
    /// Index into `rows` of the fastest setting that fits the budget.
    pub recommended: usize,
    /// The `"adjoint"` block for the problem file.
    pub recommended_adjoint: AdjointSpec,
    /// `bitwise`, or `differ by up to 1e-… relative`.
    pub gradient_agreement: String,
    /// Every setting gave the same gradient.
    pub gradients_agree: bool,
    /// Largest relative difference to the reference gradient.
    pub max_rel_difference: f64,
}

/// Observer of a sweep's progress: `(timed runs done, runs in all)`.
pub trait TuneProgress {
    fn update(&mut self, done: usize, total: usize);
}

impl<F: FnMut(usize, usize)> TuneProgress for F {
    fn update(&mut self, done: usize, total: usize) {
        self(done, total)
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        0.5 * (xs[m - 1] + xs[m])
    }
}

fn values(r: &GradientReport) -> impl Iterator<Item = f64> + '_ {
    std::iter::once(r.loss)
        .chain(r.gradient.iter().copied())
        .chain(r.gradient_u0.iter().copied())
}

/// Largest relative difference between two reports' loss and gradients,
/// and whether they are bitwise equal.
fn compare(a: &GradientReport, b: &GradientReport) -> (bool, f64) {
    let mut bitwise = true;
    let mut rel = 0.0_f64;
    for (x, y) in values(a).zip(values(b)) {
        bitwise &= x.to_bits() == y.to_bits();
        let scale = x.abs().max(y.abs());
        if scale > 0.0 {
            rel = rel.max((x - y).abs() / scale);
        }
    }
    (bitwise, rel)
}

fn invalid(name: &'static str, message: String) -> Error {
    Error::Argument { name, message }
}

/// Sweeps [`candidate_schedules`] on `problem` (one run at a time, so timings
/// do not compete for cores with each other).
pub fn tune(
    problem: &Problem,
    options: &TuneOptions,
    progress: &mut dyn TuneProgress,
) -> Result<TuneReport, Error> {
    if options.repeat == 0 {
        return Err(invalid("repeat", "must be at least 1".to_string()));
    }
    let reference = gradient(problem)?;
    let steps = reference.stats.steps;
    let n_states = reference.gradient_u0.len();
    let sizing = match problem.solver {
        SolverSpec::Dopri5 { .. } => StoreSizing::adaptive(n_states),
        SolverSpec::Bdf { max_order, .. } => StoreSizing::bdf(
            n_states,
            max_order.unwrap_or(revode_forward::bdf::MAX_ORDER),
        ),
        ref fixed => {
            // Some(count) exactly when the model has events.
            let n_events = usize::from(reference.stats.events.is_some());
            StoreSizing::fixed_shaped(steps, fixed.checkpoint_shape(n_states, n_events))
        }
    };
    let candidates = candidate_schedules(steps, sizing, options.memory_budget);

    if let Some(budget) = options.memory_budget {
        let smallest = candidates
            .iter()
            .map(|&s| sizing.bytes(s, steps))
            .min()
            .unwrap_or(0);
        if smallest > budget {
            return Err(invalid(
                "memory_budget",
                format!("{budget} B is too small for any setting: the smallest checkpoint store needs {smallest} B"),
            ));
        }
    }

    // Runs: the forward baseline (None), then each schedule. The repeats are
    // interleaved (round r times every run once) so that load changes on a
    // shared machine spread over all rows instead of skewing a few.
    let runs: Vec<Option<Problem>> = std::iter::once(None)
        .chain(candidates.iter().map(|&s| {
            let mut run = problem.clone();
            run.adjoint.checkpoints = Some(s);
            Some(run)
        }))
        .collect();
    let total = options.repeat * runs.len();
    progress.update(0, total);
    let mut all_bitwise = true;
    let mut max_rel = 0.0_f64;
    let mut times = vec![Vec::with_capacity(options.repeat); runs.len()];
    let mut same = vec![true; runs.len()];
    let mut stats = vec![reference.stats; runs.len()];
    for round in 0..options.repeat {
        for (i, run) in runs.iter().enumerate() {
            let started = Instant::now();
            match run {
                None => {
                    loss(problem)?;
                    times[i].push(started.elapsed().as_secs_f64());
                }
                Some(run) => {
                    let g = gradient(run)?;
                    times[i].push(started.elapsed().as_secs_f64());
                    let (bitwise, rel) = compare(&reference, &g);
                    all_bitwise &= bitwise;
                    max_rel = max_rel.max(rel);
                    same[i] &= bitwise;
                    stats[i] = g.stats;
                }
            }
            progress.update(round * runs.len() + i + 1, total);
        }
    }

    let forward_seconds = median(std::mem::take(&mut times[0]));
    let mut rows = vec![TuneRow {
        setting: "forward".to_string(),
        schedule: None,
        interval: None,
        median_seconds: forward_seconds,
        ratio_to_forward: 1.0,
        peak_store_bytes: 0,
        checkpoints_kept: 0,
        recomputed_steps: 0,
        fits_budget: true,
        same_gradient: true,
    }];
    for (i, &schedule) in candidates.iter().enumerate() {
        let (seconds, stats) = (median(std::mem::take(&mut times[i + 1])), stats[i + 1]);
        rows.push(TuneRow {
            setting: label(schedule),
            schedule: Some(schedule),
            interval: interval_of(schedule),
            median_seconds: seconds,
            ratio_to_forward: seconds / forward_seconds,
            peak_store_bytes: stats.peak_store_bytes,
            checkpoints_kept: stats.checkpoints_kept,
            recomputed_steps: stats.recomputed_steps,
            fits_budget: !matches!(options.memory_budget, Some(b) if stats.peak_store_bytes > b),
            same_gradient: same[i + 1],
        });
    }

    // Fastest that fits; on a tie, the smaller store.
    let recommended = (1..rows.len())
        .filter(|&i| rows[i].fits_budget)
        .min_by(|&a, &b| {
            rows[a]
                .median_seconds
                .total_cmp(&rows[b].median_seconds)
                .then(rows[a].peak_store_bytes.cmp(&rows[b].peak_store_bytes))
        })
        .ok_or_else(|| {
            invalid(
                "memory_budget",
                "no setting's measured store fits the budget".to_string(),
            )
        })?;
    let gradients_agree = rows.iter().all(|r| r.same_gradient);
    Ok(TuneReport {
        model: reference.model.clone(),
        solver: reference.solver.clone(),
        adjoint_method: problem.adjoint.method,
        steps,
        repeat: options.repeat,
        memory_budget: options.memory_budget,
        recommended_adjoint: AdjointSpec {
            checkpoints: rows[recommended].schedule,
            ..problem.adjoint.clone()
        },
        recommended,
        rows,
        gradient_agreement: if all_bitwise {
            "bitwise".to_string()
        } else {
            format!("differ by up to {max_rel:.1e} relative")
        },
        gradients_agree,
        max_rel_difference: max_rel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_all_powers_of_two_sqrt_and_n() {
        let c = candidate_schedules(60_000, StoreSizing::fixed(60_000, 4), None);
        assert_eq!(c[0], Schedule::All);
        for k in [2, 4, 1024, 32_768, 245, 60_000] {
            assert!(c.contains(&Schedule::Every(k)), "every {k} missing");
        }
        assert!(!c.contains(&Schedule::Every(65_536)));
        let ks: Vec<usize> = c.iter().filter_map(|&s| interval_of(s)).collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]), "{ks:?}");
        assert_eq!(
            candidate_schedules(4, StoreSizing::fixed(4, 4), None),
            vec![
                Schedule::All,
                Schedule::Every(2),
                Schedule::Every(4),
                // `all` holds 4 × 32 B; every 2 holds 96 B, below the
                // minimum budget (3 slots of 40 B), so it has no twin.
                Schedule::BudgetBytes(128),
            ]
        );
    }

    #[test]
    fn candidate_budgets_match_every_k_stores_and_the_users_budget() {
        let (n, len) = (60_000, 4);
        let c = candidate_schedules(n, StoreSizing::fixed(n, len), Some(65_536));
        let budgets: Vec<usize> = c
            .iter()
            .filter_map(|s| match *s {
                Schedule::BudgetBytes(b) => Some(b),
                _ => None,
            })
            .collect();
        assert!(budgets.windows(2).all(|w| w[0] < w[1]), "{budgets:?}");
        assert!(budgets[0] > Schedule::min_budget_bytes(n, len));
        for s in [Schedule::All, Schedule::Every(2), Schedule::Every(245)] {
            assert!(budgets.contains(&s.bytes_needed(n, len)), "{s:?}");
        }
        assert!(budgets.contains(&65_536));
        // A user budget below the minimum adds nothing.
        let small = candidate_schedules(n, StoreSizing::fixed(n, len), Some(1));
        assert_eq!(small.len(), c.len() - 1);
    }

    #[test]
    fn dopri5_budgets_are_sized_with_restart_states_and_the_dense_output() {
        let (n, states) = (10_000, 4);
        let sizing = StoreSizing::adaptive(states);
        // [t, h, err, stop, events, u, f, r5]; 8 dense steps of 5 vectors
        // and a restart state beside the slots.
        assert_eq!(sizing.state_len, 17);
        assert_eq!(sizing.beside_bytes, 8 * 5 * 4 * 8 + 17 * 8);
        assert_eq!(sizing.min_budget, 3 * 18 * 8 + sizing.beside_bytes);
        let c = candidate_schedules(n, sizing, Some(1000));
        let budgets: Vec<usize> = c
            .iter()
            .filter_map(|s| match *s {
                Schedule::BudgetBytes(b) => Some(b),
                _ => None,
            })
            .collect();
        assert!(
            budgets.iter().all(|&b| b >= sizing.min_budget),
            "{budgets:?}"
        );
        // The twin of `every 100` (√N): its slots of restart states and the rest.
        let every = Schedule::Every(100).bytes_needed(n, 17) + sizing.beside_bytes;
        assert!(budgets.contains(&every), "{budgets:?}");
        // Not the fixed-step figure (4 f64 a state, nothing beside).
        let fixed = Schedule::Every(100).bytes_needed(n, states);
        assert!(!budgets.contains(&fixed), "{budgets:?}");
    }

    #[test]
    fn tune_on_dopri5_runs_every_candidate() {
        let problem = Problem::from_json(
            r#"{"model": {"name": "hh"}, "tspan": [0, 30],
                "solver": {"method": "dopri5", "rtol": 1e-6, "atol": 1e-6},
                "adjoint": {"method": "continuous"}}"#,
            "test",
        )
        .unwrap();
        let options = TuneOptions {
            repeat: 1,
            memory_budget: Some(4096),
        };
        let r = tune(&problem, &options, &mut |_: usize, _: usize| {}).unwrap();
        assert!(r.gradients_agree, "{:?}", r.rows);
        assert_eq!(r.gradient_agreement, "bitwise");
        for row in &r.rows {
            if let Some(Schedule::BudgetBytes(b)) = row.schedule {
                assert!(b >= StoreSizing::adaptive(4).min_budget);
                assert!(row.peak_store_bytes <= b, "{row:?}");
            }
        }
        let best = &r.rows[r.recommended];
        assert!(best.peak_store_bytes <= 4096, "{best:?}");
    }

    #[test]
    fn compare_sees_a_one_ulp_change() {
        let problem = Problem::from_json(
            r#"{"model": {"name": "hh"}, "tspan": [0, 1], "solver": {"method": "euler", "dt": 0.1}}"#,
            "test",
        )
        .unwrap();
        let a = gradient(&problem).unwrap();
        assert_eq!(compare(&a, &a.clone()), (true, 0.0));
        let mut b = a.clone();
        b.gradient_u0[3] = f64::from_bits(b.gradient_u0[3].to_bits() + 1);
        let (bitwise, rel) = compare(&a, &b);
        assert!(!bitwise && rel > 0.0 && rel < 1e-15, "{rel:e}");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
