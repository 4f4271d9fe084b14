"""Backward Euler (`"method": "beuler"`) from Python: the same bits as the CLI,
Model.gradient/solve with the solver dict, and its failures as exceptions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import revode
from conftest import short_problem

BEULER = {"method": "beuler", "dt": 0.01}


def bits(a) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


def test_grad_and_solve_equal_the_cli(run_cli, tmp_path):
    problem = short_problem(solver=BEULER, loss={"kind": "all_steps"})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(problem))
    cli = run_cli(["grad", path, "--json"]).json()
    g = revode.grad(problem)
    assert g.solver == "beuler"
    assert bits(g.gradient) == bits(cli["gradient"])
    assert bits(g.gradient_u0) == bits(cli["gradient_u0"])
    implicit = g.stats["implicit"]
    assert implicit == cli["stats"]["implicit"]
    assert implicit["newton"]["iterations"] >= g.stats["steps"]

    cli = run_cli(["solve", path, "--json", "--every", "100"]).json()
    s = revode.solve(problem, every=100)
    assert bits(s.final_state) == bits(cli["final_state"])
    assert bits(np.ascontiguousarray(s.u)) == bits(np.array(cli["samples"])[:, 1:])
    assert s.newton == cli["newton"]


def test_model_methods_take_the_solver_dict():
    hh = revode.Model.builtin("hh")
    problem = short_problem(solver={**BEULER, "linear_solver": "dense"})
    g = hh.gradient(None, tspan=problem["tspan"], solver=problem["solver"])
    assert bits(g.gradient) == bits(revode.grad(problem).gradient)
    s = hh.solve(None, tspan=problem["tspan"], solver=BEULER)
    assert s.newton["jacobian_evaluations"] >= 1


def test_newton_failure_raises_solve_error_with_t_and_step(tmp_path, run_cli):
    (tmp_path / "sq.ode").write_text("init x=1\nx' = x^2\n")
    problem = {
        "model": {"file": str(tmp_path / "sq.ode")},
        "tspan": [0, 2],
        "solver": {"method": "beuler", "dt": 0.5},
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(problem))
    cli = run_cli(["grad", path])
    assert cli.code == 3
    with pytest.raises(revode.SolveError) as info:
        revode.grad(problem)
    e = info.value
    assert str(e) == cli.message()
    assert "did not converge at t = 0.5 (step 1)" in str(e)
    assert (e.t, e.step) == (0.5, 1)


@pytest.mark.parametrize(
    "solver,needle",
    [
        ({**BEULER, "newton_tol": 0.0}, "newton_tol = 0 is invalid"),
        ({**BEULER, "newton_tol": float("nan")}, "NaN"),
        ({**BEULER, "linear_solver": "lu"}, "unknown variant `lu`"),
    ],
    ids=["zero-tol", "nan-tol", "bad-solver"],
)
def test_bad_keys_raise_problem_error(solver, needle):
    with pytest.raises(revode.ProblemError) as info:
        revode.grad(short_problem(solver=solver))
    assert re.search(re.escape(needle), str(info.value)), str(info.value)
