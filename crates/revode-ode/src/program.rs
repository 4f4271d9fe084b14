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
