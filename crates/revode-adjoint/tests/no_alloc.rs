//! Proof that the step loops allocate nothing: the number of heap
//! allocations of a whole solve or gradient does not grow with the number of
//! steps, for every schedule and both methods.

mod common;

use revode_testing::alloc::{
    allocations_during as allocations_reusing, counting_is_active, CountingAllocator,
};

use common::Predator;
use revode_adjoint::{
    gradient_continuous, gradient_continuous_fixed, gradient_continuous_fixed_with_stimulus,
    gradient_continuous_with_stimulus, gradient_fixed, gradient_fixed_with_stimulus,
    AdaptiveProblem, ContinuousOptions, ErrorControl, FixedProblem, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_adaptive, solve_fixed, solve_fixed_with_stimulus, AdaptiveOptions, FixedMethod, Stimulus,
    StimulusTrack, TimeGrid,
};
use revode_model::{HodgkinHuxley, Model};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn the_allocation_counter_is_active() {
    // guards the zero counts below: an allocation would be seen
    assert!(counting_is_active());
}

/// Allocations of `f`, a store's slots included: this thread's spare
/// (revode_checkpoint::spare) is released first.
fn allocations_during(f: impl FnOnce()) -> usize {
    revode_checkpoint::spare::release_spare();
    allocations_reusing(f)
}

fn gradient_allocations<M: Model>(
    m: &M,
    method: FixedMethod,
    schedule: Schedule,
    n: usize,
) -> usize {
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap();
    assert_eq!(grid.n_steps(), n);
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method,
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; m.dims().n_states],
    };
    allocations_during(|| {
        gradient_fixed(m, &problem, &loss, schedule).unwrap();
    })
}

#[test]
fn a_repeated_gradient_reuses_its_store() {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = |n: usize| FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap(),
        method: FixedMethod::Euler,
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; 4],
    };
    for schedule in [Schedule::All, Schedule::Every(10)] {
        let first = gradient_allocations(&m, FixedMethod::Euler, schedule, 5_000);
        let again = allocations_reusing(|| {
            gradient_fixed(&m, &problem(5_000), &loss, schedule).unwrap();
        });
        let shorter = allocations_reusing(|| {
            gradient_fixed(&m, &problem(3_000), &loss, schedule).unwrap();
        });
        assert_eq!(again, first - 1, "{schedule:?}: the slots are reused");
        assert_eq!(
            shorter,
            first - 1,
            "{schedule:?}: and serve a shorter chain"
        );
    }
}

#[test]
fn gradient_allocations_do_not_grow_with_steps() {
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for schedule in [
            Schedule::All,
            Schedule::Every(1),
            Schedule::Every(10),
            Schedule::Every(64),
            // Predator states: 2 f64s, 24 bytes a budget slot.
            Schedule::BudgetBytes(10 * 24),
            Schedule::BudgetBytes(1000 * 24),
        ] {
            let small = gradient_allocations(&Predator, method, schedule, 1_000);
            let large = gradient_allocations(&Predator, method, schedule, 20_000);
            assert!(small > 0, "the counter must see the set-up allocations");
            assert_eq!(
                small, large,
                "{method:?} {schedule:?}: {small} vs {large} allocations"
            );
            let small = gradient_allocations(&HodgkinHuxley, method, schedule, 1_000);
            let large = gradient_allocations(&HodgkinHuxley, method, schedule, 20_000);
            assert_eq!(
                small, large,
                "HH {method:?} {schedule:?}: {small} vs {large}"
            );
        }
    }
}

#[test]
fn forward_solve_allocations_do_not_grow_with_steps() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let count = |n: usize| {
            let grid = TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap();
            allocations_during(|| {
                solve_fixed(&m, method, &grid, &u0, &p, None).unwrap();
            })
        };
        assert_eq!(count(1_000), count(50_000), "{method:?}");
    }
}

/// Accepted forward steps and allocations of an adaptive continuous-adjoint
/// gradient over [0, t1].
fn continuous_allocations(t1: f64, schedule: Schedule, control: ErrorControl) -> (usize, usize) {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let problem = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1,
        options: &options,
    };
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![0.5, 1.5, 2.5],
        values: vec![1.0, 1.0, 1.0],
    };
    let adjoint = ContinuousOptions {
        error_control: control,
        ..ContinuousOptions::default()
    };
    let mut steps = 0;
    let count = allocations_during(|| {
        steps = gradient_continuous(&m, &problem, &loss, &adjoint, schedule)
            .unwrap()
            .stats
            .steps;
    });
    (steps, count)
}

#[test]
fn continuous_adjoint_allocations_do_not_grow_with_steps() {
    for schedule in [
        Schedule::All,
        Schedule::Every(1),
        Schedule::Every(8),
        Schedule::BudgetBytes(4096),
    ] {
        for control in [ErrorControl::Lambda, ErrorControl::LambdaAndMu] {
            let (short_steps, short) = continuous_allocations(3.0, schedule, control);
            let (long_steps, long) = continuous_allocations(60.0, schedule, control);
            assert!(
                long_steps > 10 * short_steps,
                "{short_steps} vs {long_steps} steps"
            );
            assert_eq!(
                short, long,
                "{schedule:?} {control:?}: {short} vs {long} allocations"
            );
        }
    }
}

