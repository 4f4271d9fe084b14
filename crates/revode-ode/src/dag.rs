//! One hash-consed expression DAG for a whole model: every structurally
//! equal subexpression is one node, so common subexpressions (a rate used
//! by two equations, a fixed quantity, a user function called twice with
//! the same arguments, the same factor in two derivatives) are computed
//! once. Children always have smaller ids than their parents, so ids are a
//! topological order.

use std::collections::HashMap;

use revode_model::exp::exp;
use revode_model::{exprel_inv_and_deriv_em1, exprel_inv_em1};

pub type Id = u32;

/// Unary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Un {
    Neg,
    Exp,
    Ln,
    Log10,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sinh,
    Cosh,
    Atan,
    Heav,
    Sign,
}

/// Binary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    /// `g(z) = z/(e^z − 1)` with its limit 1 at 0 (the removable
    /// singularity), of `z` and `e = e^z` computed elsewhere (so the
    /// exponential can be shared, crate::exp_share). A function of `z`
    /// alone: its derivative flows to `z` only.
    ExprelInv,
    /// `g'(z)` of `z` and `e^z`, limit −1/2 at 0.
    ExprelInvDeriv,
}

impl Bin {
    fn commutative(self) -> bool {
        matches!(
            self,
            Bin::Add | Bin::Mul | Bin::Min | Bin::Max | Bin::Eq | Bin::Ne | Bin::And | Bin::Or
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant, by its bits (so it can be hashed).
    Const(u64),
    State(u32),
    Param(u32),
    Time,
    /// The adjoint seed λ_i (vjp programs only).
    Lambda(u32),
    Un(Un, Id),
    /// `x^n` for a constant integer `n`.
    PowI(Id, i32),
    Bin(Bin, Id, Id),
    /// `if c ≠ 0 then a else b`.
    Select(Id, Id, Id),
}

impl Node {
    /// The operand ids.
    pub fn children(&self) -> impl Iterator<Item = Id> {
        let (a, b, c) = match *self {
            Node::Un(_, a) | Node::PowI(a, _) => (Some(a), None, None),
            Node::Bin(_, a, b) => (Some(a), Some(b), None),
            Node::Select(c, a, b) => (Some(c), Some(a), Some(b)),
            _ => (None, None, None),
        };
        a.into_iter().chain(b).chain(c)
    }
}

/// Values of the operations: shared by constant folding and the interpreter,
/// so a folded constant is bitwise what the program would compute.
#[inline(always)]
pub fn eval_un(op: Un, x: f64) -> f64 {
    match op {
        Un::Neg => -x,
        Un::Exp => exp(x),
        Un::Ln => x.ln(),
        Un::Log10 => x.log10(),
        Un::Sqrt => x.sqrt(),
        Un::Abs => x.abs(),
        Un::Sin => x.sin(),
        Un::Cos => x.cos(),
        Un::Tan => x.tan(),
        Un::Tanh => x.tanh(),
        Un::Sinh => x.sinh(),
        Un::Cosh => x.cosh(),
        Un::Atan => x.atan(),
        Un::Heav => heav(x),
        Un::Sign => sign(x),
    }
}

/// XPPAUT's `heav`: 1 for x ≥ 0, 0 below (NaN stays NaN).
#[inline(always)]
pub fn heav(x: f64) -> f64 {
    if x >= 0.0 {
        1.0
    } else if x < 0.0 {
        0.0
    } else {
        f64::NAN
    }
}

/// −1, 0 or 1 (NaN stays NaN).
#[inline(always)]
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        f64::NAN
    }
}

#[inline(always)]
fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[inline(always)]
pub fn eval_bin(op: Bin, a: f64, b: f64) -> f64 {
    match op {
        Bin::Add => a + b,
        Bin::Sub => a - b,
        Bin::Mul => a * b,
        Bin::Div => a / b,
        Bin::Pow => a.powf(b),
        // NaN in either operand gives NaN (f64::min would drop it).
        Bin::Min => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
        Bin::Max => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        Bin::Lt => truth(a < b),
        Bin::Gt => truth(a > b),
        Bin::Le => truth(a <= b),
        Bin::Ge => truth(a >= b),
        Bin::Eq => truth(a == b),
        Bin::Ne => truth(a != b),
        Bin::And => truth(a != 0.0 && b != 0.0),
        Bin::Or => truth(a != 0.0 || b != 0.0),
        Bin::ExprelInv => exprel_inv_em1(a, b - 1.0),
        Bin::ExprelInvDeriv => exprel_inv_and_deriv_em1(a, b - 1.0).1,
    }
}

