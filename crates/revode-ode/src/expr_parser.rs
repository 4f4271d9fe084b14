//! Expressions, parsed without recursion: operator precedence with an
//! explicit operator stack (shunting-yard) and an explicit stack of open
//! groups (`( … )`, calls, `if(…)then(…)else(…)`, `sum(…)of(…)`, `[…]`).
//! Any nesting depth costs heap, never call stack.
//!
//! Precedence, lowest first: `|`, `&`, comparisons (not chained), `+ -`,
//! `* /`, unary `- +`, `^ **` (right associative; the exponent may carry a
//! sign: `2^-x`). Nodes go into [`Exprs`] in postfix order.

use crate::ast::{BinOp, ExprId, ExprKind, Exprs, Name, NameRef, Piece};
use crate::error::{fail, Located, Pos};
use crate::lexer::Tok;
use crate::parser::Cursor;

/// What an expression may refer to, decided by the statement around it.
#[derive(Debug, Clone, Copy)]
pub struct ExprContext<'a> {
    /// On an array line (`x[1..n]' = …`) or in a `%[lo..hi]` block:
    /// `j` in brackets is the index.
    pub in_array: bool,
    /// The expression is inside brackets (an index or a bound of the
    /// defined name): a bare `j` is the index.
    pub bracket: bool,
    /// Arguments of the function being defined.
    pub args: &'a [Name],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Bin(BinOp),
    Neg,
}

impl Op {
    fn precedence(self) -> u8 {
        match self {
            Op::Bin(BinOp::Or) => 1,
            Op::Bin(BinOp::And) => 2,
            Op::Bin(b) if b.is_comparison() => 3,
            Op::Bin(BinOp::Add | BinOp::Sub) => 4,
            Op::Bin(BinOp::Mul | BinOp::Div) => 5,
            Op::Neg => 6,
            Op::Bin(_) => 7, // Pow
        }
    }
}

#[derive(Debug)]
enum Group {
    Paren,
    Call {
        name: String,
        pos: Pos,
        /// Completed arguments before the current one.
        done: usize,
    },
    /// `if(…)then(…)else(…)`; stage 0, 1, 2 is the part being read.
    If {
        pos: Pos,
        stage: u8,
    },
    /// `sum(lo, hi)of(body)`; stage 0 lo, 1 hi, 2 body.
    Sum {
        pos: Pos,
        stage: u8,
    },
    /// `shift(name, offset)`; stage 0 the name, 1 the offset.
    Shift {
        pos: Pos,
        stage: u8,
    },
    /// `[…]` after a name: the name so far.
    NameIndex {
        pieces: Vec<Piece>,
        pos: Pos,
    },
    /// `[…]` on its own.
    Index {
        pos: Pos,
    },
}

impl Group {
    fn is_bracket(&self) -> bool {
        matches!(self, Group::NameIndex { .. } | Group::Index { .. })
    }

    /// The message when `found` comes where this group expects its closer.
    fn expected(&self, found: &str) -> String {
        match self {
            Group::Call { .. } => {
                format!("expected ',' or ')' in the argument list, found {found}")
            }
            Group::Sum { stage: 0, .. } | Group::Shift { stage: 0, .. } => {
                format!("expected ',', found {found}")
            }
            g if g.is_bracket() => format!("expected ']', found {found}"),
            _ => format!("expected ')', found {found}"),
        }
    }
}

#[derive(Debug)]
enum Frame {
    Op(Op, Pos),
    Group(Group),
}

struct State<'c, 'a, 'x> {
    c: &'c mut Cursor<'a>,
    exprs: &'x mut Exprs,
    ctx: ExprContext<'x>,
    frames: Vec<Frame>,
    operands: Vec<ExprId>,
}

/// Parses one expression. At the top level it ends before the first token
/// that cannot continue it (`,`, `)`, `]`, `..`, a name, the end of the line);
/// the caller decides whether that token is allowed there.
pub fn expression(c: &mut Cursor, exprs: &mut Exprs, ctx: ExprContext) -> Result<ExprId, Located> {
    let mut s = State {
        c,
        exprs,
        ctx,
        frames: Vec::new(),
        operands: Vec::new(),
    };
    s.run()
}

fn binary_op(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Plus => BinOp::Add,
        Tok::Minus => BinOp::Sub,
        Tok::Star => BinOp::Mul,
        Tok::Slash => BinOp::Div,
        Tok::Pow => BinOp::Pow,
        Tok::Lt => BinOp::Lt,
        Tok::Gt => BinOp::Gt,
        Tok::Le => BinOp::Le,
        Tok::Ge => BinOp::Ge,
        Tok::EqEq => BinOp::Eq,
        Tok::Ne => BinOp::Ne,
        Tok::And => BinOp::And,
        Tok::Or => BinOp::Or,
        _ => return None,
    })
}

