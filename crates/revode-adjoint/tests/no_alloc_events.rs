//! Steps with events allocate nothing: the allocations of a whole solve or
//! gradient of a spiking model do not grow with the number of steps (nor
//! with the number of events, which grows with them).

mod event_models;

use event_models::AdaptiveLif;
use revode_adjoint::{gradient_fixed, loss_fixed, FixedProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{solve_fixed, FixedMethod, TimeGrid};
use revode_testing::alloc::{allocations_during, counting_is_active, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const P: [f64; 6] = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];

fn problem(method: FixedMethod, n: usize) -> (TimeGrid, FixedMethod) {
    (TimeGrid::new(0.0, n as f64 * 1e-2, 1e-2).unwrap(), method)
}

#[test]
fn gradients_with_events_allocate_independently_of_steps() {
    assert!(counting_is_active());
    let u0 = [0.0, 0.0];
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        for schedule in [
            Schedule::All,
            Schedule::Every(10),
            Schedule::BudgetBytes(100 * 24),
        ] {
            for loss in [
                Loss::Final {
                    weights: vec![1.0, 0.5],
                },
                Loss::EventTimes {
                    event: 0,
                    times: vec![5.0],
                },
            ] {
                let count = |n: usize| {
                    let (grid, method) = problem(method, n);
                    let fp = FixedProblem {
                        u0: &u0,
                        params: &P,
                        grid,
                        method,
                    };
                    let mut events = 0;
                    let allocations = allocations_during(|| {
                        let g = gradient_fixed(&AdaptiveLif, &fp, &loss, schedule).unwrap();
                        events = g.stats.events.unwrap();
                    });
                    (allocations, events)
                };
                let (small, few) = count(1_000);
                let (large, many) = count(20_000);
                assert!(many > 10 * few.max(1), "{few} vs {many} events");
                assert_eq!(small, large, "{method:?} {schedule:?} {}", loss.name());
            }
        }
    }
}

#[test]
fn solves_and_losses_with_events_allocate_independently_of_steps() {
    let u0 = [0.0, 0.0];
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let count = |n: usize| {
            let (grid, method) = problem(method, n);
            let fp = FixedProblem {
                u0: &u0,
                params: &P,
                grid,
                method,
            };
            let loss = Loss::EventTimes {
                event: 0,
                times: vec![5.0],
            };
            allocations_during(|| {
                solve_fixed(&AdaptiveLif, method, &grid, &u0, &P, None).unwrap();
                loss_fixed(&AdaptiveLif, &fp, &loss).unwrap();
            })
        };
        assert_eq!(count(1_000), count(20_000), "{method:?}");
    }
}

#[test]
fn continuous_gradients_with_events_allocate_independently_of_steps() {
    use revode_adjoint::{gradient_continuous, AdaptiveProblem, ContinuousOptions};
    use revode_forward::AdaptiveOptions;
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    for schedule in [
        Schedule::All,
        Schedule::Every(4),
        Schedule::BudgetBytes(8192),
    ] {
        let count = |t1: f64| {
            let problem = AdaptiveProblem {
                u0: &[0.0, 0.0],
                params: &P,
                t0: 0.0,
                t1,
                options: &options,
            };
            let loss = Loss::EventTimes {
                event: 0,
                times: vec![5.0],
            };
            let mut steps = 0;
            let allocations = allocations_during(|| {
                let g = gradient_continuous(
                    &AdaptiveLif,
                    &problem,
                    &loss,
                    &ContinuousOptions::default(),
                    schedule,
                )
                .unwrap();
                steps = g.stats.steps;
            });
            (allocations, steps)
        };
        let (small, few) = count(20.0);
        let (large, many) = count(400.0);
        assert!(many > 10 * few, "{few} vs {many} steps");
        assert_eq!(small, large, "{schedule:?}: {small} vs {large}");
    }
}

