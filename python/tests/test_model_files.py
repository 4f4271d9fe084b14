"""Model files (.ode): Model.from_file and {"file": ...} model specs in problem dicts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import revode
from conftest import FIXTURES, REPO, short_problem
from test_grad import assert_matches_cli, same_bits

SEED_ODE = REPO / "models" / "seed_hh.ode"
SOLVER = {"method": "euler", "dt": 0.01}


def test_from_file_names_and_defaults():
    m = revode.Model.from_file(SEED_ODE)
    assert m.param_names == ["g_Na", "g_Kd", "g_leak"]
    assert m.state_names == ["E", "m", "h", "n"]
    assert same_bits(m.default_params, [70.0, 10.0, 0.05])
    assert same_bits(m.default_u0, [-59.0, 0.2, 0.9, 0.1])


def test_from_file_gradient_equals_the_cli(run_cli):
    fixture = FIXTURES / "seed_hh_file.json"
    cli = run_cli(["grad", fixture, "--json"]).json()
    spec = json.loads(fixture.read_text())
    m = revode.Model.from_file(SEED_ODE)
    g = m.gradient(
        None, tspan=spec["tspan"], solver=spec["solver"], loss=spec["loss"], adjoint=spec["adjoint"]
    )
    assert_matches_cli(g, cli)
    assert_matches_cli(revode.grad(fixture), cli)
    # the file's gradient agrees with the built-in hh's (a different
    # evaluation order: to rounding, not bitwise)
    builtin = revode.grad(FIXTURES / "hh_seed.json")
    np.testing.assert_allclose(g.gradient, builtin.gradient, rtol=1e-9)


def test_relative_file_in_a_dict_is_from_the_working_directory(run_cli, monkeypatch):
    cli = run_cli(["grad", FIXTURES / "seed_hh_file.json", "--json"]).json()
    problem = json.loads((FIXTURES / "seed_hh_file.json").read_text())
    monkeypatch.chdir(REPO)
    problem["model"] = {"file": "models/seed_hh.ode"}
    assert_matches_cli(revode.grad(problem), cli)
    results = revode.grad_batch([problem, problem], threads=2)
    assert all(same_bits(r.gradient, cli["gradient"]) for r in results)
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(revode.ProblemError, match="models/seed_hh.ode"):
        revode.grad(problem)
    # Model.from_file keeps the absolute path: changing directory later is fine
    m = revode.Model.from_file(REPO / "models" / "seed_hh.ode")
    assert m.spec["file"] == str(SEED_ODE)


def test_model_file_errors_match_the_cli(run_cli, tmp_path):
    bad = tmp_path / "bad.ode"
    bad.write_text("par g=1\nx' = -g*y\ninit x=1\ndone\n")
    problem = short_problem(model={"file": str(bad)})
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    cli = run_cli(["grad", path])
    assert cli.code == 2
    message = cli.message()
    assert str(bad) in message
    with pytest.raises(revode.ProblemError) as info:
        revode.grad(path)
    assert str(info.value) == message
    with pytest.raises(revode.ProblemError) as info:
        revode.Model.from_file(bad)
    assert str(info.value) == message
    with pytest.raises(revode.ProblemError, match="cannot read|No such file"):
        revode.Model.from_file(tmp_path / "missing.ode")


def test_file_models_pickle_and_release_the_gil():
    m = revode.Model.from_file(SEED_ODE)
    back = pickle.loads(pickle.dumps(m))
    assert back.param_names == m.param_names
    a = m.gradient(None, tspan=(0, 5), solver=SOLVER)
    b = back.gradient(None, tspan=(0, 5), solver=SOLVER)
    assert same_bits(a.gradient, b.gradient)
    from test_gil import counts_during

    m.gradient(None, tspan=(0, 3000), solver=SOLVER)
    assert counts_during(lambda: m.gradient(None, tspan=(0, 3000), solver=SOLVER)) > 0
