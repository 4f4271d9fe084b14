//! From statements to the model's DAG: arrays expanded, names defined and
//! checked, then every fixed quantity, function, value and equation lowered
//! ([`crate::lowering`]).

use std::collections::HashMap;

use crate::ast::{ExprKind, Exprs, Item, Lhs, Parsed, Piece, Repeat, Stmt, Value};
use crate::dag::{Dag, Id};
use crate::error::{fail, Located, Pos};
use crate::lowering::{
    describe, unknown_function_message, unknown_name_message, Def, Env, FixedDef, FunctionDef,
    Lowerer, BUILTINS, LOAD_TIME_FUNCTIONS,
};

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
    /// `global` lines in file order.
    pub events: Vec<LoweredEvent>,
}

/// One `global` line as the DAG sees it.
#[derive(Debug, Clone)]
pub struct LoweredEvent {
    /// 1 upward, −1 downward, 0 either way.
    pub direction: i8,
    /// The event function g (fires when it crosses 0).
    pub condition: Id,
    /// `(state, new value)`; states not listed keep their value.
    pub resets: Vec<(usize, Id)>,
}

/// A `global` line waiting for its expressions to be lowered.
struct PendingEvent {
    direction: i8,
    condition: crate::ast::ExprId,
    resets: Vec<(crate::ast::Name, crate::ast::ExprId)>,
    pos: Pos,
}

/// Words that cannot name anything.
const RESERVED: &[&str] = &["t", "if", "then", "else", "done", "sum", "of", "shift"];

/// A definition waiting for its expression to be lowered.
struct Pending<T> {
    name: String,
    pos: Pos,
    what: T,
    j: Option<i64>,
}

#[derive(Default)]
struct Definitions {
    param_names: Vec<String>,
    param_values: Vec<(Value, Option<i64>)>,
    states: Vec<Pending<u32>>,
    inits: Vec<Pending<Value>>,
    /// Initial values by name (duplicates are errors).
    init_seen: HashMap<String, Pos>,
    aux: Vec<Pending<u32>>,
    options: Vec<(String, String)>,
    events: Vec<PendingEvent>,
}

fn define(l: &mut Lowerer, text: &str, pos: Pos, def: Def) -> Result<(), Located> {
    if RESERVED.contains(&text) {
        return fail(pos, format!("'{text}' is reserved and cannot be defined"));
    }
    if BUILTINS
        .iter()
        .chain(LOAD_TIME_FUNCTIONS)
        .any(|(b, _)| *b == text)
    {
        return fail(
            pos,
            format!("'{text}' is a built-in function and cannot be redefined"),
        );
    }
    if let Some((old, at)) = l.defs.get(text) {
        return fail(
            pos,
            format!(
                "'{text}' is already defined (as {} at line {})",
                describe(*old),
                at.line
            ),
        );
    }
    l.defs.insert(text.to_string(), (def, pos));
    Ok(())
}

/// The name `lhs` defines at array index `j`.
fn defined_name(l: &mut Lowerer, lhs: &Lhs, j: Option<i64>) -> Result<String, Located> {
    if let Some(text) = lhs.name.as_plain() {
        return Ok(text.to_string());
    }
    let mut values = Vec::new();
    for e in lhs.name.indices() {
        let k = l.integer(e, j, || format!("the index of '{}'", lhs.name.written()))?;
        if k < 0 {
            return fail(
                lhs.pos,
                format!(
                    "index {k} of '{}' is negative: array names are the root and a \
                     non-negative integer",
                    lhs.name.written()
                ),
            );
        }
        values.push(k);
    }
    Ok(lhs.name.with_indices(&values))
}

