//! Every grammar form evaluates to what it says, and every error is
//! reported at its line and column.

use revode_model::Model;
use revode_ode::OdeModel;

fn model(text: &str) -> OdeModel {
    OdeModel::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `f(t, u, p)` with the file's own defaults.
fn rhs_at(m: &OdeModel, t: f64, u: &[f64]) -> Vec<f64> {
    let mut du = vec![f64::NAN; u.len()];
    let mut w = m.new_work();
    m.rhs(t, u, &m.default_params(), &mut du, &mut w);
    du
}

/// The single derivative `x' = EXPR` at x = `x`, with `par a=1.5, b=-0.25`.
fn value_of(expr: &str, x: f64, t: f64) -> f64 {
    let m = model(&format!("par a=1.5, b=-0.25\ninit x=0\nx' = {expr}\n"));
    rhs_at(&m, t, &[x])[0]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-14 * a.abs().max(b.abs()).max(1e-300) || (a.is_nan() && b.is_nan())
}

#[test]
fn operators_and_precedence() {
    let x: f64 = 0.7;
    let (a, b) = (1.5, -0.25);
    for (expr, want) in [
        ("1 + .5 - 1.5e-3", 1.0 + 0.5 - 1.5e-3),
        ("a*x/b", a * x / b),
        ("-x^2", -(x * x)),
        ("x**3", x * x * x),
        ("2^-x", 2f64.powf(-x)),
        ("a^b", a.powf(b)),
        ("x^2.5", x.powf(2.5)),
        ("2^3^2", 2f64.powf(9.0)),
        ("-(a - x)*(b + 1)", -(a - x) * (b + 1.0)),
        ("a - b - x", a - b - x),
        ("a/b/x", a / b / x),
        ("+x", x),
        ("--x", x),
        ("t*x", 2.0 * x),
    ] {
        let got = value_of(expr, x, 2.0);
        assert!(close(got, want), "{expr}: {got} vs {want}");
    }
}

#[test]
fn builtin_functions() {
    let x: f64 = 0.3;
    for (expr, want) in [
        ("exp(x)", x.exp()),
        ("ln(x)", x.ln()),
        ("log(x)", x.ln()),
        ("log10(x)", x.log10()),
        ("sqrt(x)", x.sqrt()),
        ("abs(-x)", x),
        ("sin(x)", x.sin()),
        ("cos(x)", x.cos()),
        ("tan(x)", x.tan()),
        ("tanh(x)", x.tanh()),
        ("sinh(x)", x.sinh()),
        ("cosh(x)", x.cosh()),
        ("atan(x)", x.atan()),
        ("heav(x)", 1.0),
        ("heav(-x)", 0.0),
        ("heav(0)", 1.0),
        ("sign(-x)", -1.0),
        ("sign(x - x)", 0.0),
        ("min(x, a)", x),
        ("max(x, a)", 1.5),
    ] {
        let got = value_of(expr, x, 0.0);
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1e-300),
            "{expr}: {got} vs {want}"
        );
    }
}

#[test]
fn comparisons_logic_and_if() {
    for (expr, x, want) in [
        ("if(x > 1)then(10)else(20)", 2.0, 10.0),
        ("if(x > 1)then(10)else(20)", 0.5, 20.0),
        ("if(x >= 1)then(1)else(0)", 1.0, 1.0),
        ("if(x < 1)then(1)else(0)", 1.0, 0.0),
        ("if(x <= 1)then(1)else(0)", 1.0, 1.0),
        ("if(x == 1)then(1)else(0)", 1.0, 1.0),
        ("if(x != 1)then(1)else(0)", 1.0, 0.0),
        ("if(x > 0 & x < 2)then(1)else(0)", 1.0, 1.0),
        ("if(x > 0 & x > 2)then(1)else(0)", 1.0, 0.0),
        ("if(x < 0 | x > 0.5)then(1)else(0)", 1.0, 1.0),
        ("if(x < 0 | x > 5)then(1)else(0)", 1.0, 0.0),
        ("(x > 0) + (x > 5)", 1.0, 1.0),
        // the unselected branch may be NaN
        ("if(x > 0)then(x)else(ln(-x))", 1.0, 1.0),
    ] {
        assert_eq!(value_of(expr, x, 0.0), want, "{expr} at x = {x}");
    }
}

