//! Engine reports as Python dicts with float64 numpy arrays.

use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use revode::{GradientReport, SolveReport};

use crate::convert::to_py;

/// The keys of `revode grad --json`, vectors as numpy arrays.
pub fn gradient_dict<'py>(py: Python<'py>, r: &GradientReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("loss", r.loss)?;
    d.set_item("gradient", PyArray1::from_slice(py, &r.gradient))?;
    d.set_item("gradient_u0", PyArray1::from_slice(py, &r.gradient_u0))?;
    d.set_item("param_names", &r.param_names)?;
    d.set_item("state_names", &r.state_names)?;
    d.set_item("stats", to_py(py, &r.stats)?)?;
    d.set_item("model", &r.model)?;
    d.set_item("solver", &r.solver)?;
    d.set_item("loss_kind", &r.loss_kind)?;
    d.set_item("checkpoints", to_py(py, &r.checkpoints)?)?;
    d.set_item("stimulated", &r.stimulated)?;
    Ok(d)
}

/// The keys of `revode solve --json`; `samples` as a `(k, 1 + n_states)`
/// array of `[t, u…]` rows (zero rows when no sampling was asked for).
pub fn solve_dict<'py>(py: Python<'py>, r: &SolveReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let width = 1 + r.final_state.len();
    let flat: Vec<f64> = r.samples.iter().flatten().copied().collect();
    let samples = PyArray1::from_vec(py, flat).reshape([r.samples.len(), width])?;
    d.set_item("final_state", PyArray1::from_slice(py, &r.final_state))?;
    d.set_item("t_final", r.t_final)?;
    d.set_item("samples", samples)?;
    d.set_item("steps", r.steps)?;
    d.set_item("rejected_steps", r.rejected_steps)?;
    d.set_item("state_names", &r.state_names)?;
    d.set_item("model", &r.model)?;
    d.set_item("solver", &r.solver)?;
    d.set_item("seconds", r.seconds)?;
    if let Some(newton) = &r.newton {
        d.set_item("newton", to_py(py, newton)?)?;
    }
    Ok(d)
}
