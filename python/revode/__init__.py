"""revode: fast, exact, bounded-memory adjoint gradients of ODE solutions.

The Rust engine behind the ``revode`` command-line tool, called from Python:
numpy in, numpy out, the same results to the last bit.

A *problem* is a dict in the problem-file schema (see the project's README) or
the path of a problem file::

    import revode
    g = revode.grad("fixtures/hh_seed.json")
    g.loss, g.gradient, g.gradient_u0          # float, float64 arrays

    hh = revode.Model.builtin("hh")
    g = hh.gradient(hh.default_params, tspan=(0.0, 600.0),
                    solver={"method": "euler", "dt": 0.01})

Long solves release the GIL, so Python threads run alongside them. Bad input
raises :class:`ProblemError` (the CLI's one-line message); a failed solve
raises :class:`SolveError` (with the time ``t`` it stopped at).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _revode
from ._errors import ProblemError, RevodeError, SolveError

__version__: str = _revode.__version__

__all__ = [
    "Gradient",
    "Model",
    "ProblemError",
    "RevodeError",
    "Solution",
    "SolveError",
    "check",
    "fit",
    "grad",
    "grad_batch",
    "solve",
    "tune",
]

#: A problem: a dict in the problem-file schema, or the path of a problem file.
ProblemLike = Union[Mapping[str, Any], str, "os.PathLike[str]"]

#: A fit spec: a dict in the fit-file schema, or the path of a fit file.
FitSpecLike = Union[Mapping[str, Any], str, "os.PathLike[str]"]

#: A vector of numbers: a 1-D numpy array, list or tuple.
VectorLike = Union[np.ndarray, Sequence[float]]


@dataclass(frozen=True, eq=False)
class Gradient:
    """The loss of a problem and its gradient (what ``revode grad --json`` prints).

    Attributes:
        loss: the loss L.
        gradient: dL/dp, float64 array in parameter order.
        gradient_u0: dL/du0, float64 array in state order.
        param_names: the model's parameter names.
        state_names: the model's state names.
        stats: steps, backward steps, rejected steps, checkpoints kept,
            recomputed steps, peak store bytes, forward and backward seconds;
            for ``beuler`` also ``implicit``: Newton's and the backward
            solves' counts (docs/stiff.md).
        model: the model's name.
        solver: ``"euler"``, ``"rk4"``, ``"beuler"``, ``"dopri5"`` or ``"bdf"``.
        loss_kind: ``"final"``, ``"all_steps"`` or ``"trace_mse"``.
        checkpoints: the checkpoint schedule used, in problem-file form.
        stimulated: parameters following a stimulus protocol (their entry is
            the derivative w.r.t. their value before the first switch).
    """

    loss: float
    gradient: np.ndarray
    gradient_u0: np.ndarray
    param_names: List[str]
    state_names: List[str]
    stats: Dict[str, Any]
    model: str
    solver: str
    loss_kind: str
    checkpoints: Any
    stimulated: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        """Plain JSON-compatible data, keyed like ``revode grad --json``."""
        return {
            "model": self.model,
            "solver": self.solver,
            "loss_kind": self.loss_kind,
            "loss": self.loss,
            "gradient": self.gradient.tolist(),
            "gradient_u0": self.gradient_u0.tolist(),
            "param_names": list(self.param_names),
            "state_names": list(self.state_names),
            "checkpoints": self.checkpoints,
            "stats": dict(self.stats),
            **({"stimulated": list(self.stimulated)} if self.stimulated else {}),
        }

    def __repr__(self) -> str:
        return (
            f"Gradient(model={self.model!r}, solver={self.solver!r}, "
            f"loss={self.loss!r}, gradient={np.array2string(self.gradient, threshold=8)}, "
            f"gradient_u0={np.array2string(self.gradient_u0, threshold=8)})"
        )


@dataclass(frozen=True, eq=False)
class Solution:
    """A forward solve (what ``revode solve --json`` prints).

    Attributes:
        final_state: u(t1), float64 array.
        t_final: the final time.
        t: times of the sampled states (empty unless ``every`` was given).
        u: sampled states, shape ``(len(t), n_states)``.
        steps: accepted steps; ``rejected_steps``: rejected attempts (dopri5).
        state_names, model, solver: as named.
        seconds: wall time of the solve.
        newton: ``beuler`` only: Newton's iterations, Jacobian evaluations,
            factorizations and convergence failures.
    """

    final_state: np.ndarray
    t_final: float
    t: np.ndarray
    u: np.ndarray
    steps: int
    rejected_steps: int
    state_names: List[str]
    model: str
    solver: str
    seconds: float
    newton: Optional[Dict[str, int]] = None

    def __repr__(self) -> str:
        return (
            f"Solution(model={self.model!r}, solver={self.solver!r}, steps={self.steps}, "
            f"t_final={self.t_final!r}, final_state={np.array2string(self.final_state, threshold=8)})"
        )


def _gradient(d: Dict[str, Any]) -> Gradient:
    return Gradient(**d)


def _solution(d: Dict[str, Any]) -> Solution:
    samples = d.pop("samples")
    return Solution(t=samples[:, 0].copy(), u=np.ascontiguousarray(samples[:, 1:]), **d)


def grad(problem: ProblemLike) -> Gradient:
    """The loss and its exact adjoint gradient for one problem.

    Args:
        problem: a dict in the problem-file schema (numbers may be numpy
            arrays or scalars), or the path of a problem file.

    Raises:
        ProblemError: bad input (the CLI's one-line message).
        SolveError: the solve failed; ``.t`` is where.
    """
    return _gradient(_revode.grad(problem))


def solve(problem: ProblemLike, every: Optional[int] = None) -> Solution:
    """Integrates a problem forward (no gradient).

    Args:
        problem: dict or path, as for :func:`grad`.
        every: also return every ``every``-th state (and the last) in
            ``Solution.t`` / ``Solution.u``.
    """
    return _solution(_revode.solve(problem, every))


def check(
    problem: ProblemLike,
    *,
    params: Optional[Sequence[int]] = None,
    sample: Optional[int] = None,
    seed: int = 0,
    u0: bool = False,
    rtol: Optional[float] = None,
    atol: float = 0.0,
    rel_step: float = 1e-2,
) -> Dict[str, Any]:
    """Compares the adjoint gradient with converged central finite differences
    (``revode check``).

    Args:
        params: indices of the parameters to check (default: all).
        sample: check this many parameters drawn with ``seed`` instead.
        u0: also check dL/du0.
        rtol, atol: tolerances (rtol default: 1e-6 for the discrete adjoint,
            1e-3 for the continuous one).
        rel_step: largest relative FD step (halved up to 12 times).

    Returns:
        The report as a dict, keyed like ``revode check --json``: ``passed``,
        ``n_failed`` and ``entries`` (one dict per derivative: ``name``,
        ``adjoint``, ``fd``, ``fd_error``, ``rel_error``, ``pass``, ...).
    """
    return _revode.check(problem, params, sample, seed, u0, rtol, atol, rel_step)


def tune(
    problem: ProblemLike, *, memory_budget: Optional[int] = None, repeat: int = 5
) -> Dict[str, Any]:
    """Sweeps checkpoint schedules (``revode tune``): time, memory and
    recomputation of each against the forward solve.

    Args:
        memory_budget: largest checkpoint store to recommend, in bytes.
        repeat: timed runs per setting (the median is reported).

    Returns:
        The report as a dict, keyed like ``revode tune --json``: ``rows``,
        ``recommended`` (an index into rows), ``recommended_adjoint`` (the
        ``"adjoint"`` block to use), ``gradients_agree``, ...
    """
    return _revode.tune(problem, memory_budget, repeat)


def fit(fit_spec: FitSpecLike, *, quiet: bool = True) -> Dict[str, Any]:
    """Fits a model's parameters to recorded traces with L-BFGS (``revode fit``).

    The fit file's schema is described in the project's ``docs/fitting.md``:
    ``model``, ``params``, ``free`` (the fitted parameters and their
    bounds), ``solver``, ``sweeps`` (each a ``tspan``, a CSV ``data`` file
    and the observed ``component``) and ``optimizer``. The GIL is released
    while the fit runs; sweeps and starts run in parallel on Rust threads.

    Args:
        fit_spec: a dict in the fit-file schema (relative ``data`` and model
            ``file`` paths are taken from the current directory), or the path
            of a fit file (relative paths are taken from its folder).
        quiet: if False, write ``revode fit``'s progress line per iteration
            to the process's stderr.

    Returns:
        The report as a dict, keyed like ``revode fit --json``: ``params``
        (fitted free parameters, float64 array), ``param_names``, ``loss``,
        ``iterations``, ``converged``, ``stop_reason``, ``stop_message``,
        ``history`` (loss per iteration, float64 array), ``seconds``,
        ``start``, ``lower``, ``upper`` (``None`` where unbounded),
        ``all_params`` (every model parameter, fitted ones in place),
        ``gradient_norm``, ``evaluations``, ``failed_evaluations``,
        ``best_start`` and ``starts`` (one dict per start).

    Raises:
        ProblemError: a bad fit file or data file (the CLI's message).
        SolveError: the solve failed at the given start point.
    """
    return _revode.fit(fit_spec, quiet)


def grad_batch(
    problems: Union[Sequence[ProblemLike], Mapping[str, Any], str, "os.PathLike[str]"],
    threads: Optional[int] = None,
    *,
    return_exceptions: bool = False,
) -> List[Any]:
    """Gradients of many problems in parallel on Rust threads (``revode grad --batch``).

    Results are bitwise those of one-by-one :func:`grad` calls, whatever the
    thread count. The GIL is released while the batch runs.

    Args:
        problems: a list of problems (dicts or paths), a
            ``{"base": {...}, "overrides": [{...}, ...]}`` dict, or the path
            of a batch file.
        threads: worker threads (default: one per core).
        return_exceptions: put each failing member's :class:`ProblemError`
            or :class:`SolveError` in its place in the list instead of
            raising the first one. Either way every member runs, and the
            error's ``index`` names the member.

    Returns:
        One :class:`Gradient` (or exception) per member, in input order.
    """
    results = _revode.grad_batch(problems, threads)
    out: List[Any] = []
    first_error: Optional[RevodeError] = None
    for k, r in enumerate(results):
        if isinstance(r, RevodeError):
            r.index = k
            first_error = first_error or r
            out.append(r)
        else:
            out.append(_gradient(r))
    if first_error is not None and not return_exceptions:
        raise first_error
    return out


def _vector(name: str, x: Any) -> np.ndarray:
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ProblemError(f"{name} must be a 1-D sequence of numbers: {e}") from None
    if v.ndim != 1:
        raise ProblemError(f"{name} must be 1-D, got shape {v.shape}")
    return v


class Model:
    """A model of the engine, for gradients without writing problem dicts.

    Make one with :meth:`Model.builtin` or :meth:`Model.from_file`; then :meth:`gradient` takes the
    parameters (numpy array or list) and the solver settings::

        hh = revode.Model.builtin("hh")
        g = hh.gradient([70.0, 10.0, 0.05], tspan=(0, 600),
                        solver={"method": "euler", "dt": 0.01},
                        loss={"kind": "final"})
    """

    def __init__(self, spec: Mapping[str, Any]):
        """A model from its problem-file spec: ``{"name": "hh"}``,
        ``{"name": "hh_network", "n": 10}`` or ``{"file": "cell.ode"}``.
        A model file is read and compiled once, here."""
        self._spec = dict(spec)
        self._handle, info = _revode.load_model(self._spec)
        self._name: str = info["name"]
        self._param_names: List[str] = info["param_names"]
        self._state_names: List[str] = info["state_names"]
        self._default_params: np.ndarray = info["default_params"]
        self._default_u0: np.ndarray = info["default_u0"]

    @classmethod
    def builtin(cls, name: str, **options: Any) -> "Model":
        """A built-in model: ``"hh"`` (the Hodgkin-Huxley neuron) or
        ``"hh_network"`` with options ``n`` (neurons) and ``i_ext``."""
        return cls({"name": name, **options})

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "Model":
        """A model file (``.ode``, docs/model-files.md), read and compiled
        once; a relative path is taken from the current directory. Errors
        (``FILE:LINE:COL: ...``) raise :class:`ProblemError`."""
        return cls({"file": os.path.abspath(os.fspath(path))})

    def __reduce__(self) -> Any:
        # Pickled as its spec (a model file is read again where unpickled).
        return (Model, (self._spec,))

    @property
    def spec(self) -> Dict[str, Any]:
        """The model's ``"model"`` block for a problem dict."""
        return dict(self._spec)

    @property
    def name(self) -> str:
        return self._name

    @property
    def param_names(self) -> List[str]:
        return list(self._param_names)

    @property
    def state_names(self) -> List[str]:
        return list(self._state_names)

    @property
    def n_params(self) -> int:
        return len(self._param_names)

    @property
    def n_states(self) -> int:
        return len(self._state_names)

    @property
    def default_params(self) -> np.ndarray:
        """The default parameters (a fresh float64 array)."""
        return self._default_params.copy()

    @property
    def default_u0(self) -> np.ndarray:
        """The default initial state (a fresh float64 array)."""
        return self._default_u0.copy()

    def problem(
        self,
        params: Optional[VectorLike] = None,
        u0: Optional[VectorLike] = None,
        *,
        tspan: Tuple[float, float],
        solver: Mapping[str, Any],
        loss: Optional[Mapping[str, Any]] = None,
        adjoint: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """The problem dict these arguments describe (defaults omitted)."""
        p: Dict[str, Any] = {"model": self.spec, "tspan": list(tspan), "solver": dict(solver)}
        if params is not None:
            p["params"] = _vector("params", params)
        if u0 is not None:
            p["u0"] = _vector("u0", u0)
        if loss is not None:
            p["loss"] = dict(loss)
        if adjoint is not None:
            p["adjoint"] = dict(adjoint)
        return p

    def gradient(
        self,
        params: Optional[VectorLike] = None,
        u0: Optional[VectorLike] = None,
        *,
        tspan: Tuple[float, float],
        solver: Mapping[str, Any],
        loss: Optional[Mapping[str, Any]] = None,
        adjoint: Optional[Mapping[str, Any]] = None,
    ) -> Gradient:
        """The loss and its gradient at ``params`` (default: the model's).

        Args:
            params, u0: numpy arrays or lists (default: the model's defaults).
            tspan: ``(t0, t1)``.
            solver: e.g. ``{"method": "euler", "dt": 0.01}``,
                ``{"method": "beuler", "dt": 0.025}`` (stiff models),
                ``{"method": "bdf", "rtol": 1e-6, "atol": 1e-8}`` (stiff, adaptive;
                with ``adjoint={"method": "continuous"}``) or
                ``{"method": "dopri5", "rtol": 1e-8, "atol": 1e-8}``.
            loss: e.g. ``{"kind": "trace_mse", "component": 0, "times": t,
                "values": v}`` (default: ``final`` with unit weights).
            adjoint: e.g. ``{"method": "continuous"}`` (default: discrete,
                automatic checkpoints).
        """
        p = self.problem(params, u0, tspan=tspan, solver=solver, loss=loss, adjoint=adjoint)
        del p["model"]  # the loaded model is used
        return _gradient(_revode.grad_model(self._handle, p))

    def solve(
        self,
        params: Optional[VectorLike] = None,
        u0: Optional[VectorLike] = None,
        *,
        tspan: Tuple[float, float],
        solver: Mapping[str, Any],
        every: Optional[int] = None,
    ) -> Solution:
        """A forward solve at ``params``; ``every`` as in :func:`solve`."""
        p = self.problem(params, u0, tspan=tspan, solver=solver)
        del p["model"]
        return _solution(_revode.solve_model(self._handle, p, every))

    def __repr__(self) -> str:
        return f"Model({self._spec!r})"