/// `x^n` by binary exponentiation from the lowest bit (`x³ = x·(x·x)`,
/// `x⁴ = (x·x)·(x·x)`), `1/x^|n|` for negative `n`. Spelled out so that the
/// interpreter and the JIT ([`crate::jit`]) multiply in the same order.
#[inline(always)]
pub fn powi(x: f64, n: i32) -> f64 {
    let mut k = n.unsigned_abs();
    let mut base = x;
    let mut acc: Option<f64> = None;
    while k > 0 {
        if k & 1 == 1 {
            acc = Some(match acc {
                None => base,
                Some(a) => a * base,
            });
        }
        k >>= 1;
        if k > 0 {
            base *= base;
        }
    }
    let v = acc.unwrap_or(1.0);
    if n < 0 {
        1.0 / v
    } else {
        v
    }
}

/// `1/c` if it is exact: `c` a (normal) power of two whose reciprocal is
/// a normal number.
fn exact_reciprocal(c: f64) -> Option<f64> {
    let mantissa = c.to_bits() & ((1u64 << 52) - 1);
    let r = 1.0 / c;
    (c.is_normal() && mantissa == 0 && r.is_normal()).then_some(r)
}

/// The DAG and its hash-consing index (foldhash: several times cheaper
/// than the standard SipHash on these small keys, and hashing is most of
/// what building and differentiating costs).
#[derive(Debug, Default, Clone)]
pub struct Dag {
    nodes: Vec<Node>,
    index: HashMap<Node, Id, foldhash::fast::RandomState>,
    /// Depends on a state or a parameter (needs an adjoint).
    active: Vec<bool>,
    /// Depends on a state.
    on_state: Vec<bool>,
    singular: SingularStats,
    /// Exponentials sharing one `exp` (crate::exp_share).
    exps: crate::exp_share::ExpGroups,
}

/// What the removable-singularity rewrite ([`crate::singular`]) did while
/// the DAG was built: a stage of the load profile.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct SingularStats {
    /// Quotients with a non-constant denominator examined.
    pub examined: usize,
    /// Quotients rewritten into `K·R·g(w)`.
    pub rewritten: usize,
    /// Time spent examining and rewriting.
    pub time: std::time::Duration,
}

