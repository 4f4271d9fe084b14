//! Symbolic reverse-mode differentiation on the DAG.
//!
//! The adjoint seed is `Σᵢ λᵢ fᵢ` with symbolic `λᵢ` ([`Node::Lambda`]).
//! Nodes are visited once each in reverse topological order (descending
//! id); a node's adjoint `ā` is the sum of the contributions its parents
//! pushed, and it pushes `ā · ∂node/∂child` to each child that depends on a
//! state or a parameter. The adjoints of the state and parameter leaves are
//! then `(∂f/∂u)ᵀλ` and `(∂f/∂p)ᵀλ`. All new nodes go into the same
//! hash-consed DAG, so forward values reused by the derivatives (`e^x`,
//! `g(z)`, quotients) and equal adjoint terms are shared. Every partial is
//! written out in docs/model-files.md.

use crate::dag::{Bin, Dag, Id, Node, Un};

/// The adjoint expressions: `None` where the derivative is identically 0.
#[derive(Debug, Clone)]
pub struct Adjoints {
    /// `((∂f/∂u)ᵀλ)_j` per state.
    pub states: Vec<Option<Id>>,
    /// `((∂f/∂p)ᵀλ)_k` per parameter.
    pub params: Vec<Option<Id>>,
}

/// Differentiates `Σ λᵢ rhs[i]`.
pub fn adjoints(dag: &mut Dag, rhs: &[Id], n_params: usize) -> Adjoints {
    adjoints_of(dag, rhs, rhs.len(), n_params)
}

/// Differentiates `Σ λᵢ roots[i]` with respect to `n_states` states and
/// `n_params` parameters (the roots need not be one per state).
pub fn adjoints_of(dag: &mut Dag, roots: &[Id], n_states: usize, n_params: usize) -> Adjoints {
    let rhs = roots;
    let n = dag.len();
    let mut contributions: Vec<Vec<Id>> = vec![Vec::new(); n];
    let mut out = Adjoints {
        states: vec![None; n_states],
        params: vec![None; n_params],
    };
    for (i, &f) in rhs.iter().enumerate() {
        if dag.is_active(f) {
            let lambda = dag.lambda(i);
            contributions[f as usize].push(lambda);
        }
    }
    for id in (0..n as Id).rev() {
        let parts = std::mem::take(&mut contributions[id as usize]);
        let Some((&first, rest)) = parts.split_first() else {
            continue;
        };
        let adj = rest.iter().fold(first, |acc, &c| dag.add(acc, c));
        match dag.node(id) {
            Node::State(i) => out.states[i as usize] = Some(adj),
            Node::Param(k) => out.params[k as usize] = Some(adj),
            _ => propagate(
                dag,
                id,
                adj,
                |dag, child| dag.is_active(child),
                |child, c| contributions[child as usize].push(c),
            ),
        }
    }
    out
}

/// The operands of `node` its derivative flows to: those with a partial
/// that is not identically zero in [`propagate`] (not the operands of
/// `heav`, `sign`, comparisons and `& |`, not a select's condition).
pub fn derivative_operands(node: Node) -> impl Iterator<Item = Id> {
    let (a, b) = match node {
        Node::Un(Un::Heav | Un::Sign, _) => (None, None),
        Node::Un(_, a) | Node::PowI(a, _) => (Some(a), None),
        Node::Bin(
            Bin::Lt | Bin::Gt | Bin::Le | Bin::Ge | Bin::Eq | Bin::Ne | Bin::And | Bin::Or,
            _,
            _,
        ) => (None, None),
        // g(z) of z and e^z: a function of z alone
        Node::Bin(Bin::ExprelInv | Bin::ExprelInvDeriv, z, _) => (Some(z), None),
        Node::Bin(_, a, b) | Node::Select(_, a, b) => (Some(a), Some(b)),
        Node::Const(_) | Node::State(_) | Node::Param(_) | Node::Time | Node::Lambda(_) => {
            (None, None)
        }
    };
    a.into_iter().chain(b)
}

