//! `hh_network`, Euler dt = 0.01 over [0, 100], loss Σ E_i(100): forward and
//! gradient for N = 10 and 50 (the JSON figures, N up to 100, come from the
//! `network_figures` binary).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use revode::checkpoint::Schedule;
use revode::prelude::*;

fn network(c: &mut Criterion) {
    let mut group = c.benchmark_group("hh_network_euler");
    group.sample_size(10);
    for n in [10, 50] {
        let model = HhNetwork::with_neurons(n).unwrap();
        let (u0, p) = (model.default_u0(), model.default_params());
        let grid = TimeGrid::new(0.0, 100.0, 0.01).unwrap();
        let weights = (0..4 * n)
            .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
            .collect();
        let loss = Loss::Final { weights };
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method: FixedMethod::Euler,
        };
        group.bench_function(format!("forward_n{n}"), |b| {
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
        group.bench_function(format!("gradient_n{n}"), |b| {
            b.iter(|| gradient_fixed(&model, black_box(&problem), &loss, Schedule::All).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, network);
criterion_main!(benches);
