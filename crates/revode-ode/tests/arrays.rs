//! Arrays, `%[…]` blocks, `sum(…)of(…)` and `shift`: each array file gives
//! the same model as its flat equivalent (names, defaults, and bitwise the
//! same rhs and VJP values), where the flat text comes from an independent
//! expansion written here the way XPPAUT does it (textual substitution of
//! `[j…]` line by line); and every error is reported at its line and column.

mod common;

use common::assert_same_model;
use proptest::prelude::*;
use revode_model::Model;
use revode_ode::OdeModel;

fn model(text: &str) -> OdeModel {
    OdeModel::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// XPPAUT's expansion of `[j]`, `[j+k]`, `[j-k]`, `[j*k]` and `[k]` for one
/// value of `j` (form_ode.c's `subsk`, re-done from its documentation).
fn substitute(line: &str, j: i64) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find(']').expect("closed bracket") + open;
        let inside = rest[open + 1..close].replace(' ', "");
        let value = if let Some(k) = inside.strip_prefix("j+") {
            j + k.parse::<i64>().unwrap()
        } else if let Some(k) = inside.strip_prefix("j-") {
            j - k.parse::<i64>().unwrap()
        } else if let Some(k) = inside.strip_prefix("j*") {
            j * k.parse::<i64>().unwrap()
        } else if inside == "j" {
            j
        } else {
            inside.parse().expect("an integer")
        };
        out.push_str(&value.to_string());
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The flat text of an array file with literal ranges (XPPAUT's way).
fn xpp_expand(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let range = |s: &str| -> Option<(i64, i64, String)> {
            let dots = s.find("..")?;
            let open = s[..dots].rfind('[')?;
            let close = s[dots..].find(']')? + dots;
            let lo = s[open + 1..dots].trim().parse().ok()?;
            let hi = s[dots + 2..close].trim().parse().ok()?;
            Some((lo, hi, format!("{}[j]{}", &s[..open], &s[close + 1..])))
        };
        let steps = |lo: i64, hi: i64| -> Vec<i64> {
            if lo <= hi {
                (lo..=hi).collect()
            } else {
                (hi..=lo).rev().collect()
            }
        };
        if line.starts_with('%') {
            let (lo, hi, _) = range(line).expect("a block range");
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with('%')).collect();
            for j in steps(lo, hi) {
                for l in &body {
                    out.push_str(&substitute(l, j));
                    out.push('\n');
                }
            }
        } else if let Some((lo, hi, template)) = range(line) {
            for j in steps(lo, hi) {
                out.push_str(&substitute(&template, j));
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The array file and XPPAUT's textual expansion of it are the same model.
fn check_against_expansion(text: &str) -> OdeModel {
    let flat = xpp_expand(text);
    let a = model(text);
    let b = model(&flat);
    assert_same_model(&a, &b, &format!("{text}\n--- flat:\n{flat}"));
    a
}

#[test]
fn the_documented_forms_expand_as_in_xppaut() {
    // XPPAUT's manual: x[1..10]'=-x[j] is dX1/dt=-X1 … dX10/dt=-X10
    let m = check_against_expansion("init x[1..10]=1\nx[1..10]' = -x[j]\n");
    let names: Vec<String> = (1..=10).map(|k| format!("x{k}")).collect();
    assert_eq!(m.state_names(), names);
    // every statement form, with [j±k], [j*k], [k] and a literal [j]
    check_against_expansion(
        "par g[1..4]=0.5\n\
         par c=2\n\
         par w[0..9]=0.25\n\
         number k[1..4]=3\n\
         init v[1..4]=-65\n\
         dv[1..4]/dt = -g[j]*(v[j] - k[j]) + w[j*2] + w[j+5] - 0.1*[j]*v[1]\n\
         I[1..4] = c*sin(v[j])\n\
         aux out[1..4] = I[j] + w[j-1]\n\
         y[1..3](0)=0.5\n\
         y[1..3]' = -y[j] + I[j+1]\n",
    );
}

#[test]
fn blocks_interleave_along_the_index() {
    let text = "init x[1..3]=1, y[j]=0\n\
                %[1..3]\n\
                x[j]' = -y[j]\n\
                y[j]' = x[j]\n\
                %\n";
    let m = check_against_expansion(text);
    assert_eq!(m.state_names(), ["x1", "y1", "x2", "y2", "x3", "y3"]);
    // descending literal ranges count down, as in XPPAUT
    let m = check_against_expansion("init x[3..1]=1\nx[3..1]' = -[j]*x[j]\n");
    assert_eq!(m.state_names(), ["x3", "x2", "x1"]);
    // a line with several names repeats as a whole: a1 b1 a2 b2
    let m = check_against_expansion("par a[1..2]=.25, b[j]=.3\ninit x=0\nx' = a1*b2\n");
    assert_eq!(m.param_names(), ["a1", "b1", "a2", "b2"]);
}

#[test]
fn named_bounds_j_as_a_number_and_constant_branches() {
    // a chain with sealed ends: x[j-1] at j = 1 is in the branch a constant
    // condition drops, so it is never looked up
    let arrays = "number n=5\n\
                  par D=0.7\n\
                  init u[1..n]=0\n\
                  u[1..n]' = D*(if(j==1)then(u[j])else(u[j-1]) - 2*u[j] + \
                  if(j==n)then(u[j])else(u[j+1])) + 0.01*j\n";
    let mut flat = String::from("par D=0.7\n");
    for j in 1..=5 {
        flat.push_str(&format!("init u{j}=0\n"));
    }
    for j in 1..=5 {
        let left = if j == 1 { j } else { j - 1 };
        let right = if j == 5 { j } else { j + 1 };
        flat.push_str(&format!(
            "u{j}' = D*(u{left} - 2*u{j} + u{right}) + 0.01*{j}\n"
        ));
    }
    assert_same_model(&model(arrays), &model(&flat), arrays);
}

#[test]
fn sums_over_i_prime() {
    // all-to-all coupling with a weight array, an empty sum, j in the bounds
    let arrays = "number n=4\n\
                  par w[1..n]=0.5\n\
                  init x[1..n]=1\n\
                  x[1..n]' = -x[j] + sum(1, n)of(w[i']*x[i']) + sum(1, j-1)of(i'*x[i'])\n";
    let mut flat = String::new();
    for j in 1..=4 {
        flat.push_str(&format!("par w{j}=0.5\n"));
    }
    for j in 1..=4 {
        flat.push_str(&format!("init x{j}=1\n"));
    }
    for j in 1..=4 {
        let all = (1..=4)
            .map(|i| format!("w{i}*x{i}"))
            .collect::<Vec<_>>()
            .join(" + ");
        let lower = if j == 1 {
            "0".to_string()
        } else {
            format!(
                "({})",
                (1..j)
                    .map(|i| format!("{i}*x{i}"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            )
        };
        flat.push_str(&format!("x{j}' = -x{j} + ({all}) + {lower}\n"));
    }
    assert_same_model(&model(arrays), &model(&flat), arrays);
    // sum(1,10)of(i') is 55 (XPPAUT's manual); bounds are truncated
    let m = model("init x=0\nx' = sum(1,10)of(i') + sum(0, 2.7)of(1) + sum(3, 1)of(x)\n");
    let mut du = [0.0];
    m.rhs(0.0, &[0.0], &[], &mut du, &mut m.new_work());
    assert_eq!(du, [55.0 + 3.0]);
}

#[test]
fn xppaut_manual_convolution_example_loads_unchanged() {
    // "chain of 20 neurons" from the XPPAUT manual (sum, shift, [j], i')
    let text = "# chain of 20 neurons\n\
                param a=.25,beta=.31415926\n\
                u[0..19]'=-u[j]+f(a*sum(0,19)of(cos(beta*([j]-i'))*shift(u0,i')))\n\
                f(x)=tanh(x)\n\
                init u[0..19]=0.1\n\
                done\n";
    let m = model(text);
    assert_eq!(m.dims().n_states, 20);
    let u: Vec<f64> = (0..20).map(|k| 0.05 * k as f64).collect();
    let mut du = vec![0.0; 20];
    m.rhs(0.0, &u, &m.default_params(), &mut du, &mut m.new_work());
    for j in 0..20 {
        let mut s = 0.0;
        for i in 0..20 {
            s += (0.31415926 * (j as f64 - i as f64)).cos() * u[i];
        }
        let want = -u[j] + (0.25 * s).tanh();
        assert!((du[j] - want).abs() <= 1e-15, "{j}: {} vs {want}", du[j]);
    }
}

#[test]
fn two_dimensional_names_mod_flr_and_value_expressions() {
    // W_i_k as XPPAUT would write a flattened matrix with a block
    let arrays = "number n=3\n\
                  %[0..n*n-1]\n\
                  par W_[flr(j/n)]_[mod(j,n)] = 0.001*mod(flr(j/n) + 2*mod(j,n), 7)\n\
                  %\n\
                  init e[0..n-1]=-60 + j\n\
                  e[0..n-1]' = sum(0, n-1)of(W_[j]_[i']*(e[i'] - e[j]))\n";
    let mut flat = String::new();
    for i in 0..3 {
        for k in 0..3 {
            flat.push_str(&format!(
                "par W_{i}_{k}={}\n",
                0.001 * ((i + 2 * k) % 7) as f64
            ));
        }
    }
    for i in 0..3 {
        flat.push_str(&format!("init e{i}={}\n", -60 + i));
    }
    for i in 0..3 {
        let terms: Vec<String> = (0..3).map(|k| format!("W_{i}_{k}*(e{k} - e{i})")).collect();
        flat.push_str(&format!("e{i}' = {}\n", terms.join(" + ")));
    }
    assert_same_model(&model(arrays), &model(&flat), arrays);
    assert_eq!(
        model(arrays).param_names()[..4],
        ["W_0_0", "W_0_1", "W_0_2", "W_1_0"]
    );
}

#[test]
fn pi_shift_of_parameters_and_functions_in_arrays() {
    let m = model(
        "par g[1..3]=1\n\
         par h=2\n\
         init x[1..3]=0\n\
         f(a, b) = a*b + pi\n\
         x[1..3]' = f(shift(g1, j-1), x[j]) + shift(h, 0)\n",
    );
    let mut du = [0.0; 3];
    m.rhs(
        0.0,
        &[1.0, 2.0, 3.0],
        &[1.0, 10.0, 100.0, 2.0],
        &mut du,
        &mut m.new_work(),
    );
    let pi = std::f64::consts::PI;
    assert_eq!(du, [1.0 + pi + 2.0, 20.0 + pi + 2.0, 300.0 + pi + 2.0]);
}

/// `(line, col, message)` of the error in `text`.
fn error_of(text: &str) -> (usize, usize, String) {
    let e = OdeModel::from_str(text).expect_err(text);
    (e.line, e.col, e.message)
}

#[test]
fn array_errors_have_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        // out of range, with the array's range and j
        (
            "number n=3\ninit x[1..n]=0\nx[1..n]' = x[j-1]",
            3,
            12,
            "'x[0]' is out of range: x is defined for x[1..3] (at j = 1)",
        ),
        (
            "init x[1..3]=0\nx[1..3]' = x[j] + y[j]",
            2,
            19,
            "unknown name 'y1' (written 'y[…]' at j = 1)",
        ),
        ("init x=0\nx' = x[-1+0]", 2, 6, "negative"),
        // empty and negative ranges
        (
            "number n=0\ninit x=0\nx' = 1\npar g[1..n]=1",
            4,
            6,
            "empty range: its bounds are [1..0]",
        ),
        ("init x=0\nx' = 1\npar g[-1..2]=1", 3, 6, "negative index"),
        // nesting
        (
            "%[1..2]\npar g[1..2]=1\n%",
            2,
            6,
            "nesting is not supported",
        ),
        (
            "init x=0\nx' = sum(1,2)of(sum(1,2)of(1))",
            2,
            17,
            "inside the body of another sum",
        ),
        // non-integer and non-constant indices and bounds
        (
            "init x[1..2]=0\nx[1..2]' = x[j/2]",
            2,
            14,
            "is 0.5, not an integer",
        ),
        (
            "init x=0\nx' = 1\npar g[1..2.5]=1",
            3,
            10,
            "is 2.5, not an integer",
        ),
        ("par a=1\ninit x=0\nx' = x[a]", 3, 8, "'a' is a parameter"),
        ("init x=0\nx' = sum(1, x)of(1)", 2, 13, "'x' is a state"),
        (
            "par a=1\ninit x=0\nx' = mod(a, 2)",
            3,
            6,
            "evaluated only at load",
        ),
        ("init x=0\nx' = [t]", 2, 7, "'t' changes during the solve"),
        // the indices themselves
        ("init x=0\nx' = i'", 2, 6, "summation index"),
        ("init x=0\nx' = x[j]", 2, 8, "defines no array"),
        ("init x=0\nx' = j", 2, 6, "unknown name 'j'"),
        (
            "init x[1..2]=0\nx[1..2]' = shift(x1, j)",
            2,
            12,
            "shift(x1, 2) is out of range",
        ),
        // values: constants only, finite
        ("par a=1e999\ninit x=0\nx' = a", 1, 7, "too large"),
        ("init x=1e400\nx' = x", 1, 8, "too large"),
        ("init x=0\nx' = x*1e309", 2, 8, "too large"),
        (
            "par a=1, b=2*a\ninit x=0\nx' = a",
            1,
            12,
            "must be a constant",
        ),
        ("init x=0, y=x\nx' = 1\ny' = 1", 1, 13, "must be a constant"),
        ("par a=1/0\ninit x=0\nx' = a", 1, 7, "not finite"),
        ("number n=2^2000\ninit x=0\nx' = n", 1, 10, "not finite"),
        // duplicates through arrays
        (
            "par x1=1\ninit x[1..2]=0\nx[1..2]' = 1",
            3,
            1,
            "'x1' is already defined (as a parameter at line 1)",
        ),
        (
            "par a[1..2]=1, c=2\ninit x=0\nx' = 1",
            1,
            16,
            "'c' is already defined",
        ),
        ("par sum=1\ninit x=0\nx' = 1", 1, 5, "reserved"),
        ("par mod=1\ninit x=0\nx' = 1", 1, 5, "built-in function"),
    ];
    for &(text, line, col, fragment) in cases {
        let (l, c, message) = error_of(text);
        assert!(message.contains(fragment), "{text:?}: {message}");
        assert_eq!((l, c), (line, col), "{text:?}: {message}");
    }
}

/// A random array file built from a few templates, with literal ranges.
fn random_array_file() -> impl Strategy<Value = String> {
    let term = prop_oneof![
        Just("x[j]".to_string()),
        Just("p[j]*x[j]".to_string()),
        Just("sin(x[j])".to_string()),
        Just("[j]*y[j]".to_string()),
        Just("if([j]==2)then(y[j])else(x[j])".to_string()),
        Just("y[j]^2".to_string()),
        Just("exp(-x[j]/10)".to_string()),
        Just("q".to_string()),
    ];
    (
        1i64..6,
        prop::collection::vec(term.clone(), 1..4),
        prop::collection::vec(term, 1..4),
        any::<bool>(),
    )
        .prop_map(|(n, fx, fy, block)| {
            let (x, y) = (fx.join(" - "), fy.join(" + "));
            let mut s = format!("par q=0.5\npar p[1..{n}]=1.5\ninit x[1..{n}]=0.1\n");
            s.push_str(&format!("init y[1..{n}]=-0.2\n"));
            if block {
                s.push_str(&format!("%[1..{n}]\nx[j]' = {x}\ny[j]' = {y}\n%\n"));
            } else {
                s.push_str(&format!("x[1..{n}]' = {x}\ny[1..{n}]' = {y}\n"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_array_files_equal_their_expansion(text in random_array_file()) {
        check_against_expansion(&text);
    }
}
