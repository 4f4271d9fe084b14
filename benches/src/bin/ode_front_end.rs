//! The `.ode` front end's load time, as JSON: parsing and lowering into the
//! DAG alone (`OdeModel::reference_dag`), and with `--whole` also the whole
//! load (derivatives, programs, JIT) for comparison, on generated files:
//!
//! * 10 000 states written flat (≈ 110 000 DAG nodes; target for parse +
//!   lower: well under 0.3 s), and the same model written with arrays;
//! * `models/hh_cable.ode` with 1 000 compartments (4 000 states);
//! * a 10⁵-term sum and 10⁵ nested parentheses (front end only).
//!
//! Medians of wall time: run it on a quiet machine.
//!
//! `cargo run --release -p revode-benches --bin ode_front_end [-- --repeat N] [--whole]`

use revode::model::OdeModel;
use revode_benches::median_seconds;
use serde_json::json;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A ring of `n` states, ~11 DAG nodes each.
fn flat_ring(n: usize) -> String {
    let mut s = String::from("par a=0.5, b=0.25\n");
    for k in 0..n {
        s.push_str(&format!("init x{k}=0.1\n"));
    }
    for k in 0..n {
        let (next, prev) = ((k + 1) % n, (k + n - 1) % n);
        s.push_str(&format!(
            "x{k}' = -x{k} + a*x{next} - b*sin(x{prev})*x{k} + exp(-x{k}/10)\n"
        ));
    }
    s
}

/// The same ring with arrays (0-based, wrapping through constant ifs).
fn array_ring(n: usize) -> String {
    format!(
        "number n={n}\npar a=0.5, b=0.25\ninit x[0..n-1]=0.1\n\
         x[0..n-1]' = -x[j] + a*if(j==n-1)then(x[0])else(x[j+1]) \
         - b*sin(if(j==0)then(x[n-1])else(x[j-1]))*x[j] + exp(-x[j]/10)\n"
    )
}

fn front_end(text: &str, repeat: usize) -> (f64, usize) {
    let nodes = OdeModel::reference_dag(text).unwrap().0.len();
    let t = median_seconds(repeat, || {
        std::hint::black_box(OdeModel::reference_dag(text).unwrap());
    });
    (t, nodes)
}

fn whole(text: &str, repeat: usize) -> f64 {
    median_seconds(repeat, || {
        std::hint::black_box(OdeModel::from_str(text).unwrap());
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--repeat takes a number"))
        .unwrap_or(7);
    let with_whole_load = args.iter().any(|a| a == "--whole");

    let flat = flat_ring(10_000);
    let arrays = array_ring(10_000);
    let cable = std::fs::read_to_string(repo("models/hh_cable.ode"))
        .unwrap()
        .replace("number ncomp=100\n", "number ncomp=1000\n");
    let terms: Vec<String> = (0..100_000).map(|k| format!("{}*x", k % 7 + 1)).collect();
    let long_sum = format!("init x=1\nx' = {}\n", terms.join(" + "));
    let n = 100_000;
    let deep = format!("init x=1\nx' = {}x + 1{}\n", "(".repeat(n), ")".repeat(n));

    let mut out = serde_json::Map::new();
    for (name, text, full) in [
        ("flat_10000_states", &flat, true),
        ("array_10000_states", &arrays, true),
        ("hh_cable_1000_compartments", &cable, true),
        ("sum_of_100000_terms", &long_sum, false),
        ("nested_100000_parentheses", &deep, false),
    ] {
        let (t, nodes) = front_end(text, repeat);
        let mut entry = json!({
            "bytes": text.len(),
            "dag_nodes_after_lowering": nodes,
            "parse_and_lower_s": t,
        });
        if full && with_whole_load {
            entry["whole_load_s"] = json!(whole(text, repeat.min(3)));
        }
        out.insert(name.to_string(), entry);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "ode_front_end": out, "repeat": repeat })).unwrap()
    );
}
