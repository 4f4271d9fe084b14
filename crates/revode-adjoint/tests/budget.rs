//! Memory-budgeted (binomial) checkpointing through the gradient driver:
//! the gradient is bitwise the same as with every state kept, the store
//! never exceeds the budget, and the recomputation is the optimum.

mod common;

use common::Predator;
use revode_adjoint::{gradient_fixed, FixedProblem, Gradient, GradientError, Loss};
use revode_checkpoint::binomial::{min_recomputed, slot_bytes};
use revode_checkpoint::{CheckpointError, Schedule};
use revode_forward::{FixedMethod, TimeGrid};
use revode_model::{HodgkinHuxley, Model};

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_bitwise(g: &Gradient, reference: &Gradient, what: &str) {
    assert_eq!(g.loss.to_bits(), reference.loss.to_bits(), "{what} loss");
    assert_eq!(bits(&g.gradient), bits(&reference.gradient), "{what} dp");
    assert_eq!(
        bits(&g.gradient_u0),
        bits(&reference.gradient_u0),
        "{what} du0"
    );
}

/// All vs Every vs several budgets, both methods, both losses.
fn check_model<M: Model>(model: &M, grid: TimeGrid) {
    let (u0, p) = (model.default_u0(), model.default_params());
    let n_states = model.dims().n_states;
    let n = grid.n_steps();
    let slot = slot_bytes(n_states);
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method,
        };
        for loss in [
            Loss::Final {
                weights: vec![1.0; n_states],
            },
            Loss::AllSteps {
                weights: vec![0.5; n_states],
            },
        ] {
            let all = gradient_fixed(model, &problem, &loss, Schedule::All).unwrap();
            let every = gradient_fixed(model, &problem, &loss, Schedule::Every(37)).unwrap();
            assert_bitwise(&every, &all, "every 37");
            for slots in [3, 4, 7, 20, 150, n] {
                // A budget that is not a whole number of slots.
                let budget = slots * slot + slot / 2;
                let g =
                    gradient_fixed(model, &problem, &loss, Schedule::BudgetBytes(budget)).unwrap();
                let what = format!("{} {method:?} {} {slots} slots", model.name(), loss.name());
                assert_bitwise(&g, &all, &what);
                assert!(g.stats.peak_store_bytes <= budget, "{what}: {:?}", g.stats);
                assert_eq!(g.stats.backward_steps, n);
                assert_eq!(
                    Some(g.stats.recomputed_steps as u128),
                    min_recomputed(n, slots.min(n)),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn predator_gradients_are_bitwise_identical_across_schedules() {
    check_model(&Predator, TimeGrid::new(0.0, 1.5, 0.003).unwrap());
}

#[test]
fn hh_gradients_are_bitwise_identical_across_schedules() {
    // 20 ms of HH with dt = 0.01: one spike (the default drive fires).
    check_model(&HodgkinHuxley, TimeGrid::new(0.0, 20.0, 0.01).unwrap());
}

#[test]
fn budget_below_the_minimum_is_reported() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 1.0, 0.01).unwrap(),
        method: FixedMethod::Euler,
    };
    let loss = Loss::Final {
        weights: vec![1.0, 1.0],
    };
    let err = gradient_fixed(&m, &problem, &loss, Schedule::BudgetBytes(71)).unwrap_err();
    assert_eq!(
        err,
        GradientError::Checkpoint(CheckpointError::BudgetTooSmall {
            budget: 71,
            minimum: 72,
            slots: 3,
            slot_bytes: 24,
            beside_bytes: 0
        })
    );
}
