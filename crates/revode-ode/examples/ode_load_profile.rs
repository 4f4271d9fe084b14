//! Load-time profile of generated model files, stage by stage, as a
//! Markdown table (docs/performance.md, "Loading large model files"):
//!
//!     cargo run --release -p revode-ode --example ode_load_profile [FAMILY…] [SIZE…]
//!
//! Families (default all): chain_exp, chain_plain, sum_exp, hh_cable
//! (revode_ode::synthetic); sizes (default 100 1000 10000) count states,
//! or parameters for sum_exp. Times are wall clock of one load each: run it
//! on a quiet machine. `--interpreter`: no native code (for instruction
//! counts of the other stages under callgrind).
use revode_ode::synthetic::Family;
use revode_ode::{Backend, LoadProfile, OdeModel};

fn main() {
    let mut families = Family::ALL.to_vec();
    let mut sizes: Vec<usize> = Vec::new();
    let mut backend = Backend::Jit;
    for a in std::env::args().skip(1) {
        if a == "--interpreter" {
            backend = Backend::Interpreter;
            continue;
        }
        match Family::ALL.iter().find(|f| f.name() == a) {
            Some(&f) if families.len() == Family::ALL.len() => families = vec![f],
            Some(&f) => families.push(f),
            None => sizes.push(a.parse().unwrap_or_else(|_| {
                eprintln!("not a family or a size: {a}");
                std::process::exit(2)
            })),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1000, 10_000];
    }
    println!("{}", LoadProfile::TABLE_HEADER);
    for &family in &families {
        for &size in &sizes {
            let text = family.text(size);
            let (model, profile) =
                OdeModel::from_str_profiled(&text, backend).unwrap_or_else(|e| {
                    eprintln!("{}: {e}", family.name());
                    std::process::exit(1)
                });
            let size = format!("{size} {}", family.size_unit());
            println!("{}", profile.table_row(family.name(), &size));
            drop(model);
        }
    }
}
