//! Expressions into nodes of the hash-consed DAG, without recursion: one
//! loop over an explicit stack of tasks and a stack of values, so neither a
//! deep expression, nor a long chain of fixed quantities, nor functions
//! calling functions use the call stack.
//!
//! * Fixed quantities are lowered on first use (a depth-first topological
//!   order, in linear time); a quantity met again while it is being lowered
//!   closes a cycle, which is reported with its path.
//! * User functions are inlined once per distinct (function, argument
//!   nodes): `f2(u) = f1(u) + f1(u)` builds `f1`'s body once and reuses its
//!   node, so sixty such levels cost sixty bodies, not 2⁶⁰.
//! * `if` with a condition that is constant at load (`if(j==1)then(…)`)
//!   lowers only the selected branch: the other may name `x[j-1]` at `j = 1`.
//! * `sum(lo, hi)of(body)` lowers the body once per `i'`.
//!
//! Every task counts against a budget, so no input makes loading hang.

use std::collections::HashMap;

use crate::ast::{BinOp, ExprId, ExprKind, Exprs, NameRef, Piece};
use crate::dag::{Bin, Dag, Id, Un};
use crate::error::{fail, Located, Pos};

/// Most tasks one model may take to lower (about a second of work): arrays
/// and sums expanding to more are rejected instead of hanging.
pub const STEP_BUDGET: u64 = 50_000_000;

/// Built-in functions: name, arity.
pub const BUILTINS: &[(&str, usize)] = &[
    ("exp", 1),
    ("ln", 1),
    ("log", 1),
    ("log10", 1),
    ("sqrt", 1),
    ("abs", 1),
    ("sin", 1),
    ("cos", 1),
    ("tan", 1),
    ("tanh", 1),
    ("sinh", 1),
    ("cosh", 1),
    ("atan", 1),
    ("heav", 1),
    ("sign", 1),
    ("min", 2),
    ("max", 2),
];

/// XPPAUT functions revode evaluates only where their arguments are
/// constant at load (indices, bounds, values): name, arity.
pub const LOAD_TIME_FUNCTIONS: &[(&str, usize)] = &[("mod", 2), ("flr", 1)];

/// XPPAUT functions outside the subset (named in the error).
pub const XPP_UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "delay",
    "ran",
    "normal",
    "besselj",
    "bessely",
    "besseli",
    "erf",
    "erfc",
    "lgamma",
    "del_shift",
    "ishift",
    "int",
    "hom_bcs",
    "asin",
    "acos",
    "atan2",
    "arcsin",
    "arccos",
    "arctan",
    "gamma",
    "poisson",
    "not",
];

/// What a name stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Def {
    Param(usize),
    Number(f64),
    State(usize),
    Fixed(usize),
    Function(usize),
    Aux,
}

pub fn describe(def: Def) -> &'static str {
    match def {
        Def::Param(_) => "a parameter",
        Def::Number(_) => "a number",
        Def::State(_) => "a state",
        Def::Fixed(_) => "a fixed quantity",
        Def::Function(_) => "a function",
        Def::Aux => "an aux output",
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    NotYet,
    InProgress,
    Done(Id),
}

/// One fixed quantity (one element of an array of them).
#[derive(Debug, Clone)]
pub struct FixedDef {
    pub name: String,
    pub pos: Pos,
    pub expr: ExprId,
    pub j: Option<i64>,
    status: Status,
}

impl FixedDef {
    pub fn new(name: String, pos: Pos, expr: ExprId, j: Option<i64>) -> Self {
        FixedDef {
            name,
            pos,
            expr,
            j,
            status: Status::NotYet,
        }
    }
}

/// One user function.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    pub n_args: usize,
    pub body: ExprId,
    /// The index of the array line or block that defined it.
    pub j: Option<i64>,
    active: bool,
}

impl FunctionDef {
    pub fn new(name: String, n_args: usize, body: ExprId, j: Option<i64>) -> Self {
        FunctionDef {
            name,
            n_args,
            body,
            j,
            active: false,
        }
    }
}

/// What an expression is evaluated with.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// The array index `j`.
    pub j: Option<i64>,
    /// The summation index `i'`.
    i: Option<i64>,
    /// Where the current function's arguments start in the locals stack.
    frame: usize,
    /// Only numbers, `number` constants, `j`, `i'` and functions of them
    /// (brackets, bounds, `number` values).
    pub const_only: bool,
}

