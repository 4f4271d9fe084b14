//! One exponential for several rates of the same voltage.
//!
//! Rate functions written separately often exponentiate affine forms of the
//! same variable with the same slope up to sign: in Hodgkin–Huxley-type
//! files `β_m`'s `exp((V+23)/5)`, `β_h`'s `exp(−(V+23)/5)` and `α_n`'s
//! `exp(−(V+15)/5)`. With `w = s·w₀ + Δ` (`s = ±1`, `Δ` a constant) the
//! second and third are `e^Δ·e^{w₀}` or `e^Δ·(1/e^{w₀})`: a multiplication
//! (and one division shared by every member of the opposite sign) instead
//! of an exponential.
//!
//! Every `exp(w)` built in the DAG comes here. `w` is read as an affine form
//! `Σ cᵢ·yᵢ + b` ([`crate::singular::affine`], bounded work per call, so
//! loading stays linear); its atoms and coefficients, signed so the first
//! is positive, are the group key. The first exponential of a group is the
//! base and is computed; later members reuse it when `Δ` is in range:
//!
//! * `s = +1`: `Δ ≤ 0.7`, `s = −1`: `Δ ≤ 1.7`. The base is clamped to
//!   `[e^{−708}, e^{709}]` (revode_model::exp), so `e^Δ·e^{w₀}` and
//!   `e^Δ·(1/e^{w₀})` stay below `e^{709.7} < f64::MAX`: never `∞`, so no
//!   `∞·0` downstream (a member may underflow to 0, or lose digits to a
//!   subnormal reciprocal, where its own exponential would have been
//!   clamped to `e^{−708}`, i.e. beyond 700 units of exponent);
//! * `Δ ≥ −700`, so `e^Δ` is a normal number.
//!
//! Rounding: `e^w` from its own exponential carries the rounding of `w`
//! (`|w|·ε`) and ≲ 2 ulp; the shared form carries `w₀`'s, the rounding of
//! `Δ` and of `e^Δ`, and one more operation: the two agree to a few
//! `(|w| + |w₀| + 4)·ε` relative, ~10⁻¹⁴ for rate arguments (tested).
//! Nodes made this way are remembered as `e^w` ([`Dag::exp_argument`]) so
//! the removable-singularity rewrite still recognises `e^w − 1`.

use std::collections::HashMap;

use crate::dag::{Dag, Id, Node, Un};
use crate::singular::affine;

/// Largest `Δ` for a member `e^Δ·e^{w₀}` (see the module docs).
const MAX_SHIFT_SAME_SIGN: f64 = 0.7;
/// Largest `Δ` for a member `e^Δ·(1/e^{w₀})`.
const MAX_SHIFT_OPPOSITE_SIGN: f64 = 1.7;
/// Smallest `Δ` for either.
const MIN_SHIFT: f64 = -700.0;

/// The base of a group: `e^{w₀}` with `w₀ = sign·(key) + constant`.
#[derive(Debug, Clone, Copy)]
struct Base {
    id: Id,
    sign: f64,
    constant: f64,
}

/// The groups built so far, and the nodes known to be exponentials.
#[derive(Debug, Default, Clone)]
pub struct ExpGroups {
    /// Signed atoms and coefficients (by bits) → the group's base.
    bases: HashMap<Vec<(Id, u64)>, Base, foldhash::fast::RandomState>,
    /// Shared node → the argument `w` it is `e^w` of.
    argument: HashMap<Id, Id, foldhash::fast::RandomState>,
    /// Argument `w` → the node `e^w` became.
    made: HashMap<Id, Id, foldhash::fast::RandomState>,
    /// Exponentials replaced by a product or quotient with a base.
    pub shared: usize,
}

impl ExpGroups {
    /// `Some(w)` if `id` was made equal to `e^w` here.
    pub fn argument_of(&self, id: Id) -> Option<Id> {
        if self.argument.is_empty() {
            return None;
        }
        self.argument.get(&id).copied()
    }
}

