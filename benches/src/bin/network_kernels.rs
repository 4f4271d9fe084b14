//! Per-call CPU cost of the `hh_network` rhs and vjp (for tuning).
//!
//! `cargo run --release -p revode-benches --bin network_kernels`

use revode::prelude::*;
use revode_benches::median_cpu_seconds;

fn main() {
    for n in [10, 100] {
        let m = HhNetwork::with_neurons(n).unwrap();
        let (u, p) = (m.default_u0(), m.default_params());
        let mut w = m.new_work();
        let mut du = vec![0.0; u.len()];
        let lam: Vec<f64> = (0..u.len()).map(|k| 1.0 / (k + 1) as f64).collect();
        let mut acc = vec![0.0; p.len()];
        let calls = 10_000;
        let rhs = median_cpu_seconds(5, || {
            for _ in 0..calls {
                m.rhs(0.0, std::hint::black_box(&u), &p, &mut du, &mut w);
            }
        });
        let vjp = median_cpu_seconds(5, || {
            for _ in 0..calls {
                m.vjp(
                    0.0,
                    std::hint::black_box(&u),
                    &p,
                    &lam,
                    &mut du,
                    0.01,
                    &mut acc,
                    &mut w,
                );
            }
            m.flush_vjp(&mut acc, &mut w);
        });
        let hh = median_cpu_seconds(5, || {
            for _ in 0..calls * n {
                HodgkinHuxley.rhs(0.0, std::hint::black_box(&u[..4]), &p, &mut du, &mut ());
            }
        });
        let f = |s: Option<f64>| s.map_or(f64::NAN, |s| s * 1e9 / calls as f64);
        println!(
            "n = {n}: rhs {:.0} ns/call, vjp {:.0} ns/call, n × hh rhs {:.0} ns",
            f(rhs),
            f(vjp),
            f(hh)
        );
    }
}
