#!/usr/bin/env bash
# One command for the side-by-side benchmarks: revode's figures, every peer,
# then docs/performance.md and its plot. Extra arguments go to run_peers.py
# (e.g. --quick, --peers jax,diffrax,casadi, --skip-install).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$here/results"
quick=()
for a in "$@"; do [ "$a" = "--quick" ] && quick=(--quick); done
(cd "$root" && cargo run --release -q -p revode-benches --bin revode_figures -- "${quick[@]}") \
  > "$here/results/revode.json"
if (cd "$root" && cargo metadata --format-version 1 --no-deps >/dev/null 2>&1) \
   && grep -q diffsol-peer "$root/benches/Cargo.toml"; then
  (cd "$root" && cargo run --release -q -p revode-benches --features diffsol-peer --bin peer_diffsol -- "${quick[@]}") \
    > "$here/results/diffsol.json" || echo "diffsol peer failed; see above" >&2
fi
python3 "$here/run_peers.py" "$@"
python3 "$here/report.py" --revode "$here/results/revode.json" --peers "$here/results/peers.json"