/// Defines the names of one statement at array index `j`.
fn declare(
    l: &mut Lowerer,
    d: &mut Definitions,
    stmt: &Stmt,
    j: Option<i64>,
) -> Result<(), Located> {
    match stmt {
        Stmt::Param { name, value } => {
            let text = defined_name(l, name, j)?;
            define(l, &text, name.pos, Def::Param(d.param_names.len()))?;
            d.param_names.push(text);
            d.param_values.push((*value, j));
        }
        Stmt::Number { name, value } => {
            let text = defined_name(l, name, j)?;
            let id = l.eval(value.expr, Env::constant(j))?;
            let x = constant_value(l, id, value.pos, &format!("number '{text}'"))?;
            define(l, &text, name.pos, Def::Number(x))?;
        }
        Stmt::Init { name, value } => {
            let text = defined_name(l, name, j)?;
            if let Some(first) = d.init_seen.get(&text) {
                return fail(
                    name.pos,
                    format!(
                        "initial value of '{text}' given twice (first at line {})",
                        first.line
                    ),
                );
            }
            d.init_seen.insert(text.clone(), name.pos);
            d.inits.push(Pending {
                name: text,
                pos: name.pos,
                what: *value,
                j,
            });
        }
        Stmt::Deriv { name, expr } => {
            let text = defined_name(l, name, j)?;
            if let Some((Def::State(_), at)) = l.defs.get(&text) {
                return fail(
                    name.pos,
                    format!(
                        "second derivative equation for '{text}' (first at line {})",
                        at.line
                    ),
                );
            }
            define(l, &text, name.pos, Def::State(d.states.len()))?;
            d.states.push(Pending {
                name: text,
                pos: name.pos,
                what: *expr,
                j,
            });
        }
        Stmt::Fixed { name, expr } => {
            let text = defined_name(l, name, j)?;
            define(l, &text, name.pos, Def::Fixed(l.fixed.len()))?;
            l.fixed.push(FixedDef::new(text, name.pos, *expr, j));
        }
        Stmt::Function { name, args, body } => {
            define(l, &name.text, name.pos, Def::Function(l.functions.len()))?;
            l.functions
                .push(FunctionDef::new(name.text.clone(), args.len(), *body, j));
        }
        Stmt::Aux { name, expr } => {
            let text = defined_name(l, name, j)?;
            define(l, &text, name.pos, Def::Aux)?;
            d.aux.push(Pending {
                name: text,
                pos: name.pos,
                what: *expr,
                j,
            });
        }
        Stmt::Option { name, value } => d.options.push((name.text.clone(), value.clone())),
        Stmt::Global {
            direction,
            condition,
            resets,
            pos,
        } => d.events.push(PendingEvent {
            direction: *direction,
            condition: *condition,
            resets: resets.clone(),
            pos: *pos,
        }),
    }
    Ok(())
}

/// The constant value of `id`, or an error naming `what`.
fn constant_value(l: &Lowerer, id: Id, pos: Pos, what: &str) -> Result<f64, Located> {
    let Some(x) = l.dag.constant(id) else {
        return fail(
            pos,
            format!(
                "the value of {what} must be a constant (numbers, 'number' constants, j and \
                 functions of them), but it depends on a state, a parameter or t"
            ),
        );
    };
    if !x.is_finite() {
        return fail(pos, format!("the value of {what} is not finite ({x})"));
    }
    Ok(x)
}

/// The statement's defined name, for arrays registered by their range.
fn lhs_of(stmt: &Stmt) -> Option<&Lhs> {
    match stmt {
        Stmt::Param { name, .. }
        | Stmt::Number { name, .. }
        | Stmt::Deriv { name, .. }
        | Stmt::Fixed { name, .. }
        | Stmt::Aux { name, .. } => Some(name),
        Stmt::Init { .. } | Stmt::Function { .. } | Stmt::Option { .. } | Stmt::Global { .. } => {
            None
        }
    }
}

