//! Backward Euler allocates nothing per step: the heap allocations of a
//! whole forward solve or gradient do not grow with the number of steps,
//! for every schedule, dense and sparse factors, with and without a
//! stimulus (the sparse factors' room is reserved at the first
//! factorisation for any pivoting, so they never grow later).
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::Predator;
use revode_adjoint::{gradient_beuler_with_stimulus, BeulerProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{
    solve_beuler, BeulerOptions, LinearSolver, Stimulus, StimulusTrack, TimeGrid,
};
use revode_model::{HhNetwork, HodgkinHuxley, Model};

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not see each other.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A stimulus of parameter `param` switching every 0.25 time units.
fn pulses(param: usize, value: f64, t1: f64) -> Stimulus {
    let switches = (1..)
        .map(|j| j as f64 * 0.25)
        .take_while(|&t| t < t1)
        .enumerate()
        .map(|(j, t)| [t, if j % 2 == 0 { 1.5 * value } else { value }])
        .collect();
    Stimulus {
        tracks: vec![StimulusTrack { param, switches }],
    }
}

fn gradient_allocations<M: Model>(
    m: &M,
    linear: LinearSolver,
    schedule: Schedule,
    stimulated: bool,
    n: usize,
) -> usize {
    let (u0, p) = (m.default_u0(), m.default_params());
    let dt = 1e-3;
    let grid = TimeGrid::new(0.0, n as f64 * dt, dt).unwrap();
    assert_eq!(grid.n_steps(), n);
    // The pulses stop at t = 1, so both lengths see the same switches.
    let stimulus = if stimulated {
        pulses(0, p[0], 1.0)
    } else {
        Stimulus::none()
    };
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: BeulerOptions {
            linear_solver: linear,
            ..BeulerOptions::default()
        },
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; m.dims().n_states],
    };
    allocations_during(|| {
        gradient_beuler_with_stimulus(m, &problem, &stimulus, &loss, schedule).unwrap();
    })
}

#[test]
fn beuler_gradient_allocations_do_not_grow_with_steps() {
    for schedule in [
        Schedule::All,
        Schedule::Every(10),
        Schedule::Every(64),
        Schedule::BudgetBytes(10 * 8 * (4 * 4 + 4 + 1)),
        Schedule::BudgetBytes(1000 * 8 * (4 * 4 + 4 + 1)),
    ] {
        for stimulated in [false, true] {
            let small = gradient_allocations(
                &HodgkinHuxley,
                LinearSolver::Auto,
                schedule,
                stimulated,
                2_000,
            );
            let large = gradient_allocations(
                &HodgkinHuxley,
                LinearSolver::Auto,
                schedule,
                stimulated,
                20_000,
            );
            assert!(small > 0, "the counter must see the set-up allocations");
            // A store from 1 MiB on is mapped, not taken from the heap
            // (revode_checkpoint::spare): the long run may count one less.
            assert!(
                large <= small,
                "HH {schedule:?} stimulus {stimulated}: {small} vs {large}"
            );
        }
        let small = gradient_allocations(&Predator, LinearSolver::Dense, schedule, false, 2_000);
        let large = gradient_allocations(&Predator, LinearSolver::Dense, schedule, false, 20_000);
        assert!(large <= small, "predator {schedule:?}: {small} vs {large}");
    }
    // 12 states: residuals by VJP, sparse factors.
    let net = HhNetwork::with_neurons(3).unwrap();
    for linear in [LinearSolver::Dense, LinearSolver::Sparse] {
        for schedule in [Schedule::All, Schedule::Every(50)] {
            let small = gradient_allocations(&net, linear, schedule, false, 2_000);
            let large = gradient_allocations(&net, linear, schedule, false, 20_000);
            assert!(
                large <= small,
                "network {linear:?} {schedule:?}: {small} vs {large}"
            );
        }
    }
}

#[test]
fn beuler_solve_allocations_do_not_grow_with_steps() {
    let net = HhNetwork::with_neurons(3).unwrap();
    let count = |m: &dyn Fn(usize) -> usize, n| m(n);
    let hh = |n: usize| {
        let m = HodgkinHuxley;
        let (u0, p) = (m.default_u0(), m.default_params());
        let grid = TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap();
        allocations_during(|| {
            solve_beuler(
                &m,
                &BeulerOptions::default(),
                &grid,
                &u0,
                &p,
                &pulses(2, p[2], 1.0),
                None,
            )
            .unwrap();
        })
    };
    let sparse = |n: usize| {
        let (u0, p) = (net.default_u0(), net.default_params());
        let grid = TimeGrid::new(0.0, n as f64 * 1e-3, 1e-3).unwrap();
        let options = BeulerOptions {
            linear_solver: LinearSolver::Sparse,
            ..BeulerOptions::default()
        };
        allocations_during(|| {
            solve_beuler(&net, &options, &grid, &u0, &p, &Stimulus::none(), None).unwrap();
        })
    };
    assert_eq!(count(&hh, 2_000), count(&hh, 50_000), "HH");
    let (small, large) = (count(&sparse, 2_000), count(&sparse, 20_000));
    assert!(large <= small, "sparse: {small} vs {large}");
}
