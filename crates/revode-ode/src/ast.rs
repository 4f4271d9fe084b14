//! What the parser produces: statements, and expressions in one flat arena.
//!
//! Expressions are nodes in a `Vec` that refer to their operands by index,
//! never by `Box`: a file nested 10⁵ levels deep is a long vector, not a
//! deep tree, so building, dropping and walking it use no recursion.

use crate::error::Pos;

/// Index of an expression node in [`Exprs`].
pub type ExprId = u32;

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
}

/// A name as written: text pieces and bracketed indices, `x`, `x[j-1]`,
/// `W_[i']_[j]`; it stands for the text with each index's integer value
/// written in (`x[3]` is `x3`, as in XPPAUT).
#[derive(Debug, Clone, PartialEq)]
pub struct NameRef {
    /// Never empty; the first piece is text.
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Index(ExprId),
}

impl NameRef {
    pub fn plain(text: String) -> Self {
        NameRef {
            pieces: vec![Piece::Text(text)],
        }
    }

    /// The name when it has no index.
    pub fn as_plain(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Text(s)] => Some(s),
            _ => None,
        }
    }

    /// The leading text (`x` of `x[j]`).
    pub fn root(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Text(s)) => s,
            _ => "",
        }
    }

    /// The indices, in order.
    pub fn indices(&self) -> impl Iterator<Item = ExprId> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Index(e) => Some(*e),
            Piece::Text(_) => None,
        })
    }

    /// The name with `values` written in for the indices, in order.
    pub fn with_indices(&self, values: &[i64]) -> String {
        let mut out = String::new();
        let mut k = 0;
        for p in &self.pieces {
            match p {
                Piece::Text(s) => out.push_str(s),
                Piece::Index(_) => {
                    out.push_str(&values[k].to_string());
                    k += 1;
                }
            }
        }
        out
    }

    /// As written, with `[…]` for each index (for messages).
    pub fn written(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(s) => out.push_str(s),
                Piece::Index(_) => out.push_str("[…]"),
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    /// A name, resolved at lowering (`j`, `t`, `pi` included when written bare).
    Name(NameRef),
    /// `[expr]` on its own: the integer value (XPPAUT's `[j]`).
    Index(ExprId),
    /// `j` inside brackets: the index of the array being defined.
    ArrayIndex,
    /// `i'`: the index of the enclosing `sum(…)of(…)`.
    SumIndex,
    /// The `k`-th argument of the function being defined.
    Arg(usize),
    Call(String, Vec<ExprId>),
    Neg(ExprId),
    Binary(BinOp, ExprId, ExprId),
    If(ExprId, ExprId, ExprId),
    /// `sum(lo, hi)of(body)`.
    Sum(ExprId, ExprId, ExprId),
    /// `shift(name, offset)`: the state or parameter declared `offset` after `name`.
    Shift(NameRef, ExprId),
}

/// An expression node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprNode {
    pub kind: ExprKind,
    pub pos: Pos,
}

/// All expression nodes of a file. A node's operands come before it, and
/// the nodes of one subexpression are contiguous (postfix order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exprs {
    nodes: Vec<ExprNode>,
}

impl Exprs {
    pub fn push(&mut self, kind: ExprKind, pos: Pos) -> ExprId {
        let id = ExprId::try_from(self.nodes.len()).unwrap_or(ExprId::MAX);
        self.nodes.push(ExprNode { kind, pos });
        id
    }

    pub fn get(&self, id: ExprId) -> &ExprNode {
        &self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExprNode> {
        self.nodes.iter()
    }

    /// Nodes `from..` (a subexpression parsed after `from` was the length).
    pub fn since(&self, from: usize) -> &[ExprNode] {
        &self.nodes[from.min(self.nodes.len())..]
    }
}

/// A name with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub pos: Pos,
}

/// The name a statement defines, possibly indexed (`x[j]`, `x[1..n]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lhs {
    pub name: NameRef,
    pub pos: Pos,
}

/// A value (`par a=…`, `init x=…`) and where it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub expr: ExprId,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Param {
        name: Lhs,
        value: Value,
    },
    Number {
        name: Lhs,
        value: Value,
    },
    Init {
        name: Lhs,
        value: Value,
    },
    Deriv {
        name: Lhs,
        expr: ExprId,
    },
    Fixed {
        name: Lhs,
        expr: ExprId,
    },
    Function {
        name: Name,
        args: Vec<Name>,
        body: ExprId,
    },
    Aux {
        name: Lhs,
        expr: ExprId,
    },
    Option {
        name: Name,
        value: String,
    },
    /// `global sign expr {name=expr; …}`: an event (docs/events.md).
    Global {
        /// 1 upward, −1 downward, 0 either way.
        direction: i8,
        condition: ExprId,
        /// `(state, value)` assignments, in the order written.
        resets: Vec<(Name, ExprId)>,
        /// The word `global`.
        pos: Pos,
    },
}

/// Statements repeated for `j = lo..hi`: one line with a range
/// (`x[1..n]' = …`) or a `%[lo..hi] … %` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    pub lo: ExprId,
    pub hi: ExprId,
    /// The `[` of the range (the `%` of a block).
    pub pos: Pos,
    /// Both bounds are literal numbers: `[10..1]` counts down, as in XPPAUT.
    pub literal: bool,
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Stmt(Stmt),
    Repeat(Repeat),
}

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub exprs: Exprs,
    pub items: Vec<Item>,
}