#[test]
fn declarations_states_and_order() {
    let m = model(
        "# header\n\
         par g=2 k=3, c=-1.5e-1\n\
         p q=4\n\
         param r=.5\n\
         number N=10, M=-2\n\
         init y=2\n\
         x(0)=1\n\
         dy/dt = x - y + q*r\n\
         x' = -k*x + N + M + c + g\n\
         done\n\
         z' = 1\n",
    );
    assert_eq!(m.state_names(), ["y", "x"]);
    assert_eq!(m.param_names(), ["g", "k", "c", "q", "r"]);
    assert_eq!(m.default_params(), [2.0, 3.0, -0.15, 4.0, 0.5]);
    assert_eq!(m.default_u0(), [2.0, 1.0]);
    let du = rhs_at(&m, 0.0, &[2.0, 1.0]);
    assert_eq!(du, [1.0 - 2.0 + 2.0, -3.0 + 10.0 - 2.0 - 0.15 + 2.0]);
}

#[test]
fn fixed_quantities_in_any_order_and_functions() {
    let m = model(
        "par a=2\n\
         init v=1\n\
         v' = w + f(v, 3) + g()\n\
         w = u2 * a\n\
         u2 = v^2 + c\n\
         number c=1\n\
         f(x, y) = x*y + a + w\n\
         g() = c + 1\n\
         aux total = w + 1\n\
         @ dt=.05, total=100, meth=rk4\n",
    );
    // w = (1 + 1)·2 = 4, f = 1·3 + 2 + 4 = 9, g = 2
    assert_eq!(rhs_at(&m, 0.0, &[1.0]), [15.0]);
    assert_eq!(m.aux_names(), ["total"]);
    assert_eq!(m.aux_values(0.0, &[1.0], &[2.0]), [5.0]);
    let opts: Vec<(&str, &str)> = m
        .options()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(opts, [("dt", "0.05"), ("total", "100"), ("meth", "rk4")]);
}

#[test]
fn names_are_case_sensitive() {
    let m = model("par A=1, a=2\ninit V=0, v=0\nV' = A\nv' = a\n");
    assert_eq!(rhs_at(&m, 0.0, &[0.0, 0.0]), [1.0, 2.0]);
}

#[test]
fn time_is_t() {
    let m = model("init x=0\nx' = sin(t)\n");
    assert_eq!(rhs_at(&m, 0.5, &[0.0]), [0.5f64.sin()]);
}

/// `(line, col, fragment of the message)` of the error in `text`.
fn error_of(text: &str) -> (usize, usize, String) {
    let e = OdeModel::from_str(text).expect_err(text);
    assert_eq!(e.file, "<string>");
    let shown = e.to_string();
    if e.line > 0 {
        assert!(
            shown.starts_with(&format!("<string>:{}:{}: ", e.line, e.col)),
            "{shown}"
        );
    }
    (e.line, e.col, e.message)
}

