//! Straight-line register programs and their interpreter.
//!
//! A program evaluates the nodes reachable from its outputs, each once, in
//! id (topological) order; node `k` of the program writes register `k`.
//! Constants sit in registers filled once by [`Program::new_registers`];
//! inputs (states, parameters, time, adjoint seeds) are copied in at the
//! start of a run. `g(z)` and `g'(z)` of the same `z` become one fused
//! instruction. Nothing allocates per run.

use crate::dag::{eval_bin, eval_un, powi, Bin, Dag, Id, Node, Un};
use revode_model::exp::exp;
use revode_model::exprel_inv_and_deriv_em1;

/// One instruction; `d` is the destination register.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    Add {
        d: u32,
        a: u32,
        b: u32,
    },
    Sub {
        d: u32,
        a: u32,
        b: u32,
    },
    Mul {
        d: u32,
        a: u32,
        b: u32,
    },
    Div {
        d: u32,
        a: u32,
        b: u32,
    },
    Neg {
        d: u32,
        a: u32,
    },
    Exp {
        d: u32,
        a: u32,
    },
    /// Two independent exponentials, `d[k] = e^{a[k]}` (computed together,
    /// two lanes of one vector, by the JIT: crate::program::pair_exponentials).
    Exp2 {
        d: [u32; 2],
        a: [u32; 2],
    },
    PowI {
        d: u32,
        a: u32,
        n: i32,
    },
    /// `g(z)` into `g` and `g'(z)` into `dg`, given `e = e^z`.
    ExprelPair {
        g: u32,
        dg: u32,
        z: u32,
        e: u32,
    },
    Select {
        d: u32,
        c: u32,
        a: u32,
        b: u32,
    },
    Un {
        op: Un,
        d: u32,
        a: u32,
    },
    Bin {
        op: Bin,
        d: u32,
        a: u32,
        b: u32,
    },
}

/// Where an input register is loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    State(usize),
    Param(usize),
    Lambda(usize),
    Time,
}

/// A compiled straight-line program.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub(crate) instrs: Vec<Instr>,
    pub(crate) constants: Vec<(u32, f64)>,
    pub(crate) inputs: Vec<(u32, Input)>,
    pub(crate) n_registers: usize,
    /// Register of each requested root, in request order.
    pub(crate) roots: Vec<u32>,
}

impl Program {
    /// Compiles the nodes needed for `roots`.
    pub fn compile(dag: &Dag, roots: &[Id]) -> Program {
        let n = dag.len();
        let mut needed = vec![false; n];
        for &r in roots {
            needed[r as usize] = true;
        }
        for id in (0..n).rev() {
            if needed[id] {
                for c in dag.node(id as Id).children() {
                    needed[c as usize] = true;
                }
            }
        }
        let mut register = vec![u32::MAX; n];
        let mut next = 0u32;
        for id in 0..n {
            if needed[id] {
                register[id] = next;
                next += 1;
            }
        }
        // g'(z) of a z whose g(z) is also needed: computed together.
        let mut deriv_of = std::collections::HashMap::new();
        for id in 0..n {
            if let (true, Node::Bin(Bin::ExprelInvDeriv, z, e)) = (needed[id], dag.node(id as Id)) {
                deriv_of.insert((z, e), id);
            }
        }
        let mut fused_away = vec![false; n];
        let r = |id: Id| register[id as usize];
        let mut p = Program {
            instrs: Vec::new(),
            constants: Vec::new(),
            inputs: Vec::new(),
            n_registers: next as usize,
            roots: roots.iter().map(|&id| r(id)).collect(),
        };
        for id in 0..n {
            if !needed[id] || fused_away[id] {
                continue;
            }
            let d = register[id];
            let instr = match dag.node(id as Id) {
                Node::Const(bits) => {
                    p.constants.push((d, f64::from_bits(bits)));
                    continue;
                }
                Node::State(i) => {
                    p.inputs.push((d, Input::State(i as usize)));
                    continue;
                }
                Node::Param(k) => {
                    p.inputs.push((d, Input::Param(k as usize)));
                    continue;
                }
                Node::Lambda(i) => {
                    p.inputs.push((d, Input::Lambda(i as usize)));
                    continue;
                }
                Node::Time => {
                    p.inputs.push((d, Input::Time));
                    continue;
                }
                Node::Bin(Bin::ExprelInv, z, e) if deriv_of.contains_key(&(z, e)) => {
                    let dg = deriv_of[&(z, e)];
                    fused_away[dg] = true;
                    Instr::ExprelPair {
                        g: d,
                        dg: register[dg],
                        z: r(z),
                        e: r(e),
                    }
                }
                Node::Un(Un::Neg, a) => Instr::Neg { d, a: r(a) },
                Node::Un(Un::Exp, a) => Instr::Exp { d, a: r(a) },
                Node::Un(op, a) => Instr::Un { op, d, a: r(a) },
                Node::PowI(a, k) => Instr::PowI { d, a: r(a), n: k },
                Node::Bin(op, a, b) => {
                    let (a, b) = (r(a), r(b));
                    match op {
                        Bin::Add => Instr::Add { d, a, b },
                        Bin::Sub => Instr::Sub { d, a, b },
                        Bin::Mul => Instr::Mul { d, a, b },
                        Bin::Div => Instr::Div { d, a, b },
                        op => Instr::Bin { op, d, a, b },
                    }
                }
                Node::Select(c, a, b) => Instr::Select {
                    d,
                    c: r(c),
                    a: r(a),
                    b: r(b),
                },
            };
            p.instrs.push(instr);
        }
        pair_exponentials(&mut p.instrs);
        adjacent_pairs(&mut p.instrs);
        p
    }

