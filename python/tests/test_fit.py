"""revode.fit: the same fit as `revode fit --json`, to the last bit, from a
path or a dict; bad fit files raise the CLI's message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import revode

TRUE = [70.0, 10.0, 0.05]  # the seed model's (g_Na, g_Kd, g_leak)
SOLVER = {"method": "euler", "dt": 0.01}


@pytest.fixture(scope="module")
def trace_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed model's E every 0.5 ms over 50 ms, at the true conductances."""
    sol = revode.solve(
        {"model": {"name": "hh"}, "params": TRUE, "tspan": [0.0, 50.0], "solver": SOLVER, "loss": {"kind": "final"}},
        every=50,
    )
    path = tmp_path_factory.mktemp("fit") / "trace.csv"
    rows = "".join(f"{t!r},{u[0]!r}\n" for t, u in zip(sol.t.tolist(), sol.u.tolist()))
    path.write_text("t,E\n" + rows)
    return path


def fit_spec(data: str, **replace: Any) -> Dict[str, Any]:
    """A 50 ms fit from 1.3x the true conductances (a start known to recover)."""
    spec: Dict[str, Any] = {
        "model": {"name": "hh"},
        "params": [1.3 * p for p in TRUE],
        "free": {"g_Na": {"lower": 1.0, "upper": 200.0}, "g_Kd": {"lower": 0.0}, "g_leak": {"lower": 0.0}},
        "solver": SOLVER,
        "sweeps": [{"tspan": [0.0, 50.0], "data": data, "component": "E"}],
        "optimizer": {"max_iters": 200, "starts": 1},
    }
    spec.update(replace)
    return spec


def write(path: Path, spec: Any) -> Path:
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def test_fit_from_a_path_matches_the_cli_bit_for_bit(trace_csv: Path, run_cli) -> None:
    path = write(trace_csv.parent / "fit.json", fit_spec("trace.csv"))
    r = revode.fit(path)
    cli = run_cli(["fit", path, "--json", "--quiet"]).json()
    assert isinstance(r["params"], np.ndarray) and r["params"].dtype == np.float64
    assert r["params"].tolist() == cli["params"]
    assert r["param_names"] == cli["param_names"] == ["g_Na", "g_Kd", "g_leak"]
    assert r["loss"] == cli["loss"]
    assert r["iterations"] == cli["iterations"]
    assert r["history"].tolist() == cli["history"]
    assert r["stop_reason"] == cli["stop_reason"]
    assert r["converged"] and r["starts"][0]["converged"]
    assert r["all_params"].tolist() == cli["all_params"]
    assert r["lower"] == [1.0, 0.0, 0.0] and r["upper"] == [200.0, None, None]
    assert len(r["starts"]) == 1 and r["seconds"] > 0 and r["iterations"] > 5
    # The synthetic truth is recovered.
    np.testing.assert_allclose(r["params"], TRUE, rtol=1e-8)


def test_fit_from_a_dict_takes_data_from_the_working_directory(
    trace_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_path = revode.fit(write(trace_csv.parent / "fit.json", fit_spec("trace.csv")))
    monkeypatch.chdir(trace_csv.parent)
    from_dict = revode.fit(fit_spec("trace.csv"), quiet=False)
    assert from_dict["params"].tolist() == from_path["params"].tolist()
    assert from_dict["history"].tolist() == from_path["history"].tolist()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"tolerance": 1e-6}, "unknown field `tolerance`"),
        ({"sweeps": [{"tspan": [0.0, 50.0], "data": "trace.csv", "component": "V"}]}, "has no state `V`"),
        ({"free": {"g_Na": {"lower": 100.0}}}, None),
    ],
    ids=["unknown-key", "unknown-component", "start-outside-bounds"],
)
def test_bad_fit_files_raise_the_cli_message(
    trace_csv: Path, run_cli, change: Dict[str, Any], expected: Any
) -> None:
    path = write(trace_csv.parent / "bad_fit.json", fit_spec("trace.csv", **change))
    cli = run_cli(["fit", path, "--json", "--quiet"])
    assert cli.code == 2 and cli.stdout == ""
    with pytest.raises(revode.ProblemError) as err:
        revode.fit(path)
    assert str(err.value) == cli.message()
    if expected is not None:
        assert expected in str(err.value)


def test_a_spec_that_is_neither_dict_nor_path_is_a_problem_error() -> None:
    with pytest.raises(revode.ProblemError, match="a fit spec is a dict"):
        revode.fit(42)  # type: ignore[arg-type]


def test_a_solve_that_fails_at_the_start_is_a_solve_error(trace_csv: Path, run_cli) -> None:
    spec = fit_spec(
        "trace.csv",
        solver={"method": "dopri5", "rtol": 1e-6, "atol": 1e-9, "max_steps": 3},
        adjoint={"method": "continuous"},
    )
    path = write(trace_csv.parent / "failing_fit.json", spec)
    cli = run_cli(["fit", path, "--json", "--quiet"])
    assert cli.code == 3 and cli.stdout == ""
    with pytest.raises(revode.SolveError) as err:
        revode.fit(path)
    assert str(err.value) == cli.message()
    assert "max_steps = 3" in str(err.value) and err.value.t is not None and err.value.t > 0