/// Expands `repeat` for each `j` of its range.
fn declare_repeat(
    l: &mut Lowerer,
    d: &mut Definitions,
    exprs: &Exprs,
    r: &Repeat,
) -> Result<(), Located> {
    let lo = l.integer(r.lo, None, || "the first index of the range".into())?;
    let hi = l.integer(r.hi, None, || "the last index of the range".into())?;
    if lo < 0 || hi < 0 {
        return fail(
            r.pos,
            format!(
                "the range [{lo}..{hi}] has a negative index: array names are the root and a \
                 non-negative integer"
            ),
        );
    }
    if hi < lo && !r.literal {
        return fail(
            r.pos,
            format!(
                "empty range: its bounds are [{lo}..{hi}] (a range with named bounds needs \
                 first ≤ last; only literal ranges like [10..1] count down, as in XPPAUT)"
            ),
        );
    }
    let count = lo.abs_diff(hi) + 1;
    l.charge(count.saturating_mul(r.stmts.len() as u64), r.pos)?;
    let (first, last) = (lo.min(hi), lo.max(hi));
    for stmt in &r.stmts {
        if let Some(lhs) = lhs_of(stmt) {
            if let [Piece::Text(root), Piece::Index(e)] = lhs.name.pieces.as_slice() {
                if exprs.get(*e).kind == ExprKind::ArrayIndex {
                    l.arrays.insert(root.clone(), (first, last));
                }
            }
        }
    }
    let step = if hi >= lo { 1 } else { -1 };
    let mut j = lo;
    loop {
        for stmt in &r.stmts {
            declare(l, d, stmt, Some(j))?;
        }
        if j == hi {
            return Ok(());
        }
        j += step;
    }
}

