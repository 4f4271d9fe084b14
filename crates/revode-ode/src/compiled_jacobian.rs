//! The Jacobian of a model file compiled like its rhs and vjp: a
//! straight-line program over the entries ([`crate::jacobian`]), run by the
//! interpreter or as native code, writing straight into the caller's
//! values in pattern order. Compiled with it: the parameter part of the
//! VJP alone, `(∂f/∂p)ᵀλ` ([`revode_model::Model::vjp_params`]), which
//! implicit adjoints need at every step and which, without the state
//! part, skips the rates (for an HH cable, ∂(dV/dt)/∂gNa = −m³h(V − E_Na)).

use std::time::{Duration, Instant};

use revode_model::SparsityPattern;

use crate::dag::{Dag, Id};
use crate::jit::JitCode;
use crate::native::Native;
use crate::program::Program;

/// Stage times of deriving and compiling a Jacobian.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JacobianProfile {
    pub differentiate: Duration,
    pub program: Duration,
    /// Compiling to native code, or starting that in the background.
    pub jit: Duration,
    pub jit_in_background: bool,
    /// From the end of `build` until the background compile was ready
    /// (measured by [`crate::OdeModel::from_str_profiled`]).
    pub native_wait: Duration,
}

#[derive(Debug)]
pub struct CompiledJacobian {
    pub pattern: SparsityPattern,
    pub program: Program,
    /// `(∂f/∂p)ᵀλ` for the parameters with a nonzero derivative.
    pub param_vjp: Program,
    /// The parameter of each of `param_vjp`'s roots.
    pub param_of_root: Vec<usize>,
    /// Native code of `program` (function 0) and `param_vjp` (function 1);
    /// `None` on the interpreter backend.
    pub native: Option<Native>,
    pub barriers: usize,
    pub dag_nodes: usize,
    pub profile: JacobianProfile,
}

impl CompiledJacobian {
    /// Derives `∂f/∂u` from (a copy of) the model's DAG and compiles it;
    /// to native code too when `native` (now or in the background, see
    /// crate::native; where Cranelift cannot run, the interpreter gives the
    /// same values). `param_adjoints` are the model's `(parameter,
    /// (∂f/∂p)ᵀλ node)` pairs, nodes of `dag`.
    pub fn build(
        dag: &Dag,
        rhs: &[Id],
        param_adjoints: &[(usize, Id)],
        native: bool,
    ) -> CompiledJacobian {
        let mut dag = dag.clone();
        let start = Instant::now();
        let exprs = crate::jacobian::derive(&mut dag, rhs);
        let differentiate = start.elapsed();
        let start = Instant::now();
        let program = Program::compile(&dag, &exprs.entries);
        let param_roots: Vec<Id> = param_adjoints.iter().map(|&(_, id)| id).collect();
        let param_vjp = Program::compile(&dag, &param_roots);
        let program_time = start.elapsed();
        let start = Instant::now();
        let native = native.then(|| Native::start(vec![program.clone(), param_vjp.clone()]));
        let jit_time = start.elapsed();
        let jit_in_background = native.as_ref().is_some_and(Native::pending);
        CompiledJacobian {
            pattern: exprs.pattern,
            program,
            param_vjp,
            param_of_root: param_adjoints.iter().map(|&(k, _)| k).collect(),
            native,
            barriers: exprs.barriers,
            dag_nodes: dag.len(),
            profile: JacobianProfile {
                differentiate,
                program: program_time,
                jit: jit_time,
                jit_in_background,
                native_wait: Duration::ZERO,
            },
        }
    }

    /// The native code, if it is ready.
    #[inline]
    pub fn code(&self) -> Option<&JitCode> {
        self.native.as_ref().and_then(Native::get)
    }

    /// `values ← ∂f/∂u` in pattern order: by `code` (from
    /// [`CompiledJacobian::code`], asked once by the caller, who sized
    /// `scratch` for it), else on `registers` (made by
    /// `program.new_registers()`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn eval(
        &self,
        code: Option<&JitCode>,
        t: f64,
        u: &[f64],
        p: &[f64],
        values: &mut [f64],
        registers: &mut [f64],
        scratch: &mut [f64],
    ) {
        assert_eq!(
            values.len(),
            self.pattern.nnz(),
            "Jacobian values: one per pattern entry"
        );
        match code {
            Some(code) => code.call(0, t, u, p, &[], values, scratch),
            None => {
                self.program.run(registers, t, u, p, &[]);
                for (v, &r) in values.iter_mut().zip(self.program.roots()) {
                    *v = registers[r as usize];
                }
            }
        }
    }

    /// `acc_p += alpha (∂f/∂p)ᵀλ`: by `code` into `out` (one per root of
    /// `param_vjp`), else on `registers` (made by
    /// `param_vjp.new_registers()`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn eval_param_vjp(
        &self,
        code: Option<&JitCode>,
        (t, u, p, lambda): (f64, &[f64], &[f64], &[f64]),
        alpha: f64,
        acc_p: &mut [f64],
        out: &mut [f64],
        registers: &mut [f64],
        scratch: &mut [f64],
    ) {
        match code {
            Some(code) => {
                code.call(1, t, u, p, lambda, out, scratch);
                for (&k, &v) in self.param_of_root.iter().zip(out.iter()) {
                    acc_p[k] += alpha * v;
                }
            }
            None => {
                self.param_vjp.run(registers, t, u, p, lambda);
                for (&k, &r) in self.param_of_root.iter().zip(self.param_vjp.roots()) {
                    acc_p[k] += alpha * registers[r as usize];
                }
            }
        }
    }
}
