"""revode.grad / solve / check / tune / grad_batch against the CLI, bit for bit."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import revode
from conftest import FIXTURES, short_problem

FIXTURE_NAMES = [
    "hh_seed.json",
    "hh_seed_all_steps.json",
    "hh_seed_budget.json",
    "hh_rk4_short.json",
    "hh_dopri5.json",
    "hh_dopri5_trace.json",
    "hh_network_10.json",
    "hh_stimulus.json",
    "hh_stimulus_dopri5.json",
]

TIMING_KEYS = {"forward_seconds", "backward_seconds"}


def same_bits(a: np.ndarray, b) -> bool:
    b = np.asarray(b, dtype=np.float64)
    return a.dtype == np.float64 and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_matches_cli(g: revode.Gradient, cli: dict) -> None:
    # serde_json prints f64s round-trip exactly and Python parses them
    # exactly, so equal bits here are equal bits in the engine.
    assert np.float64(g.loss).tobytes() == np.float64(cli["loss"]).tobytes()
    assert same_bits(g.gradient, cli["gradient"])
    assert same_bits(g.gradient_u0, cli["gradient_u0"])
    assert g.param_names == cli["param_names"]
    assert g.state_names == cli["state_names"]
    for key in ["model", "solver", "loss_kind", "checkpoints"]:
        assert getattr(g, key) == cli[key], key
    assert g.stimulated == cli.get("stimulated", [])
    assert set(g.stats) == set(cli["stats"])
    for key, value in cli["stats"].items():
        if key not in TIMING_KEYS:
            assert g.stats[key] == value, key


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_grad_equals_cli_json_bit_for_bit(name, run_cli):
    path = FIXTURES / name
    cli = run_cli(["grad", path, "--json"]).json()
    assert_matches_cli(revode.grad(path), cli)
    assert_matches_cli(revode.grad(str(path)), cli)
    # the same problem as a dict
    assert_matches_cli(revode.grad(json.loads(path.read_text())), cli)


def test_gradient_dtypes_and_shapes(seed_path):
    g = revode.grad(seed_path)
    assert isinstance(g.loss, float)
    for arr, n in [(g.gradient, 3), (g.gradient_u0, 4)]:
        assert isinstance(arr, np.ndarray)
        assert arr.dtype == np.float64
        assert arr.shape == (n,)
        assert arr.flags["C_CONTIGUOUS"]
    assert g.param_names == ["g_Na", "g_Kd", "g_leak"]
    assert g.state_names == ["E", "m", "h", "n"]
    assert isinstance(g.stats, dict) and g.stats["steps"] == 60_000
    assert g.checkpoints == "all"
    assert json.loads(json.dumps(g.as_dict()))["gradient"] == g.gradient.tolist()


def test_network_shapes():
    g = revode.grad(FIXTURES / "hh_network_10.json")
    assert g.gradient.shape == (3 * 10 + 10 * 10,)
    assert g.gradient_u0.shape == (40,)
    assert len(g.param_names) == 130


@pytest.mark.parametrize(
    "params",
    [
        [70.0, 10.0, 0.05],
        (70, 10, 0.05),
        np.array([70.0, 10.0, 0.05]),
        np.array([70, 10, 0.05], dtype=np.float64)[::1],
        [np.float64(70.0), np.int64(10), 0.05],
    ],
    ids=["list", "tuple-with-ints", "array", "array-view", "numpy-scalars"],
)
def test_lists_and_arrays_are_accepted(params):
    reference = revode.grad(short_problem(params=[70.0, 10.0, 0.05]))
    g = revode.grad(short_problem(params=params, u0=np.array([-59.0, 0.2, 0.9, 0.1])))
    default_u0 = revode.grad(short_problem(params=params, u0=[-59.0, 0.2, 0.9, 0.1]))
    for other in [g, default_u0]:
        assert other.loss == reference.loss
        assert same_bits(other.gradient, reference.gradient)
    hh = revode.Model.builtin("hh")
    m = hh.gradient(params, tspan=(0.0, 5.0), solver={"method": "euler", "dt": 0.01})
    assert same_bits(m.gradient, reference.gradient)


def test_numpy_values_inside_problem_dicts():
    plain = revode.grad(short_problem(tspan=[0.0, 5.0], solver={"method": "euler", "dt": 0.01}))
    g = revode.grad(
        short_problem(
            tspan=np.array([0.0, 5.0]),
            solver={"method": "euler", "dt": np.float64(0.01)},
            loss={"kind": "final", "weights": np.ones(4, dtype=np.int32)},
        )
    )
    assert same_bits(g.gradient, plain.gradient)
    net = revode.Model.builtin("hh_network", n=np.int64(2))
    assert net.n_params == 3 * 2 + 4


def test_model_builtin():
    hh = revode.Model.builtin("hh")
    assert hh.name == "hh"
    assert hh.param_names == ["g_Na", "g_Kd", "g_leak"]
    assert hh.state_names == ["E", "m", "h", "n"]
    assert (hh.n_params, hh.n_states) == (3, 4)
    p = hh.default_params
    assert p.dtype == np.float64 and p.shape == (3,)
    p[0] = -1.0  # a copy: the model's defaults are unchanged
    assert hh.default_params[0] != -1.0
    net = revode.Model.builtin("hh_network", n=3, i_ext=2.0)
    assert net.n_params == 3 * 3 + 9 and net.n_states == 12
    assert net.param_names[9] == "W_0_0"
    assert "hh_network" in repr(net)


def test_model_gradient_equals_the_problem_file(seed_path, run_cli):
    cli = run_cli(["grad", seed_path, "--json"]).json()
    hh = revode.Model.builtin("hh")
    g = hh.gradient(
        hh.default_params,
        u0=[-59.0, 0.2, 0.9, 0.1],
        tspan=(0.0, 600.0),
        solver={"method": "euler", "dt": 0.01},
        loss={"kind": "final", "weights": [1, 1, 1, 1]},
        adjoint={"method": "discrete", "checkpoints": "all"},
    )
    assert_matches_cli(g, cli)


def test_model_gradient_defaults_and_continuous_adjoint():
    hh = revode.Model.builtin("hh")
    fixture = json.loads((FIXTURES / "hh_dopri5_trace.json").read_text())
    g = hh.gradient(
        None,
        tspan=fixture["tspan"],
        solver=fixture["solver"],
        loss=fixture["loss"],
        adjoint=fixture["adjoint"],
    )
    # the fixture's params and u0 are the model's defaults
    assert same_bits(g.gradient, revode.grad(fixture).gradient)


def test_solve_equals_cli(seed_path, run_cli):
    cli = run_cli(["solve", seed_path, "--json", "--every", "10000"]).json()
    s = revode.solve(seed_path, every=10000)
    assert same_bits(s.final_state, cli["final_state"])
    assert s.t_final == cli["t_final"] and s.steps == cli["steps"] == 60_000
    samples = np.array(cli["samples"])
    assert same_bits(s.t, samples[:, 0])
    assert same_bits(np.ascontiguousarray(s.u), samples[:, 1:])
    assert s.u.shape == (7, 4)
    plain = revode.solve(seed_path)
    assert plain.t.shape == (0,) and plain.u.shape == (0, 4)
    hh = revode.Model.builtin("hh")
    m = hh.solve([70.0, 10.0, 0.05], [-59.0, 0.2, 0.9, 0.1], tspan=(0, 600),
                 solver={"method": "euler", "dt": 0.01})
    assert same_bits(m.final_state, cli["final_state"])


def test_check_equals_cli(run_cli, tmp_path):
    problem = short_problem()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(problem))
    cli = run_cli(["check", path, "--u0", "--json"]).json()
    report = revode.check(problem, u0=True)
    assert report["passed"] is True and cli["passed"] is True
    assert len(report["entries"]) == len(cli["entries"]) == 3 + 4
    for ours, theirs in zip(report["entries"], cli["entries"]):
        assert ours["name"] == theirs["name"]
        assert ours["adjoint"] == theirs["adjoint"]
        assert ours["fd"] == theirs["fd"]
    only = revode.check(problem, params=[1])
    assert [e["name"] for e in only["entries"]] == ["g_Kd"]


def test_tune_returns_plain_data():
    report = revode.tune(short_problem(), memory_budget=1 << 16, repeat=1)
    assert report["gradients_agree"] is True
    assert report["rows"][0]["setting"] == "forward"
    best = report["rows"][report["recommended"]]
    assert best["fits_budget"] is True
    assert "checkpoints" in report["recommended_adjoint"]
    json.dumps(report)  # plain Python data


def test_grad_batch_equals_single_runs(tmp_path):
    base = {"model": {"name": "hh"}, "tspan": [0.0, 20.0], "solver": {"method": "euler", "dt": 0.01}}
    overrides = [
        {"params": [70, 10, 0.05]},
        {"model": {"name": "hh_network", "n": 2, "i_ext": 2.5}},
        {"u0": np.array([-50, 0.3, 0.8, 0.2])},
    ]
    members = [{**base, **o} for o in overrides]
    singles = [revode.grad(m) for m in members]
    batch_file = tmp_path / "batch.json"
    plain = [{k: np.asarray(v).tolist() for k, v in o.items()} for o in overrides]
    batch_file.write_text(json.dumps({"base": base, "overrides": plain}))
    runs = [
        revode.grad_batch(members),
        revode.grad_batch(members, threads=1),
        revode.grad_batch(members, threads=2),
        revode.grad_batch({"base": base, "overrides": overrides}),
        revode.grad_batch(batch_file),
        revode.grad_batch(str(batch_file), threads=2),
    ]
    for results in runs:
        assert len(results) == 3
        for g, single in zip(results, singles):
            assert isinstance(g, revode.Gradient)
            assert g.loss == single.loss
            assert same_bits(g.gradient, single.gradient)
            assert same_bits(g.gradient_u0, single.gradient_u0)


def test_grad_batch_failures_keep_the_others():
    good = short_problem()
    bad_input = short_problem(params=[70, 10])
    blow_up = short_problem(params=[1e9, 10, 0.05])
    results = revode.grad_batch([good, bad_input, blow_up, good], return_exceptions=True)
    assert isinstance(results[0], revode.Gradient) and isinstance(results[3], revode.Gradient)
    assert isinstance(results[1], revode.ProblemError) and results[1].index == 1
    assert str(results[1]) == "params has length 2, expected 3"
    assert isinstance(results[2], revode.SolveError) and results[2].index == 2
    assert results[2].t is not None
    with pytest.raises(revode.ProblemError) as info:
        revode.grad_batch([good, bad_input, blow_up])
    assert info.value.index == 1
    with pytest.raises(revode.ProblemError, match="threads must be at least 1"):
        revode.grad_batch([good], threads=0)
    with pytest.raises(revode.ProblemError, match="the batch is empty"):
        revode.grad_batch([])
    # a member that is not a problem gets its own error, named by index
    results = revode.grad_batch([good, 42], return_exceptions=True)
    assert "problems[1]" in str(results[1])


def test_results_and_errors_pickle(seed_path):
    g = revode.grad(seed_path)
    back = pickle.loads(pickle.dumps(g))
    assert back.loss == g.loss and same_bits(back.gradient, g.gradient)
    with pytest.raises(revode.SolveError) as info:
        revode.grad(short_problem(params=[1e9, 10, 0.05]))
    e = pickle.loads(pickle.dumps(info.value))
    assert isinstance(e, revode.SolveError) and e.t == info.value.t and e.step == info.value.step
    assert str(e) == str(info.value)
    p = pickle.loads(pickle.dumps(revode.ProblemError("x")))
    assert isinstance(p, ValueError) and str(p) == "x"
