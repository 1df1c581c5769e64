"""Sampling: ODE solvers, step schedules, guidance, known-value conditioning, training-free caches."""

from ditkit_core.sampling.cache import (
    BlockCache,
    CacheStats,
    ExpertCache,
    StepCache,
    evaluations,
    find_dits,
    solver_times,
)
from ditkit_core.sampling.protocol import SolverCall, branch, current_call, solver_call, solver_run
from ditkit_core.sampling.solvers import EVALS_PER_STEP, METHODS, SCHEDULES, guided, sample, time_grid

__all__ = [
    "EVALS_PER_STEP",
    "METHODS",
    "SCHEDULES",
    "BlockCache",
    "CacheStats",
    "ExpertCache",
    "SolverCall",
    "StepCache",
    "branch",
    "current_call",
    "evaluations",
    "find_dits",
    "guided",
    "sample",
    "solver_call",
    "solver_run",
    "solver_times",
    "time_grid",
]
