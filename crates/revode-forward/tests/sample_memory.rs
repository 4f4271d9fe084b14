//! Sampled solves check their samples against the memory available before
//! reserving (fixed steps: all of them, before the first step) or growing
//! them (dopri5). One test in this binary: it sets `REVODE_MEMORY_LIMIT` for
//! the process.

use std::time::{Duration, Instant};

use revode_checkpoint::memory::LIMIT_ENV;
use revode_forward::{
    solve_adaptive, solve_adaptive_observed, solve_fixed, solve_fixed_observed, AdaptiveOptions,
    FixedMethod, ForwardError, Stimulus, TimeGrid, Trajectory,
};
use revode_model::{HodgkinHuxley, Model};

fn hh() -> (Vec<f64>, Vec<f64>) {
    (HodgkinHuxley.default_u0(), HodgkinHuxley.default_params())
}

fn fixed_samples_are_checked_before_the_first_step() {
    let (u0, p) = hh();
    // 10⁹ steps, every state kept: 40 GB of samples against a 1 MiB limit.
    let grid = TimeGrid::new(0.0, 1e7, 0.01).unwrap();
    let started = Instant::now();
    let e = solve_fixed(&HodgkinHuxley, FixedMethod::Euler, &grid, &u0, &p, Some(1)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no step was taken"
    );
    let ForwardError::SamplesTooLarge {
        every,
        n_steps,
        rows,
        held_beside,
        too_large,
        fits: Some(s),
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*every, *n_steps, *rows), (1, 1_000_000_000, 1_000_000_001));
    // The library's solvers hold nothing else that grows.
    assert_eq!(*held_beside, 0);
    assert_eq!(too_large.needed, 1_000_000_001 * Trajectory::bytes(1, 4));
    assert!(
        e.to_string()
            .contains(&format!("sampling every {s} steps fits")),
        "{e}"
    );
    // The suggested interval fits (and the one below it does not), shown on
    // a 10⁵-step solve with the limit scaled down alike.
    std::env::set_var(LIMIT_ENV, "4KiB");
    let grid = TimeGrid::new(0.0, 1000.0, 0.01).unwrap();
    let s = match solve_fixed(&HodgkinHuxley, FixedMethod::Euler, &grid, &u0, &p, Some(1)) {
        Err(ForwardError::SamplesTooLarge { fits: Some(s), .. }) => s,
        other => panic!("{other:?}"),
    };
    let sol = solve_fixed(&HodgkinHuxley, FixedMethod::Euler, &grid, &u0, &p, Some(s)).unwrap();
    assert!(Trajectory::bytes(sol.samples.len(), 4) <= 4096);
    assert!(solve_fixed(
        &HodgkinHuxley,
        FixedMethod::Euler,
        &grid,
        &u0,
        &p,
        Some(s - 1)
    )
    .is_err());
    // The kept samples are the streamed ones.
    let mut streamed = Vec::new();
    solve_fixed_observed(
        &HodgkinHuxley,
        FixedMethod::Euler,
        &grid,
        &u0,
        &p,
        &Stimulus::none(),
        Some(s),
        |t, u| streamed.push((t, u.to_vec())),
    )
    .unwrap();
    let kept: Vec<(f64, Vec<f64>)> = sol.samples.iter().map(|(t, u)| (t, u.to_vec())).collect();
    assert_eq!(kept, streamed);
    // Unsampled solves hold nothing and are not checked.
    assert!(solve_fixed(&HodgkinHuxley, FixedMethod::Euler, &grid, &u0, &p, None).is_ok());
}

fn adaptive_samples_are_checked_before_each_growth() {
    let (u0, p) = hh();
    std::env::set_var(LIMIT_ENV, "64KiB");
    let mut options = AdaptiveOptions::new(1e-8, 1e-10);
    options.max_steps = 100_000_000;
    let e = solve_adaptive(&HodgkinHuxley, &options, 0.0, 1e5, &u0, &p, Some(1)).unwrap_err();
    let ForwardError::SamplesOutgrewMemory {
        every,
        rows,
        t,
        held_beside: 0,
        too_large,
    } = &e
    else {
        panic!("{e:?}")
    };
    // 64 KiB hold 1638 rows of 40 bytes; growth by doubling stops at 1638.
    assert_eq!((*every, *rows), (1, 65536 / 40));
    assert_eq!(too_large.needed, (rows + 1) * 40);
    assert!(*t > 0.0 && *t < 1e5, "{t}");
    // Streaming holds nothing: the same solve runs (shorter, for time).
    let mut seen = 0;
    let sol = solve_adaptive_observed(
        &HodgkinHuxley,
        &options,
        0.0,
        500.0,
        &u0,
        &p,
        &Stimulus::none(),
        Some(1),
        |_, _| seen += 1,
    )
    .unwrap();
    assert!(seen > 1638, "{seen}");
    assert_eq!(seen, sol.counts.accepted + 1);
    // Within the limit, kept samples equal the streamed ones.
    std::env::set_var(LIMIT_ENV, "unlimited");
    let kept = solve_adaptive(&HodgkinHuxley, &options, 0.0, 500.0, &u0, &p, Some(1)).unwrap();
    assert_eq!(kept.samples.len(), seen);
}

fn a_malformed_limit_is_an_error() {
    let (u0, p) = hh();
    std::env::set_var(LIMIT_ENV, "lots");
    let grid = TimeGrid::new(0.0, 1.0, 0.01).unwrap();
    let e = solve_fixed(&HodgkinHuxley, FixedMethod::Euler, &grid, &u0, &p, Some(1)).unwrap_err();
    assert!(matches!(e, ForwardError::MemoryLimit(_)), "{e:?}");
    assert!(
        e.to_string().contains("REVODE_MEMORY_LIMIT = \"lots\""),
        "{e}"
    );
    let options = AdaptiveOptions::new(1e-6, 1e-8);
    let e = solve_adaptive(&HodgkinHuxley, &options, 0.0, 1.0, &u0, &p, Some(1)).unwrap_err();
    assert!(matches!(e, ForwardError::MemoryLimit(_)), "{e:?}");
}

#[test]
fn sampled_solves_check_memory_first() {
    std::env::set_var(LIMIT_ENV, "1MiB");
    fixed_samples_are_checked_before_the_first_step();
    adaptive_samples_are_checked_before_each_growth();
    a_malformed_limit_is_an_error();
    std::env::remove_var(LIMIT_ENV);
}
