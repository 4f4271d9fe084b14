//! Lines of a model file into statements.
//!
//! The grammar is line based, as in XPPAUT: one statement per line (a
//! declaration line may list several names), `#` starts a comment, `done`
//! ends the file. A line whose defined name carries a range (`x[1..n]' = …`)
//! is repeated for `j = 1..n`; so are the lines of a `%[lo..hi] … %` block.
//! Expressions are read by [`crate::expr_parser`]. See docs/model-files.md
//! for the accepted subset.

use crate::ast::{ExprKind, Exprs, Item, Lhs, Name, NameRef, Parsed, Piece, Repeat, Stmt, Value};
use crate::error::{fail, Located, Pos};
use crate::expr_parser::{expression, ExprContext};
use crate::lexer::{tokenize, Tok, Token};

/// XPPAUT statements outside the supported subset, by their leading word.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "table", "wiener", "markov", "volterra", "special", "set", "bdry", "bndry", "export", "solv",
    "only", "#include",
];

/// A range `[lo..hi]` read on a line.
struct LineRange {
    lo: u32,
    hi: u32,
    pos: Pos,
    literal: bool,
}

/// An open `%[lo..hi]` block and the statements read in it so far.
struct Block {
    repeat: Repeat,
}

/// Parses a whole file (up to `done`).
pub fn parse_file(text: &str) -> Result<Parsed, Located> {
    let mut parsed = Parsed::default();
    let mut block: Option<Block> = None;
    // Tokens of a line continued with a trailing '\' (XPPAUT's line
    // continuation); each keeps its own line and column.
    let mut pending: Vec<Token> = Vec::new();
    let mut last_end = Pos::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim_start();
        if trimmed.starts_with("#include") {
            let col = raw.len() - trimmed.len() + 1;
            return fail(
                Pos { line, col },
                "'#include' is an XPPAUT feature revode does not support",
            );
        }
        let code = match raw.find('#') {
            Some(at) => &raw[..at],
            None => raw,
        };
        let continued = code.trim_end().strip_suffix('\\');
        pending.extend(tokenize(continued.unwrap_or(code), line)?);
        last_end = Pos {
            line,
            col: code.chars().count() + 1,
        };
        if continued.is_some() {
            continue;
        }
        let tokens = std::mem::take(&mut pending);
        if logical_line(&tokens, last_end, &mut parsed, &mut block)? == Flow::Done {
            pending.clear();
            break;
        }
    }
    if !pending.is_empty() {
        logical_line(&pending, last_end, &mut parsed, &mut block)?;
    }
    if let Some(b) = block {
        return fail(
            b.repeat.pos,
            "this '%[lo..hi]' block is not closed (end it with a line '%')",
        );
    }
    Ok(parsed)
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Next,
    Done,
}

/// One line (joined with its continuations): its statements go into
/// `parsed`, or into the open block.
fn logical_line(
    tokens: &[Token],
    end: Pos,
    parsed: &mut Parsed,
    block: &mut Option<Block>,
) -> Result<Flow, Located> {
    if tokens.is_empty() {
        return Ok(Flow::Next);
    }
    if matches!(tokens, [Token { tok: Tok::Ident(w), .. }] if w == "done") {
        return Ok(Flow::Done);
    }
    if tokens[0].tok == Tok::Other('%') {
        block_line(tokens, end, parsed, block)?;
        return Ok(Flow::Next);
    }
    let in_block = block.is_some();
    let line_ctx = LineContext {
        in_block,
        in_array: in_block || tokens.iter().any(|t| t.tok == Tok::DotDot),
    };
    let mut stmts = Vec::new();
    let mut range = None;
    parse_line(
        tokens,
        end,
        &mut parsed.exprs,
        line_ctx,
        &mut stmts,
        &mut range,
    )?;
    match (range, block.as_mut()) {
        (Some(r), _) => parsed.items.push(Item::Repeat(Repeat {
            lo: r.lo,
            hi: r.hi,
            pos: r.pos,
            literal: r.literal,
            stmts,
        })),
        (None, Some(b)) => b.repeat.stmts.extend(stmts),
        (None, None) => parsed.items.extend(stmts.into_iter().map(Item::Stmt)),
    }
    Ok(Flow::Next)
}

