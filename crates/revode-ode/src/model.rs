//! [`OdeModel`]: a model file as a [`revode_model::Model`].

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use revode_model::{Dims, Model, SparsityPattern};

use crate::build::{lower, Lowered};
use crate::compiled_jacobian::CompiledJacobian;
use crate::dag::{Dag, Id};
use crate::diff::adjoints;
use crate::error::OdeError;
use crate::events::EventPrograms;
use crate::native::Native;
use crate::parser::parse_file;
use crate::profile::LoadProfile;
use crate::program::Program;

/// A model read from an XPPAUT-style `.ode` file, with its right-hand side
/// and vector–Jacobian product compiled to straight-line programs at load,
/// and its state Jacobian `∂f/∂u` (sparsity pattern and values) derived and
/// compiled the first time it is asked for ([`OdeModel::jacobian_sparsity`],
/// [`Model::jacobian_pattern`]), so models never solved implicitly do not
/// pay for it.
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
    /// Native code of `rhs` (function 0), `vjp` (function 1) and each
    /// event's g (2, 3, ...); `None` on the interpreter backend.
    native: Option<Native>,
    /// The DAG and the rhs roots, kept to derive the Jacobian from.
    dag: Arc<Dag>,
    rhs_roots: Arc<[Id]>,
    /// `(parameter, (∂f/∂p)ᵀλ node)` of every parameter with a nonzero
    /// derivative, compiled alone with the Jacobian.
    param_adjoints: Arc<[(usize, Id)]>,
    /// The Jacobian, once derived (shared by clones of one backend).
    jacobian: Arc<OnceLock<CompiledJacobian>>,
    /// The `global` lines (docs/events.md).
    events: Arc<EventPrograms>,
}

/// What a model is made from: the lowered file, or a DAG built directly.
struct Parts {
    dag: Dag,
    state_names: Vec<String>,
    u0: Vec<f64>,
    param_names: Vec<String>,
    p0: Vec<f64>,
    rhs: Vec<Id>,
    aux_names: Vec<String>,
    aux: Vec<Id>,
    options: Vec<(String, String)>,
    events: Vec<crate::build::LoweredEvent>,
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

/// The index of event 0's g among the native functions (after rhs and vjp).
const EVENT_CODE: usize = 2;

/// Registers of one solve (one thread).
#[derive(Debug, Clone)]
pub struct OdeWork {
    rhs: Vec<f64>,
    vjp: Vec<f64>,
    /// The JIT's vjp outputs (state adjoints, then parameter adjoints).
    vjp_out: Vec<f64>,
    /// Values the JIT's code keeps in memory (crate::jit, "Bounded live ranges").
    scratch: Vec<f64>,
    /// The interpreter's Jacobian registers.
    jacobian: Vec<f64>,
    /// The interpreter's registers for the parameter VJP, and the JIT's
    /// outputs of it.
    param_vjp: Vec<f64>,
    param_out: Vec<f64>,
    /// Registers of the event programs.
    events: Vec<f64>,
}

/// Sizes of what was built at load, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramStats {
    pub dag_nodes: usize,
    pub rhs_instructions: usize,
    pub vjp_instructions: usize,
    pub rhs_registers: usize,
    pub vjp_registers: usize,
    /// The Jacobian's, once derived (else `None`).
    pub jacobian: Option<JacobianStats>,
}

