//! `revode`: gradients of ODE solutions from problem files.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Fast, exact, bounded-memory gradients of ODE solutions.
///
/// Exit codes: 0 success, 2 bad input (file, JSON, values, flags),
/// 3 the solve failed (e.g. the state blew up); `check-model`: 1 when a
/// derivative is wrong; `grad --batch`: 4 when some members failed (each
/// member's own code is in its JSON line).
#[derive(Debug, Parser)]
#[command(name = "revode", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Integrate a problem forward and print the final state.
    Solve(commands::solve::SolveArgs),
    /// Compute the loss and its gradient w.r.t. parameters and initial state.
    Grad(commands::grad::GradArgs),
    /// Compare a built-in model's hand-written VJPs with finite differences.
    CheckModel(commands::check::CheckArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Solve(args) => commands::solve::run(&args),
        Command::Grad(args) => commands::grad::run(&args),
        Command::CheckModel(args) => commands::check::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
