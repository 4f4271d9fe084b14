//! Memory-budgeted checkpointing figures as JSON: HH, Euler dt = 0.01 over
//! [0, 60000] (6·10⁶ steps) with a 64 KiB store budget: forward and gradient
//! medians, their ratio, recomputed steps against the binomial optimum, peak
//! store bytes and peak RSS; plus the online (unknown-N) scheme's
//! recomputation for the same N and budget.
//!
//! `cargo run --release -p revode-benches --bin budget_figures [-- --t1 T --budget B --repeat R]`

use revode::checkpoint::binomial::{min_recomputed, slot_bytes};
use revode::checkpoint::{Chain, OnlineStore, OpenChain, Schedule};
use revode::prelude::*;
use revode_benches::{median_seconds, peak_rss_bytes};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().ok().expect("numeric argument"))
        .unwrap_or(default)
}

/// A chain that costs next to nothing: counts what a schedule recomputes.
struct Counter {
    len: usize,
    end: usize,
}

impl Chain for Counter {
    type Error = revode::checkpoint::CheckpointError;
    fn state_len(&self) -> usize {
        self.len
    }
    fn advance(&mut self, _k: usize, x: &[f64], next: &mut [f64]) -> Result<(), Self::Error> {
        next.copy_from_slice(x);
        next[0] += 1.0;
        Ok(())
    }
}

impl OpenChain for Counter {
    fn is_last(&self, _k: usize, x: &[f64]) -> bool {
        x[0] as usize == self.end
    }
}

fn main() {
    let t1: f64 = arg("--t1", 60_000.0);
    let budget: usize = arg("--budget", 64 << 10);
    let repeat: usize = arg("--repeat", 3);

    let model = HodgkinHuxley;
    let (u0, p) = (model.default_u0(), model.default_params());
    let n_states = model.dims().n_states;
    let loss = Loss::Final {
        weights: vec![1.0; n_states],
    };
    let grid = TimeGrid::new(0.0, t1, 0.01).unwrap();
    let n = grid.n_steps();
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid,
        method: FixedMethod::Euler,
    };
    let schedule = Schedule::BudgetBytes(budget);
    let (slots, _) = schedule.slots(n, n_states);

    let forward = median_seconds(repeat, || {
        std::hint::black_box(
            solve_fixed(&model, FixedMethod::Euler, &grid, &u0, &p, None).unwrap(),
        );
    });
    let mut last = None;
    let gradient = median_seconds(repeat, || {
        last = Some(gradient_fixed(&model, &problem, &loss, schedule).unwrap());
    });
    let g = last.unwrap();
    let optimum = min_recomputed(n, slots).unwrap();

    // The online scheme on the same N and budget (N unknown to the store).
    let mut store = OnlineStore::new(schedule, n_states, usize::MAX - 1).unwrap();
    let mut chain = Counter {
        len: n_states,
        end: n,
    };
    let mut end_state = vec![0.0; n_states];
    store
        .forward(&mut chain, &vec![0.0; n_states], &mut end_state, |_, _| {
            Ok(())
        })
        .unwrap();
    store.reverse(&mut chain, |_, _| Ok(())).unwrap();
    let online = store.stats();

    let figures = serde_json::json!({
        "problem": format!("HH, Euler dt=0.01, [0,{t1}], final loss"),
        "steps": n,
        "budget_bytes": budget,
        "slot_bytes": slot_bytes(n_states),
        "slots": slots,
        "forward_seconds": forward,
        "gradient_seconds": gradient,
        "gradient_forward_ratio": gradient / forward,
        "recomputed_steps": g.stats.recomputed_steps,
        "recomputed_optimum": optimum as u64,
        "recomputed_per_step": g.stats.recomputed_steps as f64 / n as f64,
        "checkpoints_kept": g.stats.checkpoints_kept,
        "peak_store_bytes": g.stats.peak_store_bytes,
        "peak_rss_bytes": peak_rss_bytes(),
        "online": {
            "recomputed_steps": online.recomputed_steps,
            "recomputed_vs_optimum": online.recomputed_steps as f64 / optimum as f64,
            "checkpoints_kept": online.checkpoints_kept,
            "peak_store_bytes": online.peak_bytes,
        },
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
}
