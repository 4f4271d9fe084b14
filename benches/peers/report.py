#!/usr/bin/env python3
"""Write docs/performance.md (and an SVG plot) from revode's and the peers' JSON.

    python3 benches/peers/report.py [--revode results/revode.json] [--peers results/peers.json]
                                    [--stiff results/revode_stiff.json,results/revode_robertson.json]
                                    [--out docs/performance.md] [--svg docs/performance-params.svg]
                                    [--allow-loaded]

Without --peers, the newest committed measured/peers-*.json is used. Standard library only, so it
runs without the peers' virtual environment (CI runs it on a quick revode run as a smoke test).

Load: every engine's figures carry the load average before and after its runs (loadwatch.py).
If any engine was measured above a 1-minute load of 1.5, the script refuses to write the page
(exit 3) unless --allow-loaded is given, in which case those rows and the page are loudly
marked as not fair. Engines without recorded load are marked "load not recorded".
"""
import argparse
import glob
import json
import math
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

import loadwatch
import stiff_report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

PROBLEMS = [
    ("hh_seed_final", "HH seed problem: Euler dt = 0.01 over [0, 600] (60 000 steps), loss = Σ u(600), P = 3"),
    ("hh_seed_all_steps", "HH seed problem, loss = Σ over all 60 001 states (Julia's `sum(sol)`), P = 3"),
    ("hh_dopri5_final", "HH, adaptive 5th-order RK at rtol = atol = 1e-8 over [0, 600], loss = Σ u(600), P = 3"),
    ("hh_network_10", "hh_network N = 10: Euler dt = 0.01 over [0, 100], loss = Σ E_i(100), P = 130"),
    ("hh_network_50", "hh_network N = 50, same, P = 2 650"),
    ("hh_network_100", "hh_network N = 100, same, P = 10 300"),
]
N_PARAMS = {"hh_network_10": 130, "hh_network_50": 2650, "hh_network_100": 10300}


def load(path):
    with open(path) as f:
        return json.load(f)


def newest_measured(prefix="peers"):
    files = sorted(glob.glob(os.path.join(HERE, "measured", f"{prefix}-*.json")))
    return files[-1] if files else None


def diffsol_records(doc):
    """Flattens peer_diffsol's per-problem document into the peers' record schema."""
    out = []
    for problem, runs in doc.get("problems", {}).items():
        if runs.get("status") == "not offered":
            emu = runs.get("emulation", {})
            res = emu.get("result") if isinstance(emu, dict) else None
            note = "no fixed-step method in diffsol; " + ("emulated Euler tableau + StepVjp" if res else "not offered")
            rec = {"engine": "diffsol", "problem": problem, "method": "euler_emulated_step_vjp", "note": note}
            if res:
                rec.update(gradient_ms=res["timing"]["median_ms"], first_call_ms=res["timing"]["first_call_ms"],
                           grad=res["gradient"],
                           peak_mem_gradient_mib=res.get("peak_memory", {}).get("vmhwm_delta_kib", 0) / 1024)
            else:
                rec["error"] = runs.get("why", "not offered")
            out.append(rec)
            continue
        for method, run in runs.items():
            if not isinstance(run, dict) or "timing" not in run or method in ("forward", "euler_forward"):
                continue
            fwd_key = "euler_forward" if method.startswith("euler") else "forward"
            fwd = runs.get(fwd_key, {}).get("timing", {})
            out.append({
                "engine": "diffsol", "problem": problem, "method": method,
                "forward_ms": fwd.get("median_ms"), "gradient_ms": run["timing"]["median_ms"],
                "first_call_ms": run["timing"].get("first_call_ms"), "grad": run.get("gradient"),
                "peak_mem_gradient_mib": run.get("peak_memory", {}).get("vmhwm_delta_kib", 0) / 1024,
                "note": "Tsit45 rtol=atol=1e-8" if not method.startswith("euler") else "Euler dt=0.01 via custom tableau",
            })
    return out


