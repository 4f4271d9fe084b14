//! Budgeted stores allocate only when made: the number of heap allocations
//! of a whole forward + reverse sweep does not depend on the chain length.
//! The growing online schedules allocate at most logarithmically often.

mod common;

use revode_testing::alloc::{allocations_during, counting_is_active, CountingAllocator};

use common::Affine;
use revode_checkpoint::binomial::slot_bytes;
use revode_checkpoint::{CheckpointStore, OnlineStore, Schedule};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn the_allocation_counter_is_active() {
    // guards the zero counts below: an allocation would be seen
    assert!(counting_is_active());
}

fn fixed_sweep(schedule: Schedule, n: usize) -> usize {
    let mut chain = Affine::new(4, n);
    let x0 = chain.x0();
    let mut last = [0.0; 4];
    allocations_during(|| {
        let mut store = CheckpointStore::new(schedule, n, 4).unwrap();
        store
            .forward(&mut chain, &x0, &mut last, |_, _| Ok(()))
            .unwrap();
        store.reverse(&mut chain, |_, _| Ok(())).unwrap();
    })
}

fn online_sweep(schedule: Schedule, n: usize) -> usize {
    let mut chain = Affine::new(4, n);
    let x0 = chain.x0();
    let mut last = [0.0; 4];
    allocations_during(|| {
        let mut store = OnlineStore::new(schedule, 4, 1 << 30).unwrap();
        store
            .forward(&mut chain, &x0, &mut last, |_, _| Ok(()))
            .unwrap();
        store.reverse(&mut chain, |_, _| Ok(())).unwrap();
    })
}

#[test]
fn budget_sweeps_allocate_independently_of_length() {
    // Three slots recompute O(N²) steps: shorter chains there.
    for (slots, n_small, n_large) in [
        (3, 100, 1_500),
        (10, 2_000, 30_000),
        (64, 2_000, 30_000),
        (1000, 2_000, 30_000),
    ] {
        let schedule = Schedule::BudgetBytes(slots * slot_bytes(4));
        let small = fixed_sweep(schedule, n_small);
        assert!(small > 0, "the counter must see the set-up allocations");
        assert_eq!(
            small,
            fixed_sweep(schedule, n_large),
            "fixed, {slots} slots"
        );
        let small = online_sweep(schedule, n_small);
        assert!(small > 0);
        assert_eq!(
            small,
            online_sweep(schedule, n_large),
            "online, {slots} slots"
        );
    }
}

#[test]
fn growing_online_schedules_allocate_logarithmically() {
    for schedule in [Schedule::All, Schedule::Every(1), Schedule::Every(16)] {
        let small = online_sweep(schedule, 5_000);
        // 64× longer: at most a few doublings more (pool and step numbers).
        let large = online_sweep(schedule, 320_000);
        assert!(large <= small + 2 * 7, "{schedule:?}: {small} → {large}");
    }
}

#[test]
fn the_counter_sees_a_per_step_allocation() {
    let per_step = |n: usize| {
        allocations_during(|| {
            for i in 0..n {
                std::hint::black_box(vec![i as f64; 4]);
            }
        })
    };
    assert!(per_step(100) < per_step(1000));
}