/// `%[lo..hi]` opens a block, `%` alone closes it.
fn block_line(
    tokens: &[Token],
    end: Pos,
    parsed: &mut Parsed,
    block: &mut Option<Block>,
) -> Result<(), Located> {
    let pos = tokens[0].pos;
    if tokens.len() == 1 {
        return match block.take() {
            Some(b) => {
                parsed.items.push(Item::Repeat(b.repeat));
                Ok(())
            }
            None => fail(pos, "'%' closes no '%[lo..hi]' block"),
        };
    }
    if let Some(b) = block {
        return fail(
            pos,
            format!(
                "a '%[lo..hi]' block inside another (opened at line {}): nesting is not supported",
                b.repeat.pos.line
            ),
        );
    }
    let mut c = Cursor { tokens, at: 1, end };
    c.expect(&Tok::LBracket, "'[' after '%' (a block is '%[lo..hi]')")?;
    let (lo, hi, literal) = range_bounds(&mut c, &mut parsed.exprs)?;
    c.expect(&Tok::RBracket, "']' after the range")?;
    c.expect_end()?;
    *block = Some(Block {
        repeat: Repeat {
            lo,
            hi,
            pos,
            literal,
            stmts: Vec::new(),
        },
    });
    Ok(())
}

/// Bracket contents on a defining line (`j` is the index there).
fn in_brackets(in_array: bool) -> ExprContext<'static> {
    ExprContext {
        in_array,
        bracket: true,
        args: &[],
    }
}

/// Fails if the nodes from `start` on use `j` (a bound of its own range).
fn no_index_in_bounds(exprs: &Exprs, start: usize) -> Result<(), Located> {
    match exprs
        .since(start)
        .iter()
        .find(|n| n.kind == ExprKind::ArrayIndex)
    {
        Some(j) => fail(j.pos, "'j' cannot be used in the bounds of its own range"),
        None => Ok(()),
    }
}

/// `lo..hi` (the cursor after the '['), bounds without `j`.
fn range_bounds(c: &mut Cursor, exprs: &mut Exprs) -> Result<(u32, u32, bool), Located> {
    let start = exprs.len();
    let lo = expression(c, exprs, in_brackets(true))?;
    c.expect(&Tok::DotDot, "'..' in the range '[lo..hi]'")?;
    let hi = expression(c, exprs, in_brackets(true))?;
    no_index_in_bounds(exprs, start)?;
    let literal = [lo, hi]
        .iter()
        .all(|&e| matches!(exprs.get(e).kind, ExprKind::Num(_)));
    Ok((lo, hi, literal))
}

/// A cursor over one line's tokens.
pub(crate) struct Cursor<'a> {
    pub(crate) tokens: &'a [Token],
    pub(crate) at: usize,
    /// Position just after the last token (for "unexpected end of line").
    pub(crate) end: Pos,
}

impl<'a> Cursor<'a> {
    pub(crate) fn peek(&self) -> Option<&'a Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }
    pub(crate) fn peek_at(&self, k: usize) -> Option<&'a Tok> {
        self.tokens.get(self.at + k).map(|t| &t.tok)
    }
    pub(crate) fn pos(&self) -> Pos {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }
    /// The column after the current token.
    pub(crate) fn current_end_col(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end.col, Token::end_col)
    }
    /// The column after the previous token.
    fn previous_end_col(&self) -> usize {
        self.at
            .checked_sub(1)
            .and_then(|k| self.tokens.get(k))
            .map_or(0, Token::end_col)
    }
    pub(crate) fn bump(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }
    pub(crate) fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    pub(crate) fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "the end of the line".to_string(), Tok::describe)
    }
    pub(crate) fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), Located> {
        if self.eat(tok) {
            Ok(())
        } else {
            fail(
                self.pos(),
                format!("expected {what}, found {}", self.found()),
            )
        }
    }
    fn name(&mut self, what: &str) -> Result<Name, Located> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let pos = self.pos();
                self.at += 1;
                Ok(Name {
                    text: s.clone(),
                    pos,
                })
            }
            _ => fail(
                self.pos(),
                format!("expected {what}, found {}", self.found()),
            ),
        }
    }
    fn done(&self) -> bool {
        self.at >= self.tokens.len()
    }
    fn expect_end(&self) -> Result<(), Located> {
        if self.done() {
            Ok(())
        } else {
            fail(
                self.pos(),
                format!("unexpected {} after the end of the statement", self.found()),
            )
        }
    }
}

/// Where a line is.
#[derive(Debug, Clone, Copy)]
struct LineContext {
    /// Inside a `%[lo..hi]` block.
    in_block: bool,
    /// In a block or on a line with a range: `[j]` means the index.
    in_array: bool,
}