impl Env {
    /// An equation, fixed quantity or value (of array element `j`).
    pub fn at(j: Option<i64>) -> Env {
        Env {
            j,
            i: None,
            frame: 0,
            const_only: false,
        }
    }

    /// A bound, index or `number` value.
    pub fn constant(j: Option<i64>) -> Env {
        Env {
            const_only: true,
            ..Env::at(j)
        }
    }

    fn constant_here(self) -> Env {
        Env {
            const_only: true,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Eval(ExprId, Env),
    /// The node's operands are on the value stack.
    Apply(ExprId, Env),
    /// An `if`: its condition is on the value stack.
    Choose(ExprId, Env),
    /// A `sum`: its bounds are on the value stack.
    SumBounds(ExprId, Env),
    /// The body for `i' = k` is on the value stack.
    SumNext {
        node: ExprId,
        env: Env,
        k: i64,
        hi: i64,
        acc: Option<Id>,
    },
    FixedDone(usize),
    CallDone {
        f: usize,
        frame: usize,
    },
}

/// Being lowered, for cycle messages.
#[derive(Debug, Clone, Copy)]
enum Active {
    Fixed(usize),
    Function(usize),
}

/// The lowering state: the DAG, the definitions, and the stacks.
pub struct Lowerer<'a> {
    pub exprs: &'a Exprs,
    pub dag: Dag,
    pub defs: HashMap<String, (Def, Pos)>,
    pub fixed: Vec<FixedDef>,
    pub functions: Vec<FunctionDef>,
    /// Arrays defined with a range: root name → (first, last) index.
    pub arrays: HashMap<String, (i64, i64)>,
    pub n_states: usize,
    pub n_params: usize,
    memo: HashMap<(usize, Vec<Id>), Id>,
    steps: u64,
    tasks: Vec<Task>,
    values: Vec<Id>,
    locals: Vec<Id>,
    active: Vec<Active>,
}

/// `x` as an integer, or why not (`what` names it; made only on error).
fn as_integer(x: Option<f64>, pos: Pos, what: impl FnOnce() -> String) -> Result<i64, Located> {
    let Some(x) = x else {
        return fail(
            pos,
            format!(
                "{} must be a constant integer (numbers, 'number' constants, j, i'), \
                 but it changes during the solve",
                what()
            ),
        );
    };
    if !x.is_finite() {
        return fail(pos, format!("{} is not finite ({x})", what()));
    }
    if x.fract() != 0.0 {
        return fail(pos, format!("{} is {x}, not an integer", what()));
    }
    if x.abs() > 9.0e15 {
        return fail(pos, format!("{} is {x}, too large", what()));
    }
    Ok(x as i64)
}

/// `(context)` for messages about array element `j`.
fn at_j(env: Env) -> String {
    match (env.j, env.i) {
        (Some(j), Some(i)) => format!(" (at j = {j}, i' = {i})"),
        (Some(j), None) => format!(" (at j = {j})"),
        (None, Some(i)) => format!(" (at i' = {i})"),
        (None, None) => String::new(),
    }
}

impl<'a> Lowerer<'a> {
    pub fn new(exprs: &'a Exprs) -> Self {
        Lowerer {
            exprs,
            dag: Dag::default(),
            defs: HashMap::new(),
            fixed: Vec::new(),
            functions: Vec::new(),
            arrays: HashMap::new(),
            n_states: 0,
            n_params: 0,
            memo: HashMap::new(),
            steps: 0,
            tasks: Vec::new(),
            values: Vec::new(),
            locals: Vec::new(),
            active: Vec::new(),
        }
    }

    /// Counts `n` steps of work against [`STEP_BUDGET`].
    pub fn charge(&mut self, n: u64, pos: Pos) -> Result<(), Located> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > STEP_BUDGET {
            return fail(
                pos,
                format!(
                    "the model is too large: expanding its arrays, sums and functions takes \
                     more than {STEP_BUDGET} steps"
                ),
            );
        }
        Ok(())
    }

    /// The DAG node of expression `root` in `env`.
    pub fn eval(&mut self, root: ExprId, env: Env) -> Result<Id, Located> {
        self.tasks.clear();
        self.values.clear();
        self.tasks.push(Task::Eval(root, env));
        self.run(root)
    }

