//! Lines of a model file into statements; expressions into trees.
//!
//! The grammar is line based, as in XPPAUT: one statement per line (a
//! declaration line may list several names), `#` starts a comment, `done`
//! ends the file. See docs/model-files.md for the accepted subset.

use crate::error::{fail, Located, Pos};
use crate::lexer::{tokenize, Tok, Token};

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

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Name(String),
    Call(String, Vec<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// An expression and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

/// A name with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Param {
        name: Name,
        value: f64,
    },
    Number {
        name: Name,
        value: f64,
    },
    Init {
        name: Name,
        value: f64,
    },
    Deriv {
        name: Name,
        expr: Expr,
    },
    Fixed {
        name: Name,
        expr: Expr,
    },
    Function {
        name: Name,
        args: Vec<Name>,
        body: Expr,
    },
    Aux {
        name: Name,
        expr: Expr,
    },
    Option {
        name: Name,
        value: String,
    },
}

/// XPPAUT statements outside the supported subset, by their leading word.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "table", "wiener", "markov", "global", "volterra", "special", "set", "bdry", "bndry", "export",
    "solv", "only", "#include",
];

/// Parses a whole file into statements (up to `done`).
pub fn parse_file(text: &str) -> Result<Vec<Stmt>, Located> {
    let mut out = Vec::new();
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
        let tokens = tokenize(code, line)?;
        if tokens.is_empty() {
            continue;
        }
        if matches!(&tokens[..], [Token { tok: Tok::Ident(w), .. }] if w == "done") {
            break;
        }
        parse_line(&tokens, line, code.chars().count() + 1, &mut out)?;
    }
    Ok(out)
}

