"""Type stubs of the compiled module revode._revode (the engine's bindings).

Users call the documented wrappers in ``revode``; these return plain dicts.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
import os

_Problem = Union[Mapping[str, Any], str, "os.PathLike[str]"]

__version__: str

def grad(problem: _Problem) -> Dict[str, Any]:
    """Loss and gradient: keys of ``revode grad --json``; ``gradient`` and
    ``gradient_u0`` are float64 arrays."""

def solve(problem: _Problem, every: Optional[int] = None) -> Dict[str, Any]:
    """Forward solve: keys of ``revode solve --json``; ``final_state`` a
    float64 array, ``samples`` a ``(k, 1 + n_states)`` array of ``[t, u...]`` rows."""

def check(
    problem: _Problem,
    params: Optional[Sequence[int]] = None,
    sample: Optional[int] = None,
    seed: int = 0,
    u0: bool = False,
    rtol: Optional[float] = None,
    atol: float = 0.0,
    rel_step: float = 0.01,
) -> Dict[str, Any]:
    """Finite-difference check: the report of ``revode check --json``."""

def tune(problem: _Problem, memory_budget: Optional[int] = None, repeat: int = 5) -> Dict[str, Any]:
    """Checkpoint sweep: the report of ``revode tune --json``."""

def fit(fit_spec: _Problem, quiet: bool = True) -> Dict[str, Any]:
    """Fit: the report of ``revode fit --json``; ``params``, ``start``,
    ``all_params`` and ``history`` (also in each ``starts`` entry) are float64 arrays."""

def grad_batch(
    problems: Union[Sequence[_Problem], Mapping[str, Any], str, "os.PathLike[str]"],
    threads: Optional[int] = None,
) -> List[Union[Dict[str, Any], BaseException]]:
    """One gradient dict, or the member's exception instance, per member."""

class ModelHandle:
    """A loaded model (a model file compiled once)."""

def load_model(spec: Mapping[str, Any]) -> Tuple[ModelHandle, Dict[str, Any]]:
    """The handle and ``name``, ``param_names``, ``state_names``,
    ``default_params`` and ``default_u0`` (float64 arrays) of a model spec."""

def grad_model(model: ModelHandle, problem: Mapping[str, Any]) -> Dict[str, Any]:
    """``grad`` of a problem dict without ``"model"`` on a loaded model."""

def solve_model(model: ModelHandle, problem: Mapping[str, Any], every: Optional[int] = None) -> Dict[str, Any]:
    """``solve`` of a problem dict without ``"model"`` on a loaded model."""

def _time_gradient(problem: _Problem, repeat: int) -> List[float]:
    """Benchmark helper: seconds of each of ``repeat`` engine calls, timed in Rust."""