impl LineContext {
    fn exprs(self) -> ExprContext<'static> {
        ExprContext {
            in_array: self.in_array,
            bracket: false,
            args: &[],
        }
    }
}

/// The name a statement defines: `x`, `x[j+1]`, `W_[j]_[k]`, or with a
/// range `x[1..n]` (recorded in `range`; the name's index is then `j`).
fn defined_name(
    c: &mut Cursor,
    exprs: &mut Exprs,
    line: LineContext,
    range: &mut Option<LineRange>,
    what: &str,
) -> Result<Lhs, Located> {
    let first = c.name(what)?;
    let pos = first.pos;
    let mut pieces = vec![Piece::Text(first.text)];
    let mut adjacent_to = None;
    while c.peek() == Some(&Tok::LBracket) && adjacent_to.is_none_or(|col| c.pos().col == col) {
        let open = c.pos();
        c.bump();
        let start = exprs.len();
        let index = expression(c, exprs, in_brackets(line.in_array))?;
        if c.peek() == Some(&Tok::DotDot) {
            if line.in_block {
                return fail(
                    open,
                    "a range inside a '%[lo..hi]' block: nesting is not supported \
                     (inside a block, write x[j])",
                );
            }
            if range.is_some() {
                return fail(open, "only one range '[lo..hi]' per line");
            }
            c.bump();
            let hi = expression(c, exprs, in_brackets(true))?;
            no_index_in_bounds(exprs, start)?;
            let literal = [index, hi]
                .iter()
                .all(|&e| matches!(exprs.get(e).kind, ExprKind::Num(_)));
            *range = Some(LineRange {
                lo: index,
                hi,
                pos: open,
                literal,
            });
            c.expect(&Tok::RBracket, "']' after the range")?;
            let j = exprs.push(ExprKind::ArrayIndex, open);
            pieces.push(Piece::Index(j));
        } else {
            c.expect(&Tok::RBracket, "']'")?;
            pieces.push(Piece::Index(index));
        }
        let mut end = c.previous_end_col();
        if let Some(Tok::Ident(text)) = c.peek() {
            if c.pos().col == end {
                pieces.push(Piece::Text(text.clone()));
                end = c.current_end_col();
                c.bump();
            }
        }
        adjacent_to = Some(end);
    }
    Ok(Lhs {
        name: NameRef { pieces },
        pos,
    })
}

