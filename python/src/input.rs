//! Problems handed in from Python: a dict in the problem-file schema, or a
//! path to a problem file.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use revode::problem::model_or_file;
use revode::{Error, ModelSpec, Problem};
use serde_json::Value;

use crate::convert::{py_to_value, ConvertError};
use crate::errors::to_pyerr;

/// A path if `obj` is a `str` or an `os.PathLike`.
pub fn as_path(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        let os = obj.py().import("os")?;
        return Ok(Some(os.call_method1("fspath", (obj,))?.extract()?));
    }
    Ok(None)
}

/// A Python object as a JSON value; bad input becomes a revode error named
/// by `origin`.
pub fn json_value(obj: &Bound<'_, PyAny>, origin: &str) -> PyResult<Result<Value, Error>> {
    match py_to_value(obj, "") {
        Ok(v) => Ok(Ok(v)),
        Err(ConvertError::Invalid(message)) => Ok(Err(Error::Invalid {
            origin: origin.to_string(),
            message,
        })),
        Err(ConvertError::Python(e)) => Err(e),
    }
}

/// Parses one problem. The outer error is a Python failure; the inner one
/// is bad input, kept as a revode error (for per-member batch reporting).
pub fn parse_problem(obj: &Bound<'_, PyAny>, origin: &str) -> PyResult<Result<Problem, Error>> {
    if let Some(path) = as_path(obj)? {
        return Ok(Problem::from_path(path.as_ref()));
    }
    if !obj.is_instance_of::<PyDict>() {
        return Ok(Err(Error::Invalid {
            origin: origin.to_string(),
            message: format!(
                "a problem is a dict in the problem-file schema or a path, not a {}",
                obj.get_type().name()?
            ),
        }));
    }
    Ok(json_value(obj, origin)?.and_then(|value| problem_from_value(value, origin)))
}

/// A problem from a JSON value; a model file's relative path is taken from
/// the working directory (and the file is read and compiled now).
pub fn problem_from_value(value: Value, origin: &str) -> Result<Problem, Error> {
    let input: revode::problem::ProblemInput =
        serde_json::from_value(value).map_err(|source| Error::Json {
            origin: origin.to_string(),
            source,
        })?;
    input.complete(origin, None)
}

/// [`parse_problem`], raising `ProblemError` on bad input.
pub fn read_problem(obj: &Bound<'_, PyAny>) -> PyResult<Problem> {
    parse_problem(obj, "problem")?.map_err(|e| to_pyerr(obj.py(), &e))
}

/// A model spec: `{"name": "hh_network", "n": 10}` or `{"file": "cell.ode"}`
/// (read and compiled now; a relative path from the working directory).
pub fn read_model_spec(obj: &Bound<'_, PyAny>) -> PyResult<ModelSpec> {
    let py = obj.py();
    json_value(obj, "model")?
        .and_then(|value| {
            let mut spec =
                model_or_file(value).map_err(|source: serde_json::Error| Error::Json {
                    origin: "model".to_string(),
                    source,
                })?;
            spec.load_file(None)?;
            Ok(spec)
        })
        .map_err(|e| to_pyerr(py, &e))
}
