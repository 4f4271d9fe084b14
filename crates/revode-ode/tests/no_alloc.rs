//! Proof that the compiled programs allocate nothing per call: `rhs`,
//! `vjp` and `jacobian` after `new_work`, and whole gradients whose
//! allocation count does not grow with the number of steps.

use revode_testing::alloc::{allocations_during, counting_is_active, CountingAllocator};

use revode_adjoint::{gradient_fixed, FixedProblem, Loss};
use revode_checkpoint::Schedule;
use revode_forward::{FixedMethod, TimeGrid};
use revode_model::Model;
use revode_ode::OdeModel;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn the_allocation_counter_is_active() {
    // guards the zero counts below: an allocation would be seen
    assert!(counting_is_active());
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
    // large enough to start on the interpreter while compiling natively
    out.push(OdeModel::from_str(&revode_ode::synthetic::hh_cable(200)).unwrap());
    // both backends
    let interpreted: Vec<OdeModel> = out.iter().map(|m| m.clone().interpreted()).collect();
    out.extend(interpreted);
    out
}

#[test]
fn rhs_vjp_and_jacobian_allocate_nothing() {
    for m in models() {
        let (u, p) = (m.default_u0(), m.default_params());
        let n = u.len();
        // as steppers do (JacobianEval): the pattern, then the work
        let nnz = m.jacobian_pattern().unwrap().nnz();
        let mut work = m.new_work();
        let (mut du, mut out) = (vec![0.0; n], vec![0.0; n]);
        let mut acc = vec![0.0; p.len()];
        let mut jac = vec![0.0; nnz];
        let lambda = vec![0.5; n];
        let calls = if n > 100 { 20 } else { 1000 };
        let mut calls_allocate = || {
            allocations_during(|| {
                for k in 0..calls {
                    let t = k as f64 * 1e-3;
                    m.rhs(t, &u, &p, &mut du, &mut work);
                    m.vjp(t, &u, &p, &lambda, &mut out, 0.5, &mut acc, &mut work);
                    m.jacobian(t, &u, &p, &mut jac, &mut work);
                }
            })
        };
        // a work made while native code compiles serves both backends
        assert_eq!(calls_allocate(), 0, "{}", m.name());
        m.wait_for_native_code();
        assert_eq!(calls_allocate(), 0, "{} (native)", m.name());
    }
}

fn gradient_allocations(m: &OdeModel, method: FixedMethod, steps: usize) -> usize {
    let (u0, p) = (m.default_u0(), m.default_params());
    // a step the stiffest shipped model (hh_cable, eigenvalues near −2000/ms)
    // takes stably with Euler
    let dt = 1e-4;
    let grid = TimeGrid::new(0.0, steps as f64 * dt, dt).unwrap();
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
        // a work made while native code compiles holds more buffers: compare
        // runs made in the same state
        m.wait_for_native_code();
        for method in [FixedMethod::Euler, FixedMethod::Rk4] {
            let short = gradient_allocations(&m, method, 256);
            let long = gradient_allocations(&m, method, 4096);
            // a store from 1 MiB on is mapped, not taken from the heap
            // (revode_checkpoint::spare), so the long run may count one less
            assert!(long <= short, "{} {method:?}: {long} > {short}", m.name());
        }
    }
}
