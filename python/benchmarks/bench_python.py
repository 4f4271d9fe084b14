"""Python-binding benchmarks: call overhead, threads, batch throughput.

    python python/benchmarks/bench_python.py [--repeat 200] [--batch 32] [--json out.json]

1. Overhead of one call on the seed problem (HH, Euler, 60 000 steps): the
   median of `revode.grad` (dict and path) and `Model.gradient` against the
   median of the engine's own `revode::gradient` timed inside Rust (what the
   CLI spends in-process, without starting, reading and printing). Target:
   at most 5 % or 0.2 ms.
2. Two Python threads each running one long gradient against one thread
   running one: about 1x on 2 free cores because the GIL is released (2x if
   it were held).
3. `grad_batch` throughput against a Python loop of `revode.grad` calls.

Take figures on a quiet machine: the medians move with other load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import revode
from revode import _revode

REPO = Path(__file__).resolve().parents[2]
SEED_PATH = REPO / "fixtures" / "hh_seed.json"


def median_seconds(f: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        f()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def overhead(repeat: int) -> Dict[str, Any]:
    seed = json.loads(SEED_PATH.read_text())
    hh = revode.Model.builtin("hh")
    calls: Dict[str, Callable[[], Any]] = {
        "revode.grad(dict)": lambda: revode.grad(seed),
        "revode.grad(path)": lambda: revode.grad(SEED_PATH),
        "Model.gradient": lambda: hh.gradient(
            seed["params"], seed["u0"], tspan=seed["tspan"], solver=seed["solver"],
            loss=seed["loss"], adjoint=seed["adjoint"],
        ),
    }
    for f in calls.values():  # warm up caches and the allocator
        f()
    # Interleave rounds so that drifting machine speed affects all alike.
    rounds = 5
    engine: List[float] = []
    python: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        engine.append(statistics.median(_revode._time_gradient(seed, repeat // rounds)))
        for name, f in calls.items():
            python[name].append(median_seconds(f, repeat // rounds))
    engine_s = statistics.median(engine)
    out: Dict[str, Any] = {"engine_in_process_ms": engine_s * 1e3, "calls": {}}
    for name, values in python.items():
        s = statistics.median(values)
        out["calls"][name] = {
            "ms": s * 1e3,
            "overhead_ms": (s - engine_s) * 1e3,
            "overhead_percent": 100 * (s - engine_s) / engine_s,
            "within_target": (s - engine_s) <= max(0.05 * engine_s, 0.2e-3),
        }
    return out


def threads(repeat: int) -> Dict[str, Any]:
    long = json.loads(SEED_PATH.read_text())
    long["tspan"] = [0.0, 3000.0]  # 300 000 steps
    long["adjoint"] = {"method": "discrete", "checkpoints": {"every": 548}}

    def one() -> float:
        started = time.perf_counter()
        revode.grad(long)
        return time.perf_counter() - started

    def two() -> float:
        workers = [threading.Thread(target=revode.grad, args=(long,)) for _ in range(2)]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - started

    one()
    single = statistics.median(one() for _ in range(repeat))
    double = statistics.median(two() for _ in range(repeat))
    return {
        "one_thread_ms": single * 1e3,
        "two_threads_ms": double * 1e3,
        "ratio": double / single,
        "cores": os.cpu_count(),
    }


def batch(n: int, repeat: int) -> Dict[str, Any]:
    seed = json.loads(SEED_PATH.read_text())
    problems = [dict(seed, params=[70.0 * (1 + 0.01 * k), 10.0, 0.05]) for k in range(n)]
    loop = statistics.median(
        median_seconds(lambda: [revode.grad(p) for p in problems], 1) for _ in range(repeat)
    )
    out: Dict[str, Any] = {"problems": n, "python_loop_per_s": n / loop}
    for threads_ in [1, None]:
        s = statistics.median(
            median_seconds(lambda: revode.grad_batch(problems, threads=threads_), 1)
            for _ in range(repeat)
        )
        key = f"grad_batch_threads_{threads_ or 'all'}_per_s"
        out[key] = n / s
        out[key.replace("_per_s", "_speedup")] = loop / s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="calls per overhead median")
    parser.add_argument("--batch", type=int, default=32, help="problems in the batch")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = {
        "load_average": os.getloadavg(),
        "overhead": overhead(args.repeat),
        "threads": threads(max(3, args.repeat // 40)),
        "batch": batch(args.batch, max(3, args.repeat // 40)),
    }
    o = figures["overhead"]
    print(f"load average {figures['load_average'][0]:.2f}")
    print(f"seed gradient in-process (Rust timer): {o['engine_in_process_ms']:.3f} ms")
    for name, c in o["calls"].items():
        print(
            f"  {name:22} {c['ms']:.3f} ms  overhead {c['overhead_ms']:+.3f} ms "
            f"({c['overhead_percent']:+.1f} %)  {'ok' if c['within_target'] else 'OVER TARGET'}"
        )
    t = figures["threads"]
    print(
        f"long gradient: one thread {t['one_thread_ms']:.1f} ms, two threads at once "
        f"{t['two_threads_ms']:.1f} ms (ratio {t['ratio']:.2f}; 1 = parallel, 2 = serialised)"
    )
    b = figures["batch"]
    print(
        f"{b['problems']} seed gradients: Python loop {b['python_loop_per_s']:.0f}/s, "
        f"grad_batch 1 thread {b['grad_batch_threads_1_per_s']:.0f}/s, "
        f"all cores {b['grad_batch_threads_all_per_s']:.0f}/s "
        f"({b['grad_batch_threads_all_speedup']:.2f}x the loop)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
