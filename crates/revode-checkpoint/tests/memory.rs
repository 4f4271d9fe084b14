//! Stores are checked against the memory available before they allocate.

mod common;

use common::{Affine, TestError};
use revode_checkpoint::binomial::slot_bytes;
use revode_checkpoint::{CheckpointError, CheckpointStore, MemoryLimit, OnlineStore, Schedule};

#[test]
fn a_fixed_store_too_large_is_refused_before_allocating() {
    // 10⁹ steps of 4 f64: 32 GB. Allocating it would abort the test.
    let n = 1_000_000_000;
    let limit = MemoryLimit::Bytes(1 << 30);
    let err = CheckpointStore::with_memory_limit(Schedule::All, n, 4, limit).unwrap_err();
    let CheckpointError::OutOfMemory {
        schedule,
        steps,
        held_beside,
        too_large,
        fits,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*schedule, Schedule::All);
    assert_eq!(*steps, Some(n));
    assert_eq!(*held_beside, 0);
    assert_eq!(too_large.needed, 32_000_000_000);
    assert_eq!(too_large.available, 1 << 30);
    let fits = fits.expect("every √N fits in 1 GiB");
    assert!(fits.bytes_needed(n, 4) <= 1 << 30);
    let text = err.to_string();
    assert!(
        text.starts_with("checkpoints \"all\" over 1000000000 steps: 32000000000 bytes"),
        "{text}"
    );
    assert!(
        text.contains("\"checkpoints\": {\"every\": 31623}"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    // The suggestion is accepted under the same limit.
    let small = 1000;
    assert!(CheckpointStore::with_memory_limit(Schedule::Every(10), small, 4, limit).is_ok());
    // A budget is checked too (it may exceed the memory, not just the minimum).
    let huge = Schedule::BudgetBytes(usize::MAX);
    assert!(matches!(
        CheckpointStore::with_memory_limit(huge, n, 4, limit),
        Err(CheckpointError::OutOfMemory { .. })
    ));
    // Exactly the bytes needed is enough.
    let exact = Schedule::All.bytes_needed(small, 4);
    assert!(
        CheckpointStore::with_memory_limit(Schedule::All, small, 4, MemoryLimit::Bytes(exact))
            .is_ok()
    );
    assert!(CheckpointStore::with_memory_limit(
        Schedule::All,
        small,
        4,
        MemoryLimit::Bytes(exact - 1)
    )
    .is_err());
}

#[test]
fn no_schedule_fits_below_the_minimum_budget() {
    let err = CheckpointStore::with_memory_limit(Schedule::All, 1000, 4, MemoryLimit::Bytes(100))
        .unwrap_err();
    assert!(
        err.to_string().ends_with("no checkpoint schedule fits"),
        "{err}"
    );
}

#[test]
fn an_online_store_checks_its_first_allocation_and_every_growth() {
    let limit = MemoryLimit::Bytes(2000 * slot_bytes(3));
    // `every` with a huge K asks for K − 1 segment slots up front.
    let err =
        OnlineStore::with_memory_limit(Schedule::Every(1 << 40), 3, 1 << 50, limit).unwrap_err();
    assert!(
        matches!(err, CheckpointError::OutOfMemory { steps: None, .. }),
        "{err:?}"
    );
    // `all` starts small and grows with the chain until the limit stops it.
    let mut store = OnlineStore::with_memory_limit(Schedule::All, 3, 10_000, limit).unwrap();
    let mut chain = Affine::new(3, 5_000);
    let x0 = chain.x0();
    let mut last = vec![0.0; 3];
    let err = store
        .forward(&mut chain, &x0, &mut last, |_, _| Ok::<(), TestError>(()))
        .unwrap_err();
    let TestError::Store(CheckpointError::OutOfMemory { fits, .. }) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(fits, Some(Schedule::BudgetBytes(b)) if *b <= 2000 * slot_bytes(3)),
        "{fits:?}"
    );
    // A chain that fits runs as before.
    let mut store = OnlineStore::with_memory_limit(Schedule::All, 3, 10_000, limit).unwrap();
    let mut chain = Affine::new(3, 50);
    let steps = store
        .forward(&mut chain, &x0, &mut last, |_, _| Ok::<(), TestError>(()))
        .unwrap();
    assert_eq!(steps, 50);
    assert!(store.stats().peak_bytes <= 2000 * slot_bytes(3));
    // One that grows past its first 1 026 slots stops growing at the limit:
    // the growth reserves exactly what it checked.
    let mut store = OnlineStore::with_memory_limit(Schedule::All, 3, 10_000, limit).unwrap();
    let mut chain = Affine::new(3, 1_500);
    store
        .forward(&mut chain, &x0, &mut last, |_, _| Ok::<(), TestError>(()))
        .unwrap();
    let peak = store.stats().peak_bytes;
    assert!(peak <= 2000 * slot_bytes(3), "{peak}");
}

#[test]
fn an_online_store_counts_what_the_run_holds_beside_it() {
    let slot = slot_bytes(3);
    let limit = MemoryLimit::Bytes(2000 * slot);
    let run = |sweep: usize, outside: usize, steps: usize| {
        let mut store =
            OnlineStore::with_memory_limit_beside(Schedule::All, 3, 10_000, limit, sweep, outside)?;
        let mut chain = Affine::new(3, steps);
        let x0 = chain.x0();
        let mut last = vec![0.0; 3];
        store
            .forward(&mut chain, &x0, &mut last, |_, _| Ok::<(), TestError>(()))
            .map(|_| store.stats().peak_bytes)
            .map_err(|TestError::Store(e)| e)
    };
    // 1 500 steps fit the limit alone (the growth stops at the limit), and
    // beside 400 slots' worth (in the 1 600 left).
    let alone = run(0, 0, 1_500).unwrap();
    assert!(alone <= 2000 * slot, "{alone} {}", 2000 * slot);
    assert!(run(100 * slot, 300 * slot, 1_500).unwrap() <= 1600 * slot);
    // Beside 900 slots' worth, the first allocation (1 026 slots) fits but
    // the growth the chain needs (past 1 500) is refused: the store may
    // take only the 1 100 left, and the budget proposed fits there too,
    // the sweep's share included.
    let err = run(200 * slot, 700 * slot, 1_500).unwrap_err();
    let CheckpointError::OutOfMemory {
        held_beside,
        ref too_large,
        fits,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(held_beside, 900 * slot);
    let store = too_large.needed - held_beside;
    assert!(
        too_large.needed > 2000 * slot && store > 1026 * slot && store <= 1100 * slot + 8 * slot,
        "{too_large:?}, slot {slot}"
    );
    let Some(Schedule::BudgetBytes(b)) = fits else {
        panic!("{fits:?}")
    };
    assert!(
        b >= 3 * slot + 200 * slot && b + 700 * slot <= 2000 * slot,
        "{b}"
    );
    let text = err.to_string();
    assert!(
        text.contains("beside") && text.contains("which fits beside them"),
        "{text}"
    );
    // The first allocation counts them too.
    let err =
        OnlineStore::with_memory_limit_beside(Schedule::All, 3, 10_000, limit, 0, 1990 * slot)
            .unwrap_err();
    assert!(
        matches!(err, CheckpointError::OutOfMemory { held_beside, .. } if held_beside == 1990 * slot),
        "{err:?}"
    );
}
