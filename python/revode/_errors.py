"""revode's exceptions (raised by the compiled module, pickled across Dask workers)."""

from __future__ import annotations

from typing import Any, Optional


class RevodeError(Exception):
    """Base class of every error revode raises.

    ``index`` is set on errors returned or raised by :func:`revode.grad_batch`:
    the position of the failing member.
    """

    index: Optional[int] = None


class ProblemError(RevodeError, ValueError):
    """Bad input: an unreadable file, malformed JSON, unknown keys or models,
    wrong vector lengths, non-finite numbers, dt <= 0, t1 <= t0, a memory
    budget too small, ...

    The message is the one-line message of the ``revode`` command-line tool
    (without its ``error:`` prefix).
    """


class SolveError(RevodeError, RuntimeError):
    """The solve failed: the state (or the adjoint) became non-finite, the
    step size underflowed, or ``max_steps`` was exceeded.

    Attributes:
        t: the time at which the solve stopped (``None`` if the error names none).
        step: the step number, when the error names one.
    """

    def __init__(self, message: str, t: Optional[float] = None, step: Optional[int] = None):
        super().__init__(message)
        self.t = t
        self.step = step

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0], self.t, self.step), self.__dict__)