def reference_for(problem, revode_records):
    """The shared reference gradient of a problem (see the page's method notes)."""
    wanted = "reference_rk4_discrete_dt5e-4" if problem == "hh_dopri5_final" else "discrete_adjoint_all"
    for r in revode_records:
        if r["problem"] == problem and r["method"] == wanted and "grad" in r:
            return r["grad"], wanted
    return None, None


def rel_error(grad, ref, scale_of=None):
    """max_i |grad_i - ref_i| / max_j |scale_of_j| (scale_of defaults to ref)."""
    if grad is None or ref is None or len(grad) != len(ref):
        return None
    try:
        g = [float(x) for x in grad]
    except (TypeError, ValueError):
        return float("nan")
    if not all(math.isfinite(x) for x in g):
        return float("nan")
    scale = max(abs(x) for x in (ref if scale_of is None else scale_of)) or 1.0
    return max(abs(a - b) for a, b in zip(g, ref)) / scale


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


def memory_of(r):
    if r.get("engine") == "revode":
        b = r.get("peak_store_bytes")
        return None if b is None else f"{b / 1024:.1f} KiB store"
    m = r.get("peak_mem_gradient_mib")
    return None if m is None else f"{m:.1f} MiB RSS Δ"


def engine_loads(revode_doc, peers_doc, diffsol_doc, stiff_docs=()):
    """{engine: load record or None}. Peers: per-peer loads of run_peers.py; an older peers
    file without them falls back to its machine-wide load at start and end.  revode's stiff
    bench binaries each have their own entry ("revode (stiff_figures)", ...)."""
    loads = {"revode": revode_doc.get("load")}
    if diffsol_doc is not None:
        loads["diffsol"] = diffsol_doc.get("load")
    for key, doc in stiff_docs:
        loads[key] = doc.get("load")
    per_peer = peers_doc.get("loads") or {}
    start = peers_doc.get("machine", {}).get("loadavg_at_start")
    end = peers_doc.get("loadavg_at_end")

    def floats(v):
        try:
            return [float(x) for x in v] if v else None
        except (TypeError, ValueError):
            return None
    for r in peers_doc.get("records", []):
        e = r.get("engine")
        if e and e not in loads:
            if e in per_peer:
                loads[e] = per_peer[e]
            elif start or end:
                loads[e] = {"before": floats(start), "after": floats(end),
                            "note": "whole peer run (no per-engine record)"}
            else:
                loads[e] = None
    return loads


def load_status(load):
    w = loadwatch.worst(load)
    if w is None:
        return "load not recorded"
    if w > loadwatch.LOAD_LIMIT:
        return f"⚠ LOADED ({w:.2f} > {loadwatch.LOAD_LIMIT})"
    return "ok"


def load_table(loads):
    out = ["| engine | 1/5/15-min load before | after | waited for quiet | status |",
           "|---|---|---|---:|---|"]

    def three(v):
        return " / ".join(f"{x:.2f}" for x in v) if v else "—"
    for e, load in loads.items():
        load = load or {}
        waited = load.get("waited_s")
        out.append(f"| {e} | {three(load.get('before'))} | {three(load.get('after'))} | "
                   f"{'—' if waited is None else f'{waited:.0f} s'} | {load_status(load or None)} |")
    return "\n".join(out)


