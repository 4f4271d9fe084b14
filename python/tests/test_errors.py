"""Every bad-input case of the CLI's problem-file tests (crates/revode-cli/tests/cli.rs)
raises ProblemError with the CLI's message; a blow-up raises SolveError with t."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import pytest

import revode
from conftest import short_problem


def network_problem(**model: Any) -> Dict[str, Any]:
    return {
        "model": {"name": "hh_network", **model},
        "tspan": [0.0, 5.0],
        "solver": {"method": "euler", "dt": 0.01},
        "loss": {"kind": "final", "weights": [1, 0, 0, 0, 1, 0, 0, 0]},
    }


# (id, command, problem dict, or raw file text when JSON cannot hold it, expected text)
CASES = [
    ("malformed-json", "grad", '{"model": {"name": "hh"}', "invalid JSON"),
    ("unknown-key", "grad", short_problem(tolerance=1e-6), "unknown field `tolerance`"),
    ("unknown-model", "grad", short_problem(model={"name": "lorenz"}), "unknown variant `lorenz`"),
    (
        "unknown-solver-key",
        "grad",
        short_problem(solver={"method": "euler", "dt": 0.01, "rtol": 1}),
        "unknown field `rtol`",
    ),
    ("params-length", "grad", short_problem(params=[70, 10]), "params has length 2, expected 3"),
    ("u0-length", "solve", short_problem(u0=[-59, 0.2, 0.9, 0.1, 0.0]), "u0 has length 5, expected 4"),
    (
        "weights-length",
        "grad",
        short_problem(loss={"kind": "final", "weights": [1]}),
        "loss weights has length 1, expected 4",
    ),
    ("overflowing-literal", "grad", json.dumps(short_problem()).replace("[0.0, 5.0]", "[0, 1e999]"), "invalid JSON"),
    ("nan-literal", "grad", json.dumps(short_problem()).replace("[0.0, 5.0]", "[0, NaN]"), "invalid JSON"),
    ("dt-zero", "grad", short_problem(solver={"method": "rk4", "dt": 0.0}), "dt must be positive"),
    ("dt-negative", "grad", short_problem(solver={"method": "rk4", "dt": -0.01}), "dt must be positive"),
    ("empty-span", "solve", short_problem(tspan=[5, 5]), "t0 < t1"),
    ("reversed-span", "solve", short_problem(tspan=[5, 1]), "t0 < t1"),
    ("network-n-zero", "grad", network_problem(n=0), "n must be at least 1, got 0"),
    ("network-n-huge", "grad", network_problem(n=1000000), "n must be at most 4096, got 1000000"),
    ("network-n-missing", "grad", network_problem(), "missing field `n`"),
    ("network-unknown-key", "grad", network_problem(n=2, neurons=3), "neurons"),
    (
        "budget-too-small",
        "grad",
        short_problem(adjoint={"method": "discrete", "checkpoints": {"budget_bytes": 100}}),
        "memory budget of 100 bytes is too small",
    ),
]

FUNCTIONS = {"grad": revode.grad, "solve": revode.solve}


def dict_form(cli_message: str, path: Path) -> str:
    """The CLI's message as it reads for a dict: the file's name becomes
    `problem`, and serde's position in the file goes."""
    return re.sub(r" at line \d+ column \d+$", "", cli_message.replace(str(path), "problem"))


@pytest.mark.parametrize("case_id,command,problem,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_problem_error_with_the_cli_message(
    case_id, command, problem, needle, run_cli, tmp_path
):
    path = tmp_path / "problem.json"
    path.write_text(problem if isinstance(problem, str) else json.dumps(problem))
    cli = run_cli([command, path])
    assert cli.code == 2, cli.stderr
    message = cli.message()
    assert needle in message

    with pytest.raises(revode.ProblemError) as from_path:
        FUNCTIONS[command](path)
    assert str(from_path.value) == message
    assert isinstance(from_path.value, ValueError)

    if not isinstance(problem, str):
        with pytest.raises(revode.ProblemError) as from_dict:
            FUNCTIONS[command](problem)
        assert str(from_dict.value) == dict_form(message, path)


def test_missing_file(run_cli):
    cli = run_cli(["grad", "/nonexistent/problem.json"])
    assert cli.code == 2 and "cannot read" in cli.message()
    with pytest.raises(revode.ProblemError) as info:
        revode.grad("/nonexistent/problem.json")
    assert str(info.value) == cli.message()


def test_batch_input_errors_match_cli(run_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"overrides": []}))
    cli = run_cli(["grad", "--batch", bad])
    assert cli.code == 2 and '"base" and "overrides"' in cli.message()
    with pytest.raises(revode.ProblemError) as info:
        revode.grad_batch(bad)
    assert str(info.value) == cli.message()
    with pytest.raises(revode.ProblemError) as info:
        revode.grad_batch({"overrides": []})
    assert str(info.value) == cli.message().replace(str(bad), "batch")
    missing = run_cli(["grad", "--batch", "/nonexistent/b.json"]).message()
    with pytest.raises(revode.ProblemError) as info:
        revode.grad_batch("/nonexistent/b.json")
    assert str(info.value) == missing


