"""The examples run and do what they claim: the scipy fit recovers the seed
conductances; the Dask fits on a LocalCluster with 2 workers equal a local loop."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest

from conftest import REPO

EXAMPLES = REPO / "python" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_scipy_fit_recovers_the_seed_conductances(capsys):
    fit_scipy = load("fit_scipy")
    out = fit_scipy.main()
    assert out["gradient_rel_error"] < 1e-4
    np.testing.assert_allclose(out["fitted"], out["true"], rtol=1e-6)
    assert out["result"].success
    assert "L-BFGS-B" in capsys.readouterr().out


def test_dask_fits_on_a_local_cluster_equal_a_local_loop():
    # Run as a user runs it: a script on a LocalCluster with 2 worker
    # processes; it exits 1 if any fit differs from the local loop's.
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_fits.py"), "--cells", "4"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical: True" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()[1:5]]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]


def test_dask_fits_recover_the_true_conductances():
    dask_fits = load("dask_fits")
    cells = dask_fits.make_cells(2, seed=1)
    for cell, r in zip(cells, dask_fits.fit_local(cells)):
        np.testing.assert_allclose(r["fitted"], cell["true"], rtol=1e-6)


def test_dask_tasks_raise_revode_errors():
    from dask.distributed import Client, LocalCluster

    import revode

    bad = {"model": {"name": "hh"}, "tspan": [0, 5], "solver": {"method": "euler", "dt": 0.01},
           "params": [1e9, 10, 0.05]}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        future = client.submit(revode.grad, bad, pure=False)
        with pytest.raises(revode.SolveError) as info:
            future.result(timeout=300)
    assert info.value.t is not None
