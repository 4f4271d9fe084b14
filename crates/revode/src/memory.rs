//! Memory checks of a run's allocations that grow with the input, before
//! the run: a model's parameter-sized buffers, an implicit solver's
//! matrices, and with them a fixed-step gradient's checkpoint store
//! ([`check_run`]); and what a gradient run holds in all (for running
//! batch members side by side). The store also checks itself when it is
//! made ([`revode_checkpoint::memory`]), as sampled trajectories do
//! (`revode_forward::SampleRoom`).

use revode_adjoint::GradientError;
use revode_adjoint::{bdf_budget, bdf_gradient_bytes, beuler_gradient_bytes, TransposedSolve};
use revode_checkpoint::binomial::slot_bytes;
use revode_checkpoint::memory::{human_bytes, MemoryError, MemoryLimit};
use revode_checkpoint::{CheckpointError, Schedule, StateShape};
use revode_forward::{newton_bytes_needed, LinearSolver, MatrixShape, StepLayout, TimeGrid};
use revode_model::{Dims, Model};

use crate::{Error, ModelVisitor, Problem};

/// Bytes a gradient run holds per model parameter, about: the parameter
/// vector and its default, the gradient, the model's deferred gradient sums
/// in the forward and backward scratch (`hh_network`: one per `W` entry in
/// each), and the parameter's name.
pub const BYTES_PER_PARAM: usize = 5 * std::mem::size_of::<f64>() + 40;

/// `Ok` if a run of a model with these dimensions fits.
pub fn check_model(limit: MemoryLimit, model: &str, dims: Dims) -> Result<(), Error> {
    let needed = param_bytes(dims);
    limit.check(needed).map_err(|e| match e {
        MemoryError::TooLarge(too_large) => Error::OutOfMemory {
            what: format!("model {model} with {} parameters", dims.n_params),
            too_large,
            advice: "use a smaller model".to_string(),
        },
        MemoryError::BadLimit(bad) => Error::MemoryLimit(bad),
    })
}

/// The bytes of a model's parameter-sized buffers ([`BYTES_PER_PARAM`]).
fn param_bytes(dims: Dims) -> usize {
    dims.n_params.saturating_mul(BYTES_PER_PARAM)
}

/// The bytes a run of `problem` (`gradient`: with its gradient) holds
/// besides its checkpoint store, the adjoint sweep and its kept samples:
/// its parameter-sized buffers and its implicit solver's matrices. An
/// adaptive gradient's store, and kept samples, whose sizes are found only
/// as they grow, count them with their own bytes at each growth.
pub fn held_outside<M: Model>(model: &M, problem: &Problem, gradient: bool) -> usize {
    param_bytes(model.dims()).saturating_add(solver_bytes(model, problem, gradient))
}

