//! The online store: visiting order and bitwise states for chains of many
//! lengths under every schedule, the budget never exceeded, and its errors.

mod common;

use common::{Affine, TestError};
use revode_checkpoint::binomial::slot_bytes;
use revode_checkpoint::{CheckpointError, OnlineStore, Schedule, StoreStats};

const MAX_STEPS: usize = 100_000;

/// Forward until the chain ends at `n`, then reverse; checks everything
/// against the reference chain and returns the stats.
fn sweep(schedule: Schedule, n: usize, len: usize) -> StoreStats {
    let mut chain = Affine::new(len, n);
    let reference = chain.reference(n);
    let mut store = OnlineStore::new(schedule, len, MAX_STEPS).unwrap();
    let mut seen = Vec::new();
    let mut last = vec![0.0; len];
    let steps = store
        .forward(&mut chain, &reference[0], &mut last, |k, x| {
            assert_eq!(k, seen.len());
            seen.push(x.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!(steps, n);
    assert_eq!(seen, reference, "{schedule:?} n={n}");
    assert_eq!(last, reference[n]);
    assert_eq!(chain.advances, n);
    let mut expect = n;
    store
        .reverse(&mut chain, |k, x| {
            assert_eq!(k + 1, expect, "{schedule:?} n={n}: visit order");
            expect = k;
            assert!(x == &reference[k][..], "{schedule:?} n={n}: x_{k} differs");
            Ok(())
        })
        .unwrap();
    assert_eq!(expect, 0);
    let stats = store.stats();
    assert_eq!(stats.steps, n);
    assert_eq!(stats.forward_steps, n);
    assert_eq!(stats.backward_steps, n);
    assert_eq!(stats.recomputed_steps, chain.advances - n);
    stats
}

#[test]
fn every_schedule_visits_every_length_bitwise() {
    let lengths = (0..=70).chain([127, 128, 129, 255, 256, 1000, 4097]);
    for n in lengths {
        for schedule in [Schedule::All, Schedule::Every(1), Schedule::Every(7)] {
            let stats = sweep(schedule, n, 3);
            if schedule == Schedule::All {
                assert_eq!(stats.recomputed_steps, 0);
            }
        }
        for slots in [3, 4, 5, 6, 9, 16, 33, 200] {
            let budget = slots * slot_bytes(3) + slots % 5; // not a whole number of slots
            let stats = sweep(Schedule::BudgetBytes(budget), n, 3);
            assert!(stats.peak_bytes <= budget, "n={n}: {stats:?} over {budget}");
        }
    }
}

#[test]
fn budget_store_is_allocated_once_and_never_grows() {
    let budget = 40 * slot_bytes(4);
    let store = OnlineStore::new(Schedule::BudgetBytes(budget), 4, MAX_STEPS).unwrap();
    let before = store.stats().peak_bytes;
    assert!(before <= budget);
    let stats = sweep(Schedule::BudgetBytes(budget), 20_000, 4);
    assert_eq!(stats.peak_bytes, before);
    assert_eq!(stats.slots, 40);
    // Half the slots take checkpoints; thinning leaves between a quarter and a half.
    assert!((10..=20).contains(&stats.checkpoints_kept), "{stats:?}");
}

#[test]
fn a_chain_longer_than_max_steps_is_an_error() {
    for schedule in [
        Schedule::All,
        Schedule::Every(4),
        Schedule::BudgetBytes(1000),
    ] {
        let mut chain = Affine::new(2, 50);
        let mut store = OnlineStore::new(schedule, 2, 49).unwrap();
        let mut last = [0.0; 2];
        let x0 = chain.x0();
        let err = store
            .forward(&mut chain, &x0, &mut last, |_, _| Ok(()))
            .unwrap_err();
        assert_eq!(
            err,
            TestError::Store(CheckpointError::TooManySteps { max_steps: 49 })
        );
        // Exactly at the bound is fine.
        let mut store = OnlineStore::new(schedule, 2, 50).unwrap();
        let mut chain = Affine::new(2, 50);
        assert_eq!(
            store.forward(&mut chain, &x0, &mut last, |_, _| Ok(())),
            Ok(50)
        );
    }
}

#[test]
fn budget_below_three_slots_is_an_error() {
    let slot = slot_bytes(4);
    assert!(OnlineStore::new(Schedule::BudgetBytes(3 * slot), 4, 10).is_ok());
    assert_eq!(
        OnlineStore::new(Schedule::BudgetBytes(3 * slot - 1), 4, 10).unwrap_err(),
        CheckpointError::BudgetTooSmall {
            budget: 3 * slot - 1,
            minimum: 3 * slot,
            slots: 3,
            slot_bytes: slot,
            beside_bytes: 0
        }
    );
    assert_eq!(
        OnlineStore::new(Schedule::Every(0), 4, 10).unwrap_err(),
        CheckpointError::ZeroInterval { every: 0 }
    );
}
