//! `revode fit` from Python: a fit file (dict or path) in, the `FitReport`
//! out as a dict with float64 numpy arrays.

use std::path::Path;

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use revode::fit::{fit_observed, parse_fit_file, read_fit_file, FitOptions, FitProblem};
use revode::fit::{FitProgress, FitReport, StartReport};
use revode::Error;

use crate::convert::to_py;
use crate::errors::to_pyerr;
use crate::input::{as_path, json_value};

/// Reads a fit file: a path (data and model files relative to its folder)
/// or a dict (relative to the working directory, as for problem dicts).
fn read_fit(obj: &Bound<'_, PyAny>) -> PyResult<Result<(FitProblem, FitOptions), Error>> {
    if let Some(path) = as_path(obj)? {
        return Ok(read_fit_file(path.as_ref()));
    }
    if !obj.is_instance_of::<PyDict>() {
        return Ok(Err(Error::Invalid {
            origin: "fit".into(),
            message: format!(
                "a fit spec is a dict in the fit-file schema or a path, not a {}",
                obj.get_type().name()?
            ),
        }));
    }
    Ok(json_value(obj, "fit")?
        .and_then(|value| parse_fit_file(&value.to_string(), Path::new(""), "fit")))
}

/// The progress line of `revode fit` (without `--quiet`).
fn progress_line(p: &FitProgress, several: bool) -> String {
    let start = if several {
        format!("start {:>2}  ", p.start)
    } else {
        String::new()
    };
    format!(
        "{start}iter {:>4}  loss {:.6e}  |grad| {:.3e}  {:.2} s",
        p.iteration, p.loss, p.gradient_norm, p.seconds
    )
}

/// Replaces the vectors of a report dict by float64 arrays.
fn set_arrays(d: &Bound<'_, PyDict>, items: &[(&str, &[f64])]) -> PyResult<()> {
    for (key, values) in items {
        d.set_item(*key, PyArray1::from_slice(d.py(), values))?;
    }
    Ok(())
}

fn start_dict<'py>(py: Python<'py>, s: &StartReport) -> PyResult<Bound<'py, PyDict>> {
    let d = to_py(py, s)?.cast_into::<PyDict>()?;
    set_arrays(
        &d,
        &[
            ("start", &s.start),
            ("params", &s.params),
            ("history", &s.history),
        ],
    )?;
    Ok(d)
}

/// The keys of `revode fit --json`, vectors of numbers as numpy arrays.
fn report_dict<'py>(py: Python<'py>, r: &FitReport) -> PyResult<Bound<'py, PyDict>> {
    let d = to_py(py, r)?.cast_into::<PyDict>()?;
    set_arrays(
        &d,
        &[
            ("params", &r.params),
            ("start", &r.start),
            ("all_params", &r.all_params),
            ("history", &r.history),
        ],
    )?;
    let starts = PyList::empty(py);
    for s in &r.starts {
        starts.append(start_dict(py, s)?)?;
    }
    d.set_item("starts", starts)?;
    Ok(d)
}

/// Fits a fit file's free parameters (`revode fit`); progress lines go to
/// the process's stderr unless `quiet`.
#[pyfunction]
#[pyo3(signature = (fit_spec, quiet=true))]
pub fn fit<'py>(
    py: Python<'py>,
    fit_spec: &Bound<'py, PyAny>,
    quiet: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (problem, options) = read_fit(fit_spec)?.map_err(|e| to_pyerr(py, &e))?;
    let several = options.starts > 1;
    let observer = |p: &FitProgress| {
        if !quiet {
            eprintln!("{}", progress_line(p, several));
        }
    };
    let report = py
        .detach(|| fit_observed(&problem, &options, &observer))
        .map_err(|e| to_pyerr(py, &e))?;
    report_dict(py, &report)
}
