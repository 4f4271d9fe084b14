//! The 100-compartment cable's (or an N-compartment one's) kernels one at a
//! time, at u0: a sparse solve with the iteration matrix `I − hJ` and with
//! its transpose, a factorisation, a Jacobian evaluation (mean over many
//! calls; for A/B comparisons of the linear algebra, docs/stiff.md).
//!
//! ```text
//! cargo run --release -p revode-benches --bin cable_kernels [N]
//! ```
use revode::forward::{IterationMatrix, LinearSolver};
use revode::model::{JacobianEval, Model};
use revode::ModelVisitor;
use revode_benches::cable_problem;

/// Times each kernel over `calls` calls (factorisations and Jacobians: a tenth).
struct Kernels {
    calls: usize,
}

impl ModelVisitor for Kernels {
    type Output = ();
    fn visit<M: Model>(self, model: &M) {
        let u0 = model.default_u0();
        let p = model.default_params();
        let mut jac = JacobianEval::new(model);
        let mut values = vec![0.0; jac.pattern().nnz()];
        jac.eval(0.0, &u0, &p, &mut values);
        let mut m = IterationMatrix::new(jac.pattern(), LinearSolver::Sparse);
        m.factor(0.025, &values).unwrap();
        let n = u0.len();
        let b0: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
        let mut b = b0.clone();
        // Twice each: the first round warms the caches.
        for transpose in [false, true, false, true] {
            let t = std::time::Instant::now();
            for _ in 0..self.calls {
                if transpose {
                    m.solve_transpose(&mut b);
                } else {
                    m.solve(&mut b);
                }
                b.copy_from_slice(&b0);
            }
            let dt = t.elapsed().as_secs_f64() / self.calls as f64;
            let what = if transpose {
                "solve with Aᵀ"
            } else {
                "solve with A"
            };
            println!("{what}: {:.3} µs", dt * 1e6);
        }
        let t = std::time::Instant::now();
        let reps = self.calls / 10;
        for k in 0..reps {
            m.factor(0.025 * (1.0 + 1e-9 * k as f64), &values).unwrap();
        }
        println!(
            "factor: {:.3} µs",
            t.elapsed().as_secs_f64() / reps as f64 * 1e6
        );
        let t = std::time::Instant::now();
        for _ in 0..reps {
            jac.eval(0.0, &u0, &p, &mut values);
        }
        println!(
            "jacobian: {:.3} µs",
            t.elapsed().as_secs_f64() / reps as f64 * 1e6
        );
        let mut work = model.new_work();
        let mut grad = vec![0.0; p.len()];
        let mut scratch = vec![0.0; n];
        let t = std::time::Instant::now();
        for _ in 0..reps {
            model.vjp_params(0.0, &u0, &p, &b0, 0.025, &mut grad, &mut scratch, &mut work);
        }
        let per_call = |t: std::time::Instant| t.elapsed().as_secs_f64() / reps as f64 * 1e6;
        println!("parameter VJP: {:.3} µs", per_call(t));
        let mut du = vec![0.0; n];
        let t = std::time::Instant::now();
        for _ in 0..reps {
            model.rhs(0.0, &u0, &p, &mut du, &mut work);
        }
        println!("rhs: {:.3} µs", per_call(t));
        std::hint::black_box((&b, &grad, &du));
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(100, |s| s.parse().unwrap());
    let (problem, _dir) = cable_problem(n);
    if let revode::ModelSpec::File(file) = &problem.model {
        file.model().expect("loaded").wait_for_native_code();
    }
    problem
        .model
        .visit(Kernels { calls: 100_000 })
        .expect("model");
}