/// Sizes of a derived Jacobian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JacobianStats {
    /// Entries of the sparsity pattern.
    pub nnz: usize,
    pub instructions: usize,
    pub registers: usize,
    /// Shared subexpressions whose gradient was accumulated once
    /// (crate::jacobian).
    pub barriers: usize,
    /// DAG nodes after deriving it.
    pub dag_nodes: usize,
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
        Self::load(text, file, name, Backend::Jit, &mut LoadProfile::default())
    }

    /// Compiles model text like [`OdeModel::from_str`], and its Jacobian,
    /// timing each stage, and waiting for native code compiled in the
    /// background (`examples/ode_load_profile.rs` prints these). With
    /// [`Backend::Interpreter`] nothing is compiled to native code (for
    /// instruction counts of the other stages under callgrind).
    pub fn from_str_profiled(
        text: &str,
        backend: Backend,
    ) -> Result<(OdeModel, LoadProfile), OdeError> {
        let mut profile = LoadProfile::default();
        let model = Self::load(text, "<string>", "model", backend, &mut profile)?;
        let start = Instant::now();
        if let Some(n) = &model.native {
            n.wait();
        }
        profile.native_wait = start.elapsed();
        let jacobian = model.compiled_jacobian();
        profile.jacobian = jacobian.profile;
        let start = Instant::now();
        if let Some(n) = &jacobian.native {
            n.wait();
        }
        profile.jacobian.native_wait = start.elapsed();
        profile.jacobian_nnz = jacobian.pattern.nnz();
        profile.jacobian_instructions = jacobian.program.instructions().len();
        Ok((model, profile))
    }

    fn load(
        text: &str,
        file: &str,
        name: &str,
        backend: Backend,
        profile: &mut LoadProfile,
    ) -> Result<OdeModel, OdeError> {
        let start = Instant::now();
        let stmts = parse_file(text).map_err(|e| e.in_file(file))?;
        profile.parse = start.elapsed();
        let start = Instant::now();
        let lowered = lower(stmts).map_err(|e| e.in_file(file))?;
        profile.lower = start.elapsed();
        profile.singular = lowered.dag.singular_stats();
        profile.lowered_nodes = lowered.dag.len();
        let Lowered {
            dag,
            state_names,
            u0,
            param_names,
            p0,
            rhs,
            aux_names,
            aux,
            options,
            events,
            ..
        } = lowered;
        let parts = Parts {
            dag,
            state_names,
            u0,
            param_names,
            p0,
            rhs,
            aux_names,
            aux,
            options,
            events,
        };
        Ok(Self::compile(parts, name, backend, profile))
    }

    /// A model straight from a DAG built with the [`crate::dag`] API, with
    /// states `x0, x1, …` (`u0` their initial values) and parameters
    /// `p0, p1, …` (`p0` their values): shapes the file reader does not
    /// produce, for tests of the stages after it.
    #[doc(hidden)]
    pub fn from_dag(dag: Dag, rhs: Vec<Id>, u0: Vec<f64>, p0: Vec<f64>) -> OdeModel {
        assert_eq!(rhs.len(), u0.len(), "one initial value per state");
        let parts = Parts {
            dag,
            state_names: (0..rhs.len()).map(|i| format!("x{i}")).collect(),
            u0,
            param_names: (0..p0.len()).map(|k| format!("p{k}")).collect(),
            p0,
            rhs,
            aux_names: Vec::new(),
            aux: Vec::new(),
            options: Vec::new(),
            events: Vec::new(),
        };
        Self::compile(parts, "dag", Backend::Jit, &mut LoadProfile::default())
    }

    fn compile(parts: Parts, name: &str, backend: Backend, profile: &mut LoadProfile) -> OdeModel {
        let Parts {
            mut dag,
            state_names,
            u0,
            param_names,
            p0,
            rhs,
            aux_names,
            aux,
            options,
            events,
        } = parts;
        let start = Instant::now();
        let adj = adjoints(&mut dag, &rhs, param_names.len());
        profile.differentiate = start.elapsed();
        let start = Instant::now();
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
        let events = EventPrograms::compile(&mut dag, &events, rhs.len(), param_names.len());
        profile.programs = start.elapsed();
        let start = Instant::now();
        // Where Cranelift cannot run, the interpreter does the same work.
        let native = (backend == Backend::Jit).then(|| {
            let mut programs = vec![rhs_program.clone(), vjp_program.clone()];
            programs.extend(events.value_programs());
            Native::start(programs)
        });
        profile.jit = start.elapsed();
        profile.jit_in_background = native.as_ref().is_some_and(Native::pending);
        profile.dag_nodes = dag.len();
        profile.instructions = rhs_program.instructions().len() + vjp_program.instructions().len();
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
            native,
            vjp_slots: (state_slots, param_slots),
            dag: Arc::new(dag),
            rhs_roots: rhs.into(),
            param_adjoints: adj
                .params
                .iter()
                .enumerate()
                .filter_map(|(k, a)| a.map(|id| (k, id)))
                .collect(),
            jacobian: Arc::new(OnceLock::new()),
            events: Arc::new(events),
        }
    }

    /// The Jacobian, derived and compiled on first use.
    fn compiled_jacobian(&self) -> &CompiledJacobian {
        self.jacobian.get_or_init(|| {
            CompiledJacobian::build(
                &self.dag,
                &self.rhs_roots,
                &self.param_adjoints,
                self.native.is_some(),
            )
        })
    }

    /// The sparsity pattern of `∂f/∂u` (compressed sparse columns): row `i`
    /// has column `j` iff `f_i`'s derivative with respect to `u_j` is not
    /// identically zero (docs/model-files.md, "The Jacobian"). The first
    /// call derives and compiles the Jacobian.
    pub fn jacobian_sparsity(&self) -> &SparsityPattern {
        &self.compiled_jacobian().pattern
    }

    /// The backend `rhs` and `vjp` run on now. A large model runs on the
    /// interpreter until its native code, compiled in the background, is
    /// ready ([`OdeModel::native_code_pending`], crate::native).
    pub fn backend(&self) -> Backend {
        if self.native.as_ref().and_then(Native::get).is_some() {
            Backend::Jit
        } else {
            Backend::Interpreter
        }
    }

    /// Native code is still being compiled in the background (for `rhs`
    /// and `vjp`, or for a derived Jacobian); until it is ready the
    /// interpreter runs, with bitwise the same results.
    pub fn native_code_pending(&self) -> bool {
        self.native.as_ref().is_some_and(Native::pending)
            || self
                .jacobian
                .get()
                .and_then(|j| j.native.as_ref())
                .is_some_and(Native::pending)
    }

    /// Blocks until all native code being compiled in the background is
    /// ready (benchmarks call it before timing).
    pub fn wait_for_native_code(&self) {
        if let Some(n) = &self.native {
            n.wait();
        }
        if let Some(n) = self.jacobian.get().and_then(|j| j.native.as_ref()) {
            n.wait();
        }
    }

    /// The same model on the register interpreter (its Jacobian too).
    pub fn interpreted(mut self) -> OdeModel {
        if self.native.take().is_some() {
            // a Jacobian derived from here on runs interpreted as well
            self.jacobian = Arc::new(OnceLock::new());
        }
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

    /// The compiled `rhs` program (tests and tools inspect its instructions).
    #[doc(hidden)]
    pub fn rhs_program(&self) -> &Program {
        &self.rhs
    }

    /// The compiled `vjp` program.
    #[doc(hidden)]
    pub fn vjp_program(&self) -> &Program {
        &self.vjp
    }

    /// Sizes of the DAG and the programs.
    pub fn stats(&self) -> ProgramStats {
        ProgramStats {
            dag_nodes: self.dag_nodes,
            rhs_instructions: self.rhs.instructions().len(),
            vjp_instructions: self.vjp.instructions().len(),
            rhs_registers: self.rhs.n_registers(),
            vjp_registers: self.vjp.n_registers(),
            jacobian: self.jacobian.get().map(|j| JacobianStats {
                nnz: j.pattern.nnz(),
                instructions: j.program.instructions().len(),
                registers: j.program.n_registers(),
                barriers: j.barriers,
                dag_nodes: j.dag_nodes,
            }),
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

    /// Registers for this model: the interpreter's unless native code is
    /// ready, the native code's unless it failed to compile; for the
    /// Jacobian too if it has been derived (else a Work grows them once, on
    /// its first `jacobian` call).
    fn new_work(&self) -> OdeWork {
        let interpreted = self.backend() == Backend::Interpreter;
        let native = self
            .native
            .as_ref()
            .filter(|n| n.get().is_some() || n.pending());
        let jacobian = self.jacobian.get();
        let jacobian_native = jacobian.and_then(|j| j.native.as_ref());
        let registers = |p: &Program, needed: bool| {
            if needed {
                p.new_registers()
            } else {
                Vec::new()
            }
        };
        OdeWork {
            rhs: registers(&self.rhs, interpreted),
            vjp: registers(&self.vjp, interpreted),
            vjp_out: vec![
                0.0;
                if native.is_some() {
                    self.vjp.roots().len()
                } else {
                    0
                }
            ],
            scratch: vec![
                0.0;
                native
                    .map_or(0, |n| n.scratch_len(0..EVENT_CODE + self.events.len()))
                    .max(jacobian_native.map_or(0, |n| n.scratch_len(0..2)))
            ],
            jacobian: match jacobian {
                Some(j) if j.native.as_ref().and_then(Native::get).is_none() => {
                    j.program.new_registers()
                }
                _ => Vec::new(),
            },
            param_vjp: match jacobian {
                Some(j) if j.native.as_ref().and_then(Native::get).is_none() => {
                    j.param_vjp.new_registers()
                }
                _ => Vec::new(),
            },
            param_out: match jacobian {
                Some(j) if j.native.is_some() => vec![0.0; j.param_of_root.len()],
                _ => Vec::new(),
            },
            events: self.events.registers(),
        }
    }

    #[inline]
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut OdeWork) {
        if let Some(jit) = self.native.as_ref().and_then(Native::get) {
            // rhs's roots are the states in order: written straight into du
            jit.call(0, t, u, p, &[], du, &mut work.scratch);
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
        if let Some(jit) = self.native.as_ref().and_then(Native::get) {
            let out = &mut work.vjp_out;
            jit.call(1, t, u, p, lambda, out, &mut work.scratch);
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

    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        Some(self.jacobian_sparsity().clone())
    }

    /// Allocation-free, except that a Work made before the Jacobian was
    /// first derived grows its Jacobian registers once, on its first call
    /// (steppers ask for the pattern first, so theirs never do).
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], work: &mut OdeWork) {
        let j = self.compiled_jacobian();
        // asked once: the code may become ready at any moment
        let code = j.code();
        match code {
            Some(code) => {
                if work.scratch.len() < code.scratch_len(0) {
                    work.scratch.resize(code.scratch_len(0), 0.0);
                }
            }
            None => {
                if work.jacobian.len() != j.program.n_registers() {
                    work.jacobian = j.program.new_registers();
                }
            }
        }
        j.eval(code, t, u, p, values, &mut work.jacobian, &mut work.scratch);
    }

    /// Allocation-free, with the same exception as [`Model::jacobian`].
    fn vjp_params(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        alpha: f64,
        acc_p: &mut [f64],
        _scratch_u: &mut [f64],
        work: &mut OdeWork,
    ) {
        let j = self.compiled_jacobian();
        let code = j.code();
        match code {
            Some(code) => {
                if work.scratch.len() < code.scratch_len(1) {
                    work.scratch.resize(code.scratch_len(1), 0.0);
                }
                if work.param_out.len() != j.param_of_root.len() {
                    work.param_out = vec![0.0; j.param_of_root.len()];
                }
            }
            None => {
                if work.param_vjp.len() != j.param_vjp.n_registers() {
                    work.param_vjp = j.param_vjp.new_registers();
                }
            }
        }
        j.eval_param_vjp(
            code,
            (t, u, p, lambda),
            alpha,
            acc_p,
            &mut work.param_out,
            &mut work.param_vjp,
            &mut work.scratch,
        );
    }

    fn n_events(&self) -> usize {
        self.events.len()
    }

    fn event_direction(&self, e: usize) -> i8 {
        self.events.direction(e)
    }

    #[inline]
    fn event_value(&self, e: usize, u: &[f64], p: &[f64], work: &mut OdeWork) -> f64 {
        // g runs at every step: natively when the code is ready (function
        // 2 + e), bitwise the interpreter's value.
        if let Some(jit) = self.native.as_ref().and_then(Native::get) {
            let mut g = [0.0];
            jit.call(EVENT_CODE + e, 0.0, u, p, &[], &mut g, &mut work.scratch);
            return g[0];
        }
        self.events.value(e, u, p, &mut work.events)
    }

    fn event_gradient(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        work: &mut OdeWork,
    ) {
        self.events.gradient(e, u, p, du, dp, &mut work.events)
    }

    fn event_reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], work: &mut OdeWork) {
        self.events.reset(e, u, p, out, &mut work.events)
    }

    fn event_reset_vjp(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        acc_p: &mut [f64],
        work: &mut OdeWork,
    ) {
        self.events
            .reset_vjp(e, u, p, lambda, out_u, acc_p, &mut work.events)
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
