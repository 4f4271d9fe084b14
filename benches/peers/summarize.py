#!/usr/bin/env python3
"""Print a markdown table from a peers.json written by run_peers.py.

    python3 benches/peers/summarize.py [benches/peers/results/peers.json]
"""
import json
import os
import sys


def fmt(x, nd=1):
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    return ("%%.%df" % nd) % x


def steps(r):
    """Accepted / rejected steps of the adaptive solvers, the step count of fixed ones."""
    s = r.get("steps")
    if isinstance(s, dict):
        rej = s.get("rejected", s.get("rejected_error_test"))
        return "%s / %s" % (s.get("accepted"), rej) if rej is not None else str(s.get("accepted"))
    if s is not None:
        return str(s)
    for k in ("num_steps", "n_steps", "n_steps_expected"):
        if r.get(k) is not None:
            return str(r[k])
    return ""


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "peers.json")
    with open(path) as f:
        res = json.load(f)
    m = res["machine"]
    print("Machine: %s, %s CPUs; date %s; quick=%s; single-threaded\n" % (
        m.get("lscpu_Model_name"), m.get("lscpu_CPUs"), res["date_utc"], res["quick"]))
    print("| engine | problem | method | forward ms | gradient ms | first call ms | "
          "peak MiB | steps | gradient / error |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in res["records"]:
        if "error" in r:
            g = "ERROR: " + r["error"].splitlines()[0][:160].replace("|", "/")
        elif "grad" in r:
            shown = 6 if len(r["grad"]) == 6 else 3  # Robertson: all of k and y0
            g = "[" + ", ".join(("%.6g" % v) if not isinstance(v, str) else v
                                for v in r["grad"][:shown]) + (
                ", ...]" if len(r["grad"]) > shown else "]")
        elif "grad_summary" in r:
            s = r["grad_summary"]
            g = "sum %s, l2 %s" % (fmt(s["sum"], 6), fmt(s["l2"], 6))
        elif "grad_first_chunk" in r:
            g = "(estimated from 32-tangent chunk)"
        else:
            g = ""
        if r.get("estimated"):
            g += " *estimated*"
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("engine"), r.get("problem"), r.get("method"), fmt(r.get("forward_ms")),
            fmt(r.get("gradient_ms")), fmt(r.get("first_call_ms")),
            fmt(r.get("peak_mem_gradient_mib")), steps(r), g))


if __name__ == "__main__":
    main()
