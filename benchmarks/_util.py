"""Shared helpers of the benchmark scripts: interleaved timing of candidate and peer, and JSON-line output.

Timing protocol (every script uses :func:`compare`): warm up every function, then run ``rounds`` rounds; in each
round every function runs ``inner`` times back to back, the order of the functions alternating between rounds so
neither always goes first. Each function's time per call is measured by **process CPU time** (robust to other jobs
on a shared machine; one thread per benchmark by default) and by wall time. Reported: the median over rounds and
the spread (the relative half-range of the middle 50 % of rounds), so a ratio is only trusted where the spreads are
small next to it.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable

import torch


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    if len(v) < 4:
        return v[0], statistics.median(v), v[-1]
    q = statistics.quantiles(v, n=4)
    return q[0], q[1], q[2]


def compare(
    fns: dict[str, Callable[[], object]], rounds: int = 7, inner: int = 3, warmup: int = 2, clock: str = "auto"
) -> dict[str, dict[str, float]]:
    """Interleaved timing of several functions (see the module docstring).

    Args:
        fns: name -> function to time (each call is one unit of work).
        rounds: timed rounds.
        inner: calls per function per round.
        warmup: untimed calls per function before the first round.
        clock: ``cpu`` (process CPU time), ``wall``, or ``auto`` (wall on CUDA, CPU time otherwise).

    Returns:
        name -> ``{"s": median seconds per call, "spread": relative IQR half-width, "cpu_s", "wall_s"}``.
    """
    names = list(fns)
    for _ in range(warmup):
        for k in names:
            fns[k]()
    _sync()
    cpu: dict[str, list[float]] = {k: [] for k in names}
    wall: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            _sync()
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(inner):
                fns[k]()
            _sync()
            cpu[k].append((time.process_time() - c0) / inner)
            wall[k].append((time.perf_counter() - w0) / inner)
    use_wall = clock == "wall" or (clock == "auto" and torch.cuda.is_available())
    out = {}
    for k in names:
        main = wall[k] if use_wall else cpu[k]
        lo, med, hi = _quartiles(main)
        out[k] = {
            "s": med,
            "spread": (hi - lo) / 2 / med if med else 0.0,
            "cpu_s": statistics.median(cpu[k]),
            "wall_s": statistics.median(wall[k]),
        }
    return out


def timeit(fn: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median time of ``fn`` in seconds (process CPU time on CPU, wall time on CUDA)."""
    return compare({"f": fn}, rounds=repeats, inner=1, warmup=warmup)["f"]["s"]


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def emit(**fields: object) -> None:
    """Print one JSON line (the format `make bench` promises)."""
    fields.setdefault("device", device_name())
    fields.setdefault("torch", torch.__version__)
    print(json.dumps(fields), flush=True)


def rounded(stats: dict[str, float], digits: int = 5) -> dict[str, float]:
    """Timing stats for JSON."""
    return {k: round(v, digits) for k, v in stats.items()}