    /// An integer-valued expression (a bound or an index) at `j`.
    pub fn integer(
        &mut self,
        root: ExprId,
        j: Option<i64>,
        what: impl FnOnce() -> String,
    ) -> Result<i64, Located> {
        let id = self.eval(root, Env::constant(j))?;
        as_integer(self.dag.constant(id), self.exprs.get(root).pos, what)
    }

    /// The node of fixed quantity `k` (lowered now if it was not yet).
    pub fn fixed_node(&mut self, k: usize) -> Result<Id, Located> {
        if let Status::Done(id) = self.fixed[k].status {
            return Ok(id);
        }
        self.tasks.clear();
        self.values.clear();
        let (expr, j) = (self.fixed[k].expr, self.fixed[k].j);
        self.fixed[k].status = Status::InProgress;
        self.active.push(Active::Fixed(k));
        self.tasks.push(Task::FixedDone(k));
        self.tasks.push(Task::Eval(expr, Env::at(j)));
        self.run(expr)
    }

    /// Inlines user function `f` on `args` (placeholders, to check its body).
    pub fn call(&mut self, f: usize, args: Vec<Id>, pos: Pos) -> Result<Id, Located> {
        self.tasks.clear();
        self.values.clear();
        self.start_call(f, args, false, pos)?;
        let body = self.functions[f].body;
        self.run(body)
    }

    fn run(&mut self, root: ExprId) -> Result<Id, Located> {
        let result = self.drain(root);
        if result.is_err() {
            self.tasks.clear();
            self.values.clear();
            self.locals.clear();
            self.active.clear();
        }
        result
    }

    fn drain(&mut self, root: ExprId) -> Result<Id, Located> {
        let budget_pos = self.exprs.get(root).pos;
        let mut since_charge = 0u64;
        while let Some(task) = self.tasks.pop() {
            since_charge += 1;
            if since_charge == 4096 {
                self.charge(since_charge, budget_pos)?;
                since_charge = 0;
            }
            match task {
                Task::Eval(e, env) => self.eval_node(e, env)?,
                Task::Apply(e, env) => self.apply(e, env)?,
                Task::Choose(e, env) => self.choose(e, env),
                Task::SumBounds(e, env) => self.sum_bounds(e, env)?,
                Task::SumNext {
                    node,
                    env,
                    k,
                    hi,
                    acc,
                } => {
                    let v = self.pop();
                    let acc = match acc {
                        None => v,
                        Some(a) => self.dag.add(a, v),
                    };
                    if k >= hi {
                        self.values.push(acc);
                    } else {
                        self.sum_step(node, env, k + 1, hi, Some(acc));
                    }
                }
                Task::FixedDone(k) => {
                    let id = self.top();
                    self.fixed[k].status = Status::Done(id);
                    self.active.pop();
                }
                Task::CallDone { f, frame } => {
                    let id = self.top();
                    let n = self.functions[f].n_args;
                    let key = (f, self.locals[frame..frame + n].to_vec());
                    self.memo.insert(key, id);
                    self.locals.truncate(frame);
                    self.functions[f].active = false;
                    self.active.pop();
                }
            }
        }
        self.charge(since_charge, budget_pos)?;
        Ok(self.pop())
    }

    fn pop(&mut self) -> Id {
        // Every task that consumes a value follows one that produced it.
        self.values.pop().unwrap_or(0)
    }

    fn top(&self) -> Id {
        self.values.last().copied().unwrap_or(0)
    }

    fn pop_n(&mut self, n: usize) -> Vec<Id> {
        let at = self.values.len().saturating_sub(n);
        self.values.split_off(at)
    }

    fn constant(&mut self, x: f64) {
        let id = self.dag.constant_node(x);
        self.values.push(id);
    }

