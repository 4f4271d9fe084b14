//! Prints the instructions of a model file's `rhs` and `vjp` programs:
//! `cargo run --release -p revode-ode --example ode_dump -- models/seed_hh.ode`
//! (with `REVODE_JIT_DISASM=1` the native code is printed to stderr as well)
fn main() {
    for path in std::env::args().skip(1) {
        match revode_ode::OdeModel::from_file(&path) {
            Ok(m) => {
                for (name, p) in [("rhs", m.rhs_program()), ("vjp", m.vjp_program())] {
                    println!("# {name}: constants {:?}", p.constants());
                    for i in p.instructions() {
                        println!("{i:?}");
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
}
