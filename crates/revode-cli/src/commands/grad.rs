use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use revode::{Error, Problem};

use crate::output::{fmt_bytes, fmt_vec_named, print_json};

#[derive(Debug, Args)]
pub struct GradArgs {
    /// Problem file (JSON).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    pub problem: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Batch file: an array of problems, or {"base": {..}, "overrides": [..]}.
    /// Prints one JSON line per member, in order (see docs/batch.md).
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// Threads for --batch (default: one per core).
    #[arg(long, value_name = "T",
          value_parser = clap::value_parser!(u64).range(1..1024))]
    pub threads: Option<u64>,
}

pub fn run(args: &GradArgs) -> Result<ExitCode, Error> {
    let path = match (&args.problem, &args.batch) {
        (_, Some(batch)) => return super::batch::run(batch, args.threads),
        (Some(_), None) if args.threads.is_some() => {
            return Err(Error::Invalid {
                origin: "grad".into(),
                message: "--threads applies to --batch only".into(),
            })
        }
        (Some(path), None) => path,
        (None, None) => unreachable!("clap requires a problem or --batch"),
    };
    let problem = Problem::from_path(path)?;
    let r = revode::gradient(&problem)?;
    if args.json {
        print_json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &r.stats;
    outln!(
        "{}: model {}, {} with {} steps, loss {}",
        path.display(),
        r.model,
        r.solver,
        s.steps,
        r.loss_kind
    );
    outln!("loss = {:.12e}", r.loss);
    outln!("dL/dp:");
    out!("{}", fmt_vec_named(&r.param_names, &r.gradient));
    if !r.stimulated.is_empty() {
        outln!(
            "  (stimulated: {}; each entry is the derivative with respect to the value in params, \
             which acts only before the protocol's first switch time)",
            r.stimulated.join(", ")
        );
    }
    outln!("dL/du0:");
    out!("{}", fmt_vec_named(&r.state_names, &r.gradient_u0));
    let slim = match s.slim_states_kept {
        0 => String::new(),
        k => format!(" (and {k} states as u alone)"),
    };
    outln!(
        "forward {:.3} ms, backward {:.3} ms; checkpoints {} kept{slim}, {} steps recomputed, store peak {}",
        s.forward_seconds * 1e3,
        s.backward_seconds * 1e3,
        s.checkpoints_kept,
        s.recomputed_steps,
        fmt_bytes(s.peak_store_bytes)
    );
    if let Some(i) = &s.implicit {
        let (f, b) = (&i.newton, &i.backward);
        outln!(
            "newton ({} LU): {} iterations ({:.2} a step), {} Jacobians, {} factorizations; backward{}: {} transposed solves ({:.2} a step), {} factorizations",
            i.linear_solver,
            f.iterations,
            f.iterations as f64 / s.steps.max(1) as f64,
            f.jacobian_evaluations,
            f.factorizations,
            if b.threads > 1 {
                format!(" ({} threads)", b.threads)
            } else {
                String::new()
            },
            b.transposed_solves,
            b.transposed_solves as f64 / s.steps.max(1) as f64,
            b.factorizations
        );
    }
    if r.solver == "dopri5" || r.solver == "bdf" {
        outln!(
            "steps: forward {} accepted, {} rejected; backward {} accepted, {} rejected",
            s.steps,
            s.rejected_steps,
            s.backward_steps,
            s.backward_rejected
        );
    }
    if let Some(events) = s.events {
        outln!("events: {events} fired by the forward solve");
    }
    if let Some(n) = s.newton {
        outln!(
            "newton: forward {} iterations, {} Jacobians, {} factorisations; backward {} iterations, {} Jacobians, {} factorisations",
            n.forward.iterations,
            n.forward.jacobian_evaluations,
            n.forward.factorizations,
            n.backward.iterations,
            n.backward.jacobian_evaluations,
            n.backward.factorizations
        );
    }
    Ok(ExitCode::SUCCESS)
}
