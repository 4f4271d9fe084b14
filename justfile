# Convenience recipes; each is a plain cargo command (just is optional).

# The main job on the bundled seed problem.
grad:
    cargo run --release -p revode-cli -- grad fixtures/hh_seed.json

# Every test, as CI runs it.
test:
    cargo test --workspace --release

# Everything CI checks.
ci:
    bash .ci/run

# Criterion benches and the seed figures as JSON.
bench:
    cargo bench -p revode-benches
    cargo run --release -p revode-benches --bin seed_figures
    cargo run --release -p revode-benches --bin model_file_figures
