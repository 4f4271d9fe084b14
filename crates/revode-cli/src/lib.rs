//! The `revode` command line as a library: [`main`] is the whole program
//! (`src/main.rs` only calls it). A program can register its own Rust models
//! with `revode::register_model` and then call [`main`] to get the full CLI
//! for them; the tests' `revode-test-cli` does that with a deliberately
//! broken model, so the `revode` binary itself never carries one.

// Declared first: its `out!`/`outln!` macros serve the command modules.
#[macro_use]
mod output;
mod commands;
mod plot;
mod units;

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
    /// Compare a model's VJPs (built-in, or derived from a FILE.ode) with
    /// finite differences of its rhs (exit 1 when an entry is wrong).
    CheckModel(commands::check_model::CheckArgs),
    /// Compare the adjoint gradient with converged finite differences
    /// (exit 1 when any entry fails).
    Check(commands::check::CheckArgs),
    /// Sweep checkpoint settings: time and memory of each, and the fastest
    /// within a memory budget.
    Tune(commands::tune::TuneArgs),
    /// Fit a model's parameters to recorded traces (CSV) with L-BFGS.
    Fit(commands::fit::FitArgs),
}

/// Clap's message for bad flags or values on one line: its first line
/// (`error: …`), and if that ends in `:`, the items listed below it.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines();
    let mut out = lines.next().unwrap_or("error: bad arguments").to_string();
    if out.ends_with(':') {
        for item in lines.take_while(|l| !l.trim().is_empty()) {
            out.push(' ');
            out.push_str(item.trim());
        }
    }
    out
}

/// Runs the command line of this process (`std::env::args`) and returns
/// its exit code; errors are printed as one line on stderr.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as usual.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Solve(args) => commands::solve::run(&args),
        Command::Grad(args) => commands::grad::run(&args),
        Command::CheckModel(args) => commands::check_model::run(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Tune(args) => commands::tune::run(&args),
        Command::Fit(args) => commands::fit::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", output::cli_message(&e));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
