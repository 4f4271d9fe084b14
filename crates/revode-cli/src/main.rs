//! `revode`: gradients of ODE solutions from problem files.

use std::process::ExitCode;

fn main() -> ExitCode {
    revode_cli::main()
}