    fn eval_node(&mut self, e: ExprId, env: Env) -> Result<(), Located> {
        let node = self.exprs.get(e);
        let pos = node.pos;
        match &node.kind {
            ExprKind::Num(x) => self.constant(*x),
            ExprKind::Name(name) => match name.as_plain() {
                Some(text) => self.resolve(text, pos, env)?,
                None => {
                    self.tasks.push(Task::Apply(e, env));
                    self.eval_indices(name, env);
                }
            },
            ExprKind::Index(inner) => {
                self.tasks.push(Task::Apply(e, env));
                self.tasks.push(Task::Eval(*inner, env.constant_here()));
            }
            ExprKind::ArrayIndex => match env.j {
                Some(j) => self.constant(j as f64),
                None => return fail(pos, "'j' is used outside an array definition"),
            },
            ExprKind::SumIndex => match env.i {
                Some(i) => self.constant(i as f64),
                None => return fail(pos, "i' is used outside sum(…)of(…)"),
            },
            ExprKind::Arg(k) => match self.locals.get(env.frame + k) {
                Some(&id) => self.values.push(id),
                None => return fail(pos, "a function argument outside its function"),
            },
            ExprKind::Call(name, args) => {
                self.check_call(name, args.len(), pos)?;
                self.tasks.push(Task::Apply(e, env));
                for &a in args.iter().rev() {
                    self.tasks.push(Task::Eval(a, env));
                }
            }
            ExprKind::Neg(a) => {
                self.tasks.push(Task::Apply(e, env));
                self.tasks.push(Task::Eval(*a, env));
            }
            ExprKind::Binary(_, a, b) => {
                self.tasks.push(Task::Apply(e, env));
                self.tasks.push(Task::Eval(*b, env));
                self.tasks.push(Task::Eval(*a, env));
            }
            ExprKind::If(c, _, _) => {
                self.tasks.push(Task::Choose(e, env));
                self.tasks.push(Task::Eval(*c, env));
            }
            ExprKind::Sum(lo, hi, _) => {
                self.tasks.push(Task::SumBounds(e, env));
                self.tasks.push(Task::Eval(*hi, env.constant_here()));
                self.tasks.push(Task::Eval(*lo, env.constant_here()));
            }
            ExprKind::Shift(name, offset) => {
                self.tasks.push(Task::Apply(e, env));
                self.tasks.push(Task::Eval(*offset, env.constant_here()));
                self.eval_indices(name, env);
            }
        }
        Ok(())
    }

    /// Queues the indices of `name` (evaluated in order, as constants).
    fn eval_indices(&mut self, name: &NameRef, env: Env) {
        let indices: Vec<ExprId> = name.indices().collect();
        for &i in indices.iter().rev() {
            self.tasks.push(Task::Eval(i, env.constant_here()));
        }
    }

    /// `name`'s text with its (evaluated, popped) indices written in.
    fn indexed_name(&mut self, name: &NameRef, pos: Pos, env: Env) -> Result<String, Located> {
        let n = name.indices().count();
        let ids = self.pop_n(n);
        let mut values = Vec::with_capacity(n);
        for (&id, e) in ids.iter().zip(name.indices()) {
            let what = || format!("the index of '{}'{}", name.written(), at_j(env));
            let k = as_integer(self.dag.constant(id), self.exprs.get(e).pos, what)?;
            if k < 0 {
                return fail(
                    pos,
                    format!(
                        "index {k} of '{}' is negative{}: array names are the root and a \
                         non-negative integer",
                        name.written(),
                        at_j(env)
                    ),
                );
            }
            values.push(k);
        }
        Ok(name.with_indices(&values))
    }

    /// The error for an indexed name that is not defined.
    fn undefined_element(&self, name: &NameRef, full: &str, pos: Pos, env: Env) -> Located {
        if let [Piece::Text(root), Piece::Index(_)] = name.pieces.as_slice() {
            if let Some(&(lo, hi)) = self.arrays.get(root) {
                let k = &full[root.len()..];
                return Located::new(
                    pos,
                    format!(
                        "'{root}[{k}]' is out of range: {root} is defined for {root}[{lo}..{hi}]{}",
                        at_j(env)
                    ),
                );
            }
        }
        let at = match (env.j, env.i) {
            (Some(j), Some(i)) => format!(" at j = {j}, i' = {i}"),
            (Some(j), None) => format!(" at j = {j}"),
            (None, Some(i)) => format!(" at i' = {i}"),
            (None, None) => String::new(),
        };
        Located::new(
            pos,
            format!("unknown name '{full}' (written '{}'{at})", name.written()),
        )
    }