fn parse_line(
    tokens: &[Token],
    end: Pos,
    exprs: &mut Exprs,
    line: LineContext,
    out: &mut Vec<Stmt>,
    range: &mut Option<LineRange>,
) -> Result<(), Located> {
    let mut c = Cursor { tokens, at: 0, end };
    let first = &tokens[0];
    match &first.tok {
        Tok::At => {
            c.bump();
            return option_list(&mut c, out);
        }
        Tok::Num(_) => {
            return fail(
                first.pos,
                "algebraic equations ('0 = …') are an XPPAUT feature revode does not support",
            )
        }
        Tok::Other('!') => {
            return fail(
                first.pos,
                "derived parameters ('!name = …') are an XPPAUT feature revode does not support",
            )
        }
        Tok::Ident(_) => {}
        other => {
            return fail(
                first.pos,
                format!("a statement cannot start with {}", other.describe()),
            )
        }
    }
    let Tok::Ident(word) = &first.tok else {
        unreachable!()
    };
    if word == "global" && !matches!(c.peek_at(1), Some(Tok::Assign | Tok::Prime | Tok::LParen)) {
        if line.in_array {
            return fail(
                first.pos,
                "'global' cannot be repeated over an array range (write one line per event)",
            );
        }
        c.bump();
        return global(&mut c, exprs, line, first.pos, out);
    }
    let keyword_then_name = matches!(c.peek_at(1), Some(Tok::Ident(_)));
    if UNSUPPORTED_KEYWORDS.contains(&word.as_str()) {
        return fail(
            first.pos,
            format!("'{word}' is an XPPAUT feature revode does not support"),
        );
    }
    if keyword_then_name {
        let kind = match word.as_str() {
            "par" | "param" | "p" => Some(ListKind::Param),
            "number" | "num" => Some(ListKind::Number),
            "init" | "i" => Some(ListKind::Init),
            "aux" => Some(ListKind::Aux),
            "option" | "opt" => {
                return fail(
                    first.pos,
                    format!("'{word}' (option files) is an XPPAUT feature revode does not support"),
                )
            }
            _ => None,
        };
        if let Some(kind) = kind {
            c.bump();
            return match kind {
                ListKind::Aux => {
                    let name = defined_name(&mut c, exprs, line, range, "a name after 'aux'")?;
                    c.expect(&Tok::Assign, "'=' after the aux name")?;
                    let expr = expression(&mut c, exprs, line.exprs())?;
                    c.expect_end()?;
                    out.push(Stmt::Aux { name, expr });
                    Ok(())
                }
                kind => value_list(&mut c, exprs, line, range, kind, out),
            };
        }
        // `dv/dt` starts with an identifier followed by '/', not a name.
        return fail(
            c.tokens[1].pos,
            format!("unknown statement '{word}' (expected '=' after a name, or one of par, number, init, aux)"),
        );
    }
    let name = defined_name(&mut c, exprs, line, range, "a name")?;
    let root = name.name.root().to_string();
    match c.peek() {
        Some(Tok::Prime) => {
            c.bump();
            c.expect(&Tok::Assign, "'=' after v'")?;
            let expr = expression(&mut c, exprs, line.exprs())?;
            c.expect_end()?;
            out.push(Stmt::Deriv { name, expr });
        }
        Some(Tok::Slash) if root.len() > 1 && root.starts_with('d') => {
            c.bump();
            let dt = c.name("'dt' in 'dv/dt'")?;
            if dt.text != "dt" {
                return fail(
                    dt.pos,
                    format!("expected 'dt' in 'd{}/dt', found '{}'", &root[1..], dt.text),
                );
            }
            c.expect(&Tok::Assign, "'=' after dv/dt")?;
            let expr = expression(&mut c, exprs, line.exprs())?;
            c.expect_end()?;
            let mut state = name;
            state.name.pieces[0] = Piece::Text(root[1..].to_string());
            state.pos.col += 1;
            out.push(Stmt::Deriv { name: state, expr });
        }
        Some(Tok::Assign) => {
            c.bump();
            let expr = expression(&mut c, exprs, line.exprs())?;
            c.expect_end()?;
            out.push(Stmt::Fixed { name, expr });
        }
        Some(Tok::LParen) => {
            c.bump();
            // v(0) = value: an initial condition.
            if c.peek() == Some(&Tok::Num(0.0)) && c.peek_at(1) == Some(&Tok::RParen) {
                c.bump();
                c.bump();
                c.expect(&Tok::Assign, "'=' after v(0)")?;
                let value = value(&mut c, exprs, line)?;
                c.expect_end()?;
                out.push(Stmt::Init { name, value });
                return Ok(());
            }
            let Some(fname) = name.name.as_plain() else {
                return fail(
                    name.pos,
                    "a function name cannot have an index (arrays of functions are not supported)",
                );
            };
            let fname = Name {
                text: fname.to_string(),
                pos: name.pos,
            };
            function_definition(&mut c, exprs, line, fname, out)?;
        }
        _ => {
            return fail(
                c.pos(),
                format!(
                    "expected '=', \"'\" or '(' after '{}', found {}",
                    name.name.written(),
                    c.found()
                ),
            )
        }
    }
    Ok(())
}

/// `global sign condition {name=value; name=value}` (the cursor after
/// `global`): XPPAUT's event, fired when `condition` crosses 0.
fn global(
    c: &mut Cursor,
    exprs: &mut Exprs,
    line: LineContext,
    pos: Pos,
    out: &mut Vec<Stmt>,
) -> Result<(), Located> {
    let sign_pos = c.pos();
    let negative = c.eat(&Tok::Minus);
    let direction = match c.peek() {
        Some(Tok::Num(x)) if *x == 1.0 => {
            if negative {
                -1
            } else {
                1
            }
        }
        Some(Tok::Num(x)) if *x == 0.0 && !negative => 0,
        _ => {
            return fail(
                sign_pos,
                format!(
                    "expected the direction of 'global' (1 upward, -1 downward, 0 either way),                      found {}",
                    c.found()
                ),
            )
        }
    };
    c.bump();
    if c.peek() == Some(&Tok::Other('{')) {
        return fail(
            c.pos(),
            "expected the condition of 'global' before '{' (global 1 v-vth {v=vreset})",
        );
    }
    let condition = expression(c, exprs, line.exprs())?;
    c.expect(&Tok::Other('{'), "'{' after the condition of 'global'")?;
    let mut resets = Vec::new();
    loop {
        let name = c.name("a state name to reset inside '{…}'")?;
        c.expect(&Tok::Assign, "'=' after the reset state's name")?;
        let value = expression(c, exprs, line.exprs())?;
        resets.push((name, value));
        if c.eat(&Tok::Other(';')) {
            // XPPAUT allows a ';' before the closing brace.
            if c.eat(&Tok::Other('}')) {
                break;
            }
            continue;
        }
        c.expect(&Tok::Other('}'), "';' or '}' after a reset")?;
        break;
    }
    c.expect_end()?;
    out.push(Stmt::Global {
        direction,
        condition,
        resets,
        pos,
    });
    Ok(())
}

