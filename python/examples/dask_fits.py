"""Fit many recorded cells over a dask.distributed cluster, one task per cell.

Each "cell" is a synthetic recording: the Hodgkin-Huxley seed model with its
conductances (g_Na, g_Kd, g_leak) drawn within +-15 % of the seed's, solved
for 20 ms and sampled every 0.1 ms. Each task fits one cell with scipy's
L-BFGS-B, every loss and gradient coming from revode. The fits on the cluster
are bitwise identical to the same fits run in a local loop: each task is
deterministic and runs the same engine.

    python python/examples/dask_fits.py                          # LocalCluster, 2 workers
    python python/examples/dask_fits.py tcp://scheduler:8786     # an existing cluster
    python python/examples/dask_fits.py --cells 100              # more cells

Run as a script, its functions travel to the workers by value (Dask pickles
__main__'s functions with cloudpickle); only revode, numpy and scipy must be
installed there.

On a real cluster every worker needs revode installed (the wheel built by
`maturin build --release`, see docs/python.md), numpy and scipy.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
import scipy.optimize

import revode

SEED_PARAMS = np.array([70.0, 10.0, 0.05])  # the seed problem's g_Na, g_Kd, g_leak
SOLVER = {"method": "euler", "dt": 0.01}
WINDOW_MS = 20.0
EVERY = 10  # steps between samples: 0.1 ms


def make_cells(n_cells: int, seed: int = 0) -> List[Dict[str, Any]]:
    """Synthetic recordings: one dict per cell with its true conductances,
    the sample times and the membrane potential there."""
    rng = np.random.default_rng(seed)
    hh = revode.Model.builtin("hh")
    cells = []
    for k in range(n_cells):
        true = SEED_PARAMS * rng.uniform(0.85, 1.15, size=3)
        s = hh.solve(true, tspan=(0.0, WINDOW_MS), solver=SOLVER, every=EVERY)
        cells.append({"cell": k, "true": true, "times": s.t[1:], "values": s.u[1:, 0]})
    return cells


def fit_cell(cell: Dict[str, Any]) -> Dict[str, Any]:
    """Fits one cell's conductances from the seed's (in log space), with the
    exact gradient from revode. Runs on a Dask worker."""
    problem = {
        "model": {"name": "hh"},
        "tspan": [0.0, float(cell["times"][-1])],
        "solver": SOLVER,
        "loss": {"kind": "trace_mse", "component": 0, "times": cell["times"], "values": cell["values"]},
    }

    def loss_and_gradient(theta: np.ndarray):
        g = np.exp(theta)
        r = revode.grad({**problem, "params": g})
        return r.loss, r.gradient * g

    result = scipy.optimize.minimize(
        loss_and_gradient,
        np.log(SEED_PARAMS),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 200, "ftol": 1e-15, "gtol": 1e-10},
    )
    return {
        "cell": cell["cell"],
        "fitted": np.exp(result.x),
        "loss": float(result.fun),
        "iterations": int(result.nit),
        "evaluations": int(result.nfev),
    }


def fit_local(cells: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [fit_cell(c) for c in cells]


def fit_on_cluster(client: Any, cells: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One task per cell; results in cell order."""
    futures = client.map(fit_cell, cells, pure=False)
    return client.gather(futures)


def same_results(a: List[Dict[str, Any]], b: List[Dict[str, Any]]) -> bool:
    return all(
        x["cell"] == y["cell"]
        and x["loss"] == y["loss"]
        and x["fitted"].tobytes() == y["fitted"].tobytes()
        for x, y in zip(a, b)
    ) and len(a) == len(b)


def main(address: Optional[str] = None, n_cells: int = 8) -> bool:
    from dask.distributed import Client, LocalCluster

    cells = make_cells(n_cells)
    if address is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        cluster = None
        client = Client(address)
    try:
        started = time.perf_counter()
        remote = fit_on_cluster(client, cells)
        remote_seconds = time.perf_counter() - started
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    started = time.perf_counter()
    local = fit_local(cells)
    local_seconds = time.perf_counter() - started

    print(f"{'cell':>4}  {'true g_Na, g_Kd, g_leak':>30}  {'fitted':>30}  {'loss':>9}  iters")
    for cell, r in zip(cells, remote):
        print(
            f"{r['cell']:4d}  {np.array2string(cell['true'], precision=4):>30}  "
            f"{np.array2string(r['fitted'], precision=4):>30}  {r['loss']:9.1e}  {r['iterations']:5d}"
        )
    identical = same_results(remote, local)
    print(f"cluster {remote_seconds:.2f} s, local loop {local_seconds:.2f} s; identical: {identical}")
    return identical


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scheduler", nargs="?", help="scheduler address (default: a LocalCluster)")
    parser.add_argument("--cells", type=int, default=8, help="number of cells to fit")
    args = parser.parse_args()
    # exit 1 if the cluster's results differ from the local loop's
    sys.exit(0 if main(args.scheduler, args.cells) else 1)