impl Dag {
    pub fn node(&self, id: Id) -> Node {
        self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// What the singularity rewrite did so far.
    pub fn singular_stats(&self) -> SingularStats {
        self.singular
    }

    pub fn is_active(&self, id: Id) -> bool {
        self.active[id as usize]
    }

    pub fn depends_on_state(&self, id: Id) -> bool {
        self.on_state[id as usize]
    }

    pub fn constant(&self, id: Id) -> Option<f64> {
        match self.node(id) {
            Node::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    fn is_const(&self, id: Id, value: f64) -> bool {
        self.constant(id) == Some(value)
    }

    /// The id of `node` if it is in the DAG.
    pub(crate) fn find(&self, node: &Node) -> Option<Id> {
        self.index.get(node).copied()
    }

    /// The exponential groups (crate::exp_share).
    pub(crate) fn exp_groups(&mut self) -> &mut crate::exp_share::ExpGroups {
        &mut self.exps
    }

    /// `Some(w)` if node `id` is `e^w`: an `exp` node, or a node the
    /// exponential sharing made equal to `e^w` (`K·e^{w₀}` or `K/e^{w₀}`).
    pub fn exp_argument(&self, id: Id) -> Option<Id> {
        match self.node(id) {
            Node::Un(Un::Exp, w) => Some(w),
            Node::Bin(Bin::Mul | Bin::Div, _, _) => self.exps.argument_of(id),
            _ => None,
        }
    }

    /// The id of `node`, adding it if new.
    pub(crate) fn intern(&mut self, node: Node) -> Id {
        if let Some(&id) = self.index.get(&node) {
            return id;
        }
        let id = Id::try_from(self.nodes.len()).expect("fewer than 2^32 nodes");
        let (active, on_state) = match node {
            Node::State(_) => (true, true),
            Node::Param(_) => (true, false),
            _ => node.children().fold((false, false), |(a, s), c| {
                (a || self.active[c as usize], s || self.on_state[c as usize])
            }),
        };
        self.nodes.push(node);
        self.active.push(active);
        self.on_state.push(on_state);
        self.index.insert(node, id);
        id
    }

    pub fn constant_node(&mut self, x: f64) -> Id {
        // One zero: -0.0 and 0.0 behave alike everywhere they are used here.
        let x = if x == 0.0 { 0.0 } else { x };
        self.intern(Node::Const(x.to_bits()))
    }

    pub fn state(&mut self, i: usize) -> Id {
        self.intern(Node::State(i as u32))
    }

    pub fn param(&mut self, k: usize) -> Id {
        self.intern(Node::Param(k as u32))
    }

    pub fn time(&mut self) -> Id {
        self.intern(Node::Time)
    }

    pub fn lambda(&mut self, i: usize) -> Id {
        self.intern(Node::Lambda(i as u32))
    }

    pub fn un(&mut self, op: Un, a: Id) -> Id {
        if let Some(x) = self.constant(a) {
            return self.constant_node(eval_un(op, x));
        }
        if op == Un::Exp {
            return crate::exp_share::exp(self, a);
        }
        if op == Un::Neg {
            // −(−x) = x; −(c·x) = (−c)·x, −(x/c) = x/(−c), −(c/x) = (−c)/x:
            // exact (negation only flips the sign bit, and a product's or
            // quotient's sign is the product of the signs).
            match self.node(a) {
                Node::Un(Un::Neg, inner) => return inner,
                Node::Bin(Bin::Mul, x, y) => {
                    if let Some((c, other)) = self.constant_operand(x, y) {
                        let nc = self.constant_node(-c);
                        return self.mul(nc, other);
                    }
                }
                Node::Bin(Bin::Div, x, y) => {
                    if let Some(c) = self.constant(y) {
                        let nc = self.constant_node(-c);
                        return self.div(x, nc);
                    }
                    if let Some(c) = self.constant(x) {
                        let nc = self.constant_node(-c);
                        return self.div(nc, y);
                    }
                }
                _ => {}
            }
        }
        self.intern(Node::Un(op, a))
    }

    /// `(c, other)` if one of `a`, `b` is the constant `c`.
    fn constant_operand(&self, a: Id, b: Id) -> Option<(f64, Id)> {
        match (self.constant(a), self.constant(b)) {
            (Some(c), None) => Some((c, b)),
            (None, Some(c)) => Some((c, a)),
            _ => None,
        }
    }

    /// `x` if `id` is `−x`.
    fn negated(&self, id: Id) -> Option<Id> {
        match self.node(id) {
            Node::Un(Un::Neg, x) => Some(x),
            _ => None,
        }
    }

    pub fn neg(&mut self, a: Id) -> Id {
        self.un(Un::Neg, a)
    }

    pub fn powi(&mut self, a: Id, n: i32) -> Id {
        match n {
            0 => self.constant_node(1.0),
            1 => a,
            _ => match self.constant(a) {
                Some(x) => self.constant_node(powi(x, n)),
                None => self.intern(Node::PowI(a, n)),
            },
        }
    }

    pub fn select(&mut self, c: Id, a: Id, b: Id) -> Id {
        if let Some(x) = self.constant(c) {
            return if x != 0.0 { a } else { b };
        }
        if a == b {
            return a;
        }
        self.intern(Node::Select(c, a, b))
    }

    pub fn bin(&mut self, op: Bin, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.constant(a), self.constant(b)) {
            return self.constant_node(eval_bin(op, x, y));
        }
        match op {
            Bin::Add => {
                if self.is_const(a, 0.0) {
                    return b;
                }
                if self.is_const(b, 0.0) {
                    return a;
                }
                // a + (−b) = a − b and (−a) + b = b − a, exactly (IEEE
                // subtraction is addition of the negated operand)
                if let Some(nb) = self.negated(b) {
                    return self.sub(a, nb);
                }
                if let Some(na) = self.negated(a) {
                    return self.sub(b, na);
                }
            }
            Bin::Sub => {
                if self.is_const(b, 0.0) {
                    return a;
                }
                if self.is_const(a, 0.0) {
                    return self.neg(b);
                }
                // a − (−b) = a + b, exactly
                if let Some(nb) = self.negated(b) {
                    return self.add(a, nb);
                }
            }
            Bin::Mul => {
                if self.is_const(a, 0.0) || self.is_const(b, 0.0) {
                    return self.constant_node(0.0);
                }
                if self.is_const(a, 1.0) {
                    return b;
                }
                if self.is_const(b, 1.0) {
                    return a;
                }
                if self.is_const(a, -1.0) {
                    return self.neg(b);
                }
                if self.is_const(b, -1.0) {
                    return self.neg(a);
                }
                // (−a)(−b) = ab and c·(−x) = (−c)·x, exactly
                let (ka, kb) = (self.constant(a), self.constant(b));
                match (self.negated(a), self.negated(b), ka, kb) {
                    (Some(na), Some(nb), _, _) => return self.mul(na, nb),
                    (Some(na), None, _, Some(c)) => {
                        let nc = self.constant_node(-c);
                        return self.mul(na, nc);
                    }
                    (None, Some(nb), Some(c), _) => {
                        let nc = self.constant_node(-c);
                        return self.mul(nc, nb);
                    }
                    _ => {}
                }
            }
            Bin::Div => {
                if self.is_const(b, 1.0) {
                    return a;
                }
                if self.is_const(a, 0.0) {
                    return self.constant_node(0.0);
                }
                // (−a)/(−b) = a/b, (−x)/c = x/(−c), c/(−x) = (−c)/x, exactly
                let (ka, kb) = (self.constant(a), self.constant(b));
                match (self.negated(a), self.negated(b), ka, kb) {
                    (Some(na), Some(nb), _, _) => return self.div(na, nb),
                    (Some(na), None, _, Some(c)) => {
                        let nc = self.constant_node(-c);
                        return self.div(na, nc);
                    }
                    (None, Some(nb), Some(c), _) => {
                        let nc = self.constant_node(-c);
                        return self.div(nc, nb);
                    }
                    _ => {}
                }
                // x/c = x·(1/c) when c is a power of two: 1/c is exact, so
                // both are the correctly rounded x/c (a multiplication is
                // several times faster than a division)
                if let Some(c) = self.constant(b) {
                    if let Some(r) = exact_reciprocal(c) {
                        let rc = self.constant_node(r);
                        return self.mul(a, rc);
                    }
                }
                if self.constant(b).is_none() {
                    let start = std::time::Instant::now();
                    let rewritten = crate::singular::rewrite_quotient(self, a, b);
                    self.singular.examined += 1;
                    self.singular.time += start.elapsed();
                    if let Some(id) = rewritten {
                        self.singular.rewritten += 1;
                        return id;
                    }
                }
            }
            Bin::Pow => {
                if let Some(y) = self.constant(b) {
                    if y == y.trunc() && y.abs() <= 64.0 {
                        return self.powi(a, y as i32);
                    }
                    if y == 0.5 {
                        return self.un(Un::Sqrt, a);
                    }
                }
            }
            _ => {}
        }
        let (a, b) = if op.commutative() && b < a {
            (b, a)
        } else {
            (a, b)
        };
        self.intern(Node::Bin(op, a, b))
    }

    pub fn add(&mut self, a: Id, b: Id) -> Id {
        self.bin(Bin::Add, a, b)
    }
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        self.bin(Bin::Sub, a, b)
    }
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        self.bin(Bin::Mul, a, b)
    }
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        self.bin(Bin::Div, a, b)
    }

    /// Evaluates the nodes `0..=max(roots)` at one point (tests and checks;
    /// the hot paths use compiled programs).
    pub fn evaluate(&self, t: f64, u: &[f64], p: &[f64], lambda: &[f64]) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let x = match *node {
                Node::Const(bits) => f64::from_bits(bits),
                Node::State(i) => u[i as usize],
                Node::Param(k) => p[k as usize],
                Node::Time => t,
                Node::Lambda(i) => lambda.get(i as usize).copied().unwrap_or(0.0),
                Node::Un(op, a) => eval_un(op, v[a as usize]),
                Node::PowI(a, n) => powi(v[a as usize], n),
                Node::Bin(op, a, b) => eval_bin(op, v[a as usize], v[b as usize]),
                Node::Select(c, a, b) => {
                    if v[c as usize] != 0.0 {
                        v[a as usize]
                    } else {
                        v[b as usize]
                    }
                }
            };
            v.push(x);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_consing_shares_equal_subexpressions() {
        let mut d = Dag::default();
        let x = d.state(0);
        let p = d.param(0);
        let a = d.mul(x, p);
        let b = d.mul(p, x);
        assert_eq!(a, b, "commutative operands are ordered");
        let e1 = d.un(Un::Exp, a);
        let e2 = d.un(Un::Exp, b);
        assert_eq!(e1, e2);
        let n = d.len();
        let _ = d.add(e1, e2);
        let _ = d.add(e2, e1);
        assert_eq!(d.len(), n + 1);
    }

    #[test]
    fn folding_and_identities() {
        let mut d = Dag::default();
        let x = d.state(0);
        let two = d.constant_node(2.0);
        let three = d.constant_node(3.0);
        let six = d.mul(two, three);
        assert_eq!(d.constant(six), Some(6.0));
        let zero = d.constant_node(0.0);
        let one = d.constant_node(1.0);
        assert_eq!(d.add(x, zero), x);
        assert_eq!(d.mul(one, x), x);
        assert_eq!(d.constant(d.clone().mul(zero, x)), Some(0.0));
        assert_eq!(d.div(x, one), x);
        let nx = d.neg(x);
        assert_eq!(d.neg(nx), x);
        let sq = d.bin(Bin::Pow, x, two);
        assert_eq!(d.node(sq), Node::PowI(x, 2));
        assert!(d.is_active(sq) && d.depends_on_state(sq));
        let p = d.param(0);
        let px = d.mul(p, three);
        assert!(d.is_active(px) && !d.depends_on_state(px));
    }

    /// Values where a rewrite could differ if it were not exact.
    const HOSTILE: [f64; 10] = [
        0.0,
        -0.0,
        1.0,
        -3.5,
        1e-310,
        -1e308,
        7.0e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn negations_fold_into_sums_products_and_constants_exactly() {
        let mut d = Dag::default();
        let x = d.state(0);
        let y = d.state(1);
        let c = d.constant_node(3.0);
        let nx = d.neg(x);
        let ny = d.neg(y);
        let cx = d.mul(c, x);
        let xc = d.div(x, c);
        let c_x = d.div(c, x);
        // (built expression, what it must compute, as the unsimplified ops)
        type Reference = fn(f64, f64) -> f64;
        let cases: Vec<(Id, Reference)> = vec![
            (d.add(x, ny), |x, y| x + (-y)),
            (d.add(nx, y), |x, y| (-x) + y),
            (d.sub(x, ny), |x, y| x - (-y)),
            (d.mul(nx, ny), |x, y| (-x) * (-y)),
            (d.mul(c, nx), |x, _| 3.0 * (-x)),
            (d.mul(nx, c), |x, _| (-x) * 3.0),
            (d.div(nx, ny), |x, y| (-x) / (-y)),
            (d.div(nx, c), |x, _| (-x) / 3.0),
            (d.div(c, nx), |x, _| 3.0 / (-x)),
            (d.neg(cx), |x, _| -(3.0 * x)),
            (d.neg(xc), |x, _| -(x / 3.0)),
            (d.neg(c_x), |x, _| -(3.0 / x)),
        ];
        for &(id, _) in &cases {
            let node = d.node(id);
            assert!(
                node.children()
                    .all(|ch| !matches!(d.node(ch), Node::Un(Un::Neg, _))),
                "a negation is left in {node:?}"
            );
            assert!(!matches!(node, Node::Un(Un::Neg, _)), "{node:?}");
        }
        for &a in &HOSTILE {
            for &b in &HOSTILE {
                let v = d.evaluate(0.0, &[a, b], &[], &[]);
                for (k, &(id, f)) in cases.iter().enumerate() {
                    let (got, want) = (v[id as usize], f(a, b));
                    assert!(
                        same(got, want),
                        "case {k} at ({a:e}, {b:e}): {got:e} vs {want:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn division_by_a_power_of_two_is_an_exact_multiplication() {
        let mut d = Dag::default();
        let x = d.state(0);
        for c in [4.0, -0.5, 1024.0, 2f64.powi(-1000), 2f64.powi(1000)] {
            let cc = d.constant_node(c);
            let q = d.div(x, cc);
            assert!(matches!(d.node(q), Node::Bin(Bin::Mul, _, _)), "x/{c:e}");
            for a in HOSTILE
                .into_iter()
                .chain([3.0, 1.0 / 3.0, 5e-324, f64::MAX])
            {
                let got = d.evaluate(0.0, &[a], &[], &[])[q as usize];
                assert!(same(got, a / c), "{a:e}/{c:e}: {got:e} vs {:e}", a / c);
            }
        }
        // not a power of two, or a reciprocal that is not a normal number
        for c in [3.0, 5.0, 0.1, 2f64.powi(1023), 5e-324] {
            let cc = d.constant_node(c);
            let q = d.div(x, cc);
            assert!(matches!(d.node(q), Node::Bin(Bin::Div, _, _)), "x/{c:e}");
        }
    }

    #[test]
    fn operation_semantics() {
        assert_eq!(heav(0.0), 1.0);
        assert_eq!(heav(-1e-300), 0.0);
        assert_eq!(sign(-3.0), -1.0);
        assert_eq!(sign(0.0), 0.0);
        assert!(eval_bin(Bin::Min, f64::NAN, 1.0).is_nan());
        assert_eq!(eval_bin(Bin::And, 2.0, -1.0), 1.0);
        assert_eq!(eval_bin(Bin::Or, 0.0, 0.0), 0.0);
        assert_eq!(eval_bin(Bin::ExprelInv, 0.0, 1.0), 1.0);
        assert_eq!(eval_bin(Bin::ExprelInvDeriv, 0.0, 1.0), -0.5);
    }
}
