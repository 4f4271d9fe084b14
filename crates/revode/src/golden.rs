//! Golden gradients: a problem's expected loss and gradient, written by
//! `revode check --write-golden` once the check has passed, and compared by
//! the regression test (`crates/revode/tests/golden.rs`) on every run.
//!
//! Layout: `fixtures/NAME.json` is the problem, `fixtures/expected/NAME.json`
//! its golden file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, GradientReport};

/// Relative drift allowed by default. The discrete adjoint is deterministic
/// on one machine; replacing the HH model's `exp` moved the fixtures by at
/// most 1.9e-13, so this leaves a margin of 500 for such rounding changes
/// while catching a wrong term (docs/check-and-tune.md).
pub const DEFAULT_GOLDEN_RTOL: f64 = 1e-10;

/// An expected gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Golden {
    /// The problem file, relative to the golden file's parent's parent
    /// (`expected/../NAME.json`).
    pub problem: String,
    /// How to regenerate this file.
    pub regenerate: String,
    /// Allowed drift: `|now − golden| ≤ atol + rtol·|golden|` per entry.
    pub rtol: f64,
    pub atol: f64,
    pub loss: f64,
    pub param_names: Vec<String>,
    pub gradient: Vec<f64>,
    pub state_names: Vec<String>,
    pub gradient_u0: Vec<f64>,
}

/// `dir/NAME.json` → `dir/expected/NAME.json`.
pub fn golden_path(problem_path: &Path) -> PathBuf {
    let dir = problem_path.parent().unwrap_or(Path::new(""));
    let name = problem_path.file_name().unwrap_or_default();
    dir.join("expected").join(name)
}

impl Golden {
    /// The golden file of `report`; `regenerate` says how to write it again
    /// (the front end's command).
    pub fn from_report(
        problem_file: &str,
        regenerate: String,
        report: &GradientReport,
        rtol: f64,
        atol: f64,
    ) -> Self {
        Golden {
            problem: problem_file.to_string(),
            regenerate,
            rtol,
            atol,
            loss: report.loss,
            param_names: report.param_names.clone(),
            gradient: report.gradient.clone(),
            state_names: report.state_names.clone(),
            gradient_u0: report.gradient_u0.clone(),
        }
    }

    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| Error::Json {
            origin: path.display().to_string(),
            source,
        })
    }

    /// The problem file this golden file belongs to.
    pub fn problem_path(&self, golden_path: &Path) -> PathBuf {
        let expected_dir = golden_path.parent().unwrap_or(Path::new(""));
        expected_dir
            .parent()
            .unwrap_or(Path::new(""))
            .join(&self.problem)
    }

    /// One line per entry that drifted beyond the tolerance (empty: none).
    pub fn drifts(&self, now: &GradientReport) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |what: &str, golden: &[f64], now: &[f64]| {
            if golden.len() != now.len() {
                out.push(format!(
                    "{what}: {} entries, golden has {}",
                    now.len(),
                    golden.len()
                ));
                return;
            }
            for (i, (g, n)) in golden.iter().zip(now).enumerate() {
                let allowed = self.atol + self.rtol * g.abs();
                // Written so that NaN counts as drift.
                let within = (g - n).abs() <= allowed;
                if !within {
                    out.push(format!(
                        "{what}[{i}]: {n:e}, golden {g:e} (diff {:e} > {allowed:e})",
                        (g - n).abs()
                    ));
                }
            }
        };
        compare("loss", &[self.loss], &[now.loss]);
        compare("gradient", &self.gradient, &now.gradient);
        compare("gradient_u0", &self.gradient_u0, &now.gradient_u0);
        out
    }
}