/// The reverse-mode step at node `id` with adjoint `adj`: calls
/// `push(child, adj · ∂node/∂child)` for every operand that `wanted`
/// accepts and whose contribution is not the constant 0 (partials of
/// unwanted operands are not built). The one place the partials are
/// written; the vjp ([`adjoints`]) and the Jacobian ([`crate::jacobian`])
/// both use it.
pub fn propagate(
    dag: &mut Dag,
    id: Id,
    adj: Id,
    wanted: impl Fn(&Dag, Id) -> bool,
    mut push: impl FnMut(Id, Id),
) {
    let mut push = |dag: &Dag, child: Id, c: Id| {
        if wanted(dag, child) && dag.constant(c) != Some(0.0) {
            push(child, c);
        }
    };
    match dag.node(id) {
        Node::Const(_) | Node::State(_) | Node::Param(_) | Node::Time | Node::Lambda(_) => {}
        Node::Un(op, a) => {
            if wanted(dag, a) {
                if let Some(c) = unary_contribution(dag, op, id, a, adj) {
                    push(dag, a, c);
                }
            }
        }
        Node::PowI(a, k) => {
            if wanted(dag, a) {
                // d(a^k) = k a^(k−1)
                let kc = dag.constant_node(k as f64);
                let p = dag.powi(a, k - 1);
                let d = dag.mul(kc, p);
                let c = dag.mul(adj, d);
                push(dag, a, c);
            }
        }
        Node::Bin(op, a, b) => {
            let (want_a, want_b) = (wanted(dag, a), wanted(dag, b));
            binary_contributions(dag, op, id, a, b, adj, want_a, want_b, &mut push)
        }
        Node::Select(c, a, b) => {
            let zero = dag.constant_node(0.0);
            if wanted(dag, a) {
                let ca = dag.select(c, adj, zero);
                push(dag, a, ca);
            }
            if wanted(dag, b) {
                let cb = dag.select(c, zero, adj);
                push(dag, b, cb);
            }
        }
    }
}

/// `adj · dy/da` for `y = op(a)` (node `y`), or None when it is 0.
fn unary_contribution(dag: &mut Dag, op: Un, y: Id, a: Id, adj: Id) -> Option<Id> {
    let c = |dag: &mut Dag, x: f64| dag.constant_node(x);
    Some(match op {
        Un::Neg => dag.neg(adj),
        // (e^a)' = e^a
        Un::Exp => dag.mul(adj, y),
        // (ln a)' = 1/a
        Un::Ln => dag.div(adj, a),
        // (log10 a)' = 1/(a ln 10)
        Un::Log10 => {
            let ln10 = c(dag, std::f64::consts::LN_10);
            let den = dag.mul(a, ln10);
            dag.div(adj, den)
        }
        // (√a)' = 1/(2√a)
        Un::Sqrt => {
            let half = c(dag, 0.5);
            let h = dag.mul(adj, half);
            dag.div(h, y)
        }
        // |a|' = sign(a)
        Un::Abs => {
            let s = dag.un(Un::Sign, a);
            dag.mul(adj, s)
        }
        // sin' = cos, cos' = −sin
        Un::Sin => {
            let d = dag.un(Un::Cos, a);
            dag.mul(adj, d)
        }
        Un::Cos => {
            let d = dag.un(Un::Sin, a);
            let m = dag.mul(adj, d);
            dag.neg(m)
        }
        // tan' = 1 + tan², tanh' = 1 − tanh²
        Un::Tan => {
            let one = c(dag, 1.0);
            let y2 = dag.mul(y, y);
            let d = dag.add(one, y2);
            dag.mul(adj, d)
        }
        Un::Tanh => {
            let one = c(dag, 1.0);
            let y2 = dag.mul(y, y);
            let d = dag.sub(one, y2);
            dag.mul(adj, d)
        }
        // sinh' = cosh, cosh' = sinh
        Un::Sinh => {
            let d = dag.un(Un::Cosh, a);
            dag.mul(adj, d)
        }
        Un::Cosh => {
            let d = dag.un(Un::Sinh, a);
            dag.mul(adj, d)
        }
        // atan' = 1/(1 + a²)
        Un::Atan => {
            let one = c(dag, 1.0);
            let a2 = dag.mul(a, a);
            let den = dag.add(one, a2);
            dag.div(adj, den)
        }
        // Piecewise constant: derivative 0 (almost everywhere).
        Un::Heav | Un::Sign => return None,
    })
}

