use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use revode::model::Model;
use revode::{Error, ModelVisitor, Problem, SolveReport};

use crate::output::{fmt_vec_named, print_json};

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Problem file (JSON).
    pub problem: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also output every S-th state (and the last).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// Write the trajectory to FILE as CSV (header `t,<state names>`): every
    /// state, or every S-th with --every, the last always; numbers in full
    /// (shortest round-trip) precision.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

pub fn run(args: &SolveArgs) -> Result<ExitCode, Error> {
    let problem = Problem::from_path(&args.problem)?;
    let every = args.every.map(|s| s as usize);
    let (report, rows) = match &args.csv {
        Some(path) => {
            let (report, rows) = write_csv(&problem, path, every.unwrap_or(1))?;
            (report, Some(rows))
        }
        None => (revode::solve(&problem, every).map_err(suggest_csv)?, None),
    };
    if args.json {
        print_json(&report);
    } else {
        outln!(
            "{}: {} {} {} steps{} to t = {} in {:.3} ms",
            args.problem.display(),
            report.model,
            report.solver,
            report.steps,
            if report.rejected_steps > 0 {
                format!(" ({} rejected)", report.rejected_steps)
            } else {
                String::new()
            },
            report.t_final,
            report.seconds * 1e3
        );
        if let Some(n) = &report.newton {
            outln!(
                "newton: {} iterations ({:.2} a step), {} Jacobians, {} factorizations",
                n.iterations,
                n.iterations as f64 / report.steps.max(1) as f64,
                n.jacobian_evaluations,
                n.factorizations
            );
        }
        for row in &report.samples {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:.9e}")).collect();
            outln!("  {}", cells.join("  "));
        }
        if let (Some(rows), Some(path)) = (rows, &args.csv) {
            outln!("trajectory: {rows} rows written to {}", path.display());
        }
        outln!("final state:");
        out!(
            "{}",
            fmt_vec_named(&report.state_names, &report.final_state)
        );
        if !report.aux_names.is_empty() {
            outln!("aux at the final state:");
            out!("{}", fmt_vec_named(&report.aux_names, &report.final_aux));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Kept samples that do not fit: --csv streams them instead.
fn suggest_csv(e: Error) -> Error {
    use revode::adjoint::GradientError::Forward;
    use revode::forward::ForwardError::{SamplesOutgrewMemory, SamplesTooLarge};
    match e {
        Error::Gradient(Forward(SamplesTooLarge { .. } | SamplesOutgrewMemory { .. })) => {
            Error::Invalid {
                origin: "--every".into(),
                message: format!("{e}; --csv FILE writes every sample as the solve goes"),
            }
        }
        other => other,
    }
}

struct StateNames;

impl ModelVisitor for StateNames {
    type Output = Vec<String>;
    fn visit<M: Model>(self, model: &M) -> Vec<String> {
        model.state_names()
    }
}

fn csv_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Invalid {
        origin: "--csv".into(),
        message: format!("cannot {what} {}: {e}", path.display()),
    }
}

/// Solves `problem`, streaming every `every`-th state (and the last) into a
/// CSV file at `path`; returns the report and the number of data rows. A
/// failed solve leaves no file behind.
fn write_csv(problem: &Problem, path: &Path, every: usize) -> Result<(SolveReport, usize), Error> {
    let names = problem.model.visit(StateNames)?;
    let file = File::create(path).map_err(|e| csv_error(path, "create", e))?;
    let mut out = BufWriter::new(file);
    let mut rows = 0;
    let mut failed = writeln!(out, "t,{}", names.join(",")).err();
    let solved = revode::solve_observed(problem, every, &mut |t, u| {
        if failed.is_none() {
            failed = write_row(&mut out, t, u).err();
            rows += 1;
        }
    });
    let written = match failed {
        Some(e) => Err(e),
        None => out.flush(),
    };
    match (solved, written) {
        (Ok(report), Ok(())) => Ok((report, rows)),
        (solved, written) => {
            drop(out);
            let _ = std::fs::remove_file(path);
            solved?;
            Err(csv_error(path, "write", written.unwrap_err()))
        }
    }
}

fn write_row(out: &mut impl Write, t: f64, u: &[f64]) -> std::io::Result<()> {
    write_number(out, t)?;
    for &x in u {
        out.write_all(b",")?;
        write_number(out, x)?;
    }
    out.write_all(b"\n")
}

/// The shortest text that reads back as the same f64: plain decimals for
/// ordinary magnitudes, exponent form for very small or large ones.
fn write_number(out: &mut impl Write, x: f64) -> std::io::Result<()> {
    if x == 0.0 || (1e-5..1e16).contains(&x.abs()) {
        write!(out, "{x}")
    } else {
        write!(out, "{x:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_exactly() {
        for x in [
            0.0,
            -0.0,
            0.1,
            -59.99999999999999,
            1.0 / 3.0,
            1e-300,
            -2.5e-7,
            6.02e23,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            123456789.12345679,
        ] {
            let mut text = Vec::new();
            write_number(&mut text, x).unwrap();
            let text = String::from_utf8(text).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{text}"
            );
            assert!(text.len() <= 24, "{text}");
        }
    }
}