#[test]
fn continuous_fixed_and_adaptive_solve_allocations_do_not_grow_with_steps() {
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::Final {
        weights: vec![1.0, 1.0],
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let count = |n: usize| {
            let problem = FixedProblem {
                u0: &u0,
                params: &p,
                grid: TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap(),
                method,
            };
            allocations_during(|| {
                gradient_continuous_fixed(&m, &problem, &loss, Schedule::Every(10)).unwrap();
            })
        };
        assert_eq!(count(1_000), count(20_000), "{method:?}");
    }
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let count = |t1: f64| {
        allocations_during(|| {
            solve_adaptive(&m, &options, 0.0, t1, &u0, &p, None).unwrap();
        })
    };
    assert_eq!(count(3.0), count(60.0));
}

#[test]
fn the_counter_sees_a_per_step_allocation() {
    // Guard against a counter that cannot fail: a loop that allocates is seen.
    let per_step = |n: usize| {
        allocations_during(|| {
            for i in 0..n {
                std::hint::black_box(vec![i as f64; 4]);
            }
        })
    };
    assert!(per_step(100) < per_step(1000));
}

#[test]
fn network_allocations_do_not_grow_with_steps() {
    // The deferred W-gradient buffers are made once per solve by `new_work`.
    let m = revode_model::HhNetwork::with_neurons(5).unwrap();
    let (u0, p) = (m.default_u0(), m.default_params());
    let loss = Loss::Final {
        weights: vec![1.0; 20],
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for schedule in [Schedule::All, Schedule::Every(1), Schedule::Every(37)] {
            let count = |n: usize| {
                let grid = TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap();
                let problem = FixedProblem {
                    u0: &u0,
                    params: &p,
                    grid,
                    method,
                };
                allocations_during(|| {
                    gradient_fixed(&m, &problem, &loss, schedule).unwrap();
                })
            };
            let (small, large) = (count(1_001), count(20_003));
            assert!(small > 0);
            // A store from 1 MiB on (here `all` and `every 1` at 20 003
            // steps) is mapped, not allocated: one allocation fewer.
            let mapped = usize::from(
                schedule.bytes_needed(20_003, 20) >= revode_checkpoint::spare::HUGE_PAGE_FROM_BYTES
                    && cfg!(target_os = "linux"),
            );
            assert_eq!(small, large + mapped, "{method:?} {schedule:?}");
        }
        let grid = TimeGrid::new(0.0, 5.0, 1e-3).unwrap();
        let forward = |grid: &TimeGrid| {
            allocations_during(|| {
                solve_fixed(&m, method, grid, &u0, &p, None).unwrap();
            })
        };
        let long = TimeGrid::new(0.0, 50.0, 1e-3).unwrap();
        assert_eq!(forward(&grid), forward(&long), "{method:?} forward");
    }
}

#[test]
fn stimulus_allocations_do_not_grow_with_steps() {
    // The same protocol (three switches, one off the grid) over spans of
    // 1 000 and 20 000 steps: segment vectors are made once per solve.
    let m = Predator;
    let (u0, p) = (m.default_u0(), m.default_params());
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[0.0, 0.5], [0.2003, 1.1], [0.6, 0.3]],
        }],
    };
    let loss = Loss::Final {
        weights: vec![1.0, 1.0],
    };
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for schedule in [
            Schedule::All,
            Schedule::Every(9),
            Schedule::BudgetBytes(50 * 24),
        ] {
            let count = |n: usize| {
                let problem = FixedProblem {
                    u0: &u0,
                    params: &p,
                    grid: TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap(),
                    method,
                };
                allocations_during(|| {
                    gradient_fixed_with_stimulus(&m, &problem, &stimulus, &loss, schedule).unwrap();
                    gradient_continuous_fixed_with_stimulus(
                        &m, &problem, &stimulus, &loss, schedule,
                    )
                    .unwrap();
                    solve_fixed_with_stimulus(&m, method, &problem.grid, &u0, &p, &stimulus, None)
                        .unwrap();
                })
            };
            assert_eq!(count(1_000), count(20_000), "{method:?} {schedule:?}");
        }
    }
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let count = |t1: f64| {
        let problem = AdaptiveProblem {
            u0: &u0,
            params: &p,
            t0: 0.0,
            t1,
            options: &options,
        };
        allocations_during(|| {
            gradient_continuous_with_stimulus(
                &m,
                &problem,
                &stimulus,
                &loss,
                &ContinuousOptions::default(),
                Schedule::BudgetBytes(4096),
            )
            .unwrap();
        })
    };
    assert_eq!(count(3.0), count(60.0), "dopri5");
}