def test_check_selection_error_matches_cli(run_cli, tmp_path):
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(short_problem()))
    cli = run_cli(["check", path, "--params", "7"])
    assert cli.code == 2
    with pytest.raises(revode.ProblemError) as info:
        revode.check(path, params=[7])
    # The CLI names its flag (`--params`), Python its keyword argument (`params`).
    assert cli.message().startswith("--params: ")
    assert str(info.value) == cli.message().removeprefix("--")


def parse_t(message: str) -> Optional[float]:
    m = re.search(r"at t = ([-+0-9.eE]+)", message)
    return float(m.group(1)) if m else None


@pytest.mark.parametrize("command", ["grad", "solve"])
def test_blow_up_raises_solve_error_with_t(command, run_cli, tmp_path):
    # Explicit Euler with an enormous sodium conductance is unstable.
    problem = short_problem(params=[1e9, 10, 0.05])
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    cli = run_cli([command, path])
    assert cli.code == 3
    message = cli.message()
    assert "state became non-finite at t = " in message
    for arg in [path, problem]:
        with pytest.raises(revode.SolveError) as info:
            FUNCTIONS[command](arg)
        e = info.value
        assert str(e) == message
        assert isinstance(e, RuntimeError) and isinstance(e, revode.RevodeError)
        assert e.t == parse_t(message) and 0.0 < e.t <= 5.0
        assert isinstance(e.step, int) and e.step >= 1
    hh = revode.Model.builtin("hh")
    with pytest.raises(revode.SolveError) as info:
        hh.gradient([1e9, 10, 0.05], tspan=(0, 5), solver={"method": "euler", "dt": 0.01})
    assert info.value.t == parse_t(message)


def test_step_size_underflow_carries_t():
    problem = short_problem(
        params=[1e9, 10, 0.05],
        solver={"method": "dopri5", "rtol": 1e-8, "atol": 1e-8, "h_min": 1e-6},
        loss={"kind": "final"},
        adjoint={"method": "continuous"},
    )
    with pytest.raises(revode.SolveError) as info:
        revode.grad(problem)
    assert info.value.t is not None
    assert info.value.t == parse_t(str(info.value))


@pytest.mark.parametrize(
    "problem,needle",
    [
        (short_problem(tspan=[0.0, float("nan")]), "problem: tspan[1] = NaN is not finite"),
        (short_problem(params=np.array([70.0, np.inf, 0.05])), "problem: params[1] = inf is not finite"),
        (short_problem(solver={"method": "euler", "dt": object()}), "problem: solver.dt is a object"),
        (short_problem(model={1: "hh"}), "problem: model has a key 1 that is not a string"),
        (42, "a problem is a dict in the problem-file schema or a path, not a int"),
    ],
    ids=["nan", "inf-in-array", "object", "non-string-key", "not-a-problem"],
)
def test_python_values_json_cannot_hold(problem, needle):
    with pytest.raises(revode.ProblemError) as info:
        revode.grad(problem)
    assert needle in str(info.value)


def test_model_argument_errors():
    hh = revode.Model.builtin("hh")
    solver = {"method": "euler", "dt": 0.01}
    with pytest.raises(revode.ProblemError, match="params has length 2, expected 3"):
        hh.gradient([70.0, 10.0], tspan=(0, 5), solver=solver)
    with pytest.raises(revode.ProblemError, match="params must be 1-D"):
        hh.gradient(np.ones((3, 1)), tspan=(0, 5), solver=solver)
    with pytest.raises(revode.ProblemError, match="u0 must be a 1-D sequence"):
        hh.gradient(None, u0=["a", "b"], tspan=(0, 5), solver=solver)
    with pytest.raises(revode.ProblemError, match=r"params\[0\] = NaN is not finite"):
        hh.gradient([np.nan, 10.0, 0.05], tspan=(0, 5), solver=solver)
    with pytest.raises(revode.ProblemError, match="unknown variant `lorenz`"):
        revode.Model.builtin("lorenz")
    with pytest.raises(revode.ProblemError, match="n must be at least 1"):
        revode.Model.builtin("hh_network", n=0)
    with pytest.raises(revode.ProblemError, match="every must be at least 1"):
        revode.solve(short_problem(), every=0)
    with pytest.raises(revode.ProblemError, match="repeat must be at least 1"):
        revode.tune(short_problem(), repeat=0)
    with pytest.raises(revode.ProblemError, match="give params or sample, not both"):
        revode.check(short_problem(), params=[0], sample=1)