#[test]
fn every_error_case() {
    let cases: &[(&str, usize, usize, &str)] = &[
        // syntax
        ("init x=0\nx' = (x + 1", 2, 12, "expected ')'"),
        ("init x=0\nx' = x +* 2", 2, 9, "expected an expression"),
        ("init x=0\nx' = 2x", 2, 6, "malformed number"),
        // unknown names and functions
        ("init x=0\nx' = y", 2, 6, "unknown name 'y'"),
        ("init x=0\nx' = foo(x)", 2, 6, "unknown function 'foo'"),
        ("init x=0\nx' = delay(x, 1)", 2, 6, "XPPAUT function"),
        ("init x=0\nx' = exp", 2, 6, "built-in function"),
        ("f(a)=a\ninit x=0\nx' = f", 3, 6, "is a function"),
        ("init x=0\nx' = x(1)", 2, 6, "not a function"),
        ("init x=0\naux o = x\nx' = o", 3, 6, "aux output"),
        // states and derivatives
        (
            "init x=0, y=1\nx' = 1",
            1,
            11,
            "'y', which has no derivative",
        ),
        ("par k=1\ninit k=0\nx(0)=1\nx' = 1", 2, 6, "not a state"),
        ("x' = 1", 1, 1, "no initial value"),
        ("y = 1", 0, 0, "no state"),
        (
            "init x=0\nx' = 1\ndx/dt = 2",
            3,
            2,
            "second derivative equation",
        ),
        ("init x=0\nx(0)=1\nx' = 1", 2, 1, "given twice"),
        // duplicates and reserved names
        (
            "par a=1\npar a=2\ninit x=0\nx' = a",
            2,
            5,
            "already defined (as a parameter at line 1)",
        ),
        (
            "number a=1\ninit x=0\nx' = a\na = 3",
            4,
            1,
            "already defined",
        ),
        (
            "init x=0\nx' = 1\nf(x)=x\nf(y)=y",
            4,
            1,
            "already defined (as a function",
        ),
        ("par exp=1\ninit x=0\nx' = 1", 1, 5, "built-in function"),
        ("par t=1\ninit x=0\nx' = 1", 1, 5, "reserved"),
        ("f(a, a) = a\ninit x=0\nx' = 1", 1, 6, "appears twice"),
        // cycles
        (
            "init x=0\nx' = a\na = b + 1\nb = c\nc = a*2",
            3,
            1,
            "cycle among fixed quantities: a -> b -> c -> a",
        ),
        (
            "init x=0\nx' = a\na = a + 1",
            3,
            1,
            "cycle among fixed quantities: a -> a",
        ),
        (
            "f(x) = g(x)\ng(x) = f(x)\ninit y=0\ny' = f(y)",
            2,
            8,
            "calls itself",
        ),
        // arity
        ("init x=0\nx' = exp(x, 1)", 2, 6, "takes 1 argument, got 2"),
        ("init x=0\nx' = min(x)", 2, 6, "takes 2 arguments, got 1"),
        (
            "f(a, b) = a*b\ninit x=0\nx' = f(x)",
            3,
            6,
            "function 'f' takes 2 arguments, got 1",
        ),
        // unsupported XPPAUT features
        (
            "init x=0\nx' = 1\ntable f tab.dat",
            3,
            1,
            "'table' is an XPPAUT feature",
        ),
        ("init x=0\nx' = 1\nwiener w", 3, 1, "'wiener'"),
        ("init x=0\nx' = 1\nmarkov z 2", 3, 1, "'markov'"),
        (
            "init x=0\nx' = 1\nglobal 1 x-1 {q=0}",
            3,
            15,
            "'global' resets 'q', which is not defined",
        ),
        ("init x=0\nx' = 1\nvolterra k", 3, 1, "'volterra'"),
        ("init x=0\nx' = 1\nspecial k=conv(x)", 3, 1, "'special'"),
        ("init x=0\nx' = 1\nset a {x=1}", 3, 1, "'set'"),
        ("x[1..3]' = 1", 1, 1, "state 'x1' has no initial value"),
        ("init x=0\nx(t+1) = x", 2, 4, "maps"),
        ("0 = x", 1, 1, "algebraic"),
    ];
    for &(text, line, col, fragment) in cases {
        let (l, c, message) = error_of(text);
        assert!(message.contains(fragment), "{text:?}: {message}");
        assert_eq!((l, c), (line, col), "{text:?}: {message}");
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("revode-ode-grammar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.ode");
    std::fs::write(&path, "par a=1\ninit x=0\nx' = a*y\n").unwrap();
    let e = OdeModel::from_file(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3:8: unknown name 'y'", path.display())
    );
    let missing = dir.join("missing.ode");
    let e = OdeModel::from_file(&missing).unwrap_err();
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read", missing.display())));
    std::fs::remove_dir_all(&dir).ok();
}
