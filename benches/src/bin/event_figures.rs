//! The cost of events, as JSON (medians of wall time: run it on a quiet
//! machine):
//!
//! * a `global` that never fires: `models/adex.ode` with its spike line
//!   against the same file without it, threshold out of reach, forward and
//!   gradient, Euler and RK4 (target: a small fraction more);
//! * a spiking solve: the same model firing (I = 800 pA), per event;
//! * the Izhikevich spike-time gradient, rk4 and dopri5.
//!
//! `cargo run --release -p revode-benches --bin event_figures [-- --repeat N]`

use revode::adjoint::{gradient_continuous, AdaptiveProblem, ContinuousOptions};
use revode::checkpoint::Schedule;
use revode::forward::AdaptiveOptions;
use revode::model::OdeModel;
use revode::prelude::*;
use revode_benches::median_seconds;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Forward and gradient medians (seconds) over [0, t1] at dt = 0.005.
fn fixed(m: &OdeModel, p: &[f64], method: FixedMethod, t1: f64, repeat: usize) -> [f64; 2] {
    let u0 = m.default_u0();
    let grid = TimeGrid::new(0.0, t1, 0.005).unwrap();
    let loss = Loss::Final {
        weights: vec![1.0; m.dims().n_states],
    };
    let problem = FixedProblem {
        u0: &u0,
        params: p,
        grid,
        method,
    };
    let forward = median_seconds(repeat, || {
        std::hint::black_box(solve_fixed(m, method, &grid, &u0, p, None).unwrap());
    });
    let gradient = median_seconds(repeat, || {
        std::hint::black_box(gradient_fixed(m, &problem, &loss, Schedule::Every(1000)).unwrap());
    });
    [forward, gradient]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(21);
    let text = std::fs::read_to_string(repo("models/adex.ode")).unwrap();
    let with_event = OdeModel::from_str(&text).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("global"))
        .map(|l| format!("{l}\n"))
        .collect();
    let without = OdeModel::from_str(&without).unwrap();
    assert_eq!((with_event.n_events(), without.n_events()), (1, 0));
    let mut quiet = with_event.default_params();
    *quiet.last_mut().unwrap() = 200.0; // I: below rheobase, no spike
    let mut never = serde_json::Map::new();
    for method in [FixedMethod::Euler, FixedMethod::Rk4] {
        let [f0, g0] = fixed(&without, &quiet, method, 3000.0, repeat);
        let [f1, g1] = fixed(&with_event, &quiet, method, 3000.0, repeat);
        never.insert(
            method.name().to_string(),
            serde_json::json!({
                "forward_s": {"without_global": f0, "never_firing_global": f1, "ratio": f1 / f0},
                "gradient_s": {"without_global": g0, "never_firing_global": g1, "ratio": g1 / g0},
            }),
        );
    }
    let firing = with_event.default_params();
    let [f_fire, g_fire] = fixed(&with_event, &firing, FixedMethod::Rk4, 3000.0, repeat);

    let izh = OdeModel::from_file(repo("models/izhikevich.ode")).unwrap();
    let p = izh.default_params();
    let u0 = izh.default_u0();
    let loss = Loss::EventTimes {
        event: 0,
        times: vec![10.0, 40.0, 80.0, 120.0],
    };
    let grid = TimeGrid::new(0.0, 200.0, 0.01).unwrap();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Rk4,
    };
    let izh_rk4 = median_seconds(repeat, || {
        std::hint::black_box(gradient_fixed(&izh, &problem, &loss, Schedule::All).unwrap());
    });
    let options = AdaptiveOptions::new(1e-8, 1e-8);
    let adaptive = AdaptiveProblem {
        u0: &u0,
        params: &p,
        t0: 0.0,
        t1: 200.0,
        options: &options,
    };
    let adjoint = ContinuousOptions::default();
    let izh_dopri5 = median_seconds(repeat, || {
        std::hint::black_box(
            gradient_continuous(&izh, &adaptive, &loss, &adjoint, Schedule::All).unwrap(),
        );
    });
    let figures = serde_json::json!({
        "never_firing_global": {
            "problem": "adex.ode, I = 200 pA (no spike), dt = 0.005 over 3000 ms, final loss, every 1000",
            "by_method": never,
        },
        "firing_adex_rk4": {"forward_s": f_fire, "gradient_s": g_fire},
        "izhikevich_spike_time_gradient_s": {"rk4_dt_0.01": izh_rk4, "dopri5_1e-8": izh_dopri5},
        "repeat": repeat,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
