//! From statements to the model's DAG: names resolved, declarations
//! checked, fixed quantities sorted by dependency, user functions inlined.

use std::collections::HashMap;

use crate::dag::{Bin, Dag, Id, Un};
use crate::error::{fail, Located, Pos};
use crate::parser::{BinOp, Expr, ExprKind, Name, Stmt};

/// A model as the DAG sees it.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub dag: Dag,
    pub state_names: Vec<String>,
    pub u0: Vec<f64>,
    pub param_names: Vec<String>,
    pub p0: Vec<f64>,
    /// `f_i` for each state, in state order.
    pub rhs: Vec<Id>,
    pub aux_names: Vec<String>,
    pub aux: Vec<Id>,
    /// `@` options in file order.
    pub options: Vec<(String, String)>,
}

/// Built-in functions: name, arity.
const BUILTINS: &[(&str, usize)] = &[
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

/// XPPAUT functions outside the subset (named in the error).
const XPP_UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "delay",
    "ran",
    "normal",
    "besselj",
    "bessely",
    "besseli",
    "erf",
    "erfc",
    "lgamma",
    "flr",
    "mod",
    "shift",
    "del_shift",
    "ishift",
    "sum",
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

/// Words that cannot name anything.
const RESERVED: &[&str] = &["t", "if", "then", "else", "done"];

#[derive(Debug, Clone, Copy)]
enum Def {
    Param(usize),
    Number(f64),
    State(usize),
    Fixed(usize),
    Function(usize),
    Aux,
}

struct FixedDef {
    name: Name,
    expr: Expr,
}

struct FunctionDef {
    args: Vec<Name>,
    body: Expr,
}

struct Builder {
    dag: Dag,
    defs: HashMap<String, (Def, Pos)>,
    fixed: Vec<FixedDef>,
    fixed_ids: Vec<Option<Id>>,
    /// Fixed quantities being lowered (cycle detection), in order.
    fixed_stack: Vec<usize>,
    functions: Vec<FunctionDef>,
    /// Functions being expanded (recursion detection).
    function_stack: Vec<usize>,
}

fn describe(def: Def) -> &'static str {
    match def {
        Def::Param(_) => "a parameter",
        Def::Number(_) => "a number",
        Def::State(_) => "a state",
        Def::Fixed(_) => "a fixed quantity",
        Def::Function(_) => "a function",
        Def::Aux => "an aux output",
    }
}

impl Builder {
    fn define(&mut self, name: &Name, def: Def) -> Result<(), Located> {
        let text = name.text.as_str();
        if RESERVED.contains(&text) {
            return fail(
                name.pos,
                format!("'{text}' is reserved and cannot be defined"),
            );
        }
        if BUILTINS.iter().any(|(b, _)| *b == text) {
            return fail(
                name.pos,
                format!("'{text}' is a built-in function and cannot be redefined"),
            );
        }
        if let Some((old, at)) = self.defs.get(text) {
            return fail(
                name.pos,
                format!(
                    "'{text}' is already defined (as {} at line {})",
                    describe(*old),
                    at.line
                ),
            );
        }
        self.defs.insert(text.to_string(), (def, name.pos));
        Ok(())
    }

    fn fixed_id(&mut self, k: usize) -> Result<Id, Located> {
        if let Some(id) = self.fixed_ids[k] {
            return Ok(id);
        }
        if let Some(at) = self.fixed_stack.iter().position(|&j| j == k) {
            let mut names: Vec<&str> = self.fixed_stack[at..]
                .iter()
                .map(|&j| self.fixed[j].name.text.as_str())
                .collect();
            names.push(&self.fixed[k].name.text);
            return fail(
                self.fixed[k].name.pos,
                format!("cycle among fixed quantities: {}", names.join(" -> ")),
            );
        }
        self.fixed_stack.push(k);
        let expr = self.fixed[k].expr.clone();
        let id = self.lower(&expr, &HashMap::new())?;
        self.fixed_stack.pop();
        self.fixed_ids[k] = Some(id);
        Ok(id)
    }

