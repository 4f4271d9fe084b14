//! Proof that the compiled programs allocate nothing per call: `rhs` and
//! `vjp` after `new_work`, and whole gradients whose allocation count does
//! not grow with the number of steps.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use revode_adjoint::{gradient_fixed, FixedProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{FixedMethod, TimeGrid};
use revode_model::Model;
use revode_ode::OdeModel;

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

fn models() -> Vec<OdeModel> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
    let mut out: Vec<OdeModel> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ode"))
        .map(|p| OdeModel::from_file(p).unwrap())
        .collect();
    // and one with every kind of operation
    out.push(
        OdeModel::from_str(
            "par a=1.5, b=0.5\ninit x=0.3, y=-0.2\n\
             f(u) = if(u > 0 & u < 1)then(u^2)else(min(u, b) + max(u, a))\n\
             x' = -x + 0.01*(a*x/(exp(x/2)-1) + f(y) + abs(x)^1.5 + heav(y) + sign(x) + sin(t))\n\
             y' = -y + 0.01*(tanh(x)*sinh(y)/cosh(y) + atan(x) + ln(2+x) + log10(3+y) + sqrt(2+x) + sin(y)*cos(x)*tan(x))\n",
        )
        .unwrap(),
    );
    // both backends
    let interpreted: Vec<OdeModel> = out.iter().map(|m| m.clone().interpreted()).collect();
    out.extend(interpreted);
    out
}

#[test]
fn rhs_and_vjp_allocate_nothing() {
    for m in models() {
        let (u, p) = (m.default_u0(), m.default_params());
        let n = u.len();
        let mut work = m.new_work();
        let (mut du, mut out) = (vec![0.0; n], vec![0.0; n]);
        let mut acc = vec![0.0; p.len()];
        let lambda = vec![0.5; n];
        let count = allocations_during(|| {
            for k in 0..1000 {
                let t = k as f64 * 1e-3;
                m.rhs(t, &u, &p, &mut du, &mut work);
                m.vjp(t, &u, &p, &lambda, &mut out, 0.5, &mut acc, &mut work);
            }
        });
        assert_eq!(count, 0, "{}", m.name());
    }
}

fn gradient_allocations(m: &OdeModel, method: FixedMethod, steps: usize) -> usize {
    let (u0, p) = (m.default_u0(), m.default_params());
    let grid = TimeGrid::new(0.0, steps as f64 * 1e-3, 1e-3).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method,
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; m.dims().n_states],
    };
    // Count the store's slots too: none left on this thread by an earlier
    // gradient (revode_checkpoint::spare).
    revode_checkpoint::spare::release_spare();
    allocations_during(|| {
        gradient_fixed(m, &problem, &loss, Schedule::Every(16)).unwrap();
    })
}

#[test]
fn gradient_allocations_do_not_grow_with_steps() {
    for m in models() {
        for method in [FixedMethod::Euler, FixedMethod::Rk4] {
            let short = gradient_allocations(&m, method, 256);
            let long = gradient_allocations(&m, method, 4096);
            assert_eq!(short, long, "{} {method:?}", m.name());
        }
    }
}
