#!/usr/bin/env python3
"""Load average around a benchmark run, so that figures taken on a busy machine are caught.

    python3 loadwatch.py --engine revode --out results/revode.json -- CMD [ARGS...]

waits (up to LOAD_SETTLE_MAX_S seconds, default 300) until the 1-minute load average is at
most LOAD_SETTLE_TARGET (default 1.0), records /proc/loadavg, runs CMD with its stdout
written to --out, records /proc/loadavg again and adds

    "load": {"before": [1, 5, 15 min], "after": [...], "waited_s": ..., "limit": 1.5}

to the JSON object in --out. The exit code is CMD's. run_peers.py uses the same functions
around each peer. report.py refuses (or, with --allow-loaded, loudly marks) every engine
whose before or after 1-minute load exceeds LOAD_LIMIT = 1.5 (this is a 2-core machine: a
single-threaded benchmark adds about 1 by itself).
Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import time

LOAD_LIMIT = 1.5


def read():
    """(1, 5, 15)-minute load averages, or None where /proc/loadavg is missing."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def settle(target=None, max_s=None, log=sys.stderr):
    """Wait until the 1-minute load is at most `target` or `max_s` seconds have passed.
    Returns the seconds waited."""
    target = float(os.environ.get("LOAD_SETTLE_TARGET", 1.0)) if target is None else target
    max_s = float(os.environ.get("LOAD_SETTLE_MAX_S", 300)) if max_s is None else max_s
    t0 = time.time()
    told = False
    while True:
        load = read()
        waited = time.time() - t0
        if load is None or load[0] <= target or waited >= max_s:
            if load is not None and load[0] > target:
                print("loadwatch: load %.2f still above %.2f after %.0f s; measuring anyway "
                      "(the report will flag it if above %.1f)" % (load[0], target, waited,
                                                                    LOAD_LIMIT), file=log)
            return round(waited, 1)
        if not told:
            print("loadwatch: waiting for the 1-min load average (%.2f) to fall to %.2f "
                  "(at most %.0f s) ..." % (load[0], target, max_s), file=log, flush=True)
            told = True
        time.sleep(max(0.1, min(5.0, max_s - waited)))


def record(before, after, waited):
    return {"before": before, "after": after, "waited_s": waited, "limit": LOAD_LIMIT}


def worst(load):
    """Highest 1-minute load of a record (None if nothing was recorded)."""
    if not load:
        return None
    vals = [v[0] for v in (load.get("before"), load.get("after")) if v]
    return max(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True)
    ap.add_argument("--out", required=True, help="file for CMD's stdout (a JSON object)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("no command given")
    waited = settle()
    before = read()
    print("loadwatch: %s: load before %s" % (args.engine, before), file=sys.stderr, flush=True)
    with open(args.out, "w") as out:
        rc = subprocess.run(cmd, stdout=out).returncode
    after = read()
    print("loadwatch: %s: load after %s" % (args.engine, after), file=sys.stderr, flush=True)
    try:
        with open(args.out) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = None
    if isinstance(doc, dict):
        doc["load"] = record(before, after, waited)
        doc.setdefault("load_label", args.engine)  # report.py's name for this run's load
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    w = worst(record(before, after, waited))
    if w is not None and w > LOAD_LIMIT:
        print("loadwatch: WARNING: %s measured at load %.2f > %.1f: not a run of record"
              % (args.engine, w, LOAD_LIMIT), file=sys.stderr)
    sys.exit(rc)


if __name__ == "__main__":
    main()
