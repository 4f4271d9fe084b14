//! revode's backward Euler figures for the stiff benchmarks (issue #15), in
//! the peers' record schema (benches/peers/README.md, "JSON of revode's stiff
//! bench binaries"), as one JSON object on stdout:
//!
//! - `hh_cable_100`, `hh_cable_1000`: the HH cable (models/hh_cable.ode for
//!   100 compartments, the flat generator models/make_hh_cable.py for 1 000),
//!   beuler dt 0.025 over [0, 100] ms, 0.05 nA into compartment 1 on
//!   [5, 95) ms, loss = Σ_k V_far(t_k), discrete adjoint, default
//!   checkpoints (all states for 100 compartments, every 64th for 1 000);
//! - `hh_seed_euler`, `hh_seed_beuler`: the seed problem (HH, 600 ms,
//!   dt 0.01, final loss) with explicit and backward Euler, for the
//!   "beuler forward ≤ 4× Euler's" target.
//!
//! `forward_ms` is the loss alone (one forward solve, nothing stored),
//! `gradient_ms` the loss and its gradient; both medians of `n_timed` calls
//! after one warm-up, with the model's native code compiled.
//! `first_call_ms` is what a new process pays: reading and compiling the
//! model file plus the first gradient.
//!
//! `cargo run --release -p revode-benches --bin stiff_figures [-- --quick] [--reps N] [--only TEXT]`
//!
//! `--quick`: cable over [0, 10] ms (400 steps), seed over [0, 6] ms.

use std::time::Instant;

use revode::{ModelSpec, Problem, StimulusSpec};
use revode_benches::{cable_problem, fixture, median_seconds, peak_rss_bytes};
use serde_json::{json, Value};

struct Options {
    quick: bool,
    reps: Option<usize>,
    only: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Options {
        quick: args.iter().any(|a| a == "--quick"),
        reps: value("--reps").map(|s| s.parse().expect("--reps takes a number")),
        only: value("--only"),
    }
}

/// Waits for a model file's background-compiled native code, so that
/// timings are of the native code, not the interpreter.
fn wait_native(problem: &Problem) {
    if let ModelSpec::File(file) = &problem.model {
        file.model().expect("loaded").wait_for_native_code();
    }
}

fn time_problem(problem: &Problem, reps: usize) -> (f64, f64) {
    wait_native(problem);
    let forward = median_seconds(reps, || {
        std::hint::black_box(revode::loss(problem).expect("forward"));
    });
    let gradient = median_seconds(reps, || {
        std::hint::black_box(revode::gradient(problem).expect("gradient"));
    });
    (forward * 1e3, gradient * 1e3)
}

fn cable_record(n: usize, quick: bool, reps: usize) -> Value {
    let name = format!("hh_cable_{n}");
    let started = Instant::now();
    let (mut problem, _guard) = cable_problem(n);
    if quick {
        problem.tspan = [0.0, 10.0];
        problem.stimulus = Some(StimulusSpec::new().with("I_inj", &[[0.0, 0.0], [5.0, 0.05]]));
    }
    let first = match revode::gradient(&problem) {
        Ok(g) => g,
        Err(e) => return json!({"engine": "revode", "problem": name, "error": e.to_string()}),
    };
    let first_call_ms = started.elapsed().as_secs_f64() * 1e3;
    let (forward_ms, gradient_ms) = time_problem(&problem, reps);
    // On a rayon pool's thread the backward sweep keeps to one thread.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread");
    let (g_one, gradient_one_thread_ms) = one_thread.install(|| {
        let ms = 1e3
            * median_seconds(reps, || {
                std::hint::black_box(revode::gradient(&problem).expect("gradient"));
            });
        (revode::gradient(&problem).expect("gradient"), ms)
    });
    let g = revode::gradient(&problem).expect("gradient");
    assert_eq!(
        g.loss.to_bits(),
        first.loss.to_bits(),
        "native and interpreted agree"
    );
    let bits = |x: &[f64]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&g.gradient),
        bits(&g_one.gradient),
        "one thread and two agree bitwise"
    );
    let every = 40;
    let far_v = 4 * (n - 1);
    let trace: Vec<f64> = revode::solve(&problem, Some(every))
        .expect("solve")
        .samples
        .iter()
        .map(|row| row[1 + far_v])
        .collect();
    let implicit = g.stats.implicit;
    json!({
        "engine": "revode",
        "problem": name,
        "method": "beuler_discrete_adjoint",
        "config": format!(
            "backward Euler dt = 0.025, modified Newton (newton_tol 1e-10), {} LU, discrete adjoint by the implicit function theorem, checkpoints {:?} (the default: all states when they fit in 256 MiB); model file {} (native code)",
            implicit.map(|i| i.linear_solver).unwrap_or("?"),
            problem.schedule_for(g.stats.steps, 4 * n, 0),
            if n == 100 { "models/hh_cable.ode (arrays)" } else { "from models/make_hh_cable.py" },
        ),
        "forward_ms": forward_ms,
        "gradient_ms": gradient_ms,
        "ratio_gradient_to_forward": gradient_ms / forward_ms,
        "gradient_one_thread_ms": gradient_one_thread_ms,
        "ratio_one_thread_gradient_to_forward": gradient_one_thread_ms / forward_ms,
        "first_call_ms": first_call_ms,
        "n_timed": reps,
        "loss": g.loss,
        "grad": &g.gradient[..3 * n],
        "grad_all_finite": g.gradient.iter().all(|x| x.is_finite()),
        "n_params": 3 * n,
        "steps": g.stats.steps,
        "peak_store_bytes": g.stats.peak_store_bytes,
        "implicit": implicit,
        "trace_far_end_v": trace,
        "trace_every": every,
        "peak_rss_bytes": peak_rss_bytes(),
    })
}

