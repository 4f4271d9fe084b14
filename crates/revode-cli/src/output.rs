//! Shared text and JSON output.

use serde::Serialize;

/// `print!` through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => { crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!` through [`write_stdout`].
macro_rules! outln {
    () => { crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints one JSON object on stdout, streamed (a long trajectory is never
/// held as text).
pub fn print_json<T: Serialize>(value: &T) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Serialising plain structs of numbers and strings fails only on I/O.
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        stdout_failed(e);
    }
}

/// `  name  value` lines, names padded to one column.
pub fn fmt_vec_named(names: &[String], values: &[f64]) -> String {
    let width = names.iter().map(String::len).max().unwrap_or(0);
    names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("  {n:<width$}  {v:>22.15e}\n"))
        .collect()
}

/// Bytes with a binary unit, and the exact count beside it above 1 KiB.
pub fn fmt_bytes(bytes: usize) -> String {
    let human = revode::checkpoint::memory::human_bytes(bytes);
    if bytes < 1024 {
        human
    } else {
        format!("{human} ({bytes} B)")
    }
}

/// An error as the command line speaks of it: a library argument is named
/// by its flag.
pub fn cli_message(e: &revode::Error) -> String {
    match e {
        revode::Error::Argument { name, message } => format!("{}: {message}", flag(name)),
        other => other.to_string(),
    }
}

/// The flag of a library argument.
fn flag(argument: &str) -> String {
    match argument {
        "rel_step" => "--fd-step".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// Writes to stdout; a closed pipe (`revode … | head`) ends the process
/// quietly with success instead of panicking like `print!` would.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// A closed pipe ends the process quietly with success; other errors
/// with one line and exit 1.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_arguments_become_flags() {
        let e = |name| revode::Error::Argument {
            name,
            message: "bad".into(),
        };
        assert_eq!(cli_message(&e("rel_step")), "--fd-step: bad");
        assert_eq!(cli_message(&e("memory_budget")), "--memory-budget: bad");
        assert_eq!(cli_message(&e("params")), "--params: bad");
    }
}
