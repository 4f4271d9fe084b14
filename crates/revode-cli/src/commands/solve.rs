use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use revode::{Error, Problem};

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
}

pub fn run(args: &SolveArgs) -> Result<ExitCode, Error> {
    let problem = Problem::from_path(&args.problem)?;
    let report = revode::solve(&problem, args.every.map(|s| s as usize))?;
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
        for (t, u) in report.samples.iter() {
            let cells: Vec<String> = std::iter::once(t)
                .chain(u.iter().copied())
                .map(|x| format!("{x:.9e}"))
                .collect();
            outln!("  {}", cells.join("  "));
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
