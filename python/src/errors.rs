//! revode errors as Python exceptions.
//!
//! The classes live in the pure-Python module `revode._errors` (so they can
//! inherit from both `RevodeError` and `ValueError`/`RuntimeError`, and
//! pickle across Dask workers); this module instantiates them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use revode::adjoint::GradientError;
use revode::forward::ForwardError;
use revode::Error;

static PROBLEM_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SOLVE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "revode._errors", name)
}

/// Where a failed solve stopped: `(t, step)` when the error names them.
pub fn failure_point(e: &Error) -> (Option<f64>, Option<usize>) {
    match e {
        Error::Gradient(g) => match g {
            GradientError::Forward(f) => match f {
                ForwardError::NonFiniteState { t, step, .. }
                | ForwardError::NewtonFailed { t, step, .. }
                | ForwardError::SingularIterationMatrix { t, step, .. } => (Some(*t), Some(*step)),
                ForwardError::MaxStepsExceeded { t, .. }
                | ForwardError::StepSizeTooSmall { t, .. }
                | ForwardError::NewtonDiverged { t, .. }
                | ForwardError::BdfSingularMatrix { t, .. } => (Some(*t), None),
                _ => (None, None),
            },
            GradientError::NonFiniteAdjoint { t, step } => (Some(*t), Some(*step)),
            GradientError::AdjointStepTooSmall { t, .. } => (Some(*t), None),
            _ => (None, None),
        },
        _ => (None, None),
    }
}

/// `ProblemError(message)` for bad input, `SolveError(message, t, step)`
/// for a solve that failed: the exception instance (not raised).
pub fn exception<'py>(py: Python<'py>, e: &Error) -> PyResult<Bound<'py, PyAny>> {
    let message = e.to_string();
    if e.exit_code() == 2 {
        class(py, &PROBLEM_ERROR, "ProblemError")?.call1((message,))
    } else {
        let (t, step) = failure_point(e);
        class(py, &SOLVE_ERROR, "SolveError")?.call1((message, t, step))
    }
}

/// The error as a raisable `PyErr`.
pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    match exception(py, e) {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failed) => import_failed,
    }
}

/// A `ProblemError` for bad input found by the bindings themselves.
pub fn problem_error(py: Python<'_>, message: String) -> PyErr {
    match class(py, &PROBLEM_ERROR, "ProblemError").and_then(|c| c.call1((message,))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failed) => import_failed,
    }
}
