"""Fit the seed model's conductances with scipy, gradients from revode.

A synthetic "recording" is made by solving the Hodgkin-Huxley seed model at
known conductances (g_Na, g_Kd, g_leak) over its first 20 ms (the first
spike) and sampling the membrane potential every 0.1 ms. Starting from
conductances 20-30 % off, scipy's L-BFGS-B (`jac=True`: one revode gradient
call returns the loss and its exact gradient) recovers them to ~1e-9. The
gradient is cross-checked against scipy's own finite differences first.

Over windows with many spikes the squared error in spike timing has many
local minima (from the same starts a 100 ms window can stall): fit a short
window first, or start from several points.

    python python/examples/fit_scipy.py
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np
import scipy.optimize

import revode

HH = revode.Model.builtin("hh")
TRUE_PARAMS = HH.default_params  # g_Na, g_Kd, g_leak of the seed problem
SOLVER = {"method": "euler", "dt": 0.01}


def synthetic_recording(params: np.ndarray, t1: float = 20.0, every: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """Times (on the solver's grid, t > 0) and membrane potentials E(t)."""
    s = HH.solve(params, tspan=(0.0, t1), solver=SOLVER, every=every)
    return s.t[1:], s.u[1:, 0]


def objective(times: np.ndarray, values: np.ndarray) -> Callable[[np.ndarray], Tuple[float, np.ndarray]]:
    """Mean squared error of E against the recording, as a function of
    theta = log(conductances) (they span three orders of magnitude), with
    its gradient: dL/dtheta = g * dL/dg."""
    problem = {
        "model": {"name": "hh"},
        "tspan": [0.0, float(times[-1])],
        "solver": SOLVER,
        "loss": {"kind": "trace_mse", "component": 0, "times": times, "values": values},
    }

    def f(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        g = np.exp(theta)
        r = revode.grad({**problem, "params": g})
        return r.loss, r.gradient * g

    return f


def gradient_cross_check(f: Callable[[np.ndarray], Tuple[float, np.ndarray]], theta: np.ndarray) -> float:
    """Largest relative difference between revode's gradient and scipy's
    forward finite differences (`scipy.optimize.approx_fprime`)."""
    adjoint = f(theta)[1]
    fd = scipy.optimize.approx_fprime(theta, lambda x: f(x)[0], 1e-7)
    return float(np.max(np.abs(adjoint - fd) / np.maximum(np.abs(adjoint), 1e-12)))


def fit(start: np.ndarray, times: np.ndarray, values: np.ndarray) -> scipy.optimize.OptimizeResult:
    f = objective(times, values)
    return scipy.optimize.minimize(
        f,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 200, "ftol": 1e-15, "gtol": 1e-10},
    )


def main(t1: float = 20.0) -> Dict[str, object]:
    times, values = synthetic_recording(TRUE_PARAMS, t1)
    start = TRUE_PARAMS * np.array([1.2, 0.75, 1.3])
    f = objective(times, values)
    rel = gradient_cross_check(f, np.log(start))
    result = fit(start, times, values)
    fitted = np.exp(result.x)
    print(f"gradient vs scipy.optimize.approx_fprime: max relative difference {rel:.1e}")
    print(f"L-BFGS-B: {result.nit} iterations, {result.nfev} revode.grad calls, loss {result.fun:.3e} ({result.message})")
    print(f"{'':8} {'true':>10} {'start':>10} {'fitted':>12}")
    for name, t, s, g in zip(HH.param_names, TRUE_PARAMS, start, fitted):
        print(f"{name:8} {t:10.4f} {s:10.4f} {g:12.6f}")
    return {"fitted": fitted, "true": TRUE_PARAMS, "result": result, "gradient_rel_error": rel}


if __name__ == "__main__":
    main()