/// A cursor over one line's tokens.
struct Cursor<'a> {
    tokens: &'a [Token],
    at: usize,
    /// Position just after the last token (for "unexpected end of line").
    end: Pos,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }
    fn peek_at(&self, k: usize) -> Option<&'a Tok> {
        self.tokens.get(self.at + k).map(|t| &t.tok)
    }
    fn pos(&self) -> Pos {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }
    fn bump(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }
    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "the end of the line".to_string(), Tok::describe)
    }
    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), Located> {
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

fn parse_line(
    tokens: &[Token],
    line: usize,
    end_col: usize,
    out: &mut Vec<Stmt>,
) -> Result<(), Located> {
    let mut c = Cursor {
        tokens,
        at: 0,
        end: Pos { line, col: end_col },
    };
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
        Tok::Other('%') => {
            return fail(
                first.pos,
                "'%[…]' loops are an XPPAUT feature revode does not support",
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
                    let name = c.name("a name after 'aux'")?;
                    c.expect(&Tok::Assign, "'=' after the aux name")?;
                    let expr = expression(&mut c)?;
                    c.expect_end()?;
                    out.push(Stmt::Aux { name, expr });
                    Ok(())
                }
                kind => value_list(&mut c, kind, out),
            };
        }
        // `dv/dt` starts with an identifier followed by '/', not a name.
        return fail(
            c.tokens[1].pos,
            format!("unknown statement '{word}' (expected '=' after a name, or one of par, number, init, aux)"),
        );
    }
    let name = c.name("a name")?;
    match c.peek() {
        Some(Tok::Prime) => {
            c.bump();
            c.expect(&Tok::Assign, "'=' after v'")?;
            let expr = expression(&mut c)?;
            c.expect_end()?;
            out.push(Stmt::Deriv { name, expr });
        }
        Some(Tok::Slash) if name.text.len() > 1 && name.text.starts_with('d') => {
            c.bump();
            let dt = c.name("'dt' in 'dv/dt'")?;
            if dt.text != "dt" {
                return fail(
                    dt.pos,
                    format!(
                        "expected 'dt' in 'd{}/dt', found '{}'",
                        &name.text[1..],
                        dt.text
                    ),
                );
            }
            c.expect(&Tok::Assign, "'=' after dv/dt")?;
            let expr = expression(&mut c)?;
            c.expect_end()?;
            let state = Name {
                text: name.text[1..].to_string(),
                pos: Pos {
                    line: name.pos.line,
                    col: name.pos.col + 1,
                },
            };
            out.push(Stmt::Deriv { name: state, expr });
        }
        Some(Tok::Assign) => {
            c.bump();
            let expr = expression(&mut c)?;
            c.expect_end()?;
            out.push(Stmt::Fixed { name, expr });
        }
        Some(Tok::LBracket) => {
            return fail(
                c.pos(),
                "arrays ('x[1..n]') are an XPPAUT feature revode does not support",
            )
        }
        Some(Tok::LParen) => {
            c.bump();
            // v(0) = value: an initial condition.
            if c.peek() == Some(&Tok::Num(0.0)) && c.peek_at(1) == Some(&Tok::RParen) {
                c.bump();
                c.bump();
                c.expect(&Tok::Assign, "'=' after v(0)")?;
                let value = signed_number(&mut c)?;
                c.expect_end()?;
                out.push(Stmt::Init { name, value });
                return Ok(());
            }
            let mut args = Vec::new();
            if !c.eat(&Tok::RParen) {
                loop {
                    match c.peek() {
                        Some(Tok::Ident(_)) => args.push(c.name("an argument name")?),
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
            c.expect(&Tok::Assign, "'=' after the function's argument list")?;
            let body = expression(&mut c)?;
            c.expect_end()?;
            out.push(Stmt::Function { name, args, body });
        }
        _ => {
            return fail(
                c.pos(),
                format!(
                    "expected '=', \"'\" or '(' after '{}', found {}",
                    name.text,
                    c.found()
                ),
            )
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum ListKind {
    Param,
    Number,
    Init,
    Aux,
}

/// `name=value, name=value …` (commas optional).
fn value_list(c: &mut Cursor, kind: ListKind, out: &mut Vec<Stmt>) -> Result<(), Located> {
    loop {
        let name = c.name("a name")?;
        if c.peek() == Some(&Tok::LBracket) {
            return fail(
                c.pos(),
                "arrays ('x[1..n]') are an XPPAUT feature revode does not support",
            );
        }
        c.expect(&Tok::Assign, &format!("'=' after '{}'", name.text))?;
        let value = signed_number(c)?;
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

/// The whole expression grammar, lowest precedence first:
/// `|`, `&`, comparisons, `+ -`, `* /`, unary `- +`, `^ **` (right
/// associative; its exponent may carry a sign), primaries.
fn expression(c: &mut Cursor) -> Result<Expr, Located> {
    if c.done() {
        return fail(c.pos(), "expected an expression, found the end of the line");
    }
    or_expr(c)
}

fn binary(op: BinOp, pos: Pos, a: Expr, b: Expr) -> Expr {
    Expr {
        kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
        pos,
    }
}

fn or_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let mut a = and_expr(c)?;
    while c.peek() == Some(&Tok::Or) {
        let pos = c.pos();
        c.bump();
        let b = and_expr(c)?;
        a = binary(BinOp::Or, pos, a, b);
    }
    Ok(a)
}

fn and_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let mut a = cmp_expr(c)?;
    while c.peek() == Some(&Tok::And) {
        let pos = c.pos();
        c.bump();
        let b = cmp_expr(c)?;
        a = binary(BinOp::And, pos, a, b);
    }
    Ok(a)
}

fn cmp_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let a = add_expr(c)?;
    let op = match c.peek() {
        Some(Tok::Lt) => BinOp::Lt,
        Some(Tok::Gt) => BinOp::Gt,
        Some(Tok::Le) => BinOp::Le,
        Some(Tok::Ge) => BinOp::Ge,
        Some(Tok::EqEq) => BinOp::Eq,
        Some(Tok::Ne) => BinOp::Ne,
        _ => return Ok(a),
    };
    let pos = c.pos();
    c.bump();
    let b = add_expr(c)?;
    if matches!(
        c.peek(),
        Some(Tok::Lt | Tok::Gt | Tok::Le | Tok::Ge | Tok::EqEq | Tok::Ne)
    ) {
        return fail(c.pos(), "comparisons do not chain: write 'a < b & b < c'");
    }
    Ok(binary(op, pos, a, b))
}

fn add_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let mut a = mul_expr(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Plus) => BinOp::Add,
            Some(Tok::Minus) => BinOp::Sub,
            _ => return Ok(a),
        };
        let pos = c.pos();
        c.bump();
        let b = mul_expr(c)?;
        a = binary(op, pos, a, b);
    }
}

fn mul_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let mut a = unary_expr(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Star) => BinOp::Mul,
            Some(Tok::Slash) => BinOp::Div,
            _ => return Ok(a),
        };
        let pos = c.pos();
        c.bump();
        let b = unary_expr(c)?;
        a = binary(op, pos, a, b);
    }
}

