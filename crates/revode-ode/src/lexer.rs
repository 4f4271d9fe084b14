//! Splits one line of a model file into tokens with their columns.

use crate::error::{fail, Located, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    /// `^` or `**`
    Pow,
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `..` (array ranges `x[1..n]`)
    DotDot,
    Comma,
    Assign,
    /// `'` (as in `v' = …`)
    Prime,
    Lt,
    Gt,
    Le,
    Ge,
    EqEq,
    Ne,
    And,
    Or,
    At,
    /// Anything else XPPAUT may use (`{`, `!`, `%`, `$`, …): kept for error messages.
    Other(char),
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Num(x) => format!("number {x}"),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Pow => "'^'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::DotDot => "'..'".into(),
            Tok::Comma => "','".into(),
            Tok::Assign => "'='".into(),
            Tok::Prime => "\"'\"".into(),
            Tok::Lt => "'<'".into(),
            Tok::Gt => "'>'".into(),
            Tok::Le => "'<='".into(),
            Tok::Ge => "'>='".into(),
            Tok::EqEq => "'=='".into(),
            Tok::Ne => "'!='".into(),
            Tok::And => "'&'".into(),
            Tok::Or => "'|'".into(),
            Tok::At => "'@'".into(),
            Tok::Other(c) => format!("'{c}'"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Its length in characters (so `W_[i]_[k]` can tell adjacent pieces).
    pub len: usize,
}

impl Token {
    /// The column just after this token.
    pub fn end_col(&self) -> usize {
        self.pos.col + self.len
    }
}

/// Tokens of `text` (one line, comment already removed); `line` is 1-based.
pub fn tokenize(text: &str, line: usize) -> Result<Vec<Token>, Located> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col: i + 1 };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) =
            if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
                let (x, len) = number(&chars[i..], pos)?;
                (Tok::Num(x), len)
            } else if c.is_alphabetic() || c == '_' {
                // XPPAUT allows dots inside names, but not a trailing one,
                // and `..` (a range, `x[n..m]`) ends a name.
                let mut len = 1;
                while let Some(&d) = chars.get(i + len) {
                    let dot_inside = d == '.'
                        && chars
                            .get(i + len + 1)
                            .is_some_and(|e| e.is_alphanumeric() || *e == '_');
                    if d.is_alphanumeric() || d == '_' || dot_inside {
                        len += 1;
                    } else {
                        break;
                    }
                }
                (Tok::Ident(chars[i..i + len].iter().collect()), len)
            } else {
                match (c, next) {
                    ('.', Some('.')) => (Tok::DotDot, 2),
                    ('*', Some('*')) => (Tok::Pow, 2),
                    ('<', Some('=')) => (Tok::Le, 2),
                    ('>', Some('=')) => (Tok::Ge, 2),
                    ('=', Some('=')) => (Tok::EqEq, 2),
                    ('!', Some('=')) => (Tok::Ne, 2),
                    ('+', _) => (Tok::Plus, 1),
                    ('-', _) => (Tok::Minus, 1),
                    ('*', _) => (Tok::Star, 1),
                    ('/', _) => (Tok::Slash, 1),
                    ('^', _) => (Tok::Pow, 1),
                    ('(', _) => (Tok::LParen, 1),
                    (')', _) => (Tok::RParen, 1),
                    ('[', _) => (Tok::LBracket, 1),
                    (']', _) => (Tok::RBracket, 1),
                    (',', _) => (Tok::Comma, 1),
                    ('=', _) => (Tok::Assign, 1),
                    ('\'', _) => (Tok::Prime, 1),
                    ('<', _) => (Tok::Lt, 1),
                    ('>', _) => (Tok::Gt, 1),
                    ('&', _) => (Tok::And, 1),
                    ('|', _) => (Tok::Or, 1),
                    ('@', _) => (Tok::At, 1),
                    (c, _) => (Tok::Other(c), 1),
                }
            };
        out.push(Token { tok, pos, len });
        i += len;
    }
    Ok(out)
}

/// A decimal number `1`, `.5`, `1.5e-3`, `2E+4`: value and length.
fn number(chars: &[char], pos: Pos) -> Result<(f64, usize), Located> {
    let mut n = 0;
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    n += digits(n);
    // `1..n` is a range: its dot is not a decimal point.
    if chars.get(n) == Some(&'.') && chars.get(n + 1) != Some(&'.') {
        n += 1;
        n += digits(n);
    }
    if matches!(chars.get(n), Some('e' | 'E')) {
        let mut m = n + 1;
        if matches!(chars.get(m), Some('+' | '-')) {
            m += 1;
        }
        let d = digits(m);
        if d == 0 {
            return fail(pos, "malformed number: exponent without digits");
        }
        n = m + d;
    }
    if chars.get(n).is_some_and(|c| c.is_alphabetic() || *c == '_') {
        let text: String = chars[..=n].iter().collect();
        return fail(pos, format!("malformed number '{text}'"));
    }
    let text: String = chars[..n].iter().collect();
    let x: f64 = text
        .parse()
        .map_err(|_| Located::new(pos, format!("malformed number '{text}'")))?;
    if !x.is_finite() {
        return fail(
            pos,
            format!("number '{text}' is too large (not finite as a 64-bit float)"),
        );
    }
    Ok((x, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s, 1).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            toks("1 .5 1.5e-3 2E+4 x**2^3"),
            vec![
                Tok::Num(1.0),
                Tok::Num(0.5),
                Tok::Num(1.5e-3),
                Tok::Num(2e4),
                Tok::Ident("x".into()),
                Tok::Pow,
                Tok::Num(2.0),
                Tok::Pow,
                Tok::Num(3.0)
            ]
        );
        assert_eq!(
            toks("a<=b>=c==d!=e<f>g&h|i"),
            vec![
                Tok::Ident("a".into()),
                Tok::Le,
                Tok::Ident("b".into()),
                Tok::Ge,
                Tok::Ident("c".into()),
                Tok::EqEq,
                Tok::Ident("d".into()),
                Tok::Ne,
                Tok::Ident("e".into()),
                Tok::Lt,
                Tok::Ident("f".into()),
                Tok::Gt,
                Tok::Ident("g".into()),
                Tok::And,
                Tok::Ident("h".into()),
                Tok::Or,
                Tok::Ident("i".into()),
            ]
        );
    }

    #[test]
    fn columns_are_one_based() {
        let t = tokenize("  v' = 1", 7).unwrap();
        assert_eq!(t[0].pos, Pos { line: 7, col: 3 });
        assert_eq!(t[1].tok, Tok::Prime);
        assert_eq!(t[3].pos.col, 8);
    }

    #[test]
    fn malformed_numbers() {
        assert!(tokenize("1e", 1).is_err());
        assert!(tokenize("2x", 1).is_err());
        assert!(tokenize("1.5e+", 1).is_err());
    }
}
