//! `revode-test-cli`: the `revode` command line (the same `revode_cli::main`)
//! with the test-only model `hh_broken_vjp` registered, so the end-to-end
//! tests in `tests/` can see `revode check` and `check-model` fail on a
//! wrong derivative. It is a separate package: the `revode` binary neither
//! depends on it nor links the broken model, in any build (the test
//! `plain_cli_never_knows_the_test_models` in revode-cli checks that).

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = revode::register_model(revode_testing::HhBrokenVjp::default()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    revode_cli::main()
}
