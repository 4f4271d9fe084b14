//! Proof that `Model::jacobian` of the built-in models allocates nothing:
//! implicit steppers call it inside their step loop.

use revode_testing::alloc::{allocations_during, counting_is_active, CountingAllocator};

use revode_model::{HhNetwork, HodgkinHuxley, JacobianEval, JacobianSource, Model};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

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
fn the_allocation_counter_is_active() {
    // guards the zero counts above: an allocation would be seen
    assert!(counting_is_active());
}