    fn resolve(&mut self, text: &str, pos: Pos, env: Env) -> Result<(), Located> {
        let def = self.defs.get(text).map(|d| d.0);
        if let Some(d) = def {
            if env.const_only && !matches!(d, Def::Number(_)) {
                return fail(
                    pos,
                    format!(
                        "'{text}' is {}: indices, bounds and 'number' values may use only \
                         numbers, 'number' constants, j and i'",
                        describe(d)
                    ),
                );
            }
        }
        let id = match def {
            Some(Def::Number(x)) => self.dag.constant_node(x),
            Some(Def::Param(k)) => self.dag.param(k),
            Some(Def::State(i)) => self.dag.state(i),
            Some(Def::Fixed(k)) => match self.fixed[k].status {
                Status::Done(id) => id,
                Status::InProgress => return Err(self.cycle(k)),
                Status::NotYet => {
                    self.fixed[k].status = Status::InProgress;
                    self.active.push(Active::Fixed(k));
                    self.tasks.push(Task::FixedDone(k));
                    let f = &self.fixed[k];
                    self.tasks.push(Task::Eval(f.expr, Env::at(f.j)));
                    return Ok(());
                }
            },
            Some(Def::Function(_)) => {
                return fail(pos, format!("'{text}' is a function: call it as {text}(…)"))
            }
            Some(Def::Aux) => {
                return fail(
                    pos,
                    format!(
                        "'{text}' is an aux output and cannot be used in equations \
                         (define a fixed quantity and report it with aux)"
                    ),
                )
            }
            None => match text {
                "t" if env.const_only => {
                    return fail(
                        pos,
                        "'t' changes during the solve: indices, bounds and 'number' values \
                         must be constant",
                    )
                }
                "t" => self.dag.time(),
                "pi" => self.dag.constant_node(std::f64::consts::PI),
                "j" => match env.j {
                    Some(j) => self.dag.constant_node(j as f64),
                    None => return fail(pos, unknown_name_message(text)),
                },
                _ => return fail(pos, unknown_name_message(text)),
            },
        };
        self.values.push(id);
        Ok(())
    }

    fn cycle(&self, k: usize) -> Located {
        let from = self
            .active
            .iter()
            .rposition(|a| matches!(a, Active::Fixed(x) if *x == k))
            .unwrap_or(0);
        let mut names: Vec<String> = self.active[from..]
            .iter()
            .map(|a| match *a {
                Active::Fixed(x) => self.fixed[x].name.clone(),
                Active::Function(f) => format!("{}(…)", self.functions[f].name),
            })
            .collect();
        names.push(self.fixed[k].name.clone());
        let through_function = self.active[from..]
            .iter()
            .any(|a| matches!(a, Active::Function(_)));
        Located::new(
            self.fixed[k].pos,
            format!(
                "cycle among fixed quantities{}: {}",
                if through_function {
                    " and functions"
                } else {
                    ""
                },
                names.join(" -> ")
            ),
        )
    }

    /// The function exists and takes `n` arguments.
    fn check_call(&self, name: &str, n: usize, pos: Pos) -> Result<(), Located> {
        let arity_error = |want: usize| {
            fail(
                pos,
                format!(
                    "function '{name}' takes {want} argument{}, got {n}",
                    if want == 1 { "" } else { "s" },
                ),
            )
        };
        if let Some(&(_, arity)) = BUILTINS
            .iter()
            .chain(LOAD_TIME_FUNCTIONS)
            .find(|(b, _)| *b == name)
        {
            return if n == arity {
                Ok(())
            } else {
                arity_error(arity)
            };
        }
        match self.defs.get(name).map(|d| d.0) {
            Some(Def::Function(k)) => {
                let want = self.functions[k].n_args;
                if n == want {
                    Ok(())
                } else {
                    arity_error(want)
                }
            }
            Some(other) => fail(
                pos,
                format!("'{name}' is {}, not a function", describe(other)),
            ),
            None => fail(pos, unknown_function_message(name)),
        }
    }

    fn apply(&mut self, e: ExprId, env: Env) -> Result<(), Located> {
        let node = self.exprs.get(e);
        let pos = node.pos;
        match &node.kind {
            ExprKind::Name(name) => {
                let full = self.indexed_name(name, pos, env)?;
                if !self.defs.contains_key(&full) {
                    return Err(self.undefined_element(name, &full, pos, env));
                }
                self.resolve(&full, pos, env)?;
            }
            ExprKind::Index(inner) => {
                let id = self.pop();
                let what = || format!("the bracketed value{}", at_j(env));
                let k = as_integer(self.dag.constant(id), self.exprs.get(*inner).pos, what)?;
                self.constant(k as f64);
            }
            ExprKind::Call(name, args) => {
                let ids = self.pop_n(args.len());
                self.call_node(name, ids, pos, env)?;
            }
            ExprKind::Neg(_) => {
                let a = self.pop();
                let id = self.dag.neg(a);
                self.values.push(id);
            }
            ExprKind::Binary(op, _, _) => {
                let b = self.pop();
                let a = self.pop();
                let id = self.dag.bin(dag_op(*op), a, b);
                self.values.push(id);
            }
            ExprKind::If(..) => {
                let b = self.pop();
                let a = self.pop();
                let c = self.pop();
                let id = self.dag.select(c, a, b);
                self.values.push(id);
            }
            ExprKind::Shift(name, offset) => {
                let off = self.pop();
                let what = || format!("the offset of shift{}", at_j(env));
                let off = as_integer(self.dag.constant(off), self.exprs.get(*offset).pos, what)?;
                let base = match name.as_plain() {
                    Some(text) => text.to_string(),
                    None => self.indexed_name(name, pos, env)?,
                };
                self.shift(&base, off, pos, env)?;
            }
            _ => unreachable!("only nodes with operands are applied"),
        }
        Ok(())
    }

