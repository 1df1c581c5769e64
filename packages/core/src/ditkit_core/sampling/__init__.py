"""Sampling: ODE solvers, step schedules, guidance, known-value conditioning, training-free caches."""

from ditkit_core.sampling.cache import BlockCache, CacheStats, StepCache, find_dits
from ditkit_core.sampling.solvers import EVALS_PER_STEP, METHODS, SCHEDULES, guided, sample, time_grid

__all__ = [
    "BlockCache",
    "CacheStats",
    "EVALS_PER_STEP",
    "METHODS",
    "SCHEDULES",
    "StepCache",
    "find_dits",
    "guided",
    "sample",
    "time_grid",
]
