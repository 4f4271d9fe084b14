"""The stiff problems' section of docs/performance.md (issue #15): Robertson kinetics and the
HH cable, revode's rows (from the `stiff_figures` / `robertson_figures` bench binaries) next
to the peers' (CasADi/CVODES, diffrax, Jaxley).  Used by report.py; standard library only.

Input shape of a revode stiff bench binary (documented in README.md, "JSON of revode's stiff
bench binaries"): one JSON object on stdout, {"engine": "revode", "bench": <binary name>,
"quick": bool, "records": [record, ...]}, each record
{"engine": "revode", "problem", "method", "config"?, "forward_ms", "gradient_ms",
 "first_call_ms", "loss", "grad": [...], "steps"?: int or {"accepted", "rejected", ...},
 "peak_store_bytes"?, "trace_far_end_v"?: [...], "trace_every"?: int, "reference"?: bool,
 "error"?: str}.
"""
import json
import math
import os
import sys

PROBLEMS = [
    ("robertson_1e-6", "Robertson kinetics to T = 4e5 (k = 0.04, 3e7, 1e4; y0 = 1, 0, 0), "
                       "rtol = 1e-6, atol = 1e-8, loss y3(T), gradient w.r.t. k and y0 (P = 6)"),
    ("robertson_1e-8", "Robertson kinetics, rtol = 1e-8, atol = 1e-12, same loss (P = 6)"),
    ("hh_cable_100", "HH cable, 100 compartments, dt = 0.025 ms over [0, 100] (4 000 steps), "
                     "0.05 nA into compartment 0 on [5, 95) ms, loss = Σ_k V_far(t_k), "
                     "gradient w.r.t. g_Na, g_K, g_leak of every compartment (P = 300)"),
    ("hh_cable_1000", "HH cable, 1 000 compartments, same (P = 3 000)"),
]
NAMES = {p for p, _ in PROBLEMS}
DEFAULT_FILES = ("revode_stiff.json", "revode_robertson.json")


def default_paths(results_dir):
    return [os.path.join(results_dir, f) for f in DEFAULT_FILES
            if os.path.exists(os.path.join(results_dir, f))]


def load_docs(paths):
    """[(load key, doc)] of the stiff bench outputs that exist and parse; a missing or broken
    file (a binary that failed) is reported on stderr and skipped."""
    out = []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"warning: stiff bench output {path} skipped: {e}", file=sys.stderr)
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
            print(f"warning: {path} has no \"records\" list; skipped", file=sys.stderr)
            continue
        bench = doc.get("bench") or os.path.splitext(os.path.basename(path))[0]
        out.append((doc.get("load_label") or f"{doc.get('engine', 'revode')} ({bench})", doc))
    return out


def records_of(docs):
    recs = []
    for key, doc in docs:
        for r in doc["records"]:
            r = dict(r)
            r.setdefault("engine", doc.get("engine", "revode"))
            r["load_key"] = key
            recs.append(r)
    return recs


def floats(v):
    try:
        out = [float(x) for x in v]
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(x) for x in out) else None


def reference(problem, records):
    """(record, label) the rows are compared with: a record marked "reference": true, else
    revode's first error-free record of the problem, else None."""
    ok = [r for r in records if r.get("problem") == problem and not r.get("error")
          and floats(r.get("grad"))]
    marked = [r for r in ok if r.get("reference")]
    if marked:
        r = marked[0]
        return r, f"{r['engine']} `{r.get('method')}` (reference)"
    rev = [r for r in ok if r.get("engine") == "revode"]
    if rev:
        return rev[0], f"revode `{rev[0].get('method')}`"
    return None, None


def grad_diff(r, ref):
    """max_i |g_i - ref_i| / max_i |ref_i|; None where either gradient is missing."""
    if ref is None or r is ref:
        return None
    g, h = floats(r.get("grad")), floats(ref.get("grad"))
    if r.get("grad") is not None and g is None:
        return float("nan")
    if g is None or h is None or len(g) != len(h):
        return None
    scale = max(abs(x) for x in h) or 1.0
    return max(abs(a - b) for a, b in zip(g, h)) / scale


def trace_diff(r, ref):
    """max |ΔV| (mV) between two far-end traces saved at the same stride."""
    if ref is None or r is ref or r.get("trace_every") != ref.get("trace_every"):
        return None
    a, b = floats(r.get("trace_far_end_v")), floats(ref.get("trace_far_end_v"))
    if a is None or b is None or len(a) != len(b):
        return None
    return max(abs(x - y) for x, y in zip(a, b))