    fn lower(&mut self, e: &Expr, locals: &HashMap<String, Id>) -> Result<Id, Located> {
        Ok(match &e.kind {
            ExprKind::Num(x) => self.dag.constant_node(*x),
            ExprKind::Name(name) => {
                if let Some(&id) = locals.get(name) {
                    return Ok(id);
                }
                if name == "t" {
                    return Ok(self.dag.time());
                }
                match self.defs.get(name).map(|d| d.0) {
                    Some(Def::Param(k)) => self.dag.param(k),
                    Some(Def::Number(x)) => self.dag.constant_node(x),
                    Some(Def::State(i)) => self.dag.state(i),
                    Some(Def::Fixed(k)) => self.fixed_id(k)?,
                    Some(Def::Function(_)) => {
                        return fail(
                            e.pos,
                            format!("'{name}' is a function: call it as {name}(…)"),
                        )
                    }
                    Some(Def::Aux) => {
                        return fail(
                            e.pos,
                            format!(
                                "'{name}' is an aux output and cannot be used in equations \
                                 (define a fixed quantity and report it with aux)"
                            ),
                        )
                    }
                    None if BUILTINS.iter().any(|(b, _)| b == name) => {
                        return fail(
                            e.pos,
                            format!("'{name}' is a built-in function: call it as {name}(…)"),
                        )
                    }
                    None => return fail(e.pos, format!("unknown name '{name}'")),
                }
            }
            ExprKind::Neg(a) => {
                let a = self.lower(a, locals)?;
                self.dag.neg(a)
            }
            ExprKind::Binary(op, a, b) => {
                let a = self.lower(a, locals)?;
                let b = self.lower(b, locals)?;
                let op = match op {
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
                };
                self.dag.bin(op, a, b)
            }
            ExprKind::If(c, a, b) => {
                let c = self.lower(c, locals)?;
                let a = self.lower(a, locals)?;
                let b = self.lower(b, locals)?;
                self.dag.select(c, a, b)
            }
            ExprKind::Call(name, args) => self.call(e.pos, name, args, locals)?,
        })
    }

    fn call(
        &mut self,
        pos: Pos,
        name: &str,
        args: &[Expr],
        locals: &HashMap<String, Id>,
    ) -> Result<Id, Located> {
        let arity_error = |want: usize| {
            fail(
                pos,
                format!(
                    "function '{name}' takes {want} argument{}, got {}",
                    if want == 1 { "" } else { "s" },
                    args.len()
                ),
            )
        };
        if locals.contains_key(name) {
            return fail(pos, format!("'{name}' is an argument, not a function"));
        }
        if let Some(&(_, arity)) = BUILTINS.iter().find(|(b, _)| *b == name) {
            if args.len() != arity {
                return arity_error(arity);
            }
            let mut ids = Vec::with_capacity(arity);
            for a in args {
                ids.push(self.lower(a, locals)?);
            }
            let un = |op| (op, ids[0]);
            let (op, x) = match name {
                "min" => return Ok(self.dag.bin(Bin::Min, ids[0], ids[1])),
                "max" => return Ok(self.dag.bin(Bin::Max, ids[0], ids[1])),
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
                _ => unreachable!("every built-in is listed"),
            };
            return Ok(self.dag.un(op, x));
        }
        let k = match self.defs.get(name).map(|d| d.0) {
            Some(Def::Function(k)) => k,
            Some(other) => {
                return fail(
                    pos,
                    format!("'{name}' is {}, not a function", describe(other)),
                )
            }
            None if XPP_UNSUPPORTED_FUNCTIONS.contains(&name) => {
                return fail(
                    pos,
                    format!("'{name}' is an XPPAUT function revode does not support"),
                )
            }
            None => return fail(pos, format!("unknown function '{name}'")),
        };
        let want = self.functions[k].args.len();
        if args.len() != want {
            return arity_error(want);
        }
        if self.function_stack.contains(&k) {
            return fail(
                pos,
                format!("function '{name}' calls itself (recursion is not supported)"),
            );
        }
        let mut inner = HashMap::new();
        for (arg, e) in self.functions[k].args.clone().iter().zip(args) {
            let id = self.lower(e, locals)?;
            inner.insert(arg.text.clone(), id);
        }
        self.function_stack.push(k);
        let body = self.functions[k].body.clone();
        let id = self.lower(&body, &inner);
        self.function_stack.pop();
        id
    }
}

