"""Long solves release the GIL.

The proof does not time anything. The switch interval is set so long that a
thread holding the GIL never gives it up on its own: a Python thread can then
run only while the worker thread is blocked or has released the GIL. The
worker reads a counter right before and right after the engine call; a
counting thread advances it only if it ran *during* the call. Holding the GIL
through the call, the two readings would be equal, always. (The wall-time
comparison of two threads against one is in python/benchmarks/bench_python.py.)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Callable, Dict

import pytest

import revode
from conftest import REPO, short_problem

# 300 000 Euler steps: tens of milliseconds, ample time for the counting
# thread to be scheduled even on a busy machine.
LONG = short_problem(tspan=[0.0, 3000.0])

CALLS: Dict[str, Callable[[], Any]] = {
    "grad": lambda: revode.grad(LONG),
    "solve": lambda: revode.solve(LONG),
    "grad_batch": lambda: revode.grad_batch([LONG, LONG], threads=2),
    "model.gradient": lambda: revode.Model.builtin("hh").gradient(
        None, tspan=(0.0, 3000.0), solver={"method": "euler", "dt": 0.01}
    ),
    "check": lambda: revode.check(short_problem(tspan=[0.0, 100.0]), params=[0]),
    # Two L-BFGS iterations on the 600 ms example trace: a few gradients.
    "fit": lambda: revode.fit(
        {
            **json.loads((REPO / "examples" / "fit_hh" / "fit.json").read_text()),
            "sweeps": [{"tspan": [0.0, 600.0], "data": str(REPO / "examples" / "fit_hh" / "trace.csv"), "component": "E"}],
            "optimizer": {"max_iters": 2, "starts": 1},
        }
    ),
}


def counts_during(call: Callable[[], Any]) -> int:
    counter = [0]
    done = threading.Event()
    readings: Dict[str, int] = {}

    def worker() -> None:
        try:
            readings["before"] = counter[0]
            call()
            readings["after"] = counter[0]
        finally:
            done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while not done.is_set():
            counter[0] += 1
            time.sleep(0)  # releases the GIL, so the worker can take it back
        thread.join()
    finally:
        sys.setswitchinterval(old)
    return readings["after"] - readings["before"]


@pytest.mark.parametrize("name", list(CALLS))
def test_python_threads_run_during_a_solve(name):
    # Warm up: a first call may import modules (numpy's C API), and imports
    # can let other threads run even if the solve itself held the GIL.
    CALLS[name]()
    advanced = counts_during(CALLS[name])
    assert advanced > 0, f"{name}: no Python code ran during the call: the GIL was held"


def test_the_probe_sees_a_call_that_holds_the_gil():
    # Control: C code that keeps the GIL (sum over a range) and a pure-Python
    # loop both leave the counter where it was.
    assert counts_during(lambda: sum(range(2_000_000))) == 0
    assert counts_during(lambda: [x * x for x in range(200_000)]) == 0
