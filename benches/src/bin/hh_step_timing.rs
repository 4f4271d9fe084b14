//! Forward-Euler step (rhs + update) and VJP of the seed neuron, in
//! nanoseconds per call (best of 20 sweeps of 60 000 calls). Print-only:
//! figures of record are taken in a quiet window.
//!
//! `cargo run --release -p revode-benches --bin hh_step_timing`

use revode::prelude::*;

fn main() {
    use std::hint::black_box;
    let hh = HodgkinHuxley;
    let p = [70.0, 10.0, 0.05];
    let dt = 0.01;
    let steps = 60_000;
    let mut best = f64::INFINITY;
    let mut last = [0.0; 4];
    for _ in 0..20 {
        let mut u = [-59.0, 0.2, 0.9, 0.1];
        let mut du = [0.0; 4];
        let t0 = std::time::Instant::now();
        for i in 0..steps {
            hh.rhs(
                i as f64 * dt,
                black_box(&u),
                black_box(&p),
                &mut du,
                &mut (),
            );
            for k in 0..4 {
                u[k] += dt * du[k];
            }
        }
        best = best.min(t0.elapsed().as_secs_f64() / steps as f64 * 1e9);
        last = u;
    }
    println!("Euler step (rhs + update): {best:.1} ns, u(600) = {last:?}");
    let mut out = [0.0; 4];
    let mut acc = [0.0; 3];
    let l = [1.0, 0.5, -0.5, 0.25];
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t0 = std::time::Instant::now();
        for i in 0..steps {
            let e = -80.0 + 100.0 * (i as f64 / steps as f64);
            let u = [e, 0.2, 0.9, 0.1];
            hh.vjp(
                0.0,
                black_box(&u),
                &p,
                black_box(&l),
                &mut out,
                dt,
                &mut acc,
                &mut (),
            );
            black_box(&out);
        }
        best = best.min(t0.elapsed().as_secs_f64() / steps as f64 * 1e9);
    }
    println!("vjp: {best:.1} ns ({acc:?})");
}