fn binary_contributions(
    dag: &mut Dag,
    op: Bin,
    y: Id,
    a: Id,
    b: Id,
    adj: Id,
    want_a: bool,
    want_b: bool,
    push: &mut impl FnMut(&Dag, Id, Id),
) {
    match op {
        Bin::Add => {
            push(dag, a, adj);
            push(dag, b, adj);
        }
        Bin::Sub => {
            push(dag, a, adj);
            if want_b {
                let n = dag.neg(adj);
                push(dag, b, n);
            }
        }
        Bin::Mul => {
            if want_a {
                let c = dag.mul(adj, b);
                push(dag, a, c);
            }
            if want_b {
                let c = dag.mul(adj, a);
                push(dag, b, c);
            }
        }
        // y = a/b: ∂y/∂a = 1/b, ∂y/∂b = −y/b; adj/b is shared. A division
        // takes several multiplications' time, so a derivative avoids one
        // where a constant allows (its rounding is free, unlike the
        // quotient the model writes): adj/c as adj·(1/c), and for a
        // constant numerator y/b = y·y/a.
        Bin::Div => {
            let reciprocal = |dag: &Dag, x: Id| {
                dag.constant(x)
                    .map(|c| 1.0 / c)
                    .filter(|r| r.is_finite() && *r != 0.0)
            };
            if let (Some(r), false) = (reciprocal(dag, a), want_a) {
                if want_b {
                    let ya = dag.mul(adj, y);
                    let yy = dag.mul(ya, y);
                    let rc = dag.constant_node(-r);
                    let c = dag.mul(yy, rc);
                    push(dag, b, c);
                }
            } else if want_a || want_b {
                let q = match reciprocal(dag, b) {
                    Some(r) => {
                        let rc = dag.constant_node(r);
                        dag.mul(adj, rc)
                    }
                    None => dag.div(adj, b),
                };
                push(dag, a, q);
                if want_b {
                    let qy = dag.mul(q, y);
                    let n = dag.neg(qy);
                    push(dag, b, n);
                }
            }
        }
        // y = a^b: ∂y/∂a = b a^(b−1), ∂y/∂b = y ln a.
        Bin::Pow => {
            if want_a {
                let one = dag.constant_node(1.0);
                let bm1 = dag.sub(b, one);
                let p = dag.bin(Bin::Pow, a, bm1);
                let d = dag.mul(b, p);
                let c = dag.mul(adj, d);
                push(dag, a, c);
            }
            if want_b {
                let ln = dag.un(Un::Ln, a);
                let d = dag.mul(y, ln);
                let c = dag.mul(adj, d);
                push(dag, b, c);
            }
        }
        // The derivative follows the operand that is returned (a on ties).
        Bin::Min | Bin::Max => {
            let cmp = if op == Bin::Min { Bin::Le } else { Bin::Ge };
            let picks_a = dag.bin(cmp, a, b);
            let zero = dag.constant_node(0.0);
            if want_a {
                let ca = dag.select(picks_a, adj, zero);
                push(dag, a, ca);
            }
            if want_b {
                let cb = dag.select(picks_a, zero, adj);
                push(dag, b, cb);
            }
        }
        Bin::Lt | Bin::Gt | Bin::Le | Bin::Ge | Bin::Eq | Bin::Ne | Bin::And | Bin::Or => {}
        // y = g(a) with b = e^a: a function of a alone, dy/da = g'(a)
        // (through its own series near 0, from the same exponential).
        Bin::ExprelInv => {
            if want_a {
                let d = dag.bin(Bin::ExprelInvDeriv, a, b);
                let c = dag.mul(adj, d);
                push(dag, a, c);
            }
        }
        // Only first derivatives are ever taken.
        Bin::ExprelInvDeriv => unreachable!("g' is only created by differentiation"),
    }
}