/// `f(x, y) = body` (the cursor after the '(').
fn function_definition(
    c: &mut Cursor,
    exprs: &mut Exprs,
    line: LineContext,
    name: Name,
    out: &mut Vec<Stmt>,
) -> Result<(), Located> {
    let mut args: Vec<Name> = Vec::new();
    if !c.eat(&Tok::RParen) {
        loop {
            match c.peek() {
                Some(Tok::Ident(_)) => {
                    let a = c.name("an argument name")?;
                    args.push(a);
                }
                _ => {
                    return fail(
                        c.pos(),
                        format!(
                            "expected an argument name in the definition of function '{}', found {} \
                             (maps 'x(t+1)=…' and delay equations are XPPAUT features revode does not support)",
                            name.text,
                            c.found()
                        ),
                    )
                }
            }
            if c.eat(&Tok::RParen) {
                break;
            }
            if !c.eat(&Tok::Comma) {
                return fail(
                    c.pos(),
                    format!(
                        "expected ',' or ')' in the argument list of function '{}', found {} \
                         (maps 'x(t+1)=…' are an XPPAUT feature revode does not support)",
                        name.text,
                        c.found()
                    ),
                );
            }
        }
    }
    for (k, a) in args.iter().enumerate() {
        if args[..k].iter().any(|o| o.text == a.text) {
            return fail(a.pos, format!("argument '{}' appears twice", a.text));
        }
        if a.text == "t" {
            return fail(a.pos, "'t' is the time and cannot be an argument name");
        }
    }
    c.expect(&Tok::Assign, "'=' after the function's argument list")?;
    let body = expression(
        c,
        exprs,
        ExprContext {
            in_array: line.in_array,
            bracket: false,
            args: &args,
        },
    )?;
    c.expect_end()?;
    out.push(Stmt::Function { name, args, body });
    Ok(())
}

#[derive(Clone, Copy)]
enum ListKind {
    Param,
    Number,
    Init,
    Aux,
}

/// A value after `=`: an expression, evaluated once at load.
fn value(c: &mut Cursor, exprs: &mut Exprs, line: LineContext) -> Result<Value, Located> {
    let pos = c.pos();
    let expr = expression(c, exprs, line.exprs())?;
    Ok(Value { expr, pos })
}

/// `name=value, name=value …` (commas optional).
fn value_list(
    c: &mut Cursor,
    exprs: &mut Exprs,
    line: LineContext,
    range: &mut Option<LineRange>,
    kind: ListKind,
    out: &mut Vec<Stmt>,
) -> Result<(), Located> {
    loop {
        let name = defined_name(c, exprs, line, range, "a name")?;
        c.expect(
            &Tok::Assign,
            &format!("'=' after '{}'", name.name.written()),
        )?;
        let value = value(c, exprs, line)?;
        out.push(match kind {
            ListKind::Param => Stmt::Param { name, value },
            ListKind::Number => Stmt::Number { name, value },
            ListKind::Init => Stmt::Init { name, value },
            ListKind::Aux => unreachable!("aux has its own syntax"),
        });
        c.eat(&Tok::Comma);
        if c.done() {
            return Ok(());
        }
    }
}

/// `@ key=value, key=value …` (values: numbers or words).
fn option_list(c: &mut Cursor, out: &mut Vec<Stmt>) -> Result<(), Located> {
    if c.done() {
        return fail(c.pos(), "expected 'name=value' after '@'");
    }
    loop {
        let name = c.name("an option name")?;
        c.expect(&Tok::Assign, &format!("'=' after '{}'", name.text))?;
        let value = match c.peek() {
            Some(Tok::Ident(s)) => {
                c.bump();
                s.clone()
            }
            _ => signed_number(c)?.to_string(),
        };
        out.push(Stmt::Option { name, value });
        c.eat(&Tok::Comma);
        if c.done() {
            return Ok(());
        }
    }
}