impl State<'_, '_, '_> {
    fn run(&mut self) -> Result<ExprId, Located> {
        loop {
            self.operand()?;
            if self.after_operand()? {
                return self.finish();
            }
        }
    }

    fn pop_operand(&mut self) -> ExprId {
        // The state machine pushes an operand before every operator that
        // consumes one; an empty stack would be a bug, kept harmless.
        self.operands.pop().unwrap_or(0)
    }

    fn push(&mut self, kind: ExprKind, pos: Pos) {
        let id = self.exprs.push(kind, pos);
        self.operands.push(id);
    }

    fn nearest_group(&self) -> Option<&Group> {
        self.frames.iter().rev().find_map(|f| match f {
            Frame::Group(g) => Some(g),
            Frame::Op(..) => None,
        })
    }

    fn in_bracket(&self) -> bool {
        self.ctx.bracket
            || self
                .frames
                .iter()
                .any(|f| matches!(f, Frame::Group(g) if g.is_bracket()))
    }

    fn in_sum_body(&self) -> bool {
        self.frames
            .iter()
            .any(|f| matches!(f, Frame::Group(Group::Sum { stage: 2, .. })))
    }

    /// Reads prefix operators and one primary (or opens a group and reads
    /// its first operand's prefix, …) until an operand is complete.
    fn operand(&mut self) -> Result<(), Located> {
        loop {
            let pos = self.c.pos();
            let Some(tok) = self.c.peek() else {
                return fail(pos, "expected an expression, found the end of the line");
            };
            match tok {
                Tok::Minus => {
                    self.c.bump();
                    self.frames.push(Frame::Op(Op::Neg, pos));
                }
                Tok::Plus => {
                    self.c.bump();
                }
                Tok::Num(x) => {
                    let x = *x;
                    self.c.bump();
                    self.push(ExprKind::Num(x), pos);
                    return Ok(());
                }
                Tok::LParen => {
                    self.c.bump();
                    self.frames.push(Frame::Group(Group::Paren));
                }
                Tok::LBracket => {
                    self.c.bump();
                    self.frames.push(Frame::Group(Group::Index { pos }));
                }
                Tok::Ident(word) => {
                    let word = word.clone();
                    if self.identifier(word, pos)? {
                        return Ok(());
                    }
                }
                _ => {
                    return fail(
                        pos,
                        format!("expected an expression, found {}", self.c.found()),
                    )
                }
            }
        }
    }

    /// An identifier in operand position: true if it completed an operand,
    /// false if it opened a group (whose first operand comes next).
    fn identifier(&mut self, word: String, pos: Pos) -> Result<bool, Located> {
        let next = self.c.peek_at(1);
        if next == Some(&Tok::LParen) {
            let group = match word.as_str() {
                "if" => Group::If { pos, stage: 0 },
                "sum" => {
                    if self.in_sum_body() {
                        return fail(
                            pos,
                            "sum(…)of(…) inside the body of another sum is not supported \
                             (there is one summation index, i')",
                        );
                    }
                    Group::Sum { pos, stage: 0 }
                }
                "shift" => Group::Shift { pos, stage: 0 },
                _ => {
                    if self.ctx.args.iter().any(|a| a.text == word) {
                        return fail(pos, format!("'{word}' is an argument, not a function"));
                    }
                    self.c.bump();
                    self.c.bump();
                    if self.c.eat(&Tok::RParen) {
                        self.push(ExprKind::Call(word, Vec::new()), pos);
                        return Ok(true);
                    }
                    self.frames.push(Frame::Group(Group::Call {
                        name: word,
                        pos,
                        done: 0,
                    }));
                    return Ok(false);
                }
            };
            self.c.bump();
            self.c.bump();
            self.frames.push(Frame::Group(group));
            return Ok(false);
        }
        if word == "i" && next == Some(&Tok::Prime) {
            if !self.in_sum_body() {
                return fail(
                    pos,
                    "i' is the summation index: it exists only inside sum(lo, hi)of(…)",
                );
            }
            self.c.bump();
            self.c.bump();
            self.push(ExprKind::SumIndex, pos);
            return Ok(true);
        }
        self.c.bump();
        if self.c.peek() == Some(&Tok::LBracket) {
            self.c.bump();
            self.frames.push(Frame::Group(Group::NameIndex {
                pieces: vec![Piece::Text(word)],
                pos,
            }));
            return Ok(false);
        }
        if let Some(k) = self.ctx.args.iter().position(|a| a.text == word) {
            self.push(ExprKind::Arg(k), pos);
        } else if word == "j" && self.in_bracket() {
            if !self.ctx.in_array {
                return fail(
                    pos,
                    "'j' in brackets is the index of an array definition, but this line \
                     defines no array (x[1..n]…) and is not in a %[lo..hi] block",
                );
            }
            self.push(ExprKind::ArrayIndex, pos);
        } else {
            self.push(ExprKind::Name(NameRef::plain(word)), pos);
        }
        Ok(true)
    }

    /// After an operand: binary operators and closers. Returns true when
    /// the expression ends here.
    fn after_operand(&mut self) -> Result<bool, Located> {
        loop {
            let pos = self.c.pos();
            let tok = self.c.peek().cloned();
            if let Some(op) = tok.as_ref().and_then(binary_op) {
                self.c.bump();
                self.reduce_for(op, pos)?;
                self.frames.push(Frame::Op(Op::Bin(op), pos));
                return Ok(false);
            }
            let Some(group) = self.nearest_group() else {
                return Ok(true); // the expression ends before this token
            };
            let bracket = group.is_bracket();
            match tok {
                Some(Tok::RParen) if !bracket => {
                    self.c.bump();
                    if self.close_paren()? {
                        return Ok(false);
                    }
                }
                Some(Tok::Comma) if !bracket => {
                    self.reduce_group();
                    if let Some(Frame::Group(g)) = self.frames.last_mut() {
                        match g {
                            Group::Call { done, .. } => *done += 1,
                            Group::Sum { stage, .. } | Group::Shift { stage, .. }
                                if *stage == 0 =>
                            {
                                *stage = 1
                            }
                            g => return fail(pos, g.expected("','")),
                        }
                    }
                    self.c.bump();
                    return Ok(false);
                }
                Some(Tok::RBracket) if bracket => {
                    let close_end = self.c.current_end_col();
                    self.c.bump();
                    if self.close_bracket(close_end)? {
                        return Ok(false);
                    }
                }
                Some(Tok::DotDot) if bracket => {
                    return fail(
                        pos,
                        "a range '[lo..hi]' can only follow the name a statement defines \
                         (x[1..n]' = …, par g[1..n]=…)",
                    )
                }
                _ => {
                    let found = self.c.found();
                    let message = group.expected(&found);
                    return fail(pos, message);
                }
            }
        }
    }

    /// Applies the stacked operators that bind tighter than `op`.
    fn reduce_for(&mut self, op: BinOp, pos: Pos) -> Result<(), Located> {
        let p = Op::Bin(op).precedence();
        let right_assoc = op == BinOp::Pow;
        while let Some(Frame::Op(top, _)) = self.frames.last() {
            let q = top.precedence();
            if q > p || (q == p && !right_assoc) {
                if op.is_comparison() && matches!(top, Op::Bin(b) if b.is_comparison()) {
                    return fail(pos, "comparisons do not chain: write 'a < b & b < c'");
                }
                self.apply_top();
            } else {
                break;
            }
        }
        Ok(())
    }

    fn apply_top(&mut self) {
        if let Some(Frame::Op(op, pos)) = self.frames.pop() {
            match op {
                Op::Neg => {
                    let a = self.pop_operand();
                    self.push(ExprKind::Neg(a), pos);
                }
                Op::Bin(b) => {
                    let rhs = self.pop_operand();
                    let lhs = self.pop_operand();
                    // where the expression starts (errors point there)
                    let start = self.exprs.get(lhs).pos;
                    self.push(ExprKind::Binary(b, lhs, rhs), start);
                }
            }
        }
    }

    /// Applies operators down to the nearest open group.
    fn reduce_group(&mut self) {
        while let Some(Frame::Op(..)) = self.frames.last() {
            self.apply_top();
        }
    }

    /// A `)` closing the nearest group. Returns true when the next part of
    /// the group (a `then(`, `else(`, `of(`) was opened and an operand follows.
    fn close_paren(&mut self) -> Result<bool, Located> {
        self.reduce_group();
        let Some(Frame::Group(group)) = self.frames.pop() else {
            unreachable!("called with an open group")
        };
        match group {
            Group::Paren => {}
            Group::Call { name, pos, done } => {
                let n = done + 1;
                let at = self.operands.len().saturating_sub(n);
                let args = self.operands.split_off(at);
                self.push(ExprKind::Call(name, args), pos);
            }
            Group::If { pos, stage } if stage < 2 => {
                let keyword = if stage == 0 { "then" } else { "else" };
                match self.c.peek() {
                    Some(Tok::Ident(w)) if w == keyword => {
                        self.c.bump();
                    }
                    _ => {
                        return fail(
                            self.c.pos(),
                            format!(
                                "expected '{keyword}' in if(…)then(…)else(…), found {}",
                                self.c.found()
                            ),
                        )
                    }
                }
                self.c.expect(&Tok::LParen, "'('")?;
                self.frames.push(Frame::Group(Group::If {
                    pos,
                    stage: stage + 1,
                }));
                return Ok(true);
            }
            Group::If { pos, .. } => {
                let b = self.pop_operand();
                let a = self.pop_operand();
                let cond = self.pop_operand();
                self.push(ExprKind::If(cond, a, b), pos);
            }
            Group::Sum { pos, stage: 1 } => {
                match self.c.peek() {
                    Some(Tok::Ident(w)) if w == "of" => {
                        self.c.bump();
                    }
                    _ => {
                        return fail(
                            self.c.pos(),
                            format!("expected 'of' after sum(lo, hi), found {}", self.c.found()),
                        )
                    }
                }
                self.c.expect(&Tok::LParen, "'(' after sum(lo, hi)of")?;
                self.frames.push(Frame::Group(Group::Sum { pos, stage: 2 }));
                return Ok(true);
            }
            Group::Sum { pos, stage: 2 } => {
                let body = self.pop_operand();
                let hi = self.pop_operand();
                let lo = self.pop_operand();
                self.push(ExprKind::Sum(lo, hi, body), pos);
            }
            Group::Sum { pos, .. } => {
                return fail(pos, "sum needs two bounds: sum(lo, hi)of(expression)");
            }
            Group::Shift { pos, stage: 1 } => {
                let offset = self.pop_operand();
                let var = self.pop_operand();
                let ExprKind::Name(name) = &self.exprs.get(var).kind else {
                    return fail(
                        self.exprs.get(var).pos,
                        "the first argument of shift(name, offset) must be the name of a state \
                         or a parameter",
                    );
                };
                let name = name.clone();
                self.push(ExprKind::Shift(name, offset), pos);
            }
            Group::Shift { pos, .. } => {
                return fail(pos, "shift takes two arguments: shift(name, offset)");
            }
            Group::NameIndex { .. } | Group::Index { .. } => {
                unreachable!("brackets are closed by ']'")
            }
        }
        Ok(false)
    }

    /// A `]` closing the nearest bracket (`close_end`: the column after it).
    /// Returns true when another `[` of the same name was opened.
    fn close_bracket(&mut self, close_end: usize) -> Result<bool, Located> {
        self.reduce_group();
        let Some(Frame::Group(group)) = self.frames.pop() else {
            unreachable!("called with an open group")
        };
        let index = self.pop_operand();
        match group {
            Group::Index { pos } => {
                self.push(ExprKind::Index(index), pos);
                Ok(false)
            }
            Group::NameIndex { mut pieces, pos } => {
                pieces.push(Piece::Index(index));
                // `W_[i]_[k]`: text right after ']' continues the name.
                let mut end = close_end;
                if let Some(Tok::Ident(text)) = self.c.peek() {
                    if self.c.pos().col == end {
                        let text = text.clone();
                        end = self.c.current_end_col();
                        self.c.bump();
                        pieces.push(Piece::Text(text));
                    }
                }
                if self.c.peek() == Some(&Tok::LBracket) && self.c.pos().col == end {
                    self.c.bump();
                    self.frames
                        .push(Frame::Group(Group::NameIndex { pieces, pos }));
                    return Ok(true);
                }
                if self.c.peek() == Some(&Tok::LParen) {
                    return fail(
                        self.c.pos(),
                        "a function name cannot have an index (arrays of functions are not supported)",
                    );
                }
                self.push(ExprKind::Name(NameRef { pieces }), pos);
                Ok(false)
            }
            _ => unreachable!("brackets close bracket groups"),
        }
    }

    fn finish(&mut self) -> Result<ExprId, Located> {
        while let Some(frame) = self.frames.last() {
            match frame {
                Frame::Op(..) => self.apply_top(),
                Frame::Group(g) => {
                    let found = self.c.found();
                    return fail(self.c.pos(), g.expected(&found));
                }
            }
        }
        Ok(self.pop_operand())
    }
}
