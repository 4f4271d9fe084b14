//! Batch throughput on the seed problem (HH, Euler dt = 0.01 over 600 ms,
//! all states kept), in problems per second: `revode::batch::gradients`
//! on `--threads T` against a loop calling `revode::gradient` one problem at
//! a time on the calling thread (what a Python loop over `revode.grad`
//! does, without Python), and the same two from the batch's JSON text
//! (parsing included, as `revode grad --batch` and a loop of `revode grad`
//! calls would). Rounds alternate the cases; medians of the rounds, with
//! page faults per member.
//!
//! `cargo run --release -p revode-benches --bin batch_figures -- [--threads T] [--members M] [--rounds R]`
//! (defaults: threads 1, 64 members, 7 rounds). Run with `--threads 1` and
//! `--threads 2`; take figures in a quiet window.

use std::hint::black_box;
use std::time::Instant;

use revode::batch::{gradients, gradients_of_members, parse_batch, Parallelism};
use revode::Problem;
use revode_benches::{fixture_path, minor_faults};
use serde_json::{json, Value};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number"))
        })
}

/// A named way to run the whole batch once.
type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Seconds and page faults of one run of `f`.
fn measure(f: &mut dyn FnMut()) -> (f64, u64) {
    let faults = minor_faults();
    let started = Instant::now();
    f();
    let seconds = started.elapsed().as_secs_f64();
    let faults = faults.zip(minor_faults()).map_or(0, |(b, a)| a - b);
    (seconds, faults)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = arg(&args, "--threads", 1).max(1);
    let members = arg(&args, "--members", 64).max(1);
    let rounds = arg(&args, "--rounds", 7).max(1);
    let seed_text = std::fs::read_to_string(fixture_path("hh_seed.json")).expect("seed fixture");
    let seed: Value = serde_json::from_str(&seed_text).expect("seed JSON");
    // Members differ in g_Na, as in a parameter sweep.
    let member_values: Vec<Value> = (0..members)
        .map(|k| {
            let mut m = seed.clone();
            m["params"] = json!([60.0 + 20.0 * k as f64 / members as f64, 10.0, 0.05]);
            m
        })
        .collect();
    let batch_text = Value::Array(member_values.clone()).to_string();
    let member_texts: Vec<String> = member_values.iter().map(Value::to_string).collect();
    let problems: Vec<Problem> = member_texts
        .iter()
        .map(|t| Problem::from_json(t, "member").expect("member parses"))
        .collect();
    let parallelism = Parallelism::Threads(threads);

    let mut cases: Vec<Case> = vec![
        (
            "one by one (revode::gradient)",
            Box::new(|| {
                for p in &problems {
                    black_box(revode::gradient(p).expect("member solves"));
                }
            }),
        ),
        (
            "batch::gradients",
            Box::new(|| {
                let r = gradients(&problems, parallelism).expect("pool starts");
                assert!(r.iter().all(Result::is_ok));
                black_box(r);
            }),
        ),
        (
            "one by one from JSON",
            Box::new(|| {
                for t in &member_texts {
                    let p = Problem::from_json(t, "member").expect("member parses");
                    black_box(revode::gradient(&p).expect("member solves"));
                }
            }),
        ),
        (
            "batch from JSON",
            Box::new(|| {
                let parsed = parse_batch(&batch_text, "batch").expect("batch parses");
                let r = gradients_of_members(parsed, parallelism).expect("pool starts");
                assert!(r.iter().all(Result::is_ok));
                black_box(r);
            }),
        ),
    ];
    for (_, f) in cases.iter_mut() {
        f(); // warm-up
    }
    let mut seconds = vec![Vec::new(); cases.len()];
    let mut faults = vec![0u64; cases.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            let (s, pf) = measure(f.as_mut());
            seconds[i].push(s);
            faults[i] += pf;
        }
    }
    let rows: Vec<Value> = cases
        .iter()
        .zip(seconds)
        .zip(&faults)
        .map(|(((name, _), s), &pf)| {
            let m = median(s);
            json!({
                "case": name,
                "threads": if name.starts_with("one by one") { 1 } else { threads },
                "median_seconds": m,
                "problems_per_second": members as f64 / m,
                "page_faults_per_member": pf as f64 / (rounds * members) as f64,
            })
        })
        .collect();
    for r in &rows {
        eprintln!(
            "{:32} {} thread(s): {:7.1} problems/s, {:.1} page faults per member",
            r["case"].as_str().unwrap_or(""),
            r["threads"],
            r["problems_per_second"].as_f64().unwrap_or(f64::NAN),
            r["page_faults_per_member"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let out = json!({
        "problem": "hh_seed.json with g_Na from 60 to 80 (Euler, 60 000 steps, all states kept)",
        "members": members,
        "threads": threads,
        "rounds": rounds,
        "load_average": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_string()),
        "runs": rows,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
}