#[test]
fn beuler_gradients_and_solves_with_events_allocate_independently_of_steps() {
    use revode_adjoint::{gradient_beuler_with_stimulus, loss_beuler_with_stimulus, BeulerProblem};
    use revode_forward::{solve_beuler, BeulerOptions, Stimulus};
    let u0 = [0.0, 0.0];
    let options = BeulerOptions::default();
    let none = Stimulus::none();
    for schedule in [
        Schedule::All,
        Schedule::Every(10),
        Schedule::BudgetBytes(100 * 8 * 12),
    ] {
        for loss in [
            Loss::Final {
                weights: vec![1.0, 0.5],
            },
            Loss::EventTimes {
                event: 0,
                times: vec![5.0],
            },
        ] {
            let count = |n: usize| {
                let grid = TimeGrid::new(0.0, n as f64 * 1e-2, 1e-2).unwrap();
                let bp = BeulerProblem {
                    u0: &u0,
                    params: &P,
                    grid,
                    options,
                };
                let mut events = 0;
                let allocations = allocations_during(|| {
                    let g =
                        gradient_beuler_with_stimulus(&AdaptiveLif, &bp, &none, &loss, schedule)
                            .unwrap();
                    events = g.stats.events.unwrap();
                    loss_beuler_with_stimulus(&AdaptiveLif, &bp, &none, &loss).unwrap();
                    solve_beuler(&AdaptiveLif, &options, &grid, &u0, &P, &none, None).unwrap();
                });
                (allocations, events)
            };
            let (small, few) = count(1_000);
            let (large, many) = count(20_000);
            assert!(many > 10 * few.max(1), "{few} vs {many} events");
            // A store from 1 MiB on is mapped, not taken from the heap
            // (revode_checkpoint::spare): the long run may count one less.
            assert!(
                large <= small,
                "{schedule:?} {}: {small} vs {large}",
                loss.name()
            );
        }
    }
}

#[test]
fn bdf_solves_losses_and_gradients_with_events_allocate_independently_of_steps() {
    use revode_adjoint::{
        gradient_continuous_bdf, loss_bdf_with_stimulus, BdfProblem, ContinuousOptions,
    };
    use revode_forward::{solve_bdf, BdfOptions, Stimulus};
    let options = BdfOptions::new(1e-8, 1e-8);
    let u0 = [0.0, 0.0];
    let loss = Loss::EventTimes {
        event: 0,
        times: vec![5.0],
    };
    // (Schedule::All grows its slots geometrically with the steps.)
    for schedule in [
        Schedule::Every(4),
        Schedule::Every(50),
        Schedule::BudgetBytes(16384),
    ] {
        let count = |t1: f64| {
            let problem = BdfProblem {
                u0: &u0,
                params: &P,
                t0: 0.0,
                t1,
                options: &options,
            };
            let (mut steps, mut events) = (0, 0);
            let allocations = allocations_during(|| {
                let g = gradient_continuous_bdf(
                    &AdaptiveLif,
                    &problem,
                    &loss,
                    &ContinuousOptions::default(),
                    schedule,
                )
                .unwrap();
                (steps, events) = (g.stats.steps, g.stats.events.unwrap());
            });
            (allocations, steps, events)
        };
        let (small, few, few_events) = count(20.0);
        let (large, many, many_events) = count(400.0);
        assert!(many > 10 * few, "{few} vs {many} steps");
        assert!(
            many_events > 10 * few_events.max(1),
            "{few_events} vs {many_events} events"
        );
        assert_eq!(small, large, "{schedule:?}: {small} vs {large}");
    }
    let count = |t1: f64| {
        let problem = BdfProblem {
            u0: &u0,
            params: &P,
            t0: 0.0,
            t1,
            options: &options,
        };
        allocations_during(|| {
            let none = Stimulus::none();
            solve_bdf(&AdaptiveLif, &options, 0.0, t1, &u0, &P, &none, None).unwrap();
            loss_bdf_with_stimulus(&AdaptiveLif, &problem, &none, &loss).unwrap();
        })
    };
    assert_eq!(count(20.0), count(400.0));
}
