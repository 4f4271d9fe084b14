//! Calls a model file's rhs, vjp and Jacobian many times, for instruction
//! counts of the compiled code under callgrind (compare two runs with
//! different CALLS to subtract the load):
//! `valgrind --tool=callgrind target/release/examples/ode_call_cost models/seed_hh.ode 10000`
use revode_model::Model;
use revode_ode::OdeModel;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: ode_call_cost FILE.ode [CALLS] [interp]");
    let calls: usize = args.get(2).map_or(10_000, |c| c.parse().expect("CALLS"));
    let mut m = OdeModel::from_file(path).unwrap_or_else(|e| panic!("{e}"));
    if args.get(3).is_some_and(|a| a == "interp") {
        m = m.interpreted();
    }
    let (u, p) = (m.default_u0(), m.default_params());
    let n = u.len();
    let nnz = m.jacobian_sparsity().nnz();
    let mut w = m.new_work();
    let (mut du, mut out, mut acc, mut jac) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; p.len()],
        vec![0.0; nnz],
    );
    let lambda = vec![0.5; n];
    let mut sum = 0.0;
    for k in 0..calls {
        let t = k as f64 * 1e-3;
        m.rhs(t, &u, &p, &mut du, &mut w);
        m.vjp(t, &u, &p, &lambda, &mut out, 0.5, &mut acc, &mut w);
        m.jacobian(t, &u, &p, &mut jac, &mut w);
        sum += du[0] + out[0] + jac[0];
    }
    println!("{sum}");
}