def rows_for(problem, records, ref):
    rows = []
    for r in records:
        if r.get("problem") != problem:
            continue
        err = r.get("error")
        grad = r.get("grad")
        sub_ref = ref
        partial = False
        summary = r.get("grad_summary")
        if grad is None and summary and ref and len(ref) >= 20:
            # large P: the peer kept only its first and last 10 entries
            grad = list(summary.get("first10", [])) + list(summary.get("last10", []))
            sub_ref = list(ref[:10]) + list(ref[-10:])
            partial = True
        elif grad is None and r.get("grad_first_chunk") and ref:
            grad = r["grad_first_chunk"]
            sub_ref = list(ref[:len(grad)])
            partial = True
        ratio = None
        if r.get("forward_ms") and r.get("gradient_ms"):
            ratio = r["gradient_ms"] / r["forward_ms"]
        rows.append({
            "engine": r.get("engine", "?"),
            "method": r.get("method", "?"),
            "config": r.get("config", ""),
            "forward": r.get("forward_ms"),
            "gradient": r.get("gradient_ms"),
            "ratio": ratio,
            "first": r.get("first_call_ms"),
            "err": None if err else rel_error(grad, sub_ref, scale_of=ref),
            "err_partial": partial,
            "mem": memory_of(r),
            "note": (err.splitlines()[0][:120] if err else r.get("note", "")) or "",
            "estimated": r.get("estimated", False),
        })
    rows.sort(key=lambda x: (x["gradient"] is None, x["gradient"] or 0))
    return rows


