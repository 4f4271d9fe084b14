//! `revode check-model NAME|FILE.ode`: the Jacobian checker on a built-in model or a model file.

use std::process::ExitCode;

use clap::Args;
use revode::model::check::{CheckOptions, Wrt};
use revode::model_check::{check_builtin, model_spec};
use revode::Error;
use serde_json::json;

use crate::output::print_json;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Built-in model (hh or hh_network) or a model file (FILE.ode).
    pub name: String,
    /// Neurons, for hh_network (default 10).
    #[arg(long)]
    pub n: Option<u64>,
    /// Sample points: the defaults, then random perturbations.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub samples: u64,
    /// Seed of the random sample points.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest accepted scaled error of a Jacobian entry.
    #[arg(long, default_value_t = 1e-6)]
    pub tolerance: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The checker holds two dense Jacobians, 16·S·(S + P) bytes (68 MB at n = 100).
const MAX_CHECK_NEURONS: u64 = 100;

pub fn run(args: &CheckArgs) -> Result<ExitCode, Error> {
    if args.n.is_some_and(|n| n > MAX_CHECK_NEURONS) {
        return Err(Error::Invalid {
            origin: "check-model".into(),
            message: format!(
                "--n must be at most {MAX_CHECK_NEURONS} (the checker holds two dense Jacobians)"
            ),
        });
    }
    let spec = model_spec(&args.name, args.n)?;
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        return Err(Error::Invalid {
            origin: "check-model".into(),
            message: format!(
                "--tolerance must be a positive number, got {}",
                revode::model::num::Num(args.tolerance)
            ),
        });
    }
    let options = CheckOptions {
        samples: args.samples as usize,
        seed: args.seed,
        tolerance: args.tolerance,
        worst: 5,
    };
    let r = check_builtin(&spec, &options)?;
    if args.json {
        let worst: Vec<_> = r
            .worst
            .iter()
            .map(|w| {
                let (kind, index) = match w.wrt {
                    Wrt::State(j) => ("state", j),
                    Wrt::Param(j) => ("param", j),
                };
                json!({
                    "sample": w.sample, "entry": w.label, "output": w.output,
                    "wrt_kind": kind, "wrt_index": index, "analytic": w.analytic,
                    "finite_difference": w.finite_difference, "error": w.error,
                })
            })
            .collect();
        // the model's own state Jacobian (null: none, assembled from VJPs)
        let jacobian = r.jacobian.as_ref().map(|j| {
            json!({
                "n": j.n, "nnz": j.nnz, "entries_checked": j.entries_checked,
                "max_error": j.max_error,
            })
        });
        print_json(&json!({
            "model": r.model, "passed": r.passed, "samples": r.samples,
            "entries_checked": r.entries_checked, "tolerance": r.tolerance,
            "max_error": r.max_error, "jacobian": jacobian, "worst": worst,
        }));
    } else {
        outln!(
            "{}: {} Jacobian entries at {} points, max scaled error {:.2e} (tolerance {:.1e}): {}",
            r.model,
            r.entries_checked,
            r.samples,
            r.max_error,
            r.tolerance,
            if r.passed { "PASS" } else { "FAIL" }
        );
        match &r.jacobian {
            Some(j) => outln!(
                "  of which the model's own state Jacobian: {} nonzeros of {} ({:.2}%), {} entries \
                 (zeros outside the pattern included), max scaled error {:.2e}",
                j.nnz,
                j.n * j.n,
                100.0 * j.nnz as f64 / (j.n * j.n).max(1) as f64,
                j.entries_checked,
                j.max_error
            ),
            None => outln!(
                "  the model has no state Jacobian of its own (implicit steppers assemble it from n VJPs)"
            ),
        }
        outln!("worst entries:");
        for w in &r.worst {
            outln!(
                "  sample {:>3}  {:<37} got {:>22.15e}  fd {:>22.15e}  error {:.2e}",
                w.sample,
                w.label,
                w.analytic,
                w.finite_difference,
                w.error
            );
        }
    }
    Ok(if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
