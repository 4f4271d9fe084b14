use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use revode::fit::{
    fit_observed, fitted_problem, fitted_traces, read_fit_file, FitProgress, FitReport,
};
use revode::Error;

use crate::output::print_json;
use crate::plot::fit_svg;

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Fit file (JSON; see docs/fitting.md).
    pub fit: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw each sweep's data against the fitted trace, and the loss
    /// against the iteration, into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write a problem file with the fitted parameters (the first sweep's
    /// span, data and stimulus), ready for `revode grad` or `revode solve`.
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::Invalid {
        origin: path.display().to_string(),
        message: format!("cannot write: {e}"),
    })
}

fn progress_line(p: &FitProgress, several: bool) -> String {
    let start = if several {
        format!("start {:>2}  ", p.start)
    } else {
        String::new()
    };
    format!(
        "{start}iter {:>4}  loss {:.6e}  |grad| {:.3e}  {:.2} s",
        p.iteration, p.loss, p.gradient_norm, p.seconds
    )
}

pub fn run(args: &FitArgs) -> Result<ExitCode, Error> {
    let (problem, options) = read_fit_file(&args.fit)?;
    // Lines go above a spinner on a terminal; plain lines on stderr
    // otherwise (indicatif draws nothing there), e.g. into a log file.
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} fitting {elapsed} {msg}")
                .expect("valid template"),
        );
        bar
    };
    let several = options.starts > 1;
    let quiet = args.quiet;
    let started = Instant::now();
    let observer = |p: &FitProgress| {
        if quiet {
            return;
        }
        let line = progress_line(p, several);
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.set_message(format!("loss {:.3e}", p.loss));
            bar.println(line);
        }
    };
    let report = fit_observed(&problem, &options, &observer);
    bar.finish_and_clear();
    let report = report?;
    if let Some(path) = &args.plot {
        let traces = fitted_traces(&problem, &report, 4000)?;
        let svg = fit_svg(&traces, &report).map_err(|message| Error::Invalid {
            origin: path.display().to_string(),
            message,
        })?;
        write_file(path, &svg)?;
    }
    if let Some(path) = &args.out {
        let fitted = fitted_problem(&problem, &report, 0)?;
        let text = serde_json::to_string_pretty(&fitted).expect("problem serialises");
        write_file(path, &(text + "\n"))?;
    }
    if args.json {
        print_json(&report);
    } else {
        print_text(
            args,
            &report,
            problem.sweeps.len(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bound(b: Option<f64>) -> String {
    b.map_or("-".to_string(), |v| format!("{v}"))
}

fn print_text(args: &FitArgs, r: &FitReport, sweeps: usize, seconds: f64) {
    outln!(
        "{}: model {}, {} sweep{}, {} free parameter{}, {} start{}",
        args.fit.display(),
        r.model,
        sweeps,
        if sweeps == 1 { "" } else { "s" },
        r.params.len(),
        if r.params.len() == 1 { "" } else { "s" },
        r.starts.len(),
        if r.starts.len() == 1 { "" } else { "s" },
    );
    let width = r
        .param_names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(9)
        .max(9);
    outln!(
        "  {:<width$}  {:>22}  {:>22}  {:>10}  {:>10}",
        "parameter",
        "start",
        "fitted",
        "lower",
        "upper"
    );
    let start = &r.starts[r.best_start].start;
    for i in 0..r.params.len() {
        outln!(
            "  {:<width$}  {:>22.15e}  {:>22.15e}  {:>10}  {:>10}",
            r.param_names[i],
            start[i],
            r.params[i],
            bound(r.lower[i]),
            bound(r.upper[i])
        );
    }
    if r.starts.len() > 1 {
        outln!("starts (best: {}):", r.best_start);
        for (k, s) in r.starts.iter().enumerate() {
            outln!(
                "  {k:>3}  loss {:.6e}  {:>4} iterations  {}",
                s.loss,
                s.iterations,
                s.stop_reason.describe()
            );
        }
    }
    outln!(
        "loss = {:.12e} after {} iterations ({} gradient evaluations, {} failed solves), |grad| = {:.3e}",
        r.loss,
        r.iterations,
        r.evaluations,
        r.failed_evaluations,
        r.gradient_norm
    );
    outln!(
        "stopped: {} ({}){}",
        r.stop_message,
        if r.converged {
            "converged"
        } else {
            "not converged"
        },
        if r.stop_message == r.stop_reason.describe() {
            String::new()
        } else {
            format!(" [{}]", r.stop_reason.describe())
        }
    );
    outln!("time: {seconds:.3} s");
}
