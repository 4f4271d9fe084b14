#!/usr/bin/env bash
# One command for the side-by-side benchmarks: revode (revode_figures, and the stiff
# benches stiff_figures / robertson_figures where this checkout has them), diffsol and every
# Python peer in one run, then docs/performance.md and its plot.
#
#   bash benches/peers/run_all.sh                 # full problems (the run of record)
#   bash benches/peers/run_all.sh --quick         # shortened problems: a smoke test
#                                                 # (page in benches/peers/results/, not docs/)
#
# Order: build revode's and diffsol's benchmark binaries and install the peers' virtual
# environment FIRST (no compiler or pip runs during a measurement), then measure each engine
# in turn. Before each engine it waits for the 1-minute load average to fall to
# LOAD_SETTLE_TARGET (default 1.0, at most LOAD_SETTLE_MAX_S = 300 s) and records
# /proc/loadavg before and after it; report.py refuses to write the page if any engine ran
# above a load of 1.5 (2 cores). Options: --allow-loaded writes a page marked "not fair"
# instead; every other argument goes to run_peers.py (e.g. --peers jax,diffrax,casadi,
# --reps 7, --skip-install).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$here/results"
quick=()
report_args=()
peer_args=()
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick); peer_args+=("$a") ;;
    --allow-loaded) report_args+=("$a") ;;
    *) peer_args+=("$a") ;;
  esac
done

echo "== build and install (nothing is measured yet)" >&2
(cd "$root" && cargo build --release -q -p revode-benches --bin revode_figures)
diffsol=0
if [ ${#quick[@]} -gt 0 ]; then
  # peer_diffsol always runs the full problems, which the quick revode figures can't be
  # compared with: left out of a --quick run.
  echo "diffsol peer skipped in --quick runs (it has no shortened problems)" >&2
elif grep -q diffsol-peer "$root/benches/Cargo.toml" \
   && (cd "$root" && cargo build --release -q -p revode-benches --features diffsol-peer --bin peer_diffsol); then
  diffsol=1
else
  echo "diffsol peer not built; its rows will be missing" >&2
fi
# revode's stiff bench binaries (issue #15), if this checkout has them: stiff_figures
# (backward Euler, HH cable 100 / 1000) and robertson_figures (BDF, Robertson). Each prints
# one JSON object (shape in README.md); a missing or failing binary only loses its rows.
stiff_bins=()
for bin in stiff_figures robertson_figures; do
  if [ -f "$root/benches/src/bin/$bin.rs" ]; then
    if (cd "$root" && cargo build --release -q -p revode-benches --bin "$bin"); then
      stiff_bins+=("$bin")
    else
      echo "$bin did not build; its rows will be missing" >&2
    fi
  else
    echo "$bin not in this checkout (benches/src/bin/$bin.rs); its rows will be missing" >&2
  fi
done
python3 "$here/run_peers.py" --install-only ${peer_args[@]+"${peer_args[@]}"}

echo "== measure" >&2
started=$(date +%s)
(cd "$root" && python3 "$here/loadwatch.py" --engine revode --out "$here/results/revode.json" -- \
  cargo run --release -q -p revode-benches --bin revode_figures -- ${quick[@]+"${quick[@]}"})
if [ "$diffsol" = 1 ]; then
  (cd "$root" && python3 "$here/loadwatch.py" --engine diffsol --out "$here/results/diffsol.json" -- \
    cargo run --release -q -p revode-benches --features diffsol-peer --bin peer_diffsol) \
    || echo "diffsol peer failed; see above" >&2
fi
stiff_outs=()
for bin in ${stiff_bins[@]+"${stiff_bins[@]}"}; do
  out="$here/results/revode_${bin%_figures}.json"
  if (cd "$root" && python3 "$here/loadwatch.py" --engine "revode ($bin)" --out "$out" -- \
      cargo run --release -q -p revode-benches --bin "$bin" -- ${quick[@]+"${quick[@]}"}); then
    stiff_outs+=("$out")
  else
    echo "$bin failed; see above (its rows will be missing)" >&2
  fi
done
python3 "$here/run_peers.py" --skip-install ${peer_args[@]+"${peer_args[@]}"}
echo "== measured in $(( $(date +%s) - started )) s" >&2

if [ ${#quick[@]} -gt 0 ]; then
  # a smoke test never replaces the page of record
  report_args+=(--out "$here/results/performance-quick.md" --svg "$here/results/performance-quick.svg")
fi
diffsol_arg=(--diffsol none)   # never mix in an older run's diffsol figures
[ "$diffsol" = 1 ] && diffsol_arg=(--diffsol "$here/results/diffsol.json")
stiff_arg=(--stiff none)     # never mix in an older run's stiff figures
if [ ${#stiff_outs[@]} -gt 0 ]; then
  stiff_arg=(--stiff "$(IFS=,; echo "${stiff_outs[*]}")")
fi
python3 "$here/report.py" --revode "$here/results/revode.json" --peers "$here/results/peers.json" \
  ${diffsol_arg[@]+"${diffsol_arg[@]}"} "${stiff_arg[@]}" ${report_args[@]+"${report_args[@]}"}
