//! The Jacobian checker for the built-in models (see [`revode_model::check`]).

use revode_model::check::{check_model, CheckOptions, CheckReport};
use revode_model::Model;

use crate::{Error, ModelSpec, ModelVisitor};

/// Whether `name` names a model file rather than a built-in model: it ends
/// in `.ode`, contains a path separator, or is something on disk (a folder
/// given by mistake gets the file reader's "it is a folder").
fn is_file_name(name: &str) -> bool {
    const BUILTIN: &[&str] = &["hh", "hh_network"];
    name.ends_with(".ode")
        || name.contains('/')
        || name.contains(std::path::MAIN_SEPARATOR)
        || (!BUILTIN.contains(&name) && std::path::Path::new(name).exists())
}

/// Builds a model spec from a name and an optional neuron count, with the
/// problem-file rules (`n` only for `hh_network`, `n ≥ 1`). A name ending
/// in `.ode` (or any path) is a model file, read and compiled now.
pub fn model_spec(name: &str, n: Option<u64>) -> Result<ModelSpec, Error> {
    if is_file_name(name) {
        if n.is_some() {
            return Err(Error::Invalid {
                origin: "check-model".into(),
                message: "--n applies to hh_network only, not to a model file".into(),
            });
        }
        return Ok(ModelSpec::File(crate::problem::ModelFile::load(name)?));
    }
    let mut value = serde_json::json!({ "name": name });
    match (name, n) {
        ("hh_network", n) => value["n"] = n.unwrap_or(10).into(),
        (_, Some(_)) => {
            return Err(Error::Argument {
                name: "n",
                message: format!("applies to hh_network only, not {name:?}"),
            })
        }
        _ => {}
    }
    crate::problem::model_or_file(value).map_err(|e: serde_json::Error| Error::Invalid {
        origin: "check-model".into(),
        message: e.to_string(),
    })
}

struct CheckRun<'a>(&'a CheckOptions);

impl ModelVisitor for CheckRun<'_> {
    type Output = CheckReport;
    fn visit<M: Model>(self, model: &M) -> CheckReport {
        check_model(model, self.0)
    }
}

/// Checks a model's VJPs against finite differences.
pub fn check_builtin(spec: &ModelSpec, options: &CheckOptions) -> Result<CheckReport, Error> {
    spec.visit(CheckRun(options))
}
