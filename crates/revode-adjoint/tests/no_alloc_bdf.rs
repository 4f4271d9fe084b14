//! Proof that BDF's forward and backward step loops allocate nothing: the
//! heap allocations of a whole BDF solve or gradient do not grow with the
//! number of steps.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

mod stiff;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use revode_adjoint::{
    gradient_continuous_bdf, gradient_continuous_bdf_with_stimulus, loss_bdf_with_stimulus,
    BdfProblem, ContinuousOptions, ErrorControl, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{solve_bdf, BdfOptions, LinearSolver, Stimulus, StimulusTrack};
use revode_model::Model;
use revode_testing::Robertson;

struct Counting;

thread_local! {
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

#[test]
fn bdf_allocations_do_not_grow_with_steps() {
    let m = Robertson::SPARSE;
    let (u0, p) = (m.default_u0(), m.default_params());
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[0.5, 0.05], [2.0, 0.04]],
        }],
    };
    for linear in [LinearSolver::Dense, LinearSolver::Sparse] {
        let mut options = BdfOptions::new(1e-7, 1e-10);
        options.linear_solver = linear;
        let count = |t1: f64, steps: &mut usize| {
            let problem = BdfProblem {
                u0: &u0,
                params: &p,
                t0: 0.0,
                t1,
                options: &options,
            };
            let trace = Loss::TraceMse {
                component: 1,
                times: vec![0.3, t1 / 2.0],
                values: vec![1e-5, 1e-6],
            };
            let fin = Loss::Final {
                weights: vec![0.0, 1.0, 1.0],
            };
            let mu = ContinuousOptions {
                error_control: ErrorControl::LambdaAndMu,
                ..ContinuousOptions::default()
            };
            allocations_during(|| {
                let g = gradient_continuous_bdf(
                    &m,
                    &problem,
                    &fin,
                    &ContinuousOptions::default(),
                    Schedule::BudgetBytes(8192),
                )
                .unwrap();
                *steps = g.stats.steps;
                gradient_continuous_bdf_with_stimulus(
                    &m,
                    &problem,
                    &stimulus,
                    &trace,
                    &mu,
                    Schedule::BudgetBytes(8192),
                )
                .unwrap();
                loss_bdf_with_stimulus(&m, &problem, &stimulus, &trace).unwrap();
                solve_bdf(&m, &options, 0.0, t1, &u0, &p, &stimulus, None).unwrap();
            })
        };
        let (mut short, mut long) = (0, 0);
        let a = count(10.0, &mut short);
        let b = count(4e5, &mut long);
        assert!(long > 2 * short, "{short} vs {long} steps");
        assert_eq!(a, b, "{linear:?}: {short} vs {long} steps");
    }
}
