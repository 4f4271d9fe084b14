#!/usr/bin/env python3
"""Create benches/peers/.venv (and .venv-jaxley), run every peer script problem by problem
(each in its own process, with a timeout) and collect all JSON records into
results/peers.json.

    python3.11 benches/peers/run_peers.py            # full problems
    python3.11 benches/peers/run_peers.py --quick    # shortened horizons, smoke test
    ... --skip-install --peers jax,casadi --save-measured
    ... --install-only                                # create/upgrade the venv, run nothing

Every failure (install, import, crash, timeout, no output) becomes a record with "error".
Before each peer the script waits for the machine to be quiet (loadwatch.settle) and it
records the load average before and after each peer's runs ("loads" in the output), which
report.py checks.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import loadwatch

HERE = os.path.dirname(os.path.abspath(__file__))
# requirements file -> its virtual environment.  Jaxley has its own: it brings pandas,
# matplotlib, networkx and scipy, which the other peers' environment does without.
VENVS = {
    "requirements.txt": os.path.join(HERE, ".venv"),
    "requirements-torch.txt": os.path.join(HERE, ".venv"),
    "requirements-jaxley.txt": os.path.join(HERE, ".venv-jaxley"),
}

NETS = ["hh_network_10", "hh_network_50", "hh_network_100"]
SEED = ["hh_seed_final", "hh_seed_all_steps", "hh_dopri5_final"]
ROBERTSON = ["robertson_1e-6", "robertson_1e-8"]
CABLES = ["hh_cable_100", "hh_cable_1000"]
PEERS = {
    "jax": ("peer_jax.py", SEED + NETS, "requirements.txt"),
    "diffrax": ("peer_diffrax.py", SEED + NETS + ROBERTSON, "requirements.txt"),
    "casadi": ("peer_casadi.py", SEED + ROBERTSON + ["hh_cable_100"], "requirements.txt"),
    "torchdiffeq": ("peer_torchdiffeq.py", SEED, "requirements-torch.txt"),
    "jaxley": ("peer_jaxley.py", CABLES, "requirements-jaxley.txt"),
}
# Seconds per (peer, problem) when --timeout is not given: 900, more for the big cable
# (two compiled variants, 4 000 steps of 1 000 compartments, every step stored).
DEFAULT_TIMEOUT = 900
PROBLEM_TIMEOUT = {"hh_cable_1000": 1800}


def python_of(req):
    return os.path.join(VENVS[req], "bin", "python")
# Single-threaded everywhere: fair to others on a shared machine and comparable to revode.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def sh(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def machine():
    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    try:
        for line in sh(["lscpu"]).stdout.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                             "Architecture"):
                info["lscpu_" + k.strip().replace(" ", "_").replace("(s)", "s")] = v.strip()
    except OSError as e:
        info["lscpu_error"] = repr(e)
    info["nproc"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            info["mem_total"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        info["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info


def install(skip, reqs):
    """Installs the requirement files `reqs`, each into its venv; returns {requirements
    file: None or error}."""
    status = {}
    for req in reqs:
        venv = VENVS[req]
        if not os.path.exists(python_of(req)):
            r = sh([sys.executable, "-m", "venv", venv])
            if r.returncode != 0:
                status[req] = "venv creation failed (%s): %s" % (venv, r.stderr[-1500:])
                continue
        if skip:
            continue
        print("installing", req, "into", os.path.relpath(venv, HERE), "...", file=sys.stderr,
              flush=True)
        r = sh([python_of(req), "-m", "pip", "install", "-q", "-r", os.path.join(HERE, req)])
        status[req] = None if r.returncode == 0 else (
            "pip install -r %s failed (rc %d): %s" % (req, r.returncode, r.stderr[-1500:]))
    return status


def run_one(peer, script, req, problem, args):
    cmd = [python_of(req), os.path.join(HERE, script), "--only", problem, "--reps",
           str(args.reps)]
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ, **THREAD_ENV)
    timeout = args.timeout or PROBLEM_TIMEOUT.get(problem, DEFAULT_TIMEOUT)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=HERE, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        recs = parse(out)
        recs.append({"engine": peer, "problem": problem, "method": "*",
                     "error": "timeout: process killed after %d s (records above, if any, "
                              "finished before)" % timeout})
        return recs
    recs = parse(r.stdout)
    if r.returncode != 0 or not recs:
        recs.append({"engine": peer, "problem": problem, "method": "*",
                     "error": "exit code %d, %d records; stderr tail: %s"
                              % (r.returncode, len(recs), r.stderr[-1500:])})
    for rec in recs:
        rec.setdefault("wall_s_process", round(time.time() - t0, 1))
    return recs


def parse(text):
    recs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    return recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--install-only", action="store_true",
                    help="create the venv and install the requirements, then stop")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--problems", default="", help="comma list (default: all of each peer)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds per (peer, problem); default %d, %s"
                         % (DEFAULT_TIMEOUT, ", ".join("%s %d" % kv
                                                       for kv in PROBLEM_TIMEOUT.items())))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "peers.json"))
    ap.add_argument("--update", action="store_true",
                    help="merge into an existing --out: replace only the (engine, problem) "
                         "pairs run now")
    ap.add_argument("--save-measured", action="store_true",
                    help="also copy the result to measured/peers-<date>.json")
    args = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    mach = machine()  # includes the load average at start (the machine may be shared)
    chosen = [p for p in args.peers.split(",") if p]
    unknown = [p for p in chosen if p not in PEERS]
    if unknown:
        ap.error("unknown peer(s) %s; known: %s" % (", ".join(unknown), ", ".join(PEERS)))
    reqs = sorted({PEERS[p][2] for p in chosen}, key=lambda r: r != "requirements.txt")
    inst = install(args.skip_install, reqs)
    if args.install_only:
        bad = {k: v for k, v in inst.items() if v}
        for k, v in bad.items():
            print("error: %s: %s" % (k, v), file=sys.stderr)
        sys.exit(1 if bad else 0)
    records = []
    loads = {}
    wanted = [p for p in args.problems.split(",") if p]
    for peer in chosen:
        script, problems, req = PEERS[peer]
        if inst.get(req):
            records.append({"engine": peer, "problem": "*", "method": "*",
                            "error": inst[req]})
            continue
        todo = [p for p in problems if not wanted or p in wanted]
        if not todo:
            continue
        waited = loadwatch.settle()
        before = loadwatch.read()
        print("%s: load before %s" % (peer, before), file=sys.stderr, flush=True)
        for problem in todo:
            print("running %s %s ..." % (peer, problem), file=sys.stderr, flush=True)
            recs = run_one(peer, script, req, problem, args)
            for rec in recs:
                brief = {k: rec.get(k) for k in ("method", "forward_ms", "gradient_ms",
                                                 "first_call_ms", "error")}
                print("   ", json.dumps(brief)[:300], file=sys.stderr, flush=True)
            records.extend(recs)
        loads[peer] = loadwatch.record(before, loadwatch.read(), waited)
        print("%s: load after %s" % (peer, loads[peer]["after"]), file=sys.stderr, flush=True)

    result = {
        "date_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "quick": args.quick,
        "machine": mach,
        "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
        "threads": THREAD_ENV,
        "loads": loads,
        "timing": "forward_ms / gradient_ms: median of up to --reps calls after a first call "
                  "(first_call_ms / forward_first_call_ms include tracing and JIT compile)",
        "records": records,
    }
    if args.update and os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        rerun = {(r.get("engine"), r.get("problem")) for r in records}
        kept = [r for r in old["records"] if (r.get("engine"), r.get("problem")) not in rerun]
        old.setdefault("updates", []).append({"date_utc": result["date_utc"],
                                              "rerun": sorted("%s/%s" % k for k in rerun)})
        old["records"] = kept + records
        old.setdefault("loads", {}).update(loads)
        result = old
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out, file=sys.stderr)
    if args.save_measured:
        d = os.path.join(HERE, "measured")
        os.makedirs(d, exist_ok=True)
        name = os.path.join(d, "peers-%s%s.json" % (started.date().isoformat(),
                                                   "-quick" if args.quick else ""))
        with open(name, "w") as f:
            json.dump(result, f, indent=1)
        print("wrote", name, file=sys.stderr)


if __name__ == "__main__":
    main()
