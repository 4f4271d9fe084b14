//! A model file's `global` lines compiled: each event's condition g, its
//! gradient, its reset R and R's vector–Jacobian product, as interpreted
//! register programs (events are few and their programs small; a solve
//! evaluates g once per step and the rest only when an event fires).

use crate::build::LoweredEvent;
use crate::dag::{Dag, Id};
use crate::diff::adjoints_of;
use crate::program::Program;

/// A program with where its outputs are.
#[derive(Debug, Clone)]
struct Outputs {
    program: Program,
    /// Register of each state's output (None: 0).
    states: Vec<Option<u32>>,
    /// `(parameter, register)` of each nonzero parameter output.
    params: Vec<(usize, u32)>,
}

impl Outputs {
    /// A program for `(Σ λ_i roots_i)`'s adjoints with respect to states and parameters.
    fn adjoint(dag: &mut Dag, roots: &[Id], n_states: usize, n_params: usize) -> Outputs {
        let adj = adjoints_of(dag, roots, n_states, n_params);
        let mut ids = Vec::new();
        let mut at = |id: Id| {
            ids.push(id);
            ids.len() - 1
        };
        let states: Vec<Option<usize>> = adj.states.iter().map(|a| a.map(&mut at)).collect();
        let params: Vec<(usize, usize)> = adj
            .params
            .iter()
            .enumerate()
            .filter_map(|(k, a)| a.map(|id| (k, at(id))))
            .collect();
        let program = Program::compile(dag, &ids);
        let reg = |slot: usize| program.roots()[slot];
        Outputs {
            states: states.iter().map(|s| s.map(reg)).collect(),
            params: params.iter().map(|&(k, s)| (k, reg(s))).collect(),
            program,
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledEvent {
    direction: i8,
    value: Program,
    gradient: Outputs,
    /// Roots: the new values of `reset_states`, in order.
    reset: Program,
    reset_states: Vec<usize>,
    reset_vjp: Outputs,
}

/// All events of a model.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventPrograms {
    events: Vec<CompiledEvent>,
    max_registers: usize,
}

/// Loads `program`'s constants into `regs` and runs it.
fn run(program: &Program, regs: &mut [f64], u: &[f64], p: &[f64], lambda: &[f64]) {
    for &(r, x) in &program.constants {
        regs[r as usize] = x;
    }
    program.run(regs, 0.0, u, p, lambda);
}

impl EventPrograms {
    pub fn compile(
        dag: &mut Dag,
        events: &[LoweredEvent],
        n_states: usize,
        n_params: usize,
    ) -> Self {
        let mut compiled = Vec::with_capacity(events.len());
        for ev in events {
            let gradient = Outputs::adjoint(dag, &[ev.condition], n_states, n_params);
            let mut full: Vec<Id> = (0..n_states).map(|i| dag.state(i)).collect();
            for &(i, id) in &ev.resets {
                full[i] = id;
            }
            let reset_vjp = Outputs::adjoint(dag, &full, n_states, n_params);
            let roots: Vec<Id> = ev.resets.iter().map(|r| r.1).collect();
            compiled.push(CompiledEvent {
                direction: ev.direction,
                value: Program::compile(dag, &[ev.condition]),
                gradient,
                reset: Program::compile(dag, &roots),
                reset_states: ev.resets.iter().map(|r| r.0).collect(),
                reset_vjp,
            });
        }
        let max_registers = compiled
            .iter()
            .flat_map(|e| {
                [
                    e.value.n_registers(),
                    e.gradient.program.n_registers(),
                    e.reset.n_registers(),
                    e.reset_vjp.program.n_registers(),
                ]
            })
            .max()
            .unwrap_or(0);
        EventPrograms {
            events: compiled,
            max_registers,
        }
    }

    /// Each event's g, in event order (for native code).
    pub fn value_programs(&self) -> impl Iterator<Item = Program> + '_ {
        self.events.iter().map(|e| e.value.clone())
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Registers every event program fits in (one vector per solve).
    pub fn registers(&self) -> Vec<f64> {
        vec![0.0; self.max_registers]
    }

    pub fn direction(&self, e: usize) -> i8 {
        self.events[e].direction
    }

    pub fn value(&self, e: usize, u: &[f64], p: &[f64], regs: &mut [f64]) -> f64 {
        let prog = &self.events[e].value;
        run(prog, regs, u, p, &[]);
        regs[prog.roots()[0] as usize]
    }

    pub fn gradient(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        regs: &mut [f64],
    ) {
        let g = &self.events[e].gradient;
        run(&g.program, regs, u, p, &[1.0]);
        for (d, slot) in du.iter_mut().zip(&g.states) {
            *d = slot.map_or(0.0, |r| regs[r as usize]);
        }
        dp.fill(0.0);
        for &(k, r) in &g.params {
            dp[k] = regs[r as usize];
        }
    }

    pub fn reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], regs: &mut [f64]) {
        let ev = &self.events[e];
        run(&ev.reset, regs, u, p, &[]);
        out.copy_from_slice(u);
        for (&i, &r) in ev.reset_states.iter().zip(ev.reset.roots()) {
            out[i] = regs[r as usize];
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn reset_vjp(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        acc_p: &mut [f64],
        regs: &mut [f64],
    ) {
        let v = &self.events[e].reset_vjp;
        run(&v.program, regs, u, p, lambda);
        for (o, slot) in out_u.iter_mut().zip(&v.states) {
            *o = slot.map_or(0.0, |r| regs[r as usize]);
        }
        for &(k, r) in &v.params {
            acc_p[k] += regs[r as usize];
        }
    }
}