    fn shift(&mut self, base: &str, off: i64, pos: Pos, env: Env) -> Result<(), Located> {
        let (index, count, kind) = match self.defs.get(base).map(|d| d.0) {
            Some(Def::State(i)) => (i, self.n_states, "state"),
            Some(Def::Param(k)) => (k, self.n_params, "parameter"),
            Some(other) => {
                return fail(
                    pos,
                    format!(
                        "shift needs a state or a parameter, and '{base}' is {}",
                        describe(other)
                    ),
                )
            }
            None => return fail(pos, unknown_name_message(base)),
        };
        let target = index as i64 + off;
        if target < 0 || target >= count as i64 {
            return fail(
                pos,
                format!(
                    "shift({base}, {off}) is out of range: there are {count} {kind}s and \
                     '{base}' is number {} of them{}",
                    index + 1,
                    at_j(env)
                ),
            );
        }
        if env.const_only {
            return fail(
                pos,
                "shift(…) is a state or a parameter: indices, bounds and 'number' values \
                 must be constant",
            );
        }
        let id = if kind == "state" {
            self.dag.state(target as usize)
        } else {
            self.dag.param(target as usize)
        };
        self.values.push(id);
        Ok(())
    }

    fn call_node(&mut self, name: &str, ids: Vec<Id>, pos: Pos, env: Env) -> Result<(), Located> {
        let un = |op| Some((op, ids[0]));
        let unary = match name {
            "min" => {
                let id = self.dag.bin(Bin::Min, ids[0], ids[1]);
                self.values.push(id);
                return Ok(());
            }
            "max" => {
                let id = self.dag.bin(Bin::Max, ids[0], ids[1]);
                self.values.push(id);
                return Ok(());
            }
            "mod" | "flr" => {
                let args: Option<Vec<f64>> = ids.iter().map(|&i| self.dag.constant(i)).collect();
                let Some(args) = args else {
                    return fail(
                        pos,
                        format!(
                            "'{name}' is evaluated only at load: its arguments must be constant \
                             (numbers, 'number' constants, j, i')"
                        ),
                    );
                };
                let value = if name == "flr" {
                    args[0].floor()
                } else {
                    // XPPAUT's mod: fmod shifted into [0, y) for negative results.
                    let z = args[0] % args[1];
                    if z < 0.0 {
                        z + args[1]
                    } else {
                        z
                    }
                };
                self.constant(value);
                return Ok(());
            }
            "exp" => un(Un::Exp),
            "ln" | "log" => un(Un::Ln),
            "log10" => un(Un::Log10),
            "sqrt" => un(Un::Sqrt),
            "abs" => un(Un::Abs),
            "sin" => un(Un::Sin),
            "cos" => un(Un::Cos),
            "tan" => un(Un::Tan),
            "tanh" => un(Un::Tanh),
            "sinh" => un(Un::Sinh),
            "cosh" => un(Un::Cosh),
            "atan" => un(Un::Atan),
            "heav" => un(Un::Heav),
            "sign" => un(Un::Sign),
            _ => None,
        };
        if let Some((op, x)) = unary {
            let id = self.dag.un(op, x);
            self.values.push(id);
            return Ok(());
        }
        let Some(&(Def::Function(f), _)) = self.defs.get(name) else {
            unreachable!("check_call accepted it")
        };
        self.start_call(f, ids, env.const_only, pos)
    }