def steps_text(r):
    s = r.get("steps")
    if isinstance(s, dict):
        acc = s.get("accepted")
        rej = s.get("rejected", s.get("rejected_error_test"))
        return f"{acc} / {rej}" if rej is not None else f"{acc}"
    if isinstance(s, (int, float)):
        return f"{s:g}"
    return str(r["n_steps"]) if r.get("n_steps") is not None else "—"


def fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, float) and math.isnan(x):
        return "NaN/inf"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def memory_text(r):
    if r.get("peak_store_bytes") is not None:
        return f"{r['peak_store_bytes'] / 1024:.1f} KiB store"
    m = r.get("peak_mem_gradient_mib")
    return "—" if m is None else f"{m:.1f} MiB RSS Δ"


def table(problem, records, flagged):
    ref, label = reference(problem, records)
    cable = problem.startswith("hh_cable")
    head = ("| engine | method | configuration | forward ms | gradient ms | gradient/forward | "
            "first call ms | steps (acc. / rej.) | gradient Δ | "
            + ("trace max abs ΔV (mV) | " if cable else "") + "memory | note |")
    lines = [head, "|" + "---|" * 3 + "---:|" * 6 + ("---:|" if cable else "") + "---|---|"]
    rows = [r for r in records if r.get("problem") == problem]
    rows.sort(key=lambda r: (r.get("gradient_ms") is None, r.get("gradient_ms") or 0))
    for r in rows:
        err = r.get("error")
        fwd, grad = r.get("forward_ms"), r.get("gradient_ms")
        ratio = grad / fwd if fwd and grad else None
        note = (str(err).splitlines()[0][:120] if err else r.get("note", "")) or ""
        key = r.get("load_key", r.get("engine"))
        if key in flagged:
            note = f"**{flagged[key]}** {note}".strip()
        cells = [r.get("engine", "?"), r.get("method", "?"), r.get("config") or "—", fmt(fwd),
                 fmt(grad), fmt(ratio), fmt(r.get("first_call_ms")), steps_text(r),
                 "ref." if r is ref else fmt(grad_diff(r, ref), 2)]
        if cable:
            cells.append("ref." if r is ref else fmt(trace_diff(r, ref), 2))
        cells += [memory_text(r), note.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines, label


def section(records, flagged):
    """Markdown lines of the stiff problems' section (empty if no record has one).  Problems
    of revode's stiff benches that no peer runs (e.g. the seed problem with beuler) get a
    table of their own after the four shared ones."""
    extra = []
    for r in records:
        p = r.get("problem")
        if r.get("load_key") and p and p not in NAMES and p not in extra:
            extra.append(p)
    recs = [r for r in records if r.get("problem") in NAMES or
            (r.get("load_key") and r.get("problem") in extra)]
    if not recs:
        return []
    lines = ["## Stiff problems (issue #15)", "",
             "revode's rows come from `cargo run --release -p revode-benches --bin "
             "stiff_figures` (backward Euler, HH cable) and `--bin robertson_figures` (BDF, "
             "Robertson); the peers' from `run_peers.py`. *gradient Δ* is max_i |g_i − ref_i| "
             "/ max_i |ref_i| against the row named under each table. On the cable the schemes "
             "differ (revode: fully implicit backward Euler with Newton; Jaxley: "
             "exponential-Euler gates, then an implicit voltage step; CVODES: the ODE itself "
             "at rtol 1e-6), so their gradients differ by the schemes' O(dt) errors and the "
             "*trace* column (far-end V every 1 ms) is the like-for-like check. Peers: "
             "CVODES (BDF + adjoint) through CasADi; diffrax Kvaerno5 + PID with every step "
             "stored; Jaxley with its defaults (`bwd_euler`, no checkpointing) and with "
             "`checkpoint_lengths` as a second row. Configurations and model checks in "
             "`benches/peers/README.md`.", ""]
    titled = PROBLEMS + [(p, "From revode's stiff benches only (no peer runs it).")
                         for p in extra]
    for problem, title in titled:
        lines += [f"### {problem}", "", title, ""]
        if not any(r.get("problem") == problem for r in recs):
            lines += ["No results.", ""]
            continue
        body, label = table(problem, recs, flagged)
        lines += body + [""]
        if label:
            lines += [f"Compared with: {label}.", ""]
    return lines
