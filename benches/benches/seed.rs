//! The seed problem: HH, explicit Euler, dt = 0.01 over [0, 600] (60 000 steps).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use revode::checkpoint::Schedule;
use revode::prelude::*;

fn seed(c: &mut Criterion) {
    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let grid = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
    let n = grid.n_steps();
    let sqrt_n = (n as f64).sqrt().ceil() as usize;
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let mut group = c.benchmark_group("hh_seed_euler");
    group.sample_size(30);
    group.bench_function("forward", |b| {
        b.iter(|| {
            solve_fixed(
                &model,
                FixedMethod::Euler,
                &grid,
                black_box(&u0),
                black_box(&p),
                None,
            )
            .unwrap()
        })
    });
    for (label, schedule) in [
        ("gradient_all", Schedule::All),
        ("gradient_every_sqrt_n", Schedule::Every(sqrt_n)),
        ("gradient_budget_64k", Schedule::BudgetBytes(64 << 10)),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let problem = FixedProblem {
                    u0: black_box(&u0),
                    params: black_box(&p),
                    grid,
                    method: FixedMethod::Euler,
                };
                gradient_fixed(&model, &problem, &loss, schedule).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seed);
criterion_main!(benches);
