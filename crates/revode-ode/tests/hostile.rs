//! Hostile inputs: very deep, very long or exponentially shared files load
//! (or fail with a located error) on a thread with the default 2 MiB stack,
//! so a recursion that overflows aborts the test binary instead of passing.

use revode_model::Model;
use revode_ode::dag::Dag;
use revode_ode::{OdeError, OdeModel};

/// Runs `f` on a fresh thread with the default 2 MiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|_| panic!("loading panicked"))
}

/// Parses, lowers, differentiates and compiles `text` on a 2 MiB stack.
fn load_on_small_stack(text: String) -> Result<OdeModel, OdeError> {
    on_small_stack(move || OdeModel::from_str(&text))
}

/// Only parses and lowers `text` (the front end) on a 2 MiB stack: for
/// inputs whose native compile is slow (a 5·10⁴-deep chain of calls).
fn front_end_on_small_stack(text: String) -> (Dag, Vec<u32>) {
    on_small_stack(move || OdeModel::reference_dag(&text)).unwrap()
}

fn rhs(m: &OdeModel, u: &[f64]) -> Vec<f64> {
    let mut du = vec![f64::NAN; u.len()];
    m.rhs(0.0, u, &m.default_params(), &mut du, &mut m.new_work());
    du
}

#[test]
fn hundred_thousand_nested_parentheses() {
    let n = 100_000;
    let text = format!("init x=1\nx' = {}x + 1{}\n", "(".repeat(n), ")".repeat(n));
    let m = load_on_small_stack(text).unwrap();
    assert_eq!(rhs(&m, &[2.0]), [3.0]);
}

#[test]
fn two_hundred_thousand_unary_minuses() {
    for (n, want) in [(200_000, 2.0), (200_001, -2.0)] {
        let text = format!("init x=1\nx' = {}x\n", "-".repeat(n));
        let m = load_on_small_stack(text).unwrap();
        assert_eq!(rhs(&m, &[2.0]), [want]);
    }
}

#[test]
fn fifty_thousand_chained_powers() {
    // x^x^…^x (right associative) at x = 1 is 1, at x = 2 overflows.
    let chain = |n: usize| vec!["x"; n].join("^");
    let (dag, rhs_ids) = front_end_on_small_stack(format!("init x=1\nx' = {}\n", chain(50_000)));
    assert_eq!(
        dag.evaluate(0.0, &[1.0], &[], &[])[rhs_ids[0] as usize],
        1.0
    );
    let m = load_on_small_stack(format!("init x=1\nx' = {}\n", chain(200))).unwrap();
    assert_eq!(rhs(&m, &[1.0]), [1.0]);
}

#[test]
fn hundred_thousand_nested_calls_and_brackets() {
    let n = 100_000;
    let nested = |n: usize| format!("init x=1\nx' = {}x{}\n", "abs(".repeat(n), ")".repeat(n));
    let (dag, rhs_ids) = front_end_on_small_stack(nested(n));
    // abs(abs(x)) is not folded, so this is a chain of 10^5 nodes
    assert!(dag.len() > n);
    assert_eq!(
        dag.evaluate(0.0, &[-2.0], &[], &[])[rhs_ids[0] as usize],
        2.0
    );
    let m = load_on_small_stack(nested(300)).unwrap();
    assert_eq!(rhs(&m, &[-2.0]), [2.0]);
    let text = format!(
        "init x[1..2]=1\nx[1..2]' = x[{}j{}]\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    let m = load_on_small_stack(text).unwrap();
    assert_eq!(rhs(&m, &[3.0, 4.0]), [3.0, 4.0]);
}

#[test]
fn a_flat_sum_of_a_hundred_thousand_terms() {
    let n = 100_000;
    let terms: Vec<String> = (0..n).map(|k| format!("{}*x", k % 7 + 1)).collect();
    let text = format!("init x=1\nx' = {}\n", terms.join(" + "));
    let m = load_on_small_stack(text).unwrap();
    let want: f64 = (0..n).map(|k| (k % 7 + 1) as f64).sum();
    assert_eq!(rhs(&m, &[1.0]), [want]);
    // the same sum in a denominator (the singular-form reader walks it)
    let text = format!("init x=1\nx' = 1/({})\n", terms.join(" + "));
    let m = load_on_small_stack(text).unwrap();
    assert_eq!(rhs(&m, &[1.0]), [1.0 / want]);
}

#[test]
fn a_long_chain_of_fixed_quantities_in_reverse_order() {
    let n = 100_000;
    let mut text = String::from("init x=1\nx' = a0\n");
    for k in 0..n {
        text.push_str(&format!("a{k} = a{} + 1\n", k + 1));
    }
    text.push_str(&format!("a{n} = x\n"));
    let m = load_on_small_stack(text).unwrap();
    assert_eq!(rhs(&m, &[1.0]), [(n + 1) as f64]);
}

#[test]
fn functions_calling_the_previous_twice_are_inlined_once_each() {
    let levels = 60;
    let mut text = String::from("f1(u) = u + 1\n");
    for k in 2..=levels {
        text.push_str(&format!("f{k}(u) = f{}(u) + f{}(u)\n", k - 1, k - 1));
    }
    text.push_str(&format!("init x=0\nx' = f{levels}(x)\n"));
    let m = load_on_small_stack(text).unwrap();
    // f_k(0) = 2^(k-1)
    assert_eq!(rhs(&m, &[0.0]), [2f64.powi(levels - 1)]);
    assert!(m.stats().dag_nodes < 1000, "{:?}", m.stats());
    // and a long chain of functions, each calling the next
    let n = 20_000;
    let mut text = String::from("init x=0\nx' = g0(x)\n");
    for k in 0..n {
        text.push_str(&format!("g{k}(u) = g{}(u) * 2\n", k + 1));
    }
    text.push_str(&format!("g{n}(u) = u + 1\n"));
    let m = load_on_small_stack(text).unwrap();
    assert_eq!(rhs(&m, &[0.0]), [2f64.powi(n)]);
}

#[test]
fn deep_array_expansions_stay_within_the_budget() {
    // 10^9 elements: rejected with a position, quickly, without allocating them
    let e =
        load_on_small_stack("init x[1..1000000000]=0\nx[1..1000000000]' = 1\n".into()).unwrap_err();
    assert!(e.message.contains("too large"), "{e}");
    assert_eq!((e.line, e.col), (1, 7));
    let e = load_on_small_stack("init x=0\nx' = sum(1, 1e12)of(i')\n".into()).unwrap_err();
    assert!(e.message.contains("too large"), "{e}");
    assert_eq!((e.line, e.col), (2, 6));
}