/// `Ok` if a run of `problem` (`gradient`: with its gradient) fits: its
/// parameter-sized buffers ([`check_model`]), its implicit solver's
/// matrices ([`check_solver`]), the two together, and, for a gradient on
/// a fixed grid against a limit set in code or in `REVODE_MEMORY_LIMIT`,
/// its checkpoint store alone (the store's own message) and with the two;
/// each part first with its own message and advice, and the schedule
/// proposed one that fits beside the parameters and matrices. Against
/// `MemAvailable` the store is left to its own check when it is made. An
/// adaptive run's store and kept samples, which grow with the steps taken,
/// check themselves with the parts above at every growth
/// ([`held_outside`]).
pub fn check_run<M: Model>(
    limit: MemoryLimit,
    model: &M,
    problem: &Problem,
    gradient: bool,
) -> Result<(), Error> {
    check_model(limit, model.name(), model.dims())?;
    let solver = check_solver(limit, model, problem, gradient)?;
    let params = param_bytes(model.dims());
    let model_part = format!(
        "model {} with {} parameters ({})",
        model.name(),
        model.dims().n_params,
        human_bytes(params)
    );
    let solver_part = format!(
        "the {} solver's iteration matrices ({})",
        problem.solver.name(),
        human_bytes(solver)
    );
    let together = |needed: usize, what: String, advice: String| {
        limit.check(needed).map_err(|e| match e {
            MemoryError::TooLarge(too_large) => Error::OutOfMemory {
                what,
                too_large,
                advice,
            },
            MemoryError::BadLimit(bad) => Error::MemoryLimit(bad),
        })
    };
    let model_and_solver = params.saturating_add(solver);
    together(
        model_and_solver,
        format!("{model_part} and {solver_part} together"),
        "use a smaller model or an explicit method".to_string(),
    )?;
    if !gradient {
        return Ok(());
    }
    // Only against a limit set in code or in REVODE_MEMORY_LIMIT: against
    // MemAvailable a store served from memory the thread already holds is
    // not counted (the store's own check), and this check could not tell.
    let available = match limit.available() {
        Ok(Some(a)) if a.bounds_what_is_held() => a.bytes,
        _ => return Ok(()),
    };
    // A problem whose grid is invalid is reported where the run makes it.
    let Ok(Some(grid)) = crate::run::fixed_grid(problem) else {
        return Ok(());
    };
    let (schedule, n_steps, shape) = fixed_store(model, problem, grid);
    let store = schedule.bytes_needed_shaped(n_steps, shape);
    // The schedule proposed is one that fits beside the parts above.
    let fits = Schedule::fitting(
        n_steps,
        shape.len,
        available.saturating_sub(model_and_solver),
    );
    if let Err(MemoryError::TooLarge(too_large)) = limit.check(store) {
        return Err(Error::Gradient(GradientError::Checkpoint(
            CheckpointError::OutOfMemory {
                schedule,
                steps: Some(n_steps),
                held_beside: 0,
                too_large,
                fits,
            },
        )));
    }
    let what = if solver > 0 {
        format!(
            "{model_part}, {solver_part} and the checkpoint store ({}) together",
            human_bytes(store)
        )
    } else {
        format!(
            "{model_part} and the checkpoint store ({}) together",
            human_bytes(store)
        )
    };
    let advice = match fits {
        Some(s) => format!("use \"checkpoints\": {s}, which fits beside them"),
        None => "no checkpoint schedule fits beside them; use a smaller model".to_string(),
    };
    together(model_and_solver.saturating_add(store), what, advice)
}

/// The checkpoint schedule, steps and state shape of a gradient of
/// `problem` on its fixed `grid` (its store's bytes are exact before the
/// run). Steps cut in two at stimulus switches are not counted: a few
/// slots at most.
fn fixed_store<M: Model>(
    model: &M,
    problem: &Problem,
    grid: TimeGrid,
) -> (Schedule, usize, StateShape) {
    let n_steps = grid.n_steps();
    let (n, n_events) = (model.dims().n_states, model.n_events());
    let shape = problem.solver.checkpoint_shape(n, n_events);
    (problem.schedule_for(n_steps, n, n_events), n_steps, shape)
}

/// The implicit method of a problem and its linear solver choice.
#[derive(Clone, Copy)]
enum Implicit {
    Beuler(LinearSolver),
    Bdf(LinearSolver),
}

impl Implicit {
    fn of(problem: &Problem) -> Option<Implicit> {
        let solver = &problem.solver;
        solver
            .beuler_options()
            .map(|o| Implicit::Beuler(o.linear_solver))
            .or_else(|| solver.bdf_options().map(|o| Implicit::Bdf(o.linear_solver)))
    }

    fn linear(self) -> LinearSolver {
        match self {
            Implicit::Beuler(l) | Implicit::Bdf(l) => l,
        }
    }

    fn with_linear(self, linear: LinearSolver) -> Implicit {
        match self {
            Implicit::Beuler(_) => Implicit::Beuler(linear),
            Implicit::Bdf(_) => Implicit::Bdf(linear),
        }
    }

