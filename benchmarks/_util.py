"""Shared helpers of the benchmark scripts: timing with warm-up and JSON-line output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable

import torch


def timeit(fn: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def emit(**fields: object) -> None:
    """Print one JSON line (the format `make bench` promises)."""
    fields.setdefault("device", device_name())
    fields.setdefault("torch", torch.__version__)
    print(json.dumps(fields), flush=True)