    /// A register file with the constants in place (one per solve).
    pub fn new_registers(&self) -> Vec<f64> {
        let mut regs = vec![0.0; self.n_registers];
        for &(r, x) in &self.constants {
            regs[r as usize] = x;
        }
        regs
    }

    /// Registers of the roots given to [`Program::compile`].
    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// The constant registers and their values.
    pub fn constants(&self) -> &[(u32, f64)] {
        &self.constants
    }

    pub fn instructions(&self) -> &[Instr] {
        &self.instrs
    }

    pub fn n_registers(&self) -> usize {
        self.n_registers
    }

    /// Loads the inputs and runs the program.
    #[inline]
    pub fn run(&self, regs: &mut [f64], t: f64, u: &[f64], p: &[f64], lambda: &[f64]) {
        for &(r, input) in &self.inputs {
            regs[r as usize] = match input {
                Input::State(i) => u[i],
                Input::Param(k) => p[k],
                Input::Lambda(i) => lambda[i],
                Input::Time => t,
            };
        }
        for ins in &self.instrs {
            execute(regs, *ins);
        }
    }
}

#[inline(always)]
fn execute(x: &mut [f64], ins: Instr) {
    match ins {
        Instr::Add { d, a, b } => x[d as usize] = x[a as usize] + x[b as usize],
        Instr::Sub { d, a, b } => x[d as usize] = x[a as usize] - x[b as usize],
        Instr::Mul { d, a, b } => x[d as usize] = x[a as usize] * x[b as usize],
        Instr::Div { d, a, b } => x[d as usize] = x[a as usize] / x[b as usize],
        Instr::Neg { d, a } => x[d as usize] = -x[a as usize],
        Instr::Exp { d, a } => x[d as usize] = exp(x[a as usize]),
        Instr::Exp2 { d, a } => {
            x[d[0] as usize] = exp(x[a[0] as usize]);
            x[d[1] as usize] = exp(x[a[1] as usize]);
        }
        Instr::PowI { d, a, n } => x[d as usize] = powi(x[a as usize], n),
        Instr::ExprelPair { g, dg, z, e } => {
            let z = x[z as usize];
            let (gv, dv) = exprel_inv_and_deriv_em1(z, x[e as usize] - 1.0);
            x[g as usize] = gv;
            x[dg as usize] = dv;
        }
        Instr::Select { d, c, a, b } => {
            x[d as usize] = if x[c as usize] != 0.0 {
                x[a as usize]
            } else {
                x[b as usize]
            }
        }
        Instr::Un { op, d, a } => x[d as usize] = eval_un(op, x[a as usize]),
        Instr::Bin { op, d, a, b } => x[d as usize] = eval_bin(op, x[a as usize], x[b as usize]),
    }
}

