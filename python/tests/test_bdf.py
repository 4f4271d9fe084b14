"""BDF (`"method": "bdf"`) from Python: Robertson's kinetics give the CLI's
bits through `revode.grad` and `Model.gradient`, and a bad key is a
ProblemError."""

from __future__ import annotations

import json

import numpy as np
import pytest

import revode
from conftest import FIXTURES, REPO


def bits(a) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


def robertson(t1: float = 40.0) -> dict:
    problem = json.loads((FIXTURES / "robertson_bdf.json").read_text())
    problem["model"] = {"file": str(REPO / "models" / "robertson.ode")}
    problem["tspan"] = [0.0, t1]
    return problem


def test_grad_equals_the_cli(run_cli, tmp_path):
    problem = robertson()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(problem))
    cli = run_cli(["grad", path, "--json"]).json()
    g = revode.grad(problem)
    assert g.solver == "bdf"
    assert bits(g.gradient) == bits(cli["gradient"])
    assert bits(g.gradient_u0) == bits(cli["gradient_u0"])
    assert g.stats["newton"] == cli["stats"]["newton"]
    assert g.stats["newton"]["forward"]["factorizations"] >= 1


def test_model_gradient_takes_the_solver_dict():
    problem = robertson()
    model = revode.Model.from_file(REPO / "models" / "robertson.ode")
    g = model.gradient(
        None,
        tspan=problem["tspan"],
        solver=problem["solver"],
        loss=problem.get("loss"),
        adjoint=problem.get("adjoint"),
    )
    assert bits(g.gradient) == bits(revode.grad(problem).gradient)
    s = model.solve(None, tspan=problem["tspan"], solver=problem["solver"])
    assert s.steps > 10
    # mass is conserved by the kinetics
    assert abs(float(np.sum(s.final_state)) - 1.0) < 1e-6


def test_bad_bdf_key_is_a_problem_error():
    problem = robertson()
    problem["solver"] = {**problem["solver"], "max_order": 6}
    with pytest.raises(revode.ProblemError):
        revode.grad(problem)
