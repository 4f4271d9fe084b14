//! The removable singularity of rate functions like
//! `α = a·x / (exp(x/k) − 1)`, which is `0/0` at `x = 0`.
//!
//! Recognised: a quotient `N / D` where
//!
//! * `D = c·exp(w) − c` for a constant `c ≠ 0` (so `exp(w) − 1`,
//!   `1 − exp(w)`, `2·exp(w) − 2`, … in any arrangement of sums, differences,
//!   negations and constant factors), and
//! * `N` and `w` are products and quotients of factors (with constant
//!   coefficients and negations anywhere), where every factor of `w` in its
//!   numerator is also a factor of `N`, and `w` shares at least one factor
//!   with `N`, in their numerators or in their denominators (it may depend
//!   on states, parameters or `t`). Factors are compared as affine forms
//!   `Σ aᵢ·yᵢ + b` normalised by their first coefficient, so `(V+40)`,
//!   `-(V+40)/10`, `(-V-40)` and `(40+V)` share the factor `V+40`.
//!
//! Then `N/D = K · R · g(w)` with `g(z) = z/(e^z − 1)` evaluated through its
//! series near 0 (finite and exact at `w = 0`), `R` the factors of `N` not
//! in `w` times those of `w`'s denominator, and `K` the constant left over.
//! Example: `a·(V−Vh)/(exp(−(V−Vh)/k) − 1)` has `w = −(V−Vh)/k`, so it is
//! `−a·k·g(w)`. docs/model-files.md lists the recognised forms.

use crate::dag::{Bin, Dag, Id, Node, Un};

/// `Σ coef·atom + constant`, atoms sorted by id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Affine {
    pub(crate) terms: Vec<(Id, f64)>,
    pub(crate) constant: f64,
}

/// Largest number of atoms an affine form may have (guards pathological DAGs).
const MAX_TERMS: usize = 32;

impl Affine {
    fn constant(c: f64) -> Self {
        Affine {
            terms: Vec::new(),
            constant: c,
        }
    }

    fn scale(mut self, s: f64) -> Self {
        for t in &mut self.terms {
            t.1 *= s;
        }
        self.constant *= s;
        self
    }

    fn plus(mut self, other: Affine) -> Option<Self> {
        for (id, c) in other.terms {
            match self.terms.binary_search_by_key(&id, |t| t.0) {
                Ok(at) => self.terms[at].1 += c,
                Err(at) => self.terms.insert(at, (id, c)),
            }
        }
        self.terms.retain(|t| t.1 != 0.0);
        self.constant += other.constant;
        (self.terms.len() <= MAX_TERMS).then_some(self)
    }
}

/// Most nodes [`affine`] and [`factorize`] look at for one quotient: keeps
/// the rewrite O(1) per quotient however large or deep (or, through shared
/// nodes, exponentially large as a tree) the operands are. Rate functions
/// need a few dozen.
const VISIT_BUDGET: usize = 256;

/// `id` read as an affine form; `None` if it has more than [`MAX_TERMS`]
/// atoms or more than [`VISIT_BUDGET`] nodes. Iterative (an explicit stack
/// replaying the natural recursion, so coefficients round exactly as they
/// would there): safe at any depth.
pub(crate) fn affine(dag: &Dag, id: Id) -> Option<Affine> {
    enum Step {
        Visit(Id),
        /// Pop one form and scale it.
        Scale(f64),
        /// Pop `b` then `a`; push `a + sign·b`.
        Combine(f64),
    }
    let mut steps = vec![Step::Visit(id)];
    let mut forms: Vec<Affine> = Vec::new();
    let mut visits = 0;
    while let Some(step) = steps.pop() {
        match step {
            Step::Visit(id) => {
                visits += 1;
                if visits > VISIT_BUDGET {
                    return None;
                }
                if dag.exp_argument(id).is_some() {
                    // e^w, even when the sharing wrote it `K·e^{w₀}`: an atom
                    forms.push(Affine {
                        terms: vec![(id, 1.0)],
                        constant: 0.0,
                    });
                    continue;
                }
                match dag.node(id) {
                    Node::Const(bits) => forms.push(Affine::constant(f64::from_bits(bits))),
                    Node::Un(Un::Neg, a) => steps.extend([Step::Scale(-1.0), Step::Visit(a)]),
                    Node::Bin(op @ (Bin::Add | Bin::Sub), a, b) => {
                        let sign = if op == Bin::Add { 1.0 } else { -1.0 };
                        steps.extend([Step::Combine(sign), Step::Visit(b), Step::Visit(a)]);
                    }
                    Node::Bin(Bin::Mul, a, b) if dag.constant(a).is_some() => {
                        steps.extend([Step::Scale(dag.constant(a)?), Step::Visit(b)]);
                    }
                    Node::Bin(Bin::Mul, a, b) if dag.constant(b).is_some() => {
                        steps.extend([Step::Scale(dag.constant(b)?), Step::Visit(a)]);
                    }
                    Node::Bin(Bin::Div, a, b) if dag.constant(b).is_some() => {
                        steps.extend([Step::Scale(1.0 / dag.constant(b)?), Step::Visit(a)]);
                    }
                    _ => forms.push(Affine {
                        terms: vec![(id, 1.0)],
                        constant: 0.0,
                    }),
                }
            }
            Step::Scale(c) => {
                let f = forms.pop()?;
                forms.push(f.scale(c));
            }
            Step::Combine(sign) => {
                let b = forms.pop()?;
                let a = forms.pop()?;
                let b = if sign < 0.0 { b.scale(-1.0) } else { b };
                forms.push(a.plus(b)?);
            }
        }
    }
    forms.pop()
}

