//! Random garbage, deep nesting and mutated model files: loading never
//! panics or overflows the stack (test threads have 2 MiB), and every error
//! has a line and column inside the file (only "no state" is about the
//! whole file). Inputs that once failed are kept at the end as regressions.

use proptest::prelude::*;
use revode_ode::OdeModel;

/// Loads `text`; on failure, checks the error is located inside the file.
fn load_checked(text: &str) {
    let Err(e) = OdeModel::from_str(text) else {
        return;
    };
    if e.line == 0 {
        assert!(e.message.starts_with("no state"), "{e}\n{text:?}");
        return;
    }
    let line = text
        .lines()
        .nth(e.line - 1)
        .unwrap_or_else(|| panic!("{e}: line {} is not in the file\n{text:?}", e.line));
    // the column may be one past the end ("found the end of the line")
    assert!(
        e.col >= 1 && e.col <= line.chars().count() + 1,
        "{e}: column outside line {:?}\n{text:?}",
        line
    );
}

const WORDS: &[&str] = &[
    "x", "y", "a", "j", "n", "i'", "t", "pi", "par", "p", "number", "init", "i", "aux", "done",
    "if", "then", "else", "sum", "of", "shift", "exp", "ln", "min", "mod", "flr", "f", "g", "x[j]",
    "x[j-1]", "x[1..3]", "[j]", "%[1..2]", "%", "1", "0", "-1", "2.5", "1e999", ".5", "1..", "(",
    ")", "[", "]", "..", ",", "=", "'", "+", "-", "*", "/", "^", "**", "<", ">=", "==", "!=", "&",
    "|", "@", "!", "#", "dx/dt", "x(0)", "{", "}", "$", "é", "\\", "\\\n",
];

fn soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(WORDS);
    let sep = prop::sample::select(&["", " ", " ", "\n", ", "][..]);
    prop::collection::vec((token, sep), 0..60).prop_map(|v| {
        let mut s = String::from("par a=1\nnumber n=3\ninit x=0, y=1\n");
        for (t, sep) in v {
            s.push_str(t);
            s.push_str(sep);
        }
        s
    })
}

/// Deep nesting from random openers, closed correctly or not.
fn deep() -> impl Strategy<Value = String> {
    let opener = prop::sample::select(
        &[
            "(",
            "-",
            "+",
            "abs(",
            "x^",
            "exp(",
            "min(x,",
            "if(x)then(",
            "[",
            "sum(1,2)of(",
            "f(",
            "x[",
        ][..],
    );
    (
        prop::collection::vec(opener, 0..3000),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(openers, balanced, in_array)| {
            let mut body = String::new();
            let mut closers = Vec::new();
            for o in &openers {
                body.push_str(o);
                match *o {
                    "-" | "+" | "x^" => {}
                    "[" | "x[" => closers.push("]"),
                    "if(x)then(" => closers.push(")else(0)"),
                    _ => closers.push(")"),
                }
            }
            body.push_str(if in_array { "x[j]" } else { "x" });
            if balanced {
                for c in closers.iter().rev() {
                    body.push_str(c);
                }
            }
            if in_array {
                format!("f(u)=u\ninit x[1..2]=0\nx[1..2]' = {body}\n")
            } else {
                format!("f(u)=u\ninit x=0\nx' = {body}\n")
            }
        })
}

/// A shipped model with a few random edits.
fn mutated() -> impl Strategy<Value = String> {
    // the array models with fewer elements, to keep each load short
    let files = [
        include_str!("../../../models/seed_hh.ode").to_string(),
        include_str!("../../../models/hh1952.ode").to_string(),
        include_str!("../../../models/hh_cable.ode").replace("ncomp=100", "ncomp=3"),
        include_str!("../../../models/hh_network.ode").replace("N=10", "N=3"),
    ];
    let edit = (
        any::<prop::sample::Index>(),
        0u8..3,
        prop::sample::select(WORDS),
    );
    (
        prop::sample::select(files.to_vec()),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(file, edits)| {
            let mut chars: Vec<char> = file.chars().collect();
            for (at, kind, word) in edits {
                let k = at.index(chars.len().max(1));
                match kind {
                    0 if !chars.is_empty() => {
                        chars.remove(k.min(chars.len() - 1));
                    }
                    1 => {
                        let w: Vec<char> = word.chars().collect();
                        chars.splice(k..k, w);
                    }
                    _ if !chars.is_empty() => {
                        let w = word.chars().next().unwrap_or(' ');
                        let last = chars.len() - 1;
                        chars[k.min(last)] = w;
                    }
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    // Issue #18: at least 10 000 inputs for the reader; garbage fails in the
    // parser, so most of the cases go there (about a second in release).
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(text in soup()) {
        load_checked(&text);
    }
}

proptest! {
    // These mostly load (and compile) whole models: fewer, larger cases.
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn deep_nesting_never_overflows(text in deep()) {
        load_checked(&text);
    }

    #[test]
    fn mutated_models_never_panic(text in mutated()) {
        load_checked(&text);
    }
}

/// Inputs the fuzzers above once found (kept so they stay fixed).
#[test]
fn regressions() {
    for text in [
        // a range whose bounds mention j
        "init x=0\nx' = 1\n%[j..2]\n%\n",
        // ']' closing a parenthesis
        "init x=0\nx' = (x]\n",
        // a lone '%' and a '%' block never closed
        "init x=0\nx' = 1\n%\n",
        "init x=0\nx' = 1\n%[1..2]\n",
        // i' outside a sum, in a function body
        "f(u) = u*i'\ninit x=0\nx' = f(x)\n",
    ] {
        load_checked(text);
        assert!(OdeModel::from_str(text).is_err(), "{text}");
    }
}