def table(rows, flagged):
    out = ["| engine | method | configuration | forward ms | gradient ms | gradient/forward | first call ms | rel. error | memory | note |",
           "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for x in rows:
        grad = fmt(x["gradient"]) + (" (est.)" if x["estimated"] else "")
        note = x["note"]
        if x["engine"] in flagged:
            note = f"**{flagged[x['engine']]}** {note}".strip()
        out.append(f"| {x['engine']} | {x['method']} | {x['config'] or '—'} | {fmt(x['forward'])} | {grad} | "
                   f"{fmt(x['ratio'])} | {fmt(x['first'])} | {fmt(x['err'], 2)}{' ‡' if x['err_partial'] and x['err'] is not None else ''} | "
                   f"{x['mem'] or '—'} | {note} |")
    return "\n".join(out)


def best(records, problem, engine, method_prefix):
    times = [r["gradient_ms"] for r in records if r.get("problem") == problem and r.get("engine") == engine
             and r.get("method", "").startswith(method_prefix) and r.get("gradient_ms") and not r.get("error")]
    return min(times) if times else None


def svg_plot(records, path):
    """Gradient time against the number of parameters, log-log."""
    series = [
        ("revode adjoint", "revode", "discrete_adjoint", "#1b7837"),
        ("JAX reverse, jax.checkpoint on the scan body", "jax", "euler_scan_checkpoint_body", "#2166ac"),
        ("JAX reverse, plain", "jax", "euler_scan_reverse", "#92c5de"),
        ("JAX forward mode (N ≥ 50 estimated)", "jax", "euler_scan_forward_jacfwd", "#b2182b"),
        ("diffrax RecursiveCheckpointAdjoint(every step)", "diffrax", "euler_RecursiveCheckpointAdjoint", "#762a83"),
    ]
    pts = {}
    for label, engine, prefix, color in series:
        xs = []
        for prob, p in N_PARAMS.items():
            t = best(records, prob, engine, prefix)
            if t:
                xs.append((p, t))
        pts[label] = (xs, color)
    all_pts = [pt for xs, _ in pts.values() for pt in xs]
    w, h, left, bottom, top, right = 800, 420, 70, 50, 20, 340
    if not all_pts:
        body = '<text x="20" y="40">no network results</text>'
    else:
        xmin, xmax = 100, 20000
        ymin = 10 ** math.floor(math.log10(min(t for _, t in all_pts)))
        ymax = 10 ** math.ceil(math.log10(max(t for _, t in all_pts)))
        pw, ph = w - left - right, h - top - bottom

        def sx(x):
            return left + pw * (math.log10(x) - math.log10(xmin)) / (math.log10(xmax) - math.log10(xmin))

        def sy(y):
            return top + ph * (1 - (math.log10(y) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin)))

        parts = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
        for e in range(int(math.log10(ymin)), int(math.log10(ymax)) + 1):
            y = sy(10 ** e)
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{10 ** e:g}</text>')
        for x in (100, 1000, 10000):
            parts.append(f'<text x="{sx(x):.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{x:g}</text>')
        parts.append(f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle" font-size="12">parameters P (hh_network N = 10, 50, 100)</text>')
        parts.append(f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" text-anchor="middle" font-size="12">gradient time (ms)</text>')
        ly = top + 10
        for label, (xs, color) in pts.items():
            if not xs:
                continue
            d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(sorted(xs)))
            parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, y in xs:
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>')
            parts.append(f'<line x1="{left + pw + 10}" y1="{ly}" x2="{left + pw + 30}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
            parts.append(f'<text x="{left + pw + 34}" y="{ly + 4}" font-size="11">{label}</text>')
            ly += 18
        body = "\n".join(parts)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">\n'
           f'<rect width="{w}" height="{h}" fill="white"/>\n{body}\n</svg>\n')
    with open(path, "w") as f:
        f.write(svg)


def machine_line(peers_doc):
    try:
        model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next((l.split(":", 1)[1].strip() for l in model.splitlines() if l.startswith("Model name")), "?")
    except OSError:
        name = "?"
    return f"{name}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revode", default=os.path.join(HERE, "results", "revode.json"))
    ap.add_argument("--peers", default=None, help="peers JSON (default: results/peers.json, else newest measured/)")
    ap.add_argument("--diffsol", default=None, help="peer_diffsol JSON (default: results/diffsol.json, else newest measured/)")
    ap.add_argument("--stiff", default=None,
                    help="comma list of revode's stiff bench outputs (stiff_figures, "
                         "robertson_figures), or 'none' (default: those of "
                         "results/revode_stiff.json, results/revode_robertson.json that exist)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "docs", "performance-params.svg"))
    ap.add_argument("--allow-loaded", action="store_true",
                    help="write the page even if some engine ran above the load limit (marked)")
    args = ap.parse_args()

    revode_doc = load(args.revode)
    peers_path = args.peers
    if peers_path is None:
        default = os.path.join(HERE, "results", "peers.json")
        peers_path = default if os.path.exists(default) else newest_measured()
    peers_doc = load(peers_path) if peers_path and peers_path != "none" else {"records": []}
    revode_records = revode_doc["records"]
    records = revode_records + [r for r in peers_doc.get("records", []) if r.get("problem")]
    diffsol_path = args.diffsol
    if diffsol_path is None:
        default = os.path.join(HERE, "results", "diffsol.json")
        diffsol_path = default if os.path.exists(default) else newest_measured("diffsol")
    diffsol_doc = None
    if diffsol_path and diffsol_path != "none":
        diffsol_doc = load(diffsol_path)
        records += diffsol_records(diffsol_doc)

    if args.stiff is None:
        stiff_paths = stiff_report.default_paths(os.path.join(HERE, "results"))
    else:
        stiff_paths = [p for p in args.stiff.split(",") if p and p != "none"]
    stiff_docs = stiff_report.load_docs(stiff_paths)
    stiff_records = stiff_report.records_of(stiff_docs)

    loads = engine_loads(revode_doc, peers_doc, diffsol_doc, stiff_docs)
    flagged = {e: load_status(l) for e, l in loads.items()
               if (loadwatch.worst(l) or 0) > loadwatch.LOAD_LIMIT}
    if flagged and not args.allow_loaded:
        print("error: measured above a 1-minute load of %.1f, so the page was not written: %s. "
              "Re-run on a quiet machine (or pass --allow-loaded to write a page marked as not "
              "fair)." % (loadwatch.LOAD_LIMIT, "; ".join(f"{e} {loadwatch.worst(loads[e]):.2f}"
                                                          for e in flagged)), file=sys.stderr)
        sys.exit(3)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "<!-- generated by benches/peers/report.py; edit that script, not this file -->",
        "",
        f"Generated {now} on {machine_line(peers_doc)}. revode figures: "
        f"{'quick (shortened) run' if revode_doc.get('quick') else 'full problems'}; peer figures: "
        f"`{os.path.relpath(peers_path, ROOT) if peers_path and peers_path != 'none' else 'none'}`"
        f"{' and `' + os.path.relpath(diffsol_path, ROOT) + '`' if diffsol_path and diffsol_path != 'none' else ''}"
        f" (peers measured {peers_doc.get('date_utc', '?')}).",
        "",
    ]
    if flagged:
        lines += [
            f"> **⚠ NOT A FAIR COMPARISON.** Some engines were measured while the machine was busy "
            f"(1-minute load above {loadwatch.LOAD_LIMIT} on 2 cores): "
            + ", ".join(f"{e} ({loadwatch.worst(loads[e]):.2f})" for e in flagged)
            + ". Their rows are marked; their times are inflated by an unknown factor. "
            "Re-run `bash benches/peers/run_all.sh` on a quiet machine.",
            "",
        ]
    lines += [
        "Regenerate everything with one command: `bash benches/peers/run_all.sh` "
        "(builds revode's side and installs the peers' virtual environment first, then runs every "
        "engine one after the other, waiting for a quiet machine before each and recording the "
        "load average before and after it, and writes this page; it refuses to write it if any "
        f"engine ran above a 1-minute load of {loadwatch.LOAD_LIMIT}).",
        "",
        "**Load average around each engine's runs** (this machine has 2 cores; a single-threaded "
        "benchmark adds about 1 by itself):",
        "",
        load_table(loads),
        "",
        "**Configurations.** Each peer runs in the configuration its own documentation recommends "
        "for speed, named in the *configuration* column: JAX with `jax.checkpoint` on the `lax.scan` "
        "body (plain `jax.grad` through the scan as a second row); diffrax with "
        "`RecursiveCheckpointAdjoint(checkpoints=max_steps)`, which stores every step (\"set as many "
        "checkpoints as you have memory for\"; the default is a second row on the seed problem); "
        "CasADi's reverse mode compiled to C by its just-in-time compiler (the virtual machine as a "
        "second row).",
        "",
        "**Julia.** The Julia figures in the README (solve ~17 ms, ReverseDiff 2.1 s, Zygote 168 ms, "
        "ForwardDiff 26 ms on the seed problem) are the seed author's own measurements on their own "
        "machine, quoted as given; Julia is not installed or measured here.",
        "",
        "**Method.** Times are medians after a warm-up call (`first call` includes any tracing/JIT compile; "
        "revode has none). *gradient/forward* divides each engine's gradient time by its own forward time. "
        "*rel. error* is max_i |g_i − ref_i| / max_i |ref_i| against a shared reference: for fixed-step "
        "problems the exact gradient of the discrete solution (revode's discrete adjoint, which every "
        "discrete engine should match to rounding); for the adaptive problem the true ODE gradient, "
        "from the exact discrete adjoint of RK4 at dt = 5e-4. *memory*: revode reports the exact bytes its "
        "checkpoint store held; peers report the rise of peak RSS during a gradient call (coarse, and 0 "
        "where the allocator reused memory). All engines run single-threaded in float64.",
        "",
    ]
    for problem, title in PROBLEMS:
        ref, ref_name = reference_for(problem, revode_records)
        rows = rows_for(problem, records, ref)
        lines += [f"## {problem}", "", title, ""]
        if not rows:
            lines += ["No results.", ""]
            continue
        lines += [table(rows, flagged), ""]
        if ref_name:
            lines += [f"Reference: revode `{ref_name}`."
                      + (" ‡: error over the entries the peer kept (its first and last 10, or its "
                         "first forward-mode chunk), scaled by the whole reference."
                         if any(x["err_partial"] and x["err"] is not None for x in rows) else ""), ""]
    lines += stiff_report.section(stiff_records + records, flagged)
    svg_plot(records, args.svg)
    lines += ["## Gradient time against the number of parameters", "",
              f"![gradient time vs parameters]({os.path.relpath(args.svg, os.path.dirname(args.out))})", ""]
    notes = os.path.join(HERE, "performance-notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().rstrip(), ""]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out} and {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