/// Equal up to a few ulps (coefficients reached by different roundings).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// What a factor is, for matching: a node, or a normalised affine form.
#[derive(Debug, Clone)]
enum Key {
    Node(Id),
    Affine(Affine),
}

impl Key {
    fn same(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Node(a), Key::Node(b)) => a == b,
            (Key::Affine(a), Key::Affine(b)) => {
                a.terms.len() == b.terms.len()
                    && a.terms
                        .iter()
                        .zip(&b.terms)
                        .all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
                    && close(a.constant, b.constant)
            }
            _ => false,
        }
    }
}

/// One factor: `node = scale · canonical`, raised to `power` (±1).
#[derive(Debug, Clone)]
struct Factor {
    key: Key,
    node: Id,
    scale: f64,
    power: i32,
}

/// `id^power = κ · Π canonical(f)^{f.power}`: κ is multiplied in, factors
/// pushed, in the order of a left-to-right walk (an explicit stack: safe at
/// any depth). `None` beyond [`MAX_TERMS`] factors or [`VISIT_BUDGET`]
/// nodes.
fn factorize(dag: &Dag, id: Id, power: i32, kappa: &mut f64, out: &mut Vec<Factor>) -> Option<()> {
    let mut stack = vec![(id, power)];
    let mut visits = 0;
    while let Some((id, power)) = stack.pop() {
        visits += 1;
        if out.len() > MAX_TERMS || visits > VISIT_BUDGET {
            return None;
        }
        match dag.node(id) {
            Node::Const(bits) => {
                let c = f64::from_bits(bits);
                *kappa *= if power > 0 { c } else { 1.0 / c };
            }
            Node::Un(Un::Neg, a) => {
                *kappa = -*kappa;
                stack.push((a, power));
            }
            Node::Bin(Bin::Mul, a, b) => stack.extend([(b, power), (a, power)]),
            Node::Bin(Bin::Div, a, b) => stack.extend([(b, -power), (a, power)]),
            _ => {
                let form = affine(dag, id)?;
                let (key, node, scale) = match form.terms.as_slice() {
                    [] => return None,
                    // `id` is `c·atom` (e.g. `a + a`): canonical is the atom.
                    [(atom, c)] if form.constant == 0.0 => (Key::Node(*atom), id, *c),
                    [(_, s), ..] => {
                        let s = *s;
                        (Key::Affine(form.scale(1.0 / s)), id, s)
                    }
                };
                *kappa *= if power > 0 { scale } else { 1.0 / scale };
                out.push(Factor {
                    key,
                    node,
                    scale,
                    power,
                });
            }
        }
    }
    Some(())
}

/// `num / den` as `K · R · g(w)` if it has the recognised form (see the
/// module docs), else `None`.
pub fn rewrite_quotient(dag: &mut Dag, num: Id, den: Id) -> Option<Id> {
    if dag.constant(den).is_some() {
        return None;
    }
    // D = c·exp(w) + d with d = −c.
    let d_form = affine(dag, den)?;
    let [(exp_node, c)] = d_form.terms.as_slice() else {
        return None;
    };
    let c = *c;
    if !close(d_form.constant, -c) {
        return None;
    }
    let exp_node = *exp_node;
    let w = dag.exp_argument(exp_node)?;
    let (mut kn, mut kw) = (1.0, 1.0);
    let (mut fn_, mut fw) = (Vec::new(), Vec::new());
    factorize(dag, num, 1, &mut kn, &mut fn_)?;
    factorize(dag, w, 1, &mut kw, &mut fw)?;
    let mut k = kn / (kw * c);
    let mut rest: Vec<(Id, i32)> = Vec::new();
    let mut shares_factor = false;
    for g in fw {
        match fn_
            .iter()
            .position(|f| f.power == g.power && f.key.same(&g.key))
        {
            Some(at) => {
                fn_.remove(at);
                // Shared in the numerators (`x/(exp(x/k) − 1)`) or the
                // denominators (`(c/y)/(exp(c/(k·y)) − 1)`): either way
                // N/w is K·R and the rewrite is exact.
                shares_factor = true;
            }
            // A factor of w's numerator missing from N: not the 0/0 form.
            None if g.power > 0 => return None,
            // w = …/k: g(w) needs a factor k back.
            None => {
                k *= g.scale.powi(g.power);
                rest.push((g.node, -g.power));
            }
        }
    }
    if !shares_factor {
        return None;
    }
    for f in fn_ {
        k *= f.scale.powi(-f.power);
        rest.push((f.node, f.power));
    }
    if !k.is_finite() || k == 0.0 {
        return None;
    }
    let mut product: Option<Id> = None;
    for (node, power) in rest {
        product = Some(match (product, power > 0) {
            (None, true) => node,
            (None, false) => {
                let one = dag.constant_node(1.0);
                dag.div(one, node)
            }
            (Some(p), true) => dag.mul(p, node),
            (Some(p), false) => dag.div(p, node),
        });
    }
    let kc = dag.constant_node(k);
    let coefficient = match product {
        None => kc,
        Some(p) => dag.mul(kc, p),
    };
    let g = dag.bin(Bin::ExprelInv, w, exp_node);
    Some(dag.mul(coefficient, g))
}
