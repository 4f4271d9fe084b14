use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use revode::check::{
    check, CheckOptions, CheckReport, ParamSelection, DEFAULT_REL_STEP, FD_LEVELS,
};
use revode::golden::{golden_path, Golden, DEFAULT_GOLDEN_RTOL};
use revode::{Error, Problem};

use crate::output::print_json;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Problem file (JSON).
    pub problem: PathBuf,
    /// Also check dL/du0 for every initial state.
    #[arg(long)]
    pub u0: bool,
    /// Check only these parameter indices (e.g. 0,5,17).
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "sample")]
    pub params: Option<Vec<usize>>,
    /// Check K parameters drawn at random (see --seed).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Seed of --sample.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "sample")]
    pub seed: u64,
    /// Relative tolerance [default: 1e-6 for the discrete adjoint].
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 0.0)]
    pub atol: f64,
    /// Largest relative FD step h0/|x| (halved up to 12 times).
    #[arg(long, value_name = "REL", default_value_t = DEFAULT_REL_STEP)]
    pub fd_step: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// When every entry passes, write the gradient to
    /// DIR/expected/NAME.json for the golden regression test.
    #[arg(long)]
    pub write_golden: bool,
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, Error> {
    let problem = Problem::from_path(&args.problem)?;
    let options = CheckOptions {
        params: match (&args.params, args.sample) {
            (Some(list), _) => ParamSelection::Indices(list.clone()),
            (None, Some(count)) => ParamSelection::Sample {
                count: count as usize,
                seed: args.seed,
            },
            (None, None) => ParamSelection::All,
        },
        include_u0: args.u0,
        rtol: args.rtol,
        atol: args.atol,
        rel_step: args.fd_step,
    };
    let report = check(&problem, &options)?;
    let golden_written = if args.write_golden && report.passed {
        Some(write_golden(args, &report)?)
    } else {
        None
    };
    if args.json {
        print_json(&report);
    } else {
        print_text(args, &report);
        if let Some(path) = &golden_written {
            outln!("golden gradient written to {}", path.display());
        } else if args.write_golden {
            outln!("golden gradient NOT written: the check failed");
        }
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_golden(args: &CheckArgs, report: &CheckReport) -> Result<PathBuf, Error> {
    let path = golden_path(&args.problem);
    let name = args
        .problem
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let regenerate = format!("revode check fixtures/{name} --u0 --write-golden");
    let golden = Golden::from_report(
        &name,
        regenerate,
        &report.gradient,
        DEFAULT_GOLDEN_RTOL,
        0.0,
    );
    let io_error = |e: std::io::Error| Error::Invalid {
        origin: path.display().to_string(),
        message: format!("cannot write: {e}"),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let text = serde_json::to_string_pretty(&golden).expect("golden serialises") + "\n";
    std::fs::write(&path, text).map_err(io_error)?;
    Ok(path)
}

fn print_text(args: &CheckArgs, r: &CheckReport) {
    outln!(
        "{}: model {}, {} with {} steps, loss {} = {:.12e}, {:?} adjoint",
        args.problem.display(),
        r.model,
        r.solver,
        r.steps,
        r.loss_kind,
        r.loss,
        r.adjoint_method
    );
    outln!(
        "FD: Richardson-extrapolated central differences at h0/2^j, j = 0..={FD_LEVELS}, \
         best-converged level kept; h0 = {:e}·max(|x|, floor)",
        r.rel_step
    );
    let width = r
        .entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!(
        "  {:<width$}  {:>10}  {:>22}  {:>22}  {:>9}  {:>9}  {:>9}  {:>9}  result",
        "name",
        "value",
        "adjoint",
        "finite difference",
        "FD step",
        "FD error",
        "abs error",
        "rel error"
    );
    for e in &r.entries {
        outln!(
            "  {:<width$}  {:>10.4e}  {:>22.15e}  {:>22.15e}  {:>9.2e}  {:>9.2e}  {:>9.2e}  {:>9.2e}  {}{}",
            e.name,
            e.value,
            e.adjoint,
            e.fd,
            e.step,
            e.fd_error,
            e.abs_error,
            e.rel_error,
            if e.pass { "pass" } else { "FAIL" },
            if e.fd_converged {
                ""
            } else {
                " (FD not converged)"
            }
        );
    }
    let unconverged = r.entries.iter().filter(|e| !e.fd_converged).count();
    if unconverged > 0 {
        outln!(
            "note: {unconverged} FD estimate(s) have an error estimate above the tolerance; \
             try another --fd-step or a looser --rtol/--atol before blaming the adjoint"
        );
    }
    if !r.passed && r.solver == "beuler" {
        outln!(
            "note: beuler's adjoint is exact for the backward Euler solution, which the solve \
             meets to newton_tol per step; that bounds the agreement with finite differences \
             of it (about steps × newton_tol relative): check with a smaller newton_tol \
             (e.g. 1e-13) before blaming the adjoint (docs/stiff.md)"
        );
    }
    if r.passed {
        outln!(
            "all {} pass (rtol {:e}, atol {:e})",
            r.entries.len(),
            r.rtol,
            r.atol
        );
    } else {
        let names: Vec<&str> = r.failed().map(|e| e.name.as_str()).collect();
        outln!(
            "{} of {} FAIL (rtol {:e}, atol {:e}): {}",
            r.n_failed,
            r.entries.len(),
            r.rtol,
            r.atol,
            names.join(", ")
        );
    }
}
