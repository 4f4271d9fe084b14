//! Proof that `Model::jacobian` of the built-in models allocates nothing:
//! implicit steppers call it inside their step loop.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use revode_model::{HhNetwork, HodgkinHuxley, JacobianEval, JacobianSource, Model};

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

/// Allocations of `calls` Jacobian evaluations, directly and through a
/// `JacobianEval`, with everything set up beforehand.
fn jacobian_allocations<M: Model>(model: &M, calls: usize) -> (usize, usize) {
    let pattern = model.jacobian_pattern().expect("a built-in Jacobian");
    let (u, p) = (model.default_u0(), model.default_params());
    let mut work = model.new_work();
    let mut values = vec![0.0; pattern.nnz()];
    let mut eval = JacobianEval::new(model);
    assert_eq!(eval.source(), JacobianSource::Model);
    let direct = allocations_during(|| {
        for k in 0..calls {
            model.jacobian(k as f64, &u, &p, &mut values, &mut work);
        }
    });
    let through_eval = allocations_during(|| {
        for k in 0..calls {
            eval.eval(k as f64, &u, &p, &mut values);
        }
    });
    assert!(values.iter().all(|v| v.is_finite()));
    (direct, through_eval)
}

#[test]
fn hh_jacobian_allocates_nothing() {
    assert_eq!(jacobian_allocations(&HodgkinHuxley, 1000), (0, 0));
}

#[test]
fn network_jacobian_allocates_nothing() {
    for n in [1, 7, 40] {
        let net = HhNetwork::with_neurons(n).unwrap();
        assert_eq!(jacobian_allocations(&net, 200), (0, 0), "n = {n}");
    }
}

#[test]
fn the_counter_sees_allocations() {
    // guards the tests above: an allocating call would be counted
    let counted = allocations_during(|| {
        let _ = std::hint::black_box(HodgkinHuxley.jacobian_pattern());
    });
    assert!(counted > 0);
}