fn seed_records(quick: bool, reps: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut euler_ms = None;
    for (label, solver) in [
        ("hh_seed_euler", json!({"method": "euler", "dt": 0.01})),
        ("hh_seed_beuler", json!({"method": "beuler", "dt": 0.01})),
    ] {
        let mut problem = fixture("hh_seed.json");
        problem.solver = serde_json::from_value(solver).expect("solver");
        if quick {
            problem.tspan = [0.0, 6.0];
        }
        let started = Instant::now();
        let g = match revode::gradient(&problem) {
            Ok(g) => g,
            Err(e) => {
                out.push(json!({"engine": "revode", "problem": label, "error": e.to_string()}));
                continue;
            }
        };
        let first_call_ms = started.elapsed().as_secs_f64() * 1e3;
        let (forward_ms, gradient_ms) = time_problem(&problem, reps);
        let euler_forward = *euler_ms.get_or_insert(forward_ms);
        out.push(json!({
            "engine": "revode",
            "problem": label,
            "method": format!("{}_discrete_adjoint", problem.solver.name()),
            "config": format!("{} dt = 0.01 over [0, {}] ms, loss final, checkpoints default", problem.solver.name(), problem.tspan[1]),
            "forward_ms": forward_ms,
            "gradient_ms": gradient_ms,
            "ratio_gradient_to_forward": gradient_ms / forward_ms,
            "forward_vs_euler_forward": forward_ms / euler_forward,
            "first_call_ms": first_call_ms,
            "n_timed": reps,
            "loss": g.loss,
            "grad": g.gradient,
            "steps": g.stats.steps,
            "peak_store_bytes": g.stats.peak_store_bytes,
            "implicit": g.stats.implicit,
        }));
    }
    out
}

fn main() {
    let o = options();
    let wanted = |name: &str| o.only.as_deref().is_none_or(|w| name.contains(w));
    let mut records = Vec::new();
    if wanted("hh_seed") {
        eprintln!("stiff_figures: seed problem");
        records.extend(seed_records(o.quick, o.reps.unwrap_or(21)));
    }
    for (n, reps) in [(100, 21), (1000, 5)] {
        if wanted(&format!("hh_cable_{n}")) {
            eprintln!("stiff_figures: cable of {n} compartments");
            records.push(cable_record(n, o.quick, o.reps.unwrap_or(reps)));
        }
    }
    let doc = json!({
        "engine": "revode",
        "bench": "stiff_figures",
        "quick": o.quick,
        "version": env!("CARGO_PKG_VERSION"),
        "timing": "forward_ms: the loss alone (one forward solve); gradient_ms: loss and gradient (the cable's backward sweep on two threads, gradient_one_thread_ms on one); medians after one warm-up, native code compiled",
        "records": records,
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}
