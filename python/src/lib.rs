//! `revode._revode`: the compiled half of the `revode` Python package.
//!
//! Each function takes a problem (dict or path), releases the GIL for the
//! solve, and returns plain Python data with float64 numpy arrays; the
//! Python half (`revode/__init__.py`) wraps these in classes with
//! docstrings. Errors are `revode.ProblemError` / `revode.SolveError`.

mod convert;
mod errors;
mod fit;
mod input;
mod reports;

use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use revode::batch::{gradients_of_members, parse_batch, read_batch, Parallelism};
use revode::check::{CheckOptions, ParamSelection};
use revode::model::Model;
use revode::tune::TuneOptions;
use revode::{Error, ModelSpec, ModelVisitor, Problem};

use crate::convert::to_py;
use crate::errors::{exception, problem_error, to_pyerr};
use crate::input::{
    as_path, json_value, parse_problem, problem_from_value, read_model_spec, read_problem,
};
use crate::reports::{gradient_dict, solve_dict};

/// Loss and gradient of one problem (dict or path).
#[pyfunction]
fn grad<'py>(py: Python<'py>, problem: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let problem = read_problem(problem)?;
    let report = py
        .detach(|| revode::gradient(&problem))
        .map_err(|e| to_pyerr(py, &e))?;
    gradient_dict(py, &report)
}

/// Forward solve; `every = s` also returns every s-th state.
#[pyfunction]
#[pyo3(signature = (problem, every=None))]
fn solve<'py>(
    py: Python<'py>,
    problem: &Bound<'py, PyAny>,
    every: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    if every == Some(0) {
        return Err(problem_error(py, "every must be at least 1".into()));
    }
    let problem = read_problem(problem)?;
    let report = py
        .detach(|| revode::solve(&problem, every))
        .map_err(|e| to_pyerr(py, &e))?;
    solve_dict(py, &report)
}

/// Finite-difference check of the adjoint gradient; the report as a dict.
#[pyfunction]
#[pyo3(signature = (problem, params=None, sample=None, seed=0, u0=false, rtol=None, atol=0.0, rel_step=revode::check::DEFAULT_REL_STEP))]
#[allow(clippy::too_many_arguments)]
fn check<'py>(
    py: Python<'py>,
    problem: &Bound<'py, PyAny>,
    params: Option<Vec<usize>>,
    sample: Option<usize>,
    seed: u64,
    u0: bool,
    rtol: Option<f64>,
    atol: f64,
    rel_step: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let selection = match (params, sample) {
        (Some(_), Some(_)) => {
            return Err(problem_error(py, "give params or sample, not both".into()))
        }
        (Some(list), None) => ParamSelection::Indices(list),
        (None, Some(0)) => return Err(problem_error(py, "sample must be at least 1".into())),
        (None, Some(count)) => ParamSelection::Sample { count, seed },
        (None, None) => ParamSelection::All,
    };
    let options = CheckOptions {
        params: selection,
        include_u0: u0,
        rtol,
        atol,
        rel_step,
    };
    let problem = read_problem(problem)?;
    let report = py
        .detach(|| revode::check::check(&problem, &options))
        .map_err(|e| to_pyerr(py, &e))?;
    to_py(py, &report)
}

/// Checkpoint-schedule sweep; the report as a dict.
#[pyfunction]
#[pyo3(signature = (problem, memory_budget=None, repeat=5))]
fn tune<'py>(
    py: Python<'py>,
    problem: &Bound<'py, PyAny>,
    memory_budget: Option<usize>,
    repeat: usize,
) -> PyResult<Bound<'py, PyAny>> {
    if repeat == 0 {
        return Err(problem_error(py, "repeat must be at least 1".into()));
    }
    let problem = read_problem(problem)?;
    let options = TuneOptions {
        repeat,
        memory_budget,
    };
    let report = py
        .detach(|| revode::tune::tune(&problem, &options, &mut |_: usize, _: usize| {}))
        .map_err(|e| to_pyerr(py, &e))?;
    to_py(py, &report)
}

/// Gradients of many problems on rayon threads. `problems` is a list of
/// problems (dicts or paths), a `{"base", "overrides"}` dict, or the path of
/// a batch file. Returns one gradient dict or exception instance per member.
#[pyfunction]
#[pyo3(signature = (problems, threads=None))]
fn grad_batch<'py>(
    py: Python<'py>,
    problems: &Bound<'py, PyAny>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let parallelism = match threads {
        None => Parallelism::AllCores,
        Some(0) => return Err(problem_error(py, "threads must be at least 1".into())),
        Some(t) => Parallelism::Threads(t),
    };
    let members = batch_members(problems)?.map_err(|e| to_pyerr(py, &e))?;
    let results = py
        .detach(|| gradients_of_members(members, parallelism))
        .map_err(|e| to_pyerr(py, &e))?;
    let out = PyList::empty(py);
    for result in results {
        match result {
            Ok(report) => out.append(gradient_dict(py, &report)?)?,
            Err(e) => out.append(exception(py, &e)?)?,
        }
    }
    Ok(out)
}

type Members = Vec<Result<revode::Problem, Error>>;

