//! [`OdeModel`]: a model file as a [`revode_model::Model`].

use std::path::Path;
use std::sync::Arc;

use revode_model::{Dims, Model};

use crate::build::{lower, Lowered};
use crate::dag::Dag;
use crate::diff::adjoints;
use crate::error::OdeError;
use crate::jit::JitCode;
use crate::parser::parse_file;
use crate::program::Program;

/// A model read from an XPPAUT-style `.ode` file, with its right-hand side
/// and vector–Jacobian product compiled to straight-line programs at load.
#[derive(Debug, Clone)]
pub struct OdeModel {
    name: String,
    state_names: Vec<String>,
    param_names: Vec<String>,
    u0: Vec<f64>,
    p0: Vec<f64>,
    aux_names: Vec<String>,
    options: Vec<(String, String)>,
    rhs: Program,
    vjp: Program,
    aux: Program,
    /// Where each state's `(∂f/∂u)ᵀλ` is in the vjp program (None: 0).
    vjp_states: Vec<Option<u32>>,
    /// `(parameter, register)` of every parameter with a nonzero derivative.
    vjp_params: Vec<(usize, u32)>,
    /// The same as positions among the vjp program's roots (for the JIT).
    vjp_slots: (Vec<Option<usize>>, Vec<(usize, usize)>),
    dag_nodes: usize,
    /// Native code of `rhs` (function 0) and `vjp` (function 1), if compiled.
    jit: Option<Arc<JitCode>>,
}

/// How `rhs` and `vjp` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Native code compiled by Cranelift at load (the default).
    Jit,
    /// The register interpreter: the reference the JIT is tested against,
    /// and the fallback where Cranelift does not support the host.
    Interpreter,
}

/// Registers of one solve (one thread).
#[derive(Debug, Clone)]
pub struct OdeWork {
    rhs: Vec<f64>,
    vjp: Vec<f64>,
    /// The JIT's vjp outputs (state adjoints, then parameter adjoints).
    vjp_out: Vec<f64>,
}

/// Sizes of what was built at load, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramStats {
    pub dag_nodes: usize,
    pub rhs_instructions: usize,
    pub vjp_instructions: usize,
    pub rhs_registers: usize,
    pub vjp_registers: usize,
}

impl OdeModel {
    /// Reads and compiles a model file. Errors name the file as given.
    pub fn from_file(path: impl AsRef<Path>) -> Result<OdeModel, OdeError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| OdeError {
            file: shown.clone(),
            line: 0,
            col: 0,
            message: match e.kind() {
                _ if path.is_dir() => "cannot read the model file: it is a folder".to_string(),
                std::io::ErrorKind::NotFound => {
                    "cannot read the model file: no such file".to_string()
                }
                _ => format!("cannot read the model file: {e}"),
            },
        })?;
        let name = path
            .file_name()
            .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
        Self::from_str_named(&text, &shown, &name)
    }

    /// Compiles model text; errors name it `<string>`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<OdeModel, OdeError> {
        Self::from_str_named(text, "<string>", "model")
    }

    /// Compiles model text; `file` names it in errors, `name` is the model's name.
    pub fn from_str_named(text: &str, file: &str, name: &str) -> Result<OdeModel, OdeError> {
        let stmts = parse_file(text).map_err(|e| e.in_file(file))?;
        let lowered = lower(stmts).map_err(|e| e.in_file(file))?;
        Ok(Self::compile(lowered, name))
    }

    fn compile(lowered: Lowered, name: &str) -> OdeModel {
        let Lowered {
            mut dag,
            state_names,
            u0,
            param_names,
            p0,
            rhs,
            aux_names,
            aux,
            options,
        } = lowered;
        let adj = adjoints(&mut dag, &rhs, param_names.len());
        let rhs_program = Program::compile(&dag, &rhs);
        let aux_program = Program::compile(&dag, &aux);
        // vjp roots: the state adjoints, then the parameter adjoints.
        let mut roots = Vec::new();
        let mut state_slots = Vec::new();
        for a in &adj.states {
            state_slots.push(a.map(|id| {
                roots.push(id);
                roots.len() - 1
            }));
        }
        let mut param_slots = Vec::new();
        for (k, a) in adj.params.iter().enumerate() {
            if let Some(id) = a {
                param_slots.push((k, roots.len()));
                roots.push(*id);
            }
        }
        let vjp_program = Program::compile(&dag, &roots);
        // Where Cranelift cannot run, the interpreter does the same work.
        let jit = crate::jit::compile(&[&rhs_program, &vjp_program])
            .ok()
            .map(Arc::new);
        let reg = |slot: usize| vjp_program.roots()[slot];
        OdeModel {
            name: name.to_string(),
            state_names,
            param_names,
            u0,
            p0,
            aux_names,
            options,
            vjp_states: state_slots.iter().map(|s| s.map(reg)).collect(),
            vjp_params: param_slots.iter().map(|&(k, s)| (k, reg(s))).collect(),
            rhs: rhs_program,
            vjp: vjp_program,
            aux: aux_program,
            dag_nodes: dag.len(),
            jit,
            vjp_slots: (state_slots, param_slots),
        }
    }

    /// The backend `rhs` and `vjp` run on.
    pub fn backend(&self) -> Backend {
        if self.jit.is_some() {
            Backend::Jit
        } else {
            Backend::Interpreter
        }
    }

    /// The same model on the register interpreter.
    pub fn interpreted(mut self) -> OdeModel {
        self.jit = None;
        self
    }

    /// Names of the `aux` outputs, in file order.
    pub fn aux_names(&self) -> &[String] {
        &self.aux_names
    }

    /// The `aux` outputs at `(t, u, p)`.
    pub fn aux_values(&self, t: f64, u: &[f64], p: &[f64]) -> Vec<f64> {
        let mut regs = self.aux.new_registers();
        self.aux.run(&mut regs, t, u, p, &[]);
        self.aux.roots().iter().map(|&r| regs[r as usize]).collect()
    }

    /// The `@` options as written (`dt`, `total`, `meth`, …), in file order.
    pub fn options(&self) -> &[(String, String)] {
        &self.options
    }

    /// Sizes of the DAG and the programs.
    pub fn stats(&self) -> ProgramStats {
        ProgramStats {
            dag_nodes: self.dag_nodes,
            rhs_instructions: self.rhs.instructions().len(),
            vjp_instructions: self.vjp.instructions().len(),
            rhs_registers: self.rhs.n_registers(),
            vjp_registers: self.vjp.n_registers(),
        }
    }

    /// The right-hand side and VJP straight from the DAG (no programs):
    /// an independent path for tests.
    #[doc(hidden)]
    pub fn reference_dag(text: &str) -> Result<(Dag, Vec<u32>), OdeError> {
        let stmts = parse_file(text).map_err(|e| e.in_file("<string>"))?;
        let lowered = lower(stmts).map_err(|e| e.in_file("<string>"))?;
        Ok((lowered.dag, lowered.rhs))
    }
}

