//! A model file's `@` options as a problem's time span and solver, so that
//! `revode solve cell.ode` runs the file as XPPAUT would, and a problem
//! file silent on `tspan` or `solver` takes them from its model file.
//!
//! Read: `t0`, `total`, `dt`, `meth`, `toler`, `atoler` (names and method
//! names case-insensitive). Other options (plot windows, `bounds`, `nout`,
//! …) do not change a solve and are ignored. Defaults are XPPAUT's:
//! `t0 = 0`, `total = 20`, `dt = 0.05`, `meth = rungekutta`,
//! `toler = atoler = 0.001`.

use crate::problem::{Atol, SolverSpec};
use crate::Error;

/// XPPAUT's default span length.
pub const DEFAULT_TOTAL: f64 = 20.0;
/// XPPAUT's default step.
pub const DEFAULT_DT: f64 = 0.05;
/// XPPAUT's default tolerances of its adaptive methods.
pub const DEFAULT_TOLER: f64 = 1e-3;

/// What a method name means to revode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Euler,
    Rk4,
    Beuler,
    Dopri5,
    Bdf,
}

/// XPPAUT method names and revode's own, with what they run.
const METHODS: &[(&str, Method)] = &[
    ("euler", Method::Euler),
    ("rungekutta", Method::Rk4),
    ("runge-kutta", Method::Rk4),
    ("rk4", Method::Rk4),
    ("backeul", Method::Beuler),
    ("beuler", Method::Beuler),
    ("5dp", Method::Dopri5),
    ("dopri5", Method::Dopri5),
    ("qualrk", Method::Dopri5),
    ("rk45", Method::Dopri5),
    ("83dp", Method::Dopri5),
    ("gear", Method::Bdf),
    ("stiff", Method::Bdf),
    ("cvode", Method::Bdf),
    ("2rb", Method::Bdf),
    ("bdf", Method::Bdf),
];

/// XPPAUT methods revode has no counterpart for.
const UNSUPPORTED: &[&str] = &["discrete", "modeuler", "adams", "volterra", "ymp"];

/// The time span and solver a model file's `@` options ask for, defaults
/// filled in. `file` names the file in errors.
pub fn tspan_and_solver(
    options: &[(String, String)],
    file: &str,
) -> Result<([f64; 2], SolverSpec), Error> {
    let invalid = |message: String| Error::Invalid {
        origin: file.to_string(),
        message,
    };
    let mut t0 = 0.0;
    let mut total = DEFAULT_TOTAL;
    let mut dt = DEFAULT_DT;
    let mut method = Method::Rk4;
    let mut toler = DEFAULT_TOLER;
    let mut atoler = DEFAULT_TOLER;
    for (name, value) in options {
        let number = || -> Result<f64, Error> {
            match value.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(invalid(format!("@ {name}={value}: not a finite number"))),
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "t0" => t0 = number()?,
            "total" => total = number()?,
            "dt" => dt = number()?,
            "toler" => toler = number()?,
            "atoler" => atoler = number()?,
            "meth" | "method" => method = parse_method(value).map_err(invalid)?,
            _ => log::debug!("{file}: @ {name} does not change a solve; ignored"),
        }
    }
    // XPPAUT integrates backwards for a negative dt or total; revode only
    // forwards.
    if total <= 0.0 {
        return Err(invalid(format!(
            "@ total={total}: the span must be positive"
        )));
    }
    if dt <= 0.0 {
        return Err(invalid(format!("@ dt={dt}: the step must be positive")));
    }
    for (name, tol) in [("toler", toler), ("atoler", atoler)] {
        if tol <= 0.0 {
            return Err(invalid(format!("@ {name}={tol}: must be positive")));
        }
    }
    let solver = match method {
        Method::Euler => SolverSpec::Euler { dt },
        Method::Rk4 => SolverSpec::Rk4 { dt },
        Method::Beuler => SolverSpec::Beuler {
            dt,
            newton_tol: None,
            linear_solver: None,
        },
        Method::Dopri5 => SolverSpec::Dopri5 {
            rtol: toler,
            atol: Atol::Scalar(atoler),
            max_steps: None,
            h0: None,
            h_min: None,
        },
        Method::Bdf => SolverSpec::Bdf {
            rtol: toler,
            atol: Atol::Scalar(atoler),
            max_steps: None,
            h0: None,
            h_min: None,
            max_order: None,
            linear_solver: None,
        },
    };
    Ok(([t0, t0 + total], solver))
}

fn parse_method(value: &str) -> Result<Method, String> {
    let name = value.trim().to_ascii_lowercase();
    if let Some((_, m)) = METHODS.iter().find(|(n, _)| *n == name) {
        return Ok(*m);
    }
    let known: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
    if UNSUPPORTED.contains(&name.as_str()) {
        return Err(format!(
            "@ meth={value}: XPPAUT's {name} has no counterpart in revode; use one of {}",
            known.join(", ")
        ));
    }
    Err(format!(
        "@ meth={value}: unknown method; use one of {}",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_xppauts() {
        let (tspan, solver) = tspan_and_solver(&[], "f.ode").unwrap();
        assert_eq!(tspan, [0.0, 20.0]);
        assert_eq!(solver, SolverSpec::Rk4 { dt: 0.05 });
    }

    #[test]
    fn options_set_span_and_method() {
        let o = opts(&[
            ("TOTAL", "600"),
            ("dt", ".01"),
            ("Meth", "Euler"),
            ("t0", "5"),
        ]);
        let (tspan, solver) = tspan_and_solver(&o, "f.ode").unwrap();
        assert_eq!(tspan, [5.0, 605.0]);
        assert_eq!(solver, SolverSpec::Euler { dt: 0.01 });
        let o = opts(&[("meth", "cvode"), ("toler", "1e-6"), ("atoler", "1e-8")]);
        match tspan_and_solver(&o, "f.ode").unwrap().1 {
            SolverSpec::Bdf { rtol, atol, .. } => {
                assert_eq!(rtol, 1e-6);
                assert_eq!(atol, Atol::Scalar(1e-8));
            }
            other => panic!("{other:?}"),
        }
        let (_, s) = tspan_and_solver(&opts(&[("meth", "backeul")]), "f").unwrap();
        assert_eq!(s.name(), "beuler");
        let (_, s) = tspan_and_solver(&opts(&[("meth", "5dp")]), "f").unwrap();
        assert_eq!(s.name(), "dopri5");
        // plot settings change nothing
        let (t, s) = tspan_and_solver(&opts(&[("xp", "V"), ("bounds", "1e5")]), "f").unwrap();
        assert_eq!((t, s), ([0.0, 20.0], SolverSpec::Rk4 { dt: 0.05 }));
    }

    #[test]
    fn bad_options_are_errors_naming_the_option() {
        for (pairs, needle) in [
            (vec![("total", "abc")], "@ total=abc: not a finite number"),
            (vec![("dt", "1e999")], "@ dt=1e999: not a finite number"),
            (vec![("dt", "-0.1")], "the step must be positive"),
            (vec![("total", "0")], "the span must be positive"),
            (vec![("toler", "0")], "@ toler=0: must be positive"),
            (vec![("meth", "adams")], "XPPAUT's adams has no counterpart"),
            (
                vec![("meth", "leapfrog")],
                "@ meth=leapfrog: unknown method",
            ),
        ] {
            let e = tspan_and_solver(&opts(&pairs), "cell.ode").unwrap_err();
            let text = e.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("cell.ode"), "{text}");
        }
    }
}