fn unary_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let pos = c.pos();
    if c.eat(&Tok::Minus) {
        let a = unary_expr(c)?;
        return Ok(Expr {
            kind: ExprKind::Neg(Box::new(a)),
            pos,
        });
    }
    if c.eat(&Tok::Plus) {
        return unary_expr(c);
    }
    pow_expr(c)
}

fn pow_expr(c: &mut Cursor) -> Result<Expr, Located> {
    let base = primary(c)?;
    if c.peek() == Some(&Tok::Pow) {
        let pos = c.pos();
        c.bump();
        let exponent = unary_expr(c)?;
        return Ok(binary(BinOp::Pow, pos, base, exponent));
    }
    Ok(base)
}

fn primary(c: &mut Cursor) -> Result<Expr, Located> {
    let pos = c.pos();
    match c.peek() {
        Some(Tok::Num(x)) => {
            let x = *x;
            c.bump();
            Ok(Expr {
                kind: ExprKind::Num(x),
                pos,
            })
        }
        Some(Tok::LParen) => {
            c.bump();
            let e = expression(c)?;
            c.expect(&Tok::RParen, "')'")?;
            Ok(e)
        }
        Some(Tok::Ident(word)) if word == "if" && c.peek_at(1) == Some(&Tok::LParen) => {
            c.bump();
            let part = |c: &mut Cursor, keyword: Option<&str>| -> Result<Expr, Located> {
                if let Some(k) = keyword {
                    match c.peek() {
                        Some(Tok::Ident(w)) if w == k => {
                            c.bump();
                        }
                        _ => {
                            return fail(
                                c.pos(),
                                format!(
                                    "expected '{k}' in if(…)then(…)else(…), found {}",
                                    c.found()
                                ),
                            )
                        }
                    }
                }
                c.expect(&Tok::LParen, "'('")?;
                let e = expression(c)?;
                c.expect(&Tok::RParen, "')'")?;
                Ok(e)
            };
            let cond = part(c, None)?;
            let then = part(c, Some("then"))?;
            let other = part(c, Some("else"))?;
            Ok(Expr {
                kind: ExprKind::If(Box::new(cond), Box::new(then), Box::new(other)),
                pos,
            })
        }
        Some(Tok::Ident(word)) => {
            let word = word.clone();
            c.bump();
            if c.peek() == Some(&Tok::LBracket) {
                return fail(
                    c.pos(),
                    "arrays ('x[1..n]') are an XPPAUT feature revode does not support",
                );
            }
            if !c.eat(&Tok::LParen) {
                return Ok(Expr {
                    kind: ExprKind::Name(word),
                    pos,
                });
            }
            let mut args = Vec::new();
            if !c.eat(&Tok::RParen) {
                loop {
                    args.push(expression(c)?);
                    if c.eat(&Tok::RParen) {
                        break;
                    }
                    c.expect(&Tok::Comma, "',' or ')' in the argument list")?;
                }
            }
            Ok(Expr {
                kind: ExprKind::Call(word, args),
                pos,
            })
        }
        _ => fail(pos, format!("expected an expression, found {}", c.found())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Stmt {
        let mut v = parse_file(s).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn expr_of(s: &str) -> Expr {
        match one(&format!("x = {s}")) {
            Stmt::Fixed { expr, .. } => expr,
            other => panic!("{other:?}"),
        }
    }

    /// A compact prefix rendering for precedence tests.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(x) => format!("{x}"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Call(f, a) => {
                format!("{f}({})", a.iter().map(show).collect::<Vec<_>>().join(","))
            }
            ExprKind::Neg(a) => format!("(neg {})", show(a)),
            ExprKind::Binary(op, a, b) => format!("({op:?} {} {})", show(a), show(b)),
            ExprKind::If(c, a, b) => format!("(if {} {} {})", show(c), show(a), show(b)),
        }
    }

    #[test]
    fn precedence() {
        assert_eq!(show(&expr_of("-x^2")), "(neg (Pow x 2))");
        assert_eq!(show(&expr_of("2^-x")), "(Pow 2 (neg x))");
        assert_eq!(show(&expr_of("a**b**c")), "(Pow a (Pow b c))");
        assert_eq!(show(&expr_of("-0.32*y")), "(Mul (neg 0.32) y)");
        assert_eq!(show(&expr_of("a-b-c")), "(Sub (Sub a b) c)");
        assert_eq!(show(&expr_of("a/b*c")), "(Mul (Div a b) c)");
        assert_eq!(
            show(&expr_of("a<b & c>=d | e==f")),
            "(Or (And (Lt a b) (Ge c d)) (Eq e f))"
        );
        assert_eq!(
            show(&expr_of("if(x>1)then(a+1)else(min(a,b))")),
            "(if (Gt x 1) (Add a 1) min(a,b))"
        );
    }

    #[test]
    fn statement_forms() {
        let s = parse_file(
            "# comment\n\npar a=1, b=-2.5e-3 c=.5\nparam d=2\np e=3\nnumber k=20\n\
             init v=-65, m=0.05\nw(0)=1\nv' = -v # trailing\ndw/dt = a*w\n\
             f(x, y) = x+y\ng() = 1\nq = f(v, w)\naux out = q\n@ dt=.01, total=600, meth=euler\ndone\nthis is ignored",
        )
        .unwrap();
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
            matches!(&s[1], Stmt::Param { name, value } if name.text == "b" && *value == -2.5e-3)
        );
        assert!(matches!(&s[9], Stmt::Deriv { name, .. } if name.text == "v"));
        assert!(
            matches!(&s[10], Stmt::Deriv { name, .. } if name.text == "w" && name.pos.col == 2)
        );
        assert!(
            matches!(&s[17], Stmt::Option { name, value } if name.text == "meth" && value == "euler")
        );
    }

    #[test]
    fn keywords_are_names_when_assigned() {
        assert!(matches!(one("p = 3"), Stmt::Fixed { .. }));
        assert!(matches!(one("i(x) = x"), Stmt::Function { .. }));
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
        assert!(err("par a").message.contains("expected '='"));
        assert!(err("par a=b").message.contains("expected a number"));
        assert!(err("dv/dx = 1").message.contains("expected 'dt'"));
        assert!(err("x = if(a)(b)else(c)")
            .message
            .contains("expected 'then'"));
        assert!(err("= 3").message.contains("cannot start"));
        assert!(err("foo bar = 3").message.contains("unknown statement"));
    }

    #[test]
    fn unsupported_features_are_named() {
        for (text, word) in [
            ("table f tab.dat", "'table'"),
            ("wiener w", "'wiener'"),
            ("markov z 2", "'markov'"),
            ("global 1 v-1 {v=0}", "'global'"),
            ("volterra k", "'volterra'"),
            ("special k=conv(…)", "'special'"),
            ("set x {a=1}", "'set'"),
            ("x[1..10]' = -x[j]", "arrays"),
            ("par a[1..3]=1", "arrays"),
            ("y = x[1]", "arrays"),
            ("x(t+1) = x", "maps"),
            ("0 = x - 1", "algebraic"),
            ("!b = a*2", "derived parameters"),
            ("%[1..3]", "loops"),
            ("#include other.ode", "#include"),
        ] {
            let e = err(&format!("\n{text}"));
            assert_eq!(e.pos.line, 2, "{text}");
            assert!(e.message.contains(word), "{text}: {}", e.message);
        }
    }
}
