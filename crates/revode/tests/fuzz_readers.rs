//! Every reader under a property harness: problem files, batch files, fit
//! files, CSV traces and stimulus protocols, each fed ≥ 10 000 inputs made by
//! mutating the shipped fixtures (byte flips, truncations, splices, hostile
//! numbers and tokens) and by plain garbage. The properties: no panic (a
//! panic fails the case), no hang (every reader runs in time linear in its
//! input; nothing is solved here except tiny problems), and an error that
//! says where, wherever the reader knows it: JSON errors carry a line and
//! column, CSV errors the line, stimulus errors the parameter's name.
//!
//! Inputs proptest finds are kept in `fuzz_readers.proptest-regressions`
//! and replayed first on every run.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use revode::fit::{parse_fit_file, parse_trace_csv};
use revode::problem::Problem;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Cases per reader (the issue asks for at least 10 000).
const CASES: u32 = 10_000;

/// Tokens a hostile or careless file may hold.
const TOKENS: &[&str] = &[
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-0",
    "0",
    "1e-320",
    "18446744073709551616",
    "-1",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"x\"",
    ",",
    ":",
    "[",
    "]",
    "{",
    "}",
    "\"dt\"",
    "\"method\"",
    "\"rk4\"",
    "\"beuler\"",
    "\"dopri5\"",
    "\"budget_bytes\"",
    "\"every\"",
    "\"weights\"",
    "\"stimulus\"",
    "\"I_inj\"",
    "\"g_leak\"",
    "\"file\"",
    "\"../nope.ode\"",
    "\u{0}",
    "\u{feff}",
    "é",
    "\n",
    "#",
    "t,E",
    "1e308",
];

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the byte at a position (by fraction of the length) with another.
    Flip(f64, u8),
    /// Cut the text at a fraction of its length.
    Truncate(f64),
    /// Insert a token at a fraction.
    Insert(f64, usize),
    /// Replace a span starting at a fraction, of a few bytes, with a token.
    Replace(f64, usize, usize),
    /// Repeat a span (duplicate keys, long lists).
    Duplicate(f64, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, any::<u8>()).prop_map(|(f, b)| Edit::Flip(f, b)),
        (0.0..1.0f64).prop_map(Edit::Truncate),
        (0.0..1.0f64, 0..TOKENS.len()).prop_map(|(f, t)| Edit::Insert(f, t)),
        (0.0..1.0f64, 1..12usize, 0..TOKENS.len()).prop_map(|(f, l, t)| Edit::Replace(f, l, t)),
        (0.0..1.0f64, 1..40usize).prop_map(|(f, l)| Edit::Duplicate(f, l)),
    ]
}

/// The nearest char boundary at or below `i`.
fn boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    for e in edits {
        let at = |f: f64, s: &str| boundary(s, (f * s.len() as f64) as usize);
        match *e {
            Edit::Flip(f, b) => {
                let i = at(f, &s);
                let end = boundary(&s, i + 1).max(i);
                let end = if end == i && i < s.len() {
                    i + s[i..].chars().next().map_or(0, char::len_utf8)
                } else {
                    end
                };
                // Keep the text valid UTF-8: readers take &str.
                let c = char::from(b);
                s.replace_range(i..end, &c.to_string());
            }
            Edit::Truncate(f) => {
                let i = at(f, &s);
                s.truncate(i);
            }
            Edit::Insert(f, t) => {
                let i = at(f, &s);
                s.insert_str(i, TOKENS[t]);
            }
            Edit::Replace(f, len, t) => {
                let i = at(f, &s);
                let end = boundary(&s, i + len);
                s.replace_range(i..end, TOKENS[t]);
            }
            Edit::Duplicate(f, len) => {
                let i = at(f, &s);
                let end = boundary(&s, i + len);
                let span = s[i..end].to_string();
                s.insert_str(end, &span);
            }
        }
    }
    s
}