/// Checks the statements and builds the DAG.
pub fn lower(stmts: Vec<Stmt>) -> Result<Lowered, Located> {
    let mut b = Builder {
        dag: Dag::default(),
        defs: HashMap::new(),
        fixed: Vec::new(),
        fixed_ids: Vec::new(),
        fixed_stack: Vec::new(),
        functions: Vec::new(),
        function_stack: Vec::new(),
    };
    let mut param_names = Vec::new();
    let mut p0 = Vec::new();
    let mut states: Vec<(Name, Expr)> = Vec::new();
    let mut inits: Vec<(Name, f64)> = Vec::new();
    // Where each initial value is in `inits` (a linear search per `init`
    // made loading quadratic in the number of states).
    let mut init_at: HashMap<String, usize> = HashMap::new();
    let mut aux: Vec<(Name, Expr)> = Vec::new();
    let mut options = Vec::new();
    for stmt in stmts {
        match stmt {
            Stmt::Param { name, value } => {
                b.define(&name, Def::Param(param_names.len()))?;
                param_names.push(name.text);
                p0.push(value);
            }
            Stmt::Number { name, value } => b.define(&name, Def::Number(value))?,
            Stmt::Init { name, value } => {
                if let Some((first, _)) = init_at.get(&name.text).map(|&k| &inits[k]) {
                    return fail(
                        name.pos,
                        format!(
                            "initial value of '{}' given twice (first at line {})",
                            name.text, first.pos.line
                        ),
                    );
                }
                init_at.insert(name.text.clone(), inits.len());
                inits.push((name, value));
            }
            Stmt::Deriv { name, expr } => {
                if let Some((Def::State(_), at)) = b.defs.get(&name.text) {
                    return fail(
                        name.pos,
                        format!(
                            "second derivative equation for '{}' (first at line {})",
                            name.text, at.line
                        ),
                    );
                }
                b.define(&name, Def::State(states.len()))?;
                states.push((name, expr));
            }
            Stmt::Fixed { name, expr } => {
                b.define(&name, Def::Fixed(b.fixed.len()))?;
                b.fixed.push(FixedDef { name, expr });
                b.fixed_ids.push(None);
            }
            Stmt::Function { name, args, body } => {
                for (i, a) in args.iter().enumerate() {
                    if args[..i].iter().any(|o| o.text == a.text) {
                        return fail(a.pos, format!("argument '{}' appears twice", a.text));
                    }
                    if a.text == "t" {
                        return fail(a.pos, "'t' is the time and cannot be an argument name");
                    }
                }
                b.define(&name, Def::Function(b.functions.len()))?;
                b.functions.push(FunctionDef { args, body });
            }
            Stmt::Aux { name, expr } => {
                b.define(&name, Def::Aux)?;
                aux.push((name, expr));
            }
            Stmt::Option { name, value } => options.push((name.text, value)),
        }
    }
    // Every state needs an initial value, every initial value a state.
    let mut u0 = vec![f64::NAN; states.len()];
    for (name, value) in &inits {
        match b.defs.get(&name.text) {
            Some((Def::State(i), _)) => u0[*i] = *value,
            Some((other, _)) => {
                return fail(
                    name.pos,
                    format!(
                        "initial value for '{}', which is {}, not a state (states are defined by {}' = …)",
                        name.text,
                        describe(*other),
                        name.text
                    ),
                )
            }
            None => {
                return fail(
                    name.pos,
                    format!(
                        "initial value for '{}', which has no derivative (add {}' = …)",
                        name.text, name.text
                    ),
                )
            }
        }
    }
    for (i, (name, _)) in states.iter().enumerate() {
        if u0[i].is_nan() {
            return fail(
                name.pos,
                format!(
                    "state '{}' has no initial value (add 'init {}=…' or '{}(0)=…')",
                    name.text, name.text, name.text
                ),
            );
        }
    }
    if states.is_empty() {
        return fail(
            Pos::default(),
            "no state: the file has no derivative equation (v' = … or dv/dt = …)",
        );
    }
    // Every fixed quantity and function is checked, used or not.
    for k in 0..b.fixed.len() {
        b.fixed_id(k)?;
    }
    for k in 0..b.functions.len() {
        let placeholders: HashMap<String, Id> = b.functions[k]
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| (a.text.clone(), b.dag.lambda(u32::MAX as usize - i)))
            .collect();
        let body = b.functions[k].body.clone();
        b.function_stack.push(k);
        b.lower(&body, &placeholders)?;
        b.function_stack.pop();
    }
    let mut rhs = Vec::with_capacity(states.len());
    for (_, expr) in &states {
        rhs.push(b.lower(expr, &HashMap::new())?);
    }
    let mut aux_ids = Vec::with_capacity(aux.len());
    for (_, expr) in &aux {
        aux_ids.push(b.lower(expr, &HashMap::new())?);
    }
    Ok(Lowered {
        dag: b.dag,
        state_names: states.into_iter().map(|(n, _)| n.text).collect(),
        u0,
        param_names,
        p0,
        rhs,
        aux_names: aux.into_iter().map(|(n, _)| n.text).collect(),
        aux: aux_ids,
        options,
    })
}
