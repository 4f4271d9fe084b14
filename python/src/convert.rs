//! Python objects ↔ JSON values: a problem dict becomes the `serde_json::Value`
//! the problem-file parser reads, and reports go back as plain Python data.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Why a Python object is not a JSON-like problem value.
pub enum ConvertError {
    /// Bad input the user can fix; the message names the key path.
    Invalid(String),
    /// A Python exception raised while reading the object.
    Python(PyErr),
}

impl From<PyErr> for ConvertError {
    fn from(e: PyErr) -> Self {
        ConvertError::Python(e)
    }
}

/// Converts dicts, lists, tuples, numpy arrays and scalars, str, bool, None.
/// `path` names the value in messages (`params[1]`, `solver.dt`).
pub fn py_to_value(obj: &Bound<'_, PyAny>, path: &str) -> Result<Value, ConvertError> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Value::from(v));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Value::from(v));
        }
        return Err(ConvertError::Invalid(format!(
            "{path} = {i} does not fit in 64 bits"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return finite(f.value(), path);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_string()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(ConvertError::Invalid(format!(
                    "{path} has a key {} that is not a string",
                    k.repr()?
                )));
            };
            let key = key.to_str()?.to_string();
            let child = join(path, &key);
            let value = py_to_value(&v, &child)?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return sequence(l.iter(), path);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return sequence(t.iter(), path);
    }
    // numpy arrays and numpy scalars: their Python equivalents.
    if obj.hasattr("tolist")? && obj.hasattr("dtype")? {
        let plain = obj.call_method0("tolist")?;
        return py_to_value(&plain, path);
    }
    if obj.hasattr("__index__")? {
        let i = obj.call_method0("__index__")?;
        return py_to_value(&i, path);
    }
    if obj.hasattr("__float__")? {
        return finite(obj.extract::<f64>()?, path);
    }
    Err(ConvertError::Invalid(format!(
        "{path} is a {}, not a number, string, list or dict",
        obj.get_type().name()?
    )))
}

fn finite(x: f64, path: &str) -> Result<Value, ConvertError> {
    Number::from_f64(x).map(Value::Number).ok_or_else(|| {
        ConvertError::Invalid(format!(
            "{path} = {x} is not finite (a problem holds finite numbers only)"
        ))
    })
}

fn sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &str,
) -> Result<Value, ConvertError> {
    items
        .enumerate()
        .map(|(k, item)| py_to_value(&item, &format!("{path}[{k}]")))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A JSON value as plain Python data (dict, list, float, int, str, bool, None).
pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64()
                    .ok_or_else(|| PyTypeError::new_err("unrepresentable number"))?
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, value_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any serialisable report as plain Python data.
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, report: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(report)
        .map_err(|e| PyTypeError::new_err(format!("report does not serialise: {e}")))?;
    value_to_py(py, &value)
}
