//! The state Jacobian of the built-in models, as implicit steppers evaluate
//! it: the hand-derived `Model::jacobian` against the fallback that
//! assembles a dense J from n VJPs (`JacobianEval` on a model that hides its
//! own), with one `rhs` call for scale. `hh` and `hh_network` N = 10, 50, 100.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use revode::model::{JacobianEval, JacobianSource};
use revode::prelude::*;
use revode_testing::VjpOnly;

fn bench_model<M: Model>(c: &mut Criterion, label: &str, model: M) {
    let mut group = c.benchmark_group(format!("jacobian_{label}"));
    let (u0, p) = (model.default_u0(), model.default_params());
    let mut own = JacobianEval::new(&model);
    assert_eq!(own.source(), JacobianSource::Model);
    let mut values = vec![0.0; own.pattern().nnz()];
    group.bench_function("own", |b| {
        b.iter(|| own.eval(0.0, black_box(&u0), black_box(&p), &mut values))
    });
    let hidden = VjpOnly(model);
    let mut assembled = JacobianEval::new(&hidden);
    assert_eq!(assembled.source(), JacobianSource::AssembledFromVjps);
    let mut dense = vec![0.0; assembled.pattern().nnz()];
    group.bench_function("assembled_from_vjps", |b| {
        b.iter(|| assembled.eval(0.0, black_box(&u0), black_box(&p), &mut dense))
    });
    let mut work = hidden.new_work();
    let mut du = vec![0.0; u0.len()];
    group.bench_function("rhs", |b| {
        b.iter(|| hidden.rhs(0.0, black_box(&u0), black_box(&p), &mut du, &mut work))
    });
    group.finish();
}

fn jacobians(c: &mut Criterion) {
    bench_model(c, "hh", HodgkinHuxley);
    for n in [10, 50, 100] {
        bench_model(
            c,
            &format!("hh_network_n{n}"),
            HhNetwork::with_neurons(n).unwrap(),
        );
    }
}

criterion_group!(benches, jacobians);
criterion_main!(benches);