/// The registers an instruction reads.
pub fn reads(ins: &Instr) -> impl Iterator<Item = u32> {
    let (a, b, c) = match *ins {
        Instr::Add { a, b, .. }
        | Instr::Sub { a, b, .. }
        | Instr::Mul { a, b, .. }
        | Instr::Div { a, b, .. }
        | Instr::Bin { a, b, .. } => (Some(a), Some(b), None),
        Instr::Neg { a, .. }
        | Instr::Exp { a, .. }
        | Instr::PowI { a, .. }
        | Instr::Un { a, .. } => (Some(a), None, None),
        Instr::Exp2 { a, .. } => (Some(a[0]), Some(a[1]), None),
        Instr::ExprelPair { z, e, .. } => (Some(z), Some(e), None),
        Instr::Select { c, a, b, .. } => (Some(c), Some(a), Some(b)),
    };
    a.into_iter().chain(b).chain(c)
}

/// The registers an instruction writes.
pub fn writes(ins: &Instr) -> impl Iterator<Item = u32> {
    let (a, b) = match *ins {
        Instr::Add { d, .. }
        | Instr::Sub { d, .. }
        | Instr::Mul { d, .. }
        | Instr::Div { d, .. }
        | Instr::Neg { d, .. }
        | Instr::Exp { d, .. }
        | Instr::PowI { d, .. }
        | Instr::Select { d, .. }
        | Instr::Un { d, .. }
        | Instr::Bin { d, .. } => (d, None),
        Instr::Exp2 { d, .. } => (d[0], Some(d[1])),
        Instr::ExprelPair { g, dg, .. } => (g, Some(dg)),
    };
    std::iter::once(a).chain(b)
}

/// How far ahead [`pair_exponentials`] looks for a partner.
const PAIR_REACH: usize = 64;

/// Joins exponentials into pairs ([`Instr::Exp2`]) that the JIT computes as
/// the two lanes of one vector, the same operations lane by lane (so the
/// values do not change). For an `exp` at `i`, the next `exp` at `j` (within
/// [`PAIR_REACH`]) joins it when its argument does not depend on the first
/// one's result: the instructions between them that its argument needs
/// move up before `i`, the pair takes `i`'s place, the others follow (a
/// valid order: registers are written once and the moved instructions need
/// nothing else in between). Linear: each instruction is looked at a
/// bounded number of times.
pub fn pair_exponentials(instrs: &mut Vec<Instr>) {
    bring_together(
        instrs,
        |ins| match ins {
            Instr::Exp { d, a } => Some((vec![d], vec![a])),
            _ => None,
        },
        |first, second| match (first, second) {
            (Instr::Exp { d: d0, a: a0 }, Instr::Exp { d: d1, a: a1 }) => vec![Instr::Exp2 {
                d: [d0, d1],
                a: [a0, a1],
            }],
            _ => unreachable!("two exponentials"),
        },
    );
}

/// Puts independent pairs of exponentials next to each other, the second's
/// arguments computed before the first, in the same way as
/// [`pair_exponentials`] joins single ones: called native code then
/// computes both pairs in one four-lane call (`crate::jit`).
pub fn adjacent_pairs(instrs: &mut Vec<Instr>) {
    bring_together(
        instrs,
        |ins| match ins {
            Instr::Exp2 { d, a } => Some((d.to_vec(), a.to_vec())),
            _ => None,
        },
        |first, second| vec![first, second],
    );
}