    /// Inlines `f` on `args`: the memoised node, or its body queued.
    fn start_call(
        &mut self,
        f: usize,
        args: Vec<Id>,
        const_only: bool,
        pos: Pos,
    ) -> Result<(), Located> {
        let key = (f, args);
        if let Some(&id) = self.memo.get(&key) {
            self.values.push(id);
            return Ok(());
        }
        let def = &self.functions[f];
        if def.active {
            return fail(
                pos,
                format!(
                    "function '{}' calls itself (recursion is not supported)",
                    def.name
                ),
            );
        }
        let (body, j) = (def.body, def.j);
        self.functions[f].active = true;
        self.active.push(Active::Function(f));
        let frame = self.locals.len();
        self.locals.extend_from_slice(&key.1);
        self.tasks.push(Task::CallDone { f, frame });
        self.tasks.push(Task::Eval(
            body,
            Env {
                j,
                i: None,
                frame,
                const_only,
            },
        ));
        Ok(())
    }

    fn choose(&mut self, e: ExprId, env: Env) {
        let ExprKind::If(_, a, b) = self.exprs.get(e).kind else {
            unreachable!("choose follows an if")
        };
        let c = self.pop();
        if let Some(x) = self.dag.constant(c) {
            // Constant at load: only the selected branch exists.
            self.tasks
                .push(Task::Eval(if x != 0.0 { a } else { b }, env));
            return;
        }
        self.values.push(c);
        self.tasks.push(Task::Apply(e, env));
        self.tasks.push(Task::Eval(b, env));
        self.tasks.push(Task::Eval(a, env));
    }

    fn sum_bounds(&mut self, e: ExprId, env: Env) -> Result<(), Located> {
        let ExprKind::Sum(lo_e, hi_e, _) = self.exprs.get(e).kind else {
            unreachable!("sum_bounds follows a sum")
        };
        let hi = self.pop();
        let lo = self.pop();
        let bound = |id: Id, at: ExprId, which: &str| -> Result<i64, Located> {
            let what = || format!("the {which} bound of sum{}", at_j(env));
            // As XPPAUT: the integer part of each bound.
            let x = self.dag.constant(id).map(f64::trunc);
            as_integer(x, self.exprs.get(at).pos, what)
        };
        let (lo, hi) = (bound(lo, lo_e, "lower")?, bound(hi, hi_e, "upper")?);
        if lo > hi {
            self.constant(0.0);
            return Ok(());
        }
        self.charge((hi - lo) as u64, self.exprs.get(e).pos)?;
        self.sum_step(e, env, lo, hi, None);
        Ok(())
    }

    fn sum_step(&mut self, node: ExprId, env: Env, k: i64, hi: i64, acc: Option<Id>) {
        let ExprKind::Sum(_, _, body) = self.exprs.get(node).kind else {
            unreachable!("sum_step on a sum")
        };
        self.tasks.push(Task::SumNext {
            node,
            env,
            k,
            hi,
            acc,
        });
        self.tasks.push(Task::Eval(body, Env { i: Some(k), ..env }));
    }
}

fn dag_op(op: BinOp) -> Bin {
    match op {
        BinOp::Add => Bin::Add,
        BinOp::Sub => Bin::Sub,
        BinOp::Mul => Bin::Mul,
        BinOp::Div => Bin::Div,
        BinOp::Pow => Bin::Pow,
        BinOp::Lt => Bin::Lt,
        BinOp::Gt => Bin::Gt,
        BinOp::Le => Bin::Le,
        BinOp::Ge => Bin::Ge,
        BinOp::Eq => Bin::Eq,
        BinOp::Ne => Bin::Ne,
        BinOp::And => Bin::And,
        BinOp::Or => Bin::Or,
    }
}

/// The message for a name that is not defined.
pub fn unknown_name_message(name: &str) -> String {
    if BUILTINS
        .iter()
        .chain(LOAD_TIME_FUNCTIONS)
        .any(|(b, _)| *b == name)
    {
        format!("'{name}' is a built-in function: call it as {name}(…)")
    } else if name == "j" {
        "unknown name 'j' ('j' is the array index only on array lines, x[1..n]…, and in \
         %[lo..hi] blocks)"
            .to_string()
    } else {
        format!("unknown name '{name}'")
    }
}

/// The message for a call of a function that is not defined.
pub fn unknown_function_message(name: &str) -> String {
    if XPP_UNSUPPORTED_FUNCTIONS.contains(&name) {
        format!("'{name}' is an XPPAUT function revode does not support")
    } else {
        format!("unknown function '{name}'")
    }
}