/// Every plain name and called function is defined (also in branches a
/// constant condition drops, and in functions nobody calls).
fn check_names(l: &Lowerer, exprs: &Exprs) -> Result<(), Located> {
    for node in exprs.iter() {
        match &node.kind {
            ExprKind::Name(name) => {
                if let Some(text) = name.as_plain() {
                    if !l.defs.contains_key(text) && !matches!(text, "t" | "pi" | "j") {
                        return fail(node.pos, unknown_name_message(text));
                    }
                }
            }
            ExprKind::Call(name, _) => {
                let known = BUILTINS
                    .iter()
                    .chain(LOAD_TIME_FUNCTIONS)
                    .any(|(b, _)| b == name)
                    || l.defs.contains_key(name);
                if !known {
                    return fail(node.pos, unknown_function_message(name));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks the statements and builds the DAG.
pub fn lower(parsed: Parsed) -> Result<Lowered, Located> {
    let Parsed { exprs, items } = parsed;
    let mut l = Lowerer::new(&exprs);
    let mut d = Definitions::default();
    // Numbers first: ranges and indices may use them wherever they are declared.
    for item in &items {
        if let Item::Stmt(stmt @ Stmt::Number { .. }) = item {
            declare(&mut l, &mut d, stmt, None)?;
        }
    }
    for item in &items {
        match item {
            Item::Stmt(Stmt::Number { .. }) => {}
            Item::Stmt(stmt) => declare(&mut l, &mut d, stmt, None)?,
            Item::Repeat(r) => declare_repeat(&mut l, &mut d, &exprs, r)?,
        }
    }
    l.n_states = d.states.len();
    l.n_params = d.param_names.len();
    check_names(&l, &exprs)?;
    // Every state needs an initial value, every initial value a state.
    let mut init_of: Vec<Option<usize>> = vec![None; d.states.len()];
    for (k, init) in d.inits.iter().enumerate() {
        match l.defs.get(&init.name) {
            Some((Def::State(i), _)) => init_of[*i] = Some(k),
            Some((other, _)) => {
                return fail(
                    init.pos,
                    format!(
                        "initial value for '{}', which is {}, not a state (states are defined by {}' = …)",
                        init.name,
                        describe(*other),
                        init.name
                    ),
                )
            }
            None => {
                return fail(
                    init.pos,
                    format!(
                        "initial value for '{}', which has no derivative (add {}' = …)",
                        init.name, init.name
                    ),
                )
            }
        }
    }
    for (state, init) in d.states.iter().zip(&init_of) {
        if init.is_none() {
            return fail(
                state.pos,
                format!(
                    "state '{}' has no initial value (add 'init {}=…' or '{}(0)=…')",
                    state.name, state.name, state.name
                ),
            );
        }
    }
    if d.states.is_empty() {
        return fail(
            Pos::default(),
            "no state: the file has no derivative equation (v' = … or dv/dt = …)",
        );
    }
    // Every fixed quantity and function is checked, used or not.
    for k in 0..l.fixed.len() {
        l.fixed_node(k)?;
    }
    for k in 0..l.functions.len() {
        let placeholders: Vec<Id> = (0..l.functions[k].n_args)
            .map(|i| l.dag.lambda(u32::MAX as usize - i))
            .collect();
        let body = l.functions[k].body;
        l.call(k, placeholders, exprs.get(body).pos)?;
    }
    let mut p0 = Vec::with_capacity(d.param_values.len());
    for (k, (value, j)) in d.param_values.iter().enumerate() {
        let id = l.eval(value.expr, Env::at(*j))?;
        let what = format!("parameter '{}'", d.param_names[k]);
        p0.push(constant_value(&l, id, value.pos, &what)?);
    }
    let mut u0 = Vec::with_capacity(d.states.len());
    for (state, init) in d.states.iter().zip(&init_of) {
        let init = &d.inits[init.unwrap_or_default()];
        let id = l.eval(init.what.expr, Env::at(init.j))?;
        let what = format!("the initial value of '{}'", state.name);
        u0.push(constant_value(&l, id, init.what.pos, &what)?);
    }
    let mut rhs = Vec::with_capacity(d.states.len());
    for s in &d.states {
        rhs.push(l.eval(s.what, Env::at(s.j))?);
    }
    let mut aux = Vec::with_capacity(d.aux.len());
    for a in &d.aux {
        aux.push(l.eval(a.what, Env::at(a.j))?);
    }
    let events = lower_events(&mut l, &d.events, &rhs)?;
    Ok(Lowered {
        events,
        dag: l.dag,
        state_names: d.states.into_iter().map(|s| s.name).collect(),
        u0,
        param_names: d.param_names,
        p0,
        rhs,
        aux_names: d.aux.into_iter().map(|a| a.name).collect(),
        aux,
        options: d.options,
    })
}

/// Lowers the `global` lines: conditions and reset values, reset targets
/// checked. Event gradients assume an autonomous system (docs/events.md),
/// so with events nothing may depend on t.
fn lower_events(
    l: &mut Lowerer,
    pending: &[PendingEvent],
    rhs: &[Id],
) -> Result<Vec<LoweredEvent>, Located> {
    let mut events = Vec::with_capacity(pending.len());
    for ev in pending {
        let condition = l.eval(ev.condition, Env::at(None))?;
        let mut resets: Vec<(usize, Id)> = Vec::with_capacity(ev.resets.len());
        for (name, value) in &ev.resets {
            let state = match l.defs.get(&name.text) {
                Some((Def::State(i), _)) => *i,
                Some((Def::Param(_), _)) => {
                    return fail(
                        name.pos,
                        format!(
                            "'global' resets '{}', a parameter: only states can be reset",
                            name.text
                        ),
                    )
                }
                Some((other, _)) => {
                    return fail(
                        name.pos,
                        format!(
                            "'global' resets '{}', which is {}, not a state",
                            name.text,
                            describe(*other)
                        ),
                    )
                }
                None => {
                    return fail(
                        name.pos,
                        format!("'global' resets '{}', which is not defined", name.text),
                    )
                }
            };
            if resets.iter().any(|&(s, _)| s == state) {
                return fail(name.pos, format!("'global' resets '{}' twice", name.text));
            }
            resets.push((state, l.eval(*value, Env::at(None))?));
        }
        let roots = std::iter::once(condition).chain(resets.iter().map(|r| r.1));
        if depends_on_time(&l.dag, roots) {
            return fail(
                ev.pos,
                "the condition and resets of 'global' cannot depend on t (event gradients \
                 assume an autonomous system, docs/events.md)",
            );
        }
        events.push(LoweredEvent {
            direction: ev.direction,
            condition,
            resets,
        });
    }
    if let Some(first) = pending.first() {
        if depends_on_time(&l.dag, rhs.iter().copied()) {
            return fail(
                first.pos,
                "with 'global' events the right-hand sides cannot depend on t (event \
                 gradients assume an autonomous system; drive the model through a stimulus \
                 protocol instead, docs/events.md)",
            );
        }
    }
    Ok(events)
}

/// Whether any of `roots` depends on t.
fn depends_on_time(dag: &Dag, roots: impl Iterator<Item = Id>) -> bool {
    let mut seen = vec![false; dag.len()];
    let mut stack: Vec<Id> = roots.collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id as usize], true) {
            continue;
        }
        let node = dag.node(id);
        if node == crate::dag::Node::Time {
            return true;
        }
        stack.extend(node.children());
    }
    false
}