/// For each instruction `kind` accepts (its results and arguments), the
/// next one within [`PAIR_REACH`] whose arguments do not depend on the
/// first's results joins it (`join`): the instructions between them that
/// its arguments need move up, `join`'s instructions take the first's
/// place, the others follow.
fn bring_together(
    instrs: &mut Vec<Instr>,
    kind: impl Fn(Instr) -> Option<(Vec<u32>, Vec<u32>)>,
    join: impl Fn(Instr, Instr) -> Vec<Instr>,
) {
    // Rewritten in place, a window at a time (an emptied slot where the
    // second was), then compacted once: linear.
    let mut slots: Vec<Option<Instr>> = std::mem::take(instrs).into_iter().map(Some).collect();
    let mut needed = std::collections::HashSet::new();
    let mut i = 0;
    while i < slots.len() {
        let Some((first, (results, _))) = slots[i].and_then(|x| kind(x).map(|k| (x, k))) else {
            i += 1;
            continue;
        };
        let end = slots.len().min(i + 1 + PAIR_REACH);
        let next = (i + 1..end).find(|&k| slots[k].and_then(&kind).is_some());
        let Some((j, second, args)) = next.and_then(|j| {
            let x = slots[j]?;
            kind(x).map(|(_, a)| (j, x, a))
        }) else {
            i += 1;
            continue;
        };
        // the instructions in (i, j) that the second's arguments need
        needed.clear();
        needed.extend(args);
        let mut moved = vec![false; j - i - 1];
        for k in (i + 1..j).rev() {
            if let Some(ins) = &slots[k] {
                if writes(ins).any(|r| needed.contains(&r)) {
                    moved[k - i - 1] = true;
                    needed.extend(reads(ins));
                }
            }
        }
        if results.iter().any(|r| needed.contains(r)) {
            i += 1;
            continue;
        }
        let between = || {
            slots[i + 1..j]
                .iter()
                .zip(&moved)
                .filter_map(|(s, &m)| s.map(|ins| (ins, m)))
        };
        let mut segment: Vec<Instr> = between().filter(|x| x.1).map(|x| x.0).collect();
        let joined = join(first, second);
        let after = segment.len() + joined.len();
        segment.extend(joined);
        segment.extend(between().filter(|x| !x.1).map(|x| x.0));
        for (k, slot) in slots[i..=j].iter_mut().enumerate() {
            *slot = segment.get(k).copied();
        }
        i += after;
    }
    *instrs = slots.into_iter().flatten().collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::{Dag, Un};

    fn exp2_count(p: &Program) -> usize {
        p.instrs
            .iter()
            .filter(|i| matches!(i, Instr::Exp2 { .. }))
            .count()
    }

    /// Runs `p` for `roots` and compares with the DAG evaluated directly.
    fn agrees_with_the_dag(d: &Dag, roots: &[Id], u: &[f64]) {
        let p = Program::compile(d, roots);
        let mut regs = p.new_registers();
        p.run(&mut regs, 0.0, u, &[], &[]);
        let want = d.evaluate(0.0, u, &[], &[]);
        for (&root, &r) in roots.iter().zip(p.roots()) {
            assert_eq!(regs[r as usize].to_bits(), want[root as usize].to_bits());
        }
    }

    #[test]
    fn independent_exponentials_are_paired_and_reordered_validly() {
        // e^{x·3 + 1} · y  +  e^{(y + 2)²}: the second argument is computed
        // between the two exponentials and moves up.
        let mut d = Dag::default();
        let x = d.state(0);
        let y = d.state(1);
        let c3 = d.constant_node(3.0);
        let c1 = d.constant_node(1.0);
        let c2 = d.constant_node(2.0);
        let a = d.mul(x, c3);
        let a = d.add(a, c1);
        let ea = d.un(Un::Exp, a);
        let eay = d.mul(ea, y);
        let b = d.add(y, c2);
        let b = d.powi(b, 2);
        let eb = d.un(Un::Exp, b);
        let f = d.add(eay, eb);
        let p = Program::compile(&d, &[f]);
        assert_eq!(exp2_count(&p), 1);
        // every register is written before it is read
        let mut written: Vec<bool> = vec![false; p.n_registers];
        for &(r, _) in p.constants.iter() {
            written[r as usize] = true;
        }
        for &(r, _) in p.inputs.iter() {
            written[r as usize] = true;
        }
        for ins in &p.instrs {
            assert!(reads(ins).all(|r| written[r as usize]), "{ins:?}");
            for r in writes(ins) {
                written[r as usize] = true;
            }
        }
        agrees_with_the_dag(&d, &[f], &[0.3, -0.7]);
    }

    #[test]
    fn an_exponential_of_an_exponential_is_not_paired_with_it() {
        let mut d = Dag::default();
        let x = d.state(0);
        let c = d.constant_node(0.5);
        let a = d.mul(x, c);
        let e1 = d.un(Un::Exp, a);
        let e2 = d.un(Un::Exp, e1);
        let p = Program::compile(&d, &[e2]);
        assert_eq!(exp2_count(&p), 0);
        agrees_with_the_dag(&d, &[e2], &[0.25]);
    }
}
