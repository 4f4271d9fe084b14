use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use revode::tune::{tune, TuneOptions, TuneReport};
use revode::{Error, Problem};

use crate::output::{fmt_bytes, print_json};
use crate::plot::tune_svg;
use crate::units::parse_bytes;

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Problem file (JSON).
    pub problem: PathBuf,
    /// Timed runs per setting (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Largest checkpoint store to recommend, e.g. 64KiB, 16MB, 2GiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_budget: Option<usize>,
    /// Also draw time and memory against K into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &TuneArgs) -> Result<ExitCode, Error> {
    let problem = Problem::from_path(&args.problem)?;
    let options = TuneOptions {
        repeat: args.repeat as usize,
        memory_budget: args.memory_budget,
    };
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise).
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("tune {bar:30} {pos}/{len} runs {elapsed}")
                .expect("valid template"),
        );
        bar
    };
    let report = tune(&problem, &options, &mut |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let report = report?;
    if let Some(path) = &args.plot {
        let svg = tune_svg(&report).map_err(|message| Error::Invalid {
            origin: path.display().to_string(),
            message,
        })?;
        std::fs::write(path, svg).map_err(|e| Error::Invalid {
            origin: path.display().to_string(),
            message: format!("cannot write: {e}"),
        })?;
    }
    if args.json {
        print_json(&report);
    } else {
        print_text(args, &report);
    }
    Ok(if report.gradients_agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_text(args: &TuneArgs, r: &TuneReport) {
    outln!(
        "{}: model {}, {} with {} steps, {:?} adjoint; median of {} runs",
        args.problem.display(),
        r.model,
        r.solver,
        r.steps,
        r.adjoint_method,
        r.repeat
    );
    let width = r
        .rows
        .iter()
        .map(|row| row.setting.len())
        .max()
        .unwrap_or(7);
    outln!(
        "  {:<width$}  {:>11}  {:>8}  {:>26}  {:>11}  {:>11}",
        "setting",
        "time",
        "×forward",
        "peak store",
        "checkpoints",
        "recomputed"
    );
    for (i, row) in r.rows.iter().enumerate() {
        let mut flags = Vec::new();
        if i == r.recommended {
            flags.push("← recommended");
        }
        if !row.fits_budget {
            flags.push("over budget");
        }
        if !row.same_gradient {
            flags.push("GRADIENT DIFFERS");
        }
        outln!(
            "  {:<width$}  {:>8.3} ms  {:>8.2}  {:>26}  {:>11}  {:>11}  {}",
            row.setting,
            row.median_seconds * 1e3,
            row.ratio_to_forward,
            fmt_bytes(row.peak_store_bytes),
            row.checkpoints_kept,
            row.recomputed_steps,
            flags.join(", ")
        );
    }
    if r.gradients_agree {
        outln!(
            "gradient: every setting gives the same loss and gradient ({})",
            r.gradient_agreement
        );
    } else {
        outln!(
            "gradient: settings DISAGREE (largest relative difference {:e}): this is a bug",
            r.max_rel_difference
        );
    }
    let best = &r.rows[r.recommended];
    match r.memory_budget {
        Some(b) => outln!(
            "recommended: {} — fastest with a store within {}",
            best.setting,
            fmt_bytes(b)
        ),
        None => outln!(
            "recommended: {} — fastest (no --memory-budget)",
            best.setting
        ),
    }
    outln!(
        "paste into the problem file:\n  \"adjoint\": {}",
        serde_json::to_string(&r.recommended_adjoint).expect("adjoint block serialises")
    );
}