fn signed_number(c: &mut Cursor) -> Result<f64, Located> {
    let sign = if c.eat(&Tok::Minus) {
        -1.0
    } else {
        c.eat(&Tok::Plus);
        1.0
    };
    match c.peek() {
        Some(Tok::Num(x)) => {
            let x = *x;
            c.bump();
            Ok(sign * x)
        }
        _ => fail(c.pos(), format!("expected a number, found {}", c.found())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{BinOp, ExprId};

    fn parse(s: &str) -> Parsed {
        parse_file(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn stmts(p: &Parsed) -> Vec<&Stmt> {
        p.items
            .iter()
            .flat_map(|i| match i {
                Item::Stmt(s) => vec![s],
                Item::Repeat(r) => r.stmts.iter().collect(),
            })
            .collect()
    }

    /// A compact prefix rendering for precedence tests (small inputs only).
    fn show(p: &Parsed, e: ExprId) -> String {
        let node = p.exprs.get(e);
        match &node.kind {
            ExprKind::Num(x) => format!("{x}"),
            ExprKind::Name(n) => {
                let mut out = String::new();
                for piece in &n.pieces {
                    match piece {
                        Piece::Text(s) => out.push_str(s),
                        Piece::Index(i) => out.push_str(&format!("[{}]", show(p, *i))),
                    }
                }
                out
            }
            ExprKind::Index(i) => format!("[{}]", show(p, *i)),
            ExprKind::ArrayIndex => "j".into(),
            ExprKind::SumIndex => "i'".into(),
            ExprKind::Arg(k) => format!("arg{k}"),
            ExprKind::Call(f, a) => format!(
                "{f}({})",
                a.iter().map(|&x| show(p, x)).collect::<Vec<_>>().join(",")
            ),
            ExprKind::Neg(a) => format!("(neg {})", show(p, *a)),
            ExprKind::Binary(op, a, b) => format!("({op:?} {} {})", show(p, *a), show(p, *b)),
            ExprKind::If(c, a, b) => {
                format!("(if {} {} {})", show(p, *c), show(p, *a), show(p, *b))
            }
            ExprKind::Sum(lo, hi, body) => {
                format!("(sum {} {} {})", show(p, *lo), show(p, *hi), show(p, *body))
            }
            ExprKind::Shift(n, k) => format!("(shift {} {})", n.written(), show(p, *k)),
        }
    }

    fn expr_of(s: &str) -> String {
        let p = parse(&format!("x = {s}"));
        match stmts(&p)[..] {
            [Stmt::Fixed { expr, .. }] => show(&p, *expr),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn precedence() {
        assert_eq!(expr_of("-x^2"), "(neg (Pow x 2))");
        assert_eq!(expr_of("2^-x"), "(Pow 2 (neg x))");
        assert_eq!(expr_of("2^-x^2"), "(Pow 2 (neg (Pow x 2)))");
        assert_eq!(expr_of("a^-b*c"), "(Mul (Pow a (neg b)) c)");
        assert_eq!(expr_of("a**b**c"), "(Pow a (Pow b c))");
        assert_eq!(expr_of("-0.32*y"), "(Mul (neg 0.32) y)");
        assert_eq!(expr_of("a*-b"), "(Mul a (neg b))");
        assert_eq!(expr_of("a-b-c"), "(Sub (Sub a b) c)");
        assert_eq!(expr_of("a/b*c"), "(Mul (Div a b) c)");
        assert_eq!(expr_of("+a - +b"), "(Sub a b)");
        assert_eq!(
            expr_of("a<b & c>=d | e==f"),
            "(Or (And (Lt a b) (Ge c d)) (Eq e f))"
        );
        assert_eq!(expr_of("(a<b)<c"), "(Lt (Lt a b) c)");
        assert_eq!(
            expr_of("if(x>1)then(a+1)else(min(a,b))"),
            "(if (Gt x 1) (Add a 1) min(a,b))"
        );
        assert_eq!(expr_of("((((a))))*g()"), "(Mul a g())");
        assert_eq!(expr_of("f(a, -b, (c))"), "f(a,(neg b),c)");
    }

    #[test]
    fn arrays_sums_and_shifts() {
        let p = parse("x[1..3]' = -x[j] + x[j-1]*[2*j] + W_[j]_[j+1]");
        let [Item::Repeat(r)] = &p.items[..] else {
            panic!("{:?}", p.items)
        };
        assert!(r.literal);
        assert_eq!((show(&p, r.lo), show(&p, r.hi)), ("1".into(), "3".into()));
        let [Stmt::Deriv { name, expr }] = &r.stmts[..] else {
            panic!()
        };
        assert_eq!(name.name.written(), "x[…]");
        assert_eq!(
            show(&p, *expr),
            "(Add (Add (neg x[j]) (Mul x[(Sub j 1)] [(Mul 2 j)])) W_[j]_[(Add j 1)])"
        );
        assert_eq!(
            expr_of("sum(1, n)of(w[i']*shift(u0, i'-1))"),
            "(sum 1 n (Mul w[i'] (shift u0 (Sub i' 1))))"
        );
        // dx[1..n]/dt, init and par lists, %[..] blocks
        let p = parse(
            "number n=2\ndx[1..n]/dt = 1\npar a[1..2]=.25, b[j]=.3\n%[0..1]\ny[j]' = x[j+1]\n%\n",
        );
        assert_eq!(p.items.len(), 4);
        let Item::Repeat(r) = &p.items[1] else {
            panic!()
        };
        assert!(!r.literal);
        assert!(
            matches!(&r.stmts[0], Stmt::Deriv { name, .. } if name.name.root() == "x" && name.pos.col == 2)
        );
        let Item::Repeat(r) = &p.items[2] else {
            panic!()
        };
        assert_eq!(r.stmts.len(), 2);
        let Item::Repeat(r) = &p.items[3] else {
            panic!()
        };
        assert_eq!(r.pos, Pos { line: 4, col: 1 });
    }

    #[test]
    fn statement_forms() {
        let p = parse(
            "# comment\n\npar a=1, b=-2.5e-3 c=.5\nparam d=2\np e=3\nnumber k=20\n\
             init v=-65, m=0.05\nw(0)=1\nv' = -v # trailing\ndw/dt = a*w\n\
             f(x, y) = x+y\ng() = 1\nq = f(v, w)\naux out = q\n@ dt=.01, total=600, meth=euler\ndone\nthis is ignored",
        );
        let s = stmts(&p);
        let kinds: Vec<&str> = s
            .iter()
            .map(|s| match s {
                Stmt::Param { .. } => "par",
                Stmt::Number { .. } => "number",
                Stmt::Init { .. } => "init",
                Stmt::Deriv { .. } => "deriv",
                Stmt::Fixed { .. } => "fixed",
                Stmt::Function { .. } => "function",
                Stmt::Aux { .. } => "aux",
                Stmt::Option { .. } => "option",
                Stmt::Global { .. } => "global",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "par", "par", "par", "par", "par", "number", "init", "init", "init", "deriv",
                "deriv", "function", "function", "fixed", "aux", "option", "option", "option"
            ]
        );
        assert!(
            matches!(s[1], Stmt::Param { name, value } if name.name.as_plain() == Some("b") && show(&p, value.expr) == "(neg 0.0025)")
        );
        assert!(matches!(s[9], Stmt::Deriv { name, .. } if name.name.as_plain() == Some("v")));
        assert!(
            matches!(s[10], Stmt::Deriv { name, .. } if name.name.as_plain() == Some("w") && name.pos.col == 2)
        );
        assert!(
            matches!(s[11], Stmt::Function { body, .. } if show(&p, *body) == "(Add arg0 arg1)")
        );
        assert!(
            matches!(s[17], Stmt::Option { name, value } if name.text == "meth" && value == "euler")
        );
    }

    #[test]
    fn lines_continue_after_a_backslash() {
        let p = parse("x = a + \\\n   b*c \\ # comment\n  - d\ny = 1\n");
        let s = stmts(&p);
        assert_eq!(s.len(), 2);
        let Stmt::Fixed { expr, .. } = s[0] else {
            panic!()
        };
        assert_eq!(show(&p, *expr), "(Sub (Add a (Mul b c)) d)");
        // positions stay those of the physical lines
        let e = err("x = a + \\\n  b +\n");
        assert_eq!(e.pos, Pos { line: 2, col: 6 });
        let e = err("x = (a + \\\n  b");
        assert_eq!((e.pos.line, e.pos.col), (2, 4));
    }

    #[test]
    fn keywords_are_names_when_assigned() {
        assert!(matches!(stmts(&parse("p = 3"))[..], [Stmt::Fixed { .. }]));
        assert!(matches!(
            stmts(&parse("i(x) = x"))[..],
            [Stmt::Function { .. }]
        ));
    }

    fn err(s: &str) -> Located {
        parse_file(s).unwrap_err()
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err("x = (1 + 2");
        assert_eq!(e.pos, Pos { line: 1, col: 11 });
        assert!(e.message.contains("expected ')'"), "{}", e.message);
        let e = err("\n\nx = 1 +");
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("expected an expression"));
        assert!(err("x = 1 2").message.contains("unexpected number"));
        assert!(err("x = a < b < c").message.contains("do not chain"));
        assert!(err("x = a < b + c == d").message.contains("do not chain"));
        assert!(err("par a").message.contains("expected '='"));
        assert!(err("par a=").message.contains("expected an expression"));
        assert!(err("dv/dx = 1").message.contains("expected 'dt'"));
        assert!(err("x = if(a)(b)else(c)")
            .message
            .contains("expected 'then'"));
        assert!(err("x = f(a b)").message.contains("expected ',' or ')'"));
        assert!(err("= 3").message.contains("cannot start"));
        assert!(err("foo bar = 3").message.contains("unknown statement"));
    }

    #[test]
    fn array_syntax_errors_have_positions() {
        for (text, pos, fragment) in [
            ("x' = y[j]", (1, 8), "defines no array"),
            ("x' = y[1..2]", (1, 9), "can only follow the name"),
            ("x[1..2]' = y[j", (1, 15), "expected ']'"),
            (
                "x[1..2]' = sum(1,2)of(sum(1,2)of(i'))",
                (1, 23),
                "inside the body of another sum",
            ),
            ("x' = i'", (1, 6), "summation index"),
            ("x' = sum(1)of(1)", (1, 6), "two bounds"),
            ("x' = sum(1,2)(1)", (1, 14), "expected 'of'"),
            ("x' = shift(1+x, 1)", (1, 12), "must be the name"),
            ("%[1..2]\nx[1..2]' = 1\n%", (2, 2), "nesting"),
            ("%[1..2]\n%[1..2]\n%", (2, 1), "nesting"),
            ("%[1..2]\nx[j]' = 1", (1, 1), "not closed"),
            ("%", (1, 1), "closes no"),
            ("par a[1..2]=1, b[1..2]=2", (1, 17), "one range"),
            ("x[j..2]' = 1", (1, 3), "own range"),
            ("x[1..2*j]' = 1", (1, 8), "own range"),
            ("f[1..2](x) = x", (1, 1), "cannot have an index"),
            (
                "%[1..2]\nx[j]' = y[j](1)\n%",
                (2, 13),
                "cannot have an index",
            ),
            ("%[j..2]\n%", (1, 3), "own range"),
        ] {
            let e = err(text);
            assert!(e.message.contains(fragment), "{text}: {}", e.message);
            assert_eq!((e.pos.line, e.pos.col), pos, "{text}: {}", e.message);
        }
    }

    #[test]
    fn unsupported_features_are_named() {
        for (text, word) in [
            ("table f tab.dat", "'table'"),
            ("wiener w", "'wiener'"),
            ("markov z 2", "'markov'"),
            ("volterra k", "'volterra'"),
            ("special k=conv(…)", "'special'"),
            ("set x {a=1}", "'set'"),
            ("x(t+1) = x", "maps"),
            ("0 = x - 1", "algebraic"),
            ("!b = a*2", "derived parameters"),
            ("#include other.ode", "#include"),
        ] {
            let e = err(&format!("\n{text}"));
            assert_eq!(e.pos.line, 2, "{text}");
            assert!(e.message.contains(word), "{text}: {}", e.message);
        }
    }

    #[test]
    fn deep_nesting_parses_without_recursion() {
        let n = 100_000;
        let text = format!("x = {}a{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(expr_of_text(&text), "a");
        let text = format!("x = {}a", "-".repeat(2 * n));
        let p = parse(&text);
        assert_eq!(p.exprs.len(), 2 * n + 1);
        let _ = BinOp::Add;
    }

    fn expr_of_text(text: &str) -> String {
        let p = parse(text);
        match stmts(&p)[..] {
            [Stmt::Fixed { expr, .. }] => show(&p, *expr),
            ref other => panic!("{other:?}"),
        }
    }
}
