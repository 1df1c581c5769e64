"""The solver/cache protocol: the solver says which evaluation it is making; caches never guess from ``t``.

:func:`~ditkit_core.sampling.sample` opens a run (:func:`solver_run`) and wraps every velocity evaluation in
:func:`solver_call` with the step, the stage inside the step (Heun's second evaluation is stage 1 at the same ``t``
as the next step's stage 0) and the evaluation index. :func:`~ditkit_core.sampling.guided` marks the
unconditional branch of classifier-free guidance. Training-free caches read :func:`current_call` and key their state
by ``(run, branch)`` and count evaluations by ``index``; outside a solver call they compute everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

_RUNS = itertools.count()
_CALL: ContextVar[SolverCall | None] = ContextVar("ditkit_solver_call", default=None)
_RUN: ContextVar[int | None] = ContextVar("ditkit_solver_run", default=None)
_STEP_SIZE: ContextVar[Any] = ContextVar("ditkit_step_size", default=None)


@dataclass(frozen=True)
class SolverCall:
    """One velocity evaluation of a sampling run.

    Attributes:
        run: id of the sampling run (unique per :func:`solver_run`).
        step: solver step, from 0.
        stage: evaluation inside the step (Euler 0; Heun / midpoint 0, 1; RK4 0..3).
        index: evaluation number in the run, from 0 (the same for both CFG branches of one evaluation).
        branch: ``"cond"`` or ``"uncond"`` (classifier-free guidance's unconditional branch).
        dt: the solver's step size (None for adaptive solvers); few-step students condition on it.
    """

    run: int
    step: int
    stage: int
    index: int
    branch: str = "cond"
    dt: float | None = None


def current_call() -> SolverCall | None:
    """The evaluation being made now, or None outside a solver."""
    return _CALL.get()


@contextlib.contextmanager
def solver_run() -> Iterator[int]:
    """Open a sampling run; yields its id."""
    token = _RUN.set(next(_RUNS))
    try:
        yield _RUN.get()
    finally:
        _RUN.reset(token)


@contextlib.contextmanager
def solver_call(step: int, stage: int, index: int, dt: float | None = None) -> Iterator[SolverCall]:
    """Mark one evaluation of the current run (the conditional branch)."""
    run = _RUN.get()
    if run is None:
        raise RuntimeError("solver_call outside solver_run")
    token = _CALL.set(SolverCall(run, step, stage, index, "cond", dt))
    try:
        yield _CALL.get()
    finally:
        _CALL.reset(token)


@contextlib.contextmanager
def branch(name: str) -> Iterator[None]:
    """Within a solver call, mark the evaluations of the block as branch ``name`` (``"uncond"`` for CFG)."""
    call = _CALL.get()
    if call is None:
        yield
        return
    token = _CALL.set(dataclasses.replace(call, branch=name))
    try:
        yield
    finally:
        _CALL.reset(token)


@contextlib.contextmanager
def step_size(dt: Any) -> Iterator[None]:
    """Set the step size seen by step-conditioned models (a float or a per-sample ``[b]`` tensor) for the block;
    used in training few-step students, where no solver runs."""
    token = _STEP_SIZE.set(dt)
    try:
        yield
    finally:
        _STEP_SIZE.reset(token)


def current_step_size() -> Any:
    """The step size a step-conditioned model should use now: an explicit :func:`step_size`, else the solver's."""
    explicit = _STEP_SIZE.get()
    if explicit is not None:
        return explicit
    call = _CALL.get()
    return None if call is None else call.dt


__all__ = ["SolverCall", "branch", "current_call", "current_step_size", "solver_call", "solver_run", "step_size"]