impl Model for OdeModel {
    type Work = OdeWork;

    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> Dims {
        Dims {
            n_states: self.state_names.len(),
            n_params: self.param_names.len(),
        }
    }

    fn state_names(&self) -> Vec<String> {
        self.state_names.clone()
    }

    fn param_names(&self) -> Vec<String> {
        self.param_names.clone()
    }

    fn default_u0(&self) -> Vec<f64> {
        self.u0.clone()
    }

    fn default_params(&self) -> Vec<f64> {
        self.p0.clone()
    }

    fn new_work(&self) -> OdeWork {
        if self.jit.is_some() {
            return OdeWork {
                rhs: Vec::new(),
                vjp: Vec::new(),
                vjp_out: vec![0.0; self.vjp.roots().len()],
            };
        }
        OdeWork {
            rhs: self.rhs.new_registers(),
            vjp: self.vjp.new_registers(),
            vjp_out: Vec::new(),
        }
    }

    #[inline]
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut OdeWork) {
        if let Some(jit) = &self.jit {
            // rhs's roots are the states in order: written straight into du
            jit.call(0, t, u, p, &[], du);
            return;
        }
        let regs = &mut work.rhs;
        self.rhs.run(regs, t, u, p, &[]);
        for (d, &r) in du.iter_mut().zip(self.rhs.roots()) {
            *d = regs[r as usize];
        }
    }

    #[inline]
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        work: &mut OdeWork,
    ) {
        if let Some(jit) = &self.jit {
            let out = &mut work.vjp_out;
            jit.call(1, t, u, p, lambda, out);
            let (states, params) = &self.vjp_slots;
            for (o, slot) in out_u.iter_mut().zip(states) {
                *o = slot.map_or(0.0, |s| out[s]);
            }
            for &(k, s) in params {
                acc_p[k] += alpha * out[s];
            }
            return;
        }
        let regs = &mut work.vjp;
        self.vjp.run(regs, t, u, p, lambda);
        for (o, slot) in out_u.iter_mut().zip(&self.vjp_states) {
            *o = slot.map_or(0.0, |r| regs[r as usize]);
        }
        for &(k, r) in &self.vjp_params {
            acc_p[k] += alpha * regs[r as usize];
        }
    }

    fn aux_names(&self) -> Vec<String> {
        self.aux_names.clone()
    }

    fn aux(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]) {
        for (o, v) in out.iter_mut().zip(self.aux_values(t, u, p)) {
            *o = v;
        }
    }
}