    /// Bytes of its iteration matrices and Jacobians, for a solve alone
    /// or with the gradient (`shape`: `MatrixShape::of_model(model)`).
    fn bytes<M: Model>(self, model: &M, shape: MatrixShape, gradient: bool) -> usize {
        match (self, gradient) {
            (Implicit::Beuler(l), true) => {
                beuler_gradient_bytes(model, shape, l, TransposedSolve::default())
            }
            (Implicit::Bdf(l), true) => bdf_gradient_bytes(shape, l),
            (_, false) => newton_bytes_needed(shape, self.linear()),
        }
    }
}

/// Bytes an implicit solver (beuler, bdf) of `problem` allocates for its
/// iteration matrices and Jacobians, for a solve alone or with the
/// gradient; 0 for the explicit methods.
pub fn solver_bytes<M: Model>(model: &M, problem: &Problem, gradient: bool) -> usize {
    Implicit::of(problem).map_or(0, |i| {
        i.bytes(model, MatrixShape::of_model(model), gradient)
    })
}

/// The bytes of the implicit solver's matrices ([`solver_bytes`]; 0 for
/// an explicit method) if they fit: a dense matrix of many states is
/// refused before it is made, with the advice to factor sparsely where
/// that would fit.
pub fn check_solver<M: Model>(
    limit: MemoryLimit,
    model: &M,
    problem: &Problem,
    gradient: bool,
) -> Result<usize, Error> {
    let Some(implicit) = Implicit::of(problem) else {
        return Ok(0);
    };
    let shape = MatrixShape::of_model(model);
    let kind = shape.resolve(implicit.linear());
    let bytes = implicit.bytes(model, shape, gradient);
    limit.check(bytes).map(|()| bytes).map_err(|e| match e {
        MemoryError::TooLarge(too_large) => {
            let sparse = implicit.with_linear(LinearSolver::Sparse);
            let sparse_fits = kind == LinearSolver::Dense
                && limit.check(sparse.bytes(model, shape, gradient)).is_ok();
            Error::OutOfMemory {
                what: format!(
                    "the {} solver's {} iteration matrices for {} ({} states)",
                    problem.solver.name(),
                    kind.name(),
                    model.name(),
                    shape.n
                ),
                too_large,
                advice: if sparse_fits {
                    "set \"linear_solver\": \"sparse\" in the solver block (its factors fit)"
                        .to_string()
                } else {
                    "use a smaller model or an explicit method".to_string()
                },
            }
        }
        MemoryError::BadLimit(bad) => Error::MemoryLimit(bad),
    })
}

/// At most about the bytes a gradient run of `problem` holds in the
/// allocations the memory checks count: its checkpoint store and its
/// parameter-sized buffers. A fixed-step store's size is exact; an adaptive
/// run's store grows with the accepted steps, so it is counted as if all
/// `max_steps` were taken (a byte budget: the budget). Used to run batch
/// members side by side only as far as they fit together.
pub fn gradient_bytes(problem: &Problem) -> Result<usize, Error> {
    problem.model.visit(GradientBytes(problem))?
}

struct GradientBytes<'a>(&'a Problem);

impl ModelVisitor for GradientBytes<'_> {
    type Output = Result<usize, Error>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let problem = self.0;
        let dims = model.dims();
        let params = param_bytes(dims);
        let store = match crate::run::fixed_grid(problem)? {
            Some(grid) => {
                let (schedule, n_steps, shape) = fixed_store(model, problem, grid);
                schedule.bytes_needed_shaped(n_steps, shape)
            }
            None => {
                // The adaptive store keeps whole solver states (state,
                // stages or history, Newton memory).
                let (max_steps, state_len) = match problem.solver.bdf_options() {
                    Some(bdf) => (
                        bdf.adaptive.max_steps,
                        bdf_budget(dims.n_states, bdf.max_order).state_len,
                    ),
                    None => {
                        let options = problem.solver.adaptive_options().expect("dopri5");
                        (options.max_steps, StepLayout { n: dims.n_states }.len())
                    }
                };
                let slot = slot_bytes(state_len);
                let states = max_steps.saturating_add(2);
                match problem.adjoint.checkpoints.unwrap_or(Schedule::All) {
                    Schedule::BudgetBytes(b) => b,
                    Schedule::All => states.saturating_mul(slot),
                    // checkpoints, and the segment replayed between two
                    Schedule::Every(k) => {
                        let k = k.max(1);
                        (states / k + 1 + (k - 1).max(2)).saturating_mul(slot)
                    }
                }
            }
        };
        Ok(store
            .saturating_add(params)
            .saturating_add(solver_bytes(model, problem, true)))
    }
}

