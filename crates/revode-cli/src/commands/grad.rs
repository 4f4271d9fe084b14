use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use revode::{Error, Problem};

use crate::output::{fmt_bytes, fmt_vec_named, print_json};

#[derive(Debug, Args)]
pub struct GradArgs {
    /// Problem file (JSON).
    pub problem: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &GradArgs) -> Result<ExitCode, Error> {
    let problem = Problem::from_path(&args.problem)?;
    let r = revode::gradient(&problem)?;
    if args.json {
        print_json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &r.stats;
    println!(
        "{}: model {}, {} with {} steps, loss {}",
        args.problem.display(),
        r.model,
        r.solver,
        s.steps,
        r.loss_kind
    );
    println!("loss = {:.12e}", r.loss);
    println!("dL/dp:");
    print!("{}", fmt_vec_named(&r.param_names, &r.gradient));
    println!("dL/du0:");
    print!("{}", fmt_vec_named(&r.state_names, &r.gradient_u0));
    println!(
        "forward {:.3} ms, backward {:.3} ms; checkpoints {} kept, {} steps recomputed, store peak {}",
        s.forward_seconds * 1e3,
        s.backward_seconds * 1e3,
        s.checkpoints_kept,
        s.recomputed_steps,
        fmt_bytes(s.peak_store_bytes)
    );
    if r.solver == "dopri5" {
        println!(
            "steps: forward {} accepted, {} rejected; backward {} accepted, {} rejected",
            s.steps, s.rejected_steps, s.backward_steps, s.backward_rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}