/// Mutated copies of `texts`, or garbage built from the tokens.
fn mutated(texts: Vec<String>) -> impl Strategy<Value = String> {
    let n = texts.len();
    prop_oneof![
        9 => (0..n, prop::collection::vec(edit(), 1..6))
            .prop_map(move |(k, edits)| apply(&texts[k], &edits)),
        1 => prop::collection::vec(0..TOKENS.len(), 0..40)
            .prop_map(|ts| ts.into_iter().map(|t| TOKENS[t]).collect::<String>()),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        max_shrink_iters: 2_000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// A JSON syntax error says where: serde_json's `at line L column C`.
fn assert_json_error_has_position(message: &str) {
    if message.contains("invalid JSON") {
        assert!(
            message.contains(" line ") && message.contains(" column "),
            "a JSON error without a position: {message}"
        );
    }
}

/// Problem fixtures that read without other files (model files are read
/// relative to fixtures/).
fn problem_fixtures() -> Vec<String> {
    [
        "fixtures/hh_seed.json",
        "fixtures/hh_seed_budget.json",
        "fixtures/hh_dopri5_trace.json",
        "fixtures/hh_network_10.json",
        "fixtures/hh_stimulus.json",
        "fixtures/hh1952_stimulus.json",
    ]
    .iter()
    .map(|f| read(f))
    .collect()
}

/// A problem is small enough to solve inside the harness.
fn tiny(problem: &Problem) -> bool {
    use revode::problem::SolverSpec;
    let span = problem.tspan[1] - problem.tspan[0];
    match &problem.solver {
        SolverSpec::Euler { dt } | SolverSpec::Rk4 { dt } => {
            span.is_finite() && *dt > 0.0 && span / dt <= 2_000.0
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn problem_files_never_panic(text in mutated(problem_fixtures())) {
        let base = repo().join("fixtures");
        match Problem::from_json_in(&text, "fuzz.json", Some(&base)) {
            Err(e) => assert_json_error_has_position(&e.to_string()),
            Ok(problem) => {
                // A problem that reads is checked (and, if tiny, solved):
                // the checks must fail cleanly too.
                if tiny(&problem) {
                    let _ = revode::loss(&problem);
                }
            }
        }
    }

    #[test]
    fn batch_files_never_panic(text in mutated(vec![
        format!("[{}, {}]", read("fixtures/hh_seed.json"), read("fixtures/hh_rk4_short.json")),
        format!(r#"{{"base": {}, "members": [{{"params": [70, 10, 0.06]}}, {{"u0": [-60, 0.2, 0.9, 0.1]}}]}}"#,
            read("fixtures/hh_rk4_short.json")),
    ])) {
        if let Err(e) = revode::batch::parse_batch_in(&text, "fuzz.json", Some(&repo().join("fixtures"))) {
            assert_json_error_has_position(&e.to_string());
        }
    }

    #[test]
    fn fit_files_never_panic(text in mutated(vec![read("examples/fit_hh/fit.json")])) {
        let base = repo().join("examples/fit_hh");
        if let Err(e) = parse_fit_file(&text, &base, "fuzz.json") {
            assert_json_error_has_position(&e.to_string());
        }
    }

    #[test]
    fn csv_traces_never_panic(text in mutated(vec![
        read("examples/fit_hh/trace.csv").lines().take(40).collect::<Vec<_>>().join("\n"),
        "t,E,m\n0,-59,0.1\n1,-58,0.2\n2,-57,0.3\n".to_string(),
    ])) {
        if let Err(e) = parse_trace_csv(&text, "E", "fuzz.csv") {
            let message = e.to_string();
            // Row errors name the line; header and whole-file errors need not.
            let about_a_row = ["appears twice", "not a number", "non-finite", "increasing"]
                .iter()
                .any(|k| message.contains(k));
            prop_assert!(!about_a_row || message.contains("line"), "{message}");
        }
    }

    #[test]
    fn stimulus_protocols_never_panic(
        names in prop::collection::vec(prop::sample::select(vec!["g_Na", "g_Kd", "g_leak", "nope", ""]), 1..4),
        switches in prop::collection::vec(
            prop::collection::vec(
                (prop::sample::select(vec![-1.0, 0.0, 0.5, 1.0, 5.0, 5.0, 600.0, 601.0, f64::NAN, f64::INFINITY, 1e-300]),
                 prop::sample::select(vec![0.0, 0.05, -1.0, 1e308, f64::NAN, f64::NEG_INFINITY])),
                0..5),
            1..4),
    ) {
        let spec = names.iter().zip(&switches).fold(
            revode::problem::StimulusSpec::new(),
            |spec, (name, sw)| {
                let pairs: Vec<[f64; 2]> = sw.iter().map(|&(t, v)| [t, v]).collect();
                spec.with(name, &pairs)
            },
        );
        let params = ["g_Na", "g_Kd", "g_leak"].map(String::from);
        match spec.resolve(&params, [0.0, 600.0]) {
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.starts_with("stimulus: "), "{message}");
                // The message names a parameter of the spec.
                prop_assert!(names.iter().any(|n| message.contains(*n)), "{message}");
            }
            Ok(stimulus) => {
                // What resolves is valid for the forward solver too.
                prop_assert!(revode_forward_ok(&stimulus));
            }
        }
    }
}

fn revode_forward_ok(stimulus: &revode::forward::Stimulus) -> bool {
    revode::forward::ParamSegments::new(&[70.0, 10.0, 0.05], stimulus, 0.0, 600.0).is_ok()
}