/// Bytes of one kept sample row of `n_states` states as
/// [`crate::solve`] keeps it: a `Vec` of `[t, u…]` with its header, and
/// about 16 bytes of allocator bookkeeping.
pub fn kept_row_bytes(n_states: usize) -> usize {
    std::mem::size_of::<Vec<f64>>()
        + 16
        + n_states
            .saturating_add(1)
            .saturating_mul(std::mem::size_of::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_bytes_count_the_store_and_the_parameters() {
        let problem = |solver: &str, checkpoints: &str| {
            Problem::from_json(
                &format!(
                    r#"{{"model": {{"name": "hh"}}, "tspan": [0, 100], "solver": {solver},
                        "adjoint": {{"checkpoints": {checkpoints}}}}}"#
                ),
                "p",
            )
            .unwrap()
        };
        let euler = r#"{"method": "euler", "dt": 0.01}"#;
        let params = 3 * BYTES_PER_PARAM;
        // every state of 10 000 steps: about 10 000 slots of 4 f64s
        let all = Schedule::All.bytes_needed(10_000, 4);
        assert!((10_000 * 32..=10_002 * 32).contains(&all), "{all}");
        assert_eq!(
            gradient_bytes(&problem(euler, r#""all""#)).unwrap(),
            all + params
        );
        assert_eq!(
            gradient_bytes(&problem(euler, r#"{"budget_bytes": 4096}"#)).unwrap(),
            Schedule::BudgetBytes(4096).bytes_needed(10_000, 4) + params
        );
        let dopri = r#"{"method": "dopri5", "rtol": 1e-6, "atol": 1e-8, "max_steps": 1000}"#;
        let slot = slot_bytes(5 + 3 * 4);
        assert_eq!(
            gradient_bytes(&problem(dopri, r#"{"budget_bytes": 65536}"#)).unwrap(),
            65536 + params
        );
        assert_eq!(
            gradient_bytes(&problem(dopri, r#""all""#)).unwrap(),
            1002 * slot + params
        );
        // An implicit method adds its matrices: hh's 4 × 4 dense ones, a
        // few kilobytes, and a 4096-state network's about a gigabyte.
        let beuler = r#"{"method": "beuler", "dt": 0.01, "linear_solver": "dense"}"#;
        let store = Schedule::Every(100)
            .bytes_needed_shaped(10_000, revode_adjoint::beuler_state_shape(4, 0));
        let implicit = gradient_bytes(&problem(beuler, r#"{"every": 100}"#)).unwrap();
        assert!(
            (store + params + 500..store + params + 20_000).contains(&implicit),
            "{implicit} against {store} + {params}"
        );
        let net = Problem::from_json(
            &format!(
                r#"{{"model": {{"name": "hh_network", "n": 1024}}, "tspan": [0, 1],
                    "solver": {beuler}}}"#
            ),
            "p",
        )
        .unwrap();
        let net_bytes = gradient_bytes(&net).unwrap();
        assert!(net_bytes > 1_000_000_000, "{net_bytes}");
    }

    /// Parameters and solver matrices that fit one at a time but not
    /// together are refused, naming both.
    #[test]
    fn parameters_and_solver_matrices_are_checked_together() {
        let problem = Problem::from_json(
            r#"{"model": {"name": "hh_network", "n": 64}, "tspan": [0, 1],
                "solver": {"method": "beuler", "dt": 0.01, "linear_solver": "dense"}}"#,
            "p",
        )
        .unwrap();
        let model = revode_model::HhNetwork::with_neurons(64).unwrap();
        let params = param_bytes(model.dims());
        let solver = solver_bytes(&model, &problem, true);
        assert!(params > 0 && solver > 0, "{params} {solver}");
        let between = params.max(solver) + (params.min(solver) / 2);
        let check = |bytes| check_run(MemoryLimit::Bytes(bytes), &model, &problem, true);
        let e = check(between).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("model hh_network with ")
                && text.contains(" parameters (")
                && text.contains("and the beuler solver's iteration matrices (")
                && text.contains(") together: "),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
        let (schedule, n_steps, shape) = fixed_store(
            &model,
            &problem,
            crate::run::fixed_grid(&problem).unwrap().unwrap(),
        );
        let store = schedule.bytes_needed_shaped(n_steps, shape);
        assert!(check(params + solver + store).is_ok());
        // Either part alone too large keeps its own message.
        let alone = check(params.min(solver) + 1).unwrap_err().to_string();
        assert!(!alone.contains("together"), "{alone}");
    }

    /// A gradient's store is checked alone and with the parameters and
    /// solver matrices, and the schedule proposed fits beside them.
    #[test]
    fn the_checkpoint_store_is_checked_with_the_rest() {
        let problem = Problem::from_json(
            r#"{"model": {"name": "hh_network", "n": 8}, "tspan": [0, 20],
                "solver": {"method": "beuler", "dt": 0.01, "linear_solver": "sparse"},
                "adjoint": {"checkpoints": "all"}}"#,
            "p",
        )
        .unwrap();
        let model = revode_model::HhNetwork::with_neurons(8).unwrap();
        let rest = param_bytes(model.dims()) + solver_bytes(&model, &problem, true);
        let (schedule, n_steps, shape) = fixed_store(
            &model,
            &problem,
            crate::run::fixed_grid(&problem).unwrap().unwrap(),
        );
        let store = schedule.bytes_needed_shaped(n_steps, shape);
        // 2 000 states of 32 f64s (every state kept): ~0.5 MB.
        assert!(store > 400_000 && store > rest, "{store} {rest}");
        let check =
            |bytes, gradient| check_run(MemoryLimit::Bytes(bytes), &model, &problem, gradient);
        // The schedule proposed fits beside the parameters and matrices.
        let proposed = |limit: usize| {
            let s = Schedule::fitting(n_steps, shape.len, limit - rest).unwrap();
            assert!(s.bytes_needed_shaped(n_steps, shape) <= limit - rest, "{s}");
            format!("use \"checkpoints\": {s}, which fits")
        };
        let limit = store + rest / 2;
        let e = check(limit, true).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("model hh_network with ")
                && text.contains(", the beuler solver's iteration matrices (")
                && text.contains(" and the checkpoint store (")
                && text.contains(") together: ")
                && text.contains(&format!("{} beside them", proposed(limit))),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(check(store + rest, true).is_ok());
        // A store too large on its own gets the store's message, with a
        // schedule that fits beside the rest; without a gradient there is
        // no store.
        let limit = (store + rest) / 2;
        let e = check(limit, true).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("checkpoints \"all\" over 2000 steps: ")
                && text.ends_with(&proposed(limit)),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(check(limit, false).is_ok());
    }

    #[test]
    fn a_model_too_large_is_refused() {
        let dims = Dims {
            n_states: 4 * 4096,
            n_params: 3 * 4096 + 4096 * 4096,
        };
        let e = check_model(MemoryLimit::Bytes(1 << 30), "hh_network", dims).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("model hh_network with 16789504 parameters: "),
            "{e}"
        );
        assert!(check_model(MemoryLimit::Bytes(1 << 31), "hh_network", dims).is_ok());
    }
}