/// `e^w` for a non-constant `w`: an `exp` node, or a product or quotient
/// with an exponential already in the DAG (see the module docs).
pub fn exp(dag: &mut Dag, w: Id) -> Id {
    if let Some(id) = dag.find(&Node::Un(Un::Exp, w)) {
        return id;
    }
    if let Some(&id) = dag.exp_groups().made.get(&w) {
        return id;
    }
    let own = |dag: &mut Dag| dag.intern(Node::Un(Un::Exp, w));
    let Some(form) = affine(dag, w) else {
        return own(dag);
    };
    let Some(&(_, first)) = form.terms.first() else {
        return own(dag);
    };
    let sign = first.signum();
    let key: Vec<(Id, u64)> = form
        .terms
        .iter()
        .map(|&(atom, c)| (atom, (sign * c).to_bits()))
        .collect();
    let Some(base) = dag.exp_groups().bases.get(&key).copied() else {
        let id = own(dag);
        let base = Base {
            id,
            sign,
            constant: form.constant,
        };
        dag.exp_groups().bases.insert(key, base);
        return id;
    };
    // w = s·w₀ + Δ
    let s = sign * base.sign;
    let shift = form.constant - s * base.constant;
    let max = if s > 0.0 {
        MAX_SHIFT_SAME_SIGN
    } else {
        MAX_SHIFT_OPPOSITE_SIGN
    };
    if !(MIN_SHIFT..=max).contains(&shift) {
        return own(dag);
    }
    let id = if s > 0.0 && shift == 0.0 {
        base.id
    } else if s > 0.0 {
        let k = dag.constant_node(shift.exp());
        dag.mul(k, base.id)
    } else {
        // e^Δ·(1/e^{w₀}): the reciprocal is one node for every member of
        // the opposite sign (β_h's sigmoid needs it anyway), so they share
        // one division instead of one each.
        let one = dag.constant_node(1.0);
        let reciprocal = dag.div(one, base.id);
        if shift == 0.0 {
            reciprocal
        } else {
            let k = dag.constant_node(shift.exp());
            dag.mul(k, reciprocal)
        }
    };
    let groups = dag.exp_groups();
    groups.shared += 1;
    groups.made.insert(w, id);
    if id != base.id {
        groups.argument.entry(id).or_insert(w);
    }
    id
}

#[cfg(test)]
mod tests {
    use crate::dag::{Bin, Dag, Id, Node, Un};

    /// `exp((x + b)·c)` built the way a file writes it.
    fn exp_of(d: &mut Dag, x: Id, b: f64, c: f64) -> Id {
        let bc = d.constant_node(b);
        let cc = d.constant_node(c);
        let s = d.add(x, bc);
        let w = d.mul(s, cc);
        d.un(Un::Exp, w)
    }

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    fn exp_nodes(d: &Dag) -> usize {
        (0..d.len() as Id)
            .filter(|&id| matches!(d.node(id), Node::Un(Un::Exp, _)))
            .count()
    }

    #[test]
    fn proportional_arguments_share_one_exponential() {
        let mut d = Dag::default();
        let v = d.state(0);
        let base = exp_of(&mut d, v, 23.0, 0.2);
        let opposite = exp_of(&mut d, v, 23.0, -0.2);
        let shifted = exp_of(&mut d, v, 48.0, -0.2);
        let same_sign = exp_of(&mut d, v, 20.0, 0.2);
        assert_eq!(exp_nodes(&d), 1, "one exponential for all four");
        assert!(matches!(d.node(base), Node::Un(Un::Exp, _)));
        // e^{−(V+23)/5} = 1/e^{(V+23)/5}
        let one = d.constant_node(1.0);
        assert_eq!(d.node(opposite), Node::Bin(Bin::Div, one, base));
        // e^{−(V+48)/5} = e^{−5}·(1/e^{(V+23)/5}), the same reciprocal
        let Node::Bin(Bin::Mul, x, y) = d.node(shifted) else {
            panic!("{:?}", d.node(shifted));
        };
        let (k, r) = if d.constant(x).is_some() {
            (x, y)
        } else {
            (y, x)
        };
        assert_eq!(r, opposite);
        assert!(rel(d.constant(k).unwrap(), (-5f64).exp()) < 1e-15);
        // e^{(V+20)/5} = e^{−0.6}·e^{(V+23)/5}
        assert!(matches!(d.node(same_sign), Node::Bin(Bin::Mul, _, _)));
        for i in 0..=400 {
            let e = -150.0 + 0.75 * i as f64;
            let vals = d.evaluate(0.0, &[e], &[], &[]);
            let at = |id: Id| vals[id as usize];
            assert!(rel(at(opposite), (-(e + 23.0) / 5.0).exp()) < 2e-14, "{e}");
            assert!(rel(at(shifted), (-(e + 48.0) / 5.0).exp()) < 2e-14, "{e}");
            assert!(rel(at(same_sign), ((e + 20.0) / 5.0).exp()) < 2e-14, "{e}");
        }
        // The same argument again is the same node.
        assert_eq!(exp_of(&mut d, v, 48.0, -0.2), shifted);
    }

