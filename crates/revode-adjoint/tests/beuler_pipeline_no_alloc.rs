//! The backward Euler sweep on two threads allocates nothing per step on
//! either thread: the allocations of a whole gradient, counted across all
//! threads (this file holds one test, so nothing else runs beside it), do
//! not grow with the number of steps.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use revode_adjoint::{gradient_beuler_with, BackwardThreads, BeulerProblem, Loss, TransposedSolve};
use revode_checkpoint::Schedule;
use revode_forward::{BeulerOptions, LinearSolver, Stimulus, StimulusTrack, TimeGrid};
use revode_model::{HhNetwork, Model};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counter is an
// atomic, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn gradient_allocations(threads: BackwardThreads, schedule: Schedule, n: usize) -> usize {
    let net = HhNetwork::with_neurons(8).unwrap();
    assert!(net.dims().n_states >= revode_adjoint::SCHEDULED_MIN_STATES);
    let (u0, p) = (net.default_u0(), net.default_params());
    let dt = 1e-3;
    let grid = TimeGrid::new(0.0, n as f64 * dt, dt).unwrap();
    // A switch in both runs, so both see the same parameter vectors.
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[0.5, 1.2 * p[0]]],
        }],
    };
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: BeulerOptions {
            linear_solver: LinearSolver::Sparse,
            ..BeulerOptions::default()
        },
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; net.dims().n_states],
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let g = gradient_beuler_with(
        &net,
        &problem,
        &stimulus,
        &loss,
        schedule,
        TransposedSolve::Auto,
        threads,
    )
    .unwrap();
    let count = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let expected = if threads == BackwardThreads::Two {
        2
    } else {
        1
    };
    assert_eq!(g.stats.implicit.unwrap().backward.threads, expected);
    count
}

#[test]
fn pipelined_gradients_allocate_independently_of_steps_on_both_threads() {
    for threads in [BackwardThreads::One, BackwardThreads::Two] {
        for schedule in [
            Schedule::All,
            Schedule::Every(50),
            Schedule::BudgetBytes(1 << 20),
        ] {
            // A first run sets up what is made once per process.
            gradient_allocations(threads, schedule, 1_000);
            let small = gradient_allocations(threads, schedule, 2_000);
            let large = gradient_allocations(threads, schedule, 20_000);
            assert!(small > 0, "the counter must see the set-up allocations");
            // Two threads: each of the two channels makes its list of
            // waiting threads the first time one sleeps on it, which the
            // timing decides (at most twice each, whatever the steps).
            let slack = if threads == BackwardThreads::Two {
                4
            } else {
                0
            };
            assert!(
                large <= small + slack,
                "{threads:?} {schedule:?}: {small} vs {large}"
            );
        }
    }
}
