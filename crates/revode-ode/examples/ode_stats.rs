//! Prints the DAG and program sizes of a model file:
//! `cargo run --release -p revode-ode --example ode_stats -- models/seed_hh.ode`
fn main() {
    for path in std::env::args().skip(1) {
        match revode_ode::OdeModel::from_file(&path) {
            Ok(m) => println!("{path}: {:?}", m.stats()),
            Err(e) => eprintln!("error: {e}"),
        }
    }
}