    #[test]
    fn other_slopes_variables_and_far_shifts_keep_their_own() {
        let mut d = Dag::default();
        let v = d.state(0);
        let w = d.state(1);
        exp_of(&mut d, v, 23.0, 0.2);
        exp_of(&mut d, v, 23.0, 0.25); // another slope
        exp_of(&mut d, w, 23.0, 0.2); // another variable
                                      // the base's argument is w₀ = 0.2·V + 4.6
        exp_of(&mut d, v, 30.0, 0.2); // 0.2·V + 6: Δ = 1.4 > 0.7
        exp_of(&mut d, v, 5.0, -0.2); // −0.2·V − 1 = −w₀ + 3.6: Δ > 1.7
        exp_of(&mut d, v, 20.0, 0.2); // Δ = −0.6: shared
        exp_of(&mut d, v, 20.0, -0.2); // −w₀ + 0.6: shared
        assert_eq!(exp_nodes(&d), 5);
    }

    #[test]
    fn shared_exponentials_stay_finite_far_out() {
        // The base is clamped to [e^−708, e^709]; members never reach ∞.
        let mut d = Dag::default();
        let v = d.state(0);
        let base = exp_of(&mut d, v, 0.0, 1.0);
        let up = exp_of(&mut d, v, 0.7, 1.0); // Δ = 0.7
        let down = exp_of(&mut d, v, -1.7, -1.0); // −V + 1.7 = −(V) + 1.7
        assert_eq!(exp_nodes(&d), 1);
        for e in [-1e4, -750.0, -709.5, 0.0, 709.5, 750.0, 1e4] {
            let vals = d.evaluate(0.0, &[e], &[], &[]);
            for id in [base, up, down] {
                let x = vals[id as usize];
                assert!(x.is_finite() && x >= 0.0, "{e}: {x}");
            }
        }
    }

    #[test]
    fn multi_variable_arguments_and_parameters_share() {
        // exp((V − W)/k) and exp((W − V)/k): the key is every atom's coefficient.
        let mut d = Dag::default();
        let v = d.state(0);
        let w = d.state(1);
        let k = d.constant_node(7.0);
        let a = d.sub(v, w);
        let a = d.div(a, k);
        let ea = d.un(Un::Exp, a);
        let b = d.sub(w, v);
        let b = d.div(b, k);
        let eb = d.un(Un::Exp, b);
        assert_eq!(exp_nodes(&d), 1);
        let vals = d.evaluate(0.0, &[3.0, -11.0], &[], &[]);
        assert!(rel(vals[ea as usize], 2f64.exp()) < 1e-15);
        assert!(rel(vals[eb as usize], (-2f64).exp()) < 1e-15);
    }

    #[test]
    fn singularities_of_shared_exponentials_are_still_rewritten() {
        // 0.032·(V+48)/(1 − e^{−(V+48)/5}) after e^{(V+23)/5} exists: the
        // denominator's exponential is e^{−5}/e^{(V+23)/5}, and the quotient
        // still becomes K·g(w) with g of that shared exponential.
        let mut d = Dag::default();
        let v = d.state(0);
        let base = exp_of(&mut d, v, 23.0, 0.2);
        let e = exp_of(&mut d, v, 48.0, -0.2);
        assert_ne!(e, base);
        let one = d.constant_node(1.0);
        let den = d.sub(one, e);
        let c48 = d.constant_node(48.0);
        let x = d.add(v, c48);
        let c = d.constant_node(0.032);
        let num = d.mul(c, x);
        let q = d.div(num, den);
        assert_eq!(d.singular_stats().rewritten, 1);
        let uses_g = (0..d.len() as Id)
            .any(|id| matches!(d.node(id), Node::Bin(Bin::ExprelInv, _, b) if b == e));
        assert!(uses_g, "g(w) takes the shared exponential");
        let at = |x: f64| d.evaluate(0.0, &[x], &[], &[])[q as usize];
        // finite at the 0/0 point, with the limit 0.032·5 = 0.16
        assert!((at(-48.0) - 0.16).abs() < 1e-15);
        let x = -40.0;
        let want = 0.032 * (x + 48.0) / (1.0 - (-(x + 48.0) / 5.0f64).exp());
        assert!(rel(at(x), want) < 1e-14);
    }
}