/// The members of a batch, each parsed (or failed) on its own; the inner
/// error is a batch-level input error.
fn batch_members(problems: &Bound<'_, PyAny>) -> PyResult<Result<Members, Error>> {
    let invalid = |message: &str| Error::Invalid {
        origin: "batch".into(),
        message: message.into(),
    };
    if let Some(path) = as_path(problems)? {
        return Ok(read_batch(path.as_ref()));
    }
    if problems.is_instance_of::<PyDict>() {
        return Ok(json_value(problems, "batch")?
            .and_then(|value| parse_batch(&value.to_string(), "batch")));
    }
    let Ok(iter) = problems.try_iter() else {
        return Ok(Err(invalid(
            "problems must be a list of problems, a {\"base\", \"overrides\"} dict or a batch file path",
        )));
    };
    let items = iter.collect::<PyResult<Vec<_>>>()?;
    if items.is_empty() {
        return Ok(Err(invalid("the batch is empty")));
    }
    let members = items
        .iter()
        .enumerate()
        .map(|(k, item)| parse_problem(item, &format!("problems[{k}]")))
        .collect::<PyResult<Members>>()?;
    Ok(Ok(members))
}

struct ModelInfo<'py>(Python<'py>);

impl<'py> ModelVisitor for ModelInfo<'py> {
    type Output = PyResult<Bound<'py, PyDict>>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let py = self.0;
        let d = PyDict::new(py);
        d.set_item("name", model.name())?;
        d.set_item("param_names", model.param_names())?;
        d.set_item("state_names", model.state_names())?;
        d.set_item(
            "default_params",
            numpy::PyArray1::from_vec(py, model.default_params()),
        )?;
        d.set_item(
            "default_u0",
            numpy::PyArray1::from_vec(py, model.default_u0()),
        )?;
        Ok(d)
    }
}

/// A model read once (a model file compiled once) and reused by every
/// `Model.gradient` / `Model.solve` call.
#[pyclass(frozen, module = "revode._revode")]
struct ModelHandle {
    spec: ModelSpec,
}

/// Reads a model spec: the handle and the model's names and defaults.
#[pyfunction]
fn load_model<'py>(
    py: Python<'py>,
    spec: &Bound<'py, PyAny>,
) -> PyResult<(ModelHandle, Bound<'py, PyDict>)> {
    let spec = read_model_spec(spec)?;
    let info = spec.visit(ModelInfo(py)).map_err(|e| to_pyerr(py, &e))??;
    Ok((ModelHandle { spec }, info))
}

/// A problem dict without `"model"`, run on the handle's model.
fn problem_for_model(handle: &ModelHandle, problem: &Bound<'_, PyAny>) -> PyResult<Problem> {
    let py = problem.py();
    let parsed = json_value(problem, "problem")?.and_then(|mut value| {
        // A placeholder that parses; the handle's model replaces it.
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("model".into(), serde_json::json!({"name": "hh"}));
        }
        let mut p = problem_from_value(value, "problem")?;
        p.model = handle.spec.clone();
        Ok(p)
    });
    parsed.map_err(|e| to_pyerr(py, &e))
}

/// `grad` of a problem dict (without `"model"`) on a loaded model.
#[pyfunction]
fn grad_model<'py>(
    py: Python<'py>,
    model: &Bound<'py, ModelHandle>,
    problem: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let problem = problem_for_model(model.get(), problem)?;
    let report = py
        .detach(|| revode::gradient(&problem))
        .map_err(|e| to_pyerr(py, &e))?;
    gradient_dict(py, &report)
}

/// `solve` of a problem dict (without `"model"`) on a loaded model.
#[pyfunction]
#[pyo3(signature = (model, problem, every=None))]
fn solve_model<'py>(
    py: Python<'py>,
    model: &Bound<'py, ModelHandle>,
    problem: &Bound<'py, PyAny>,
    every: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    if every == Some(0) {
        return Err(problem_error(py, "every must be at least 1".into()));
    }
    let problem = problem_for_model(model.get(), problem)?;
    let report = py
        .detach(|| revode::solve(&problem, every))
        .map_err(|e| to_pyerr(py, &e))?;
    solve_dict(py, &report)
}

/// Benchmark helper: wall time in seconds of each of `repeat` calls of the
/// engine's `revode::gradient` on one problem, timed inside Rust (what the
/// CLI spends in-process, without reading the file or printing).
#[pyfunction]
fn _time_gradient(py: Python<'_>, problem: &Bound<'_, PyAny>, repeat: usize) -> PyResult<Vec<f64>> {
    let problem = read_problem(problem)?;
    py.detach(|| {
        (0..repeat)
            .map(|_| {
                let started = Instant::now();
                revode::gradient(&problem).map(|_| started.elapsed().as_secs_f64())
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| to_pyerr(py, &e))
}

#[pymodule]
fn _revode(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(grad, m)?)?;
    m.add_function(wrap_pyfunction!(solve, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(tune, m)?)?;
    m.add_function(wrap_pyfunction!(grad_batch, m)?)?;
    m.add_function(wrap_pyfunction!(fit::fit, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(grad_model, m)?)?;
    m.add_function(wrap_pyfunction!(solve_model, m)?)?;
    m.add_class::<ModelHandle>()?;
    m.add_function(wrap_pyfunction!(_time_gradient, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
