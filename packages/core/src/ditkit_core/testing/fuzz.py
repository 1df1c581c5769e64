"""Fuzzing of loaders in child processes: a segfault, hang or memory blow-up is a recorded outcome, not a dead suite.

:func:`run_cases` imports a loader (``"package.module:function"``) once in a child Python, calls it on every case
(keyword arguments, JSON-able) and reports one :class:`Outcome` per case. If the child dies (a signal from a native
library, the memory limit, the time limit), the case that was running is recorded as a crash and a new child
continues with the next case. :func:`assert_clean` then states the contract every ditkit loader keeps:

* no crash, no hang, no memory blow-up;
* a failure is a :class:`~ditkit_core.errors.DataError` (or another ``ValueError``) whose message names the file;
* a success returns only finite numbers (NaN where the loader documents missing values), checked by the summary
  the child sends back.

:func:`hostile_files` writes the usual hostile variants of a valid file (empty, truncated, random bytes, flipped
bytes, non-UTF-8, NUL bytes) for the cases.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DRIVER = r"""
import importlib, json, math, resource, sys, traceback
limit = int(sys.argv[3])
if limit > 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
mod, _, name = sys.argv[1].partition(":")
fn = getattr(importlib.import_module(mod), name)
cases = json.loads(open(sys.argv[2]).read())
start = int(sys.argv[4])

def summary(obj, depth=0):
    try:
        import numpy as np
        import torch
    except ImportError:
        np = torch = None
    if depth > 4:
        return {"kind": "deep"}
    if torch is not None and isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        if obj.is_floating_point() or obj.is_complex():
            f = obj.float() if not obj.is_complex() else obj.abs().float()
            return {"kind": "tensor", "shape": list(obj.shape), "nonfinite": int((~torch.isfinite(f)).sum()),
                    "nan": int(torch.isnan(f).sum()), "complex": bool(obj.is_complex())}
        return {"kind": "tensor", "shape": list(obj.shape), "nonfinite": 0, "nan": 0}
    if np is not None and isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            f = np.abs(obj) if obj.dtype.kind == "c" else obj
            return {"kind": "array", "shape": list(obj.shape), "nonfinite": int((~np.isfinite(f)).sum()),
                    "nan": int(np.isnan(f).sum()), "complex": obj.dtype.kind == "c"}
        return {"kind": "array", "shape": list(obj.shape), "nonfinite": 0, "nan": 0}
    if isinstance(obj, float):
        return {"kind": "float", "nonfinite": int(not math.isfinite(obj)), "nan": int(obj != obj)}
    if isinstance(obj, dict):
        return {"kind": "dict", "items": {str(k): summary(v, depth + 1) for k, v in list(obj.items())[:50]}}
    if isinstance(obj, (list, tuple)):
        return {"kind": "list", "len": len(obj), "items": [summary(v, depth + 1) for v in list(obj)[:50]]}
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {"kind": type(obj).__name__, "items": {k: summary(v, depth + 1) for k, v in list(vars(obj).items())[:50]
                                                      if not k.startswith("_")}}
    return {"kind": type(obj).__name__}

for i in range(start, len(cases)):
    print(json.dumps({"i": i, "status": "start"}), flush=True)
    try:
        out = fn(**cases[i])
        rec = {"i": i, "status": "ok", "summary": summary(out)}
    except MemoryError:
        rec = {"i": i, "status": "memory", "error_type": "MemoryError", "message": ""}
    except BaseException as e:
        mro = [c.__name__ for c in type(e).__mro__]
        rec = {"i": i, "status": "error", "error_type": type(e).__name__, "mro": mro, "message": str(e)[:2000],
               "traceback": traceback.format_exc()[-3000:]}
    print(json.dumps(rec, default=str), flush=True)
"""


@dataclass
class Outcome:
    """What one case did: ``ok``, ``error`` (an exception), ``crash`` (the process died), ``timeout`` or ``memory``."""

    case: dict[str, Any]
    status: str
    error_type: str = ""
    message: str = ""
    mro: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status} {self.error_type} {self.message[:300]!r} case={self.case} {self.detail[-600:]}"


def run_cases(
    target: str,
    cases: list[dict[str, Any]],
    *,
    timeout: float = 120.0,
    memory_mb: int = 6144,
    env: dict[str, str] | None = None,
) -> list[Outcome]:
    """Call ``target(**case)`` for every case in child processes (see the module docstring).

    Args:
        target: ``"module:function"``.
        cases: keyword arguments per call (JSON-able: paths as strings).
        timeout: seconds for the whole child run before the running case counts as a hang.
        memory_mb: address-space limit of the child (a memory blow-up becomes a ``memory`` outcome).
        env: extra environment variables of the child.

    Returns:
        one :class:`Outcome` per case, in order.
    """
    import tempfile

    outcomes: dict[int, Outcome] = {}
    with tempfile.TemporaryDirectory() as tmp:
        case_file = Path(tmp) / "cases.json"
        case_file.write_text(json.dumps(cases))
        driver = Path(tmp) / "driver.py"
        driver.write_text(_DRIVER)
        child_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
        start = 0
        while start < len(cases):
            cmd = [sys.executable, str(driver), target, str(case_file), str(memory_mb << 20), str(start)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env, cwd=tmp)
                stdout, stderr, rc, timed_out = proc.stdout, proc.stderr, proc.returncode, False
            except subprocess.TimeoutExpired as e:
                stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
                rc, timed_out = None, True
            running = None
            for line in stdout.splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(rec, dict) or "i" not in rec:
                    continue
                i = rec["i"]
                if rec["status"] == "start":
                    running = i
                    continue
                running = None
                outcomes[i] = Outcome(
                    cases[i],
                    rec["status"],
                    rec.get("error_type", ""),
                    rec.get("message", ""),
                    rec.get("mro", []),
                    rec.get("summary", {}),
                    rec.get("traceback", ""),
                )
            if running is None:
                if len(outcomes) < len(cases) and rc not in (0, None):
                    # the child died before starting a case (import error): report it on the next case
                    running = start
                else:
                    break
            status = "timeout" if timed_out else ("crash" if rc is None or rc < 0 else "crash")
            if rc is not None and rc > 0 and "MemoryError" in stderr:
                status = "memory"
            outcomes[running] = Outcome(cases[running], status, detail=f"returncode={rc} stderr={stderr[-1500:]}")
            start = running + 1
    return [outcomes.get(i, Outcome(cases[i], "missing")) for i in range(len(cases))]


def _nonfinite(summary: dict[str, Any], allow_nan: bool) -> list[str]:
    bad: list[str] = []

    def walk(s: Any, where: str) -> None:
        if not isinstance(s, dict):
            return
        if s.get("complex"):
            bad.append(f"{where}: complex output")
        n_bad = s.get("nonfinite", 0) - (s.get("nan", 0) if allow_nan else 0)
        if n_bad > 0:
            bad.append(f"{where}: {n_bad} non-finite value(s)")
        items = s.get("items")
        if isinstance(items, dict):
            for k, v in items.items():
                walk(v, f"{where}.{k}")
        elif isinstance(items, list):
            for k, v in enumerate(items):
                walk(v, f"{where}[{k}]")

    walk(summary, "output")
    return bad


def assert_clean(
    outcomes: list[Outcome], *, name_key: str | None = "path", allow_nan: bool = False, expect_error: bool = False
) -> None:
    """Assert the loader contract (see the module docstring) over all outcomes; lists every violation.

    Args:
        outcomes: from :func:`run_cases`.
        name_key: the case key whose file name every error message must contain (None: no check).
        allow_nan: NaN in outputs is a documented missing-value marker.
        expect_error: every case is invalid input, so a success is itself a violation (silently accepted).
    """
    problems = []
    for o in outcomes:
        if o.status in ("crash", "timeout", "memory", "missing"):
            problems.append(f"{o.status}: {o}")
        elif o.status == "error":
            if "ValueError" not in o.mro:
                problems.append(f"unclean exception {o.error_type} (not a ValueError / DataError): {o}")
            elif name_key is not None and Path(str(o.case[name_key])).name not in o.message:
                problems.append(f"error does not name the file: {o}")
        elif o.status == "ok":
            if expect_error:
                problems.append(f"accepted silently: {o}")
            for b in _nonfinite(o.summary, allow_nan):
                problems.append(f"silently wrong output ({b}): {o}")
    assert not problems, f"{len(problems)} of {len(outcomes)} cases broke the loader contract:\n" + "\n".join(problems)


def hostile_files(valid: bytes, directory: str | Path, suffix: str, seed: int = 0) -> dict[str, Path]:
    """Write hostile variants of the valid file content ``valid`` into ``directory``; returns name -> path.

    Variants: ``empty``, ``truncated_1`` / ``truncated_half`` / ``truncated_90`` (cut after 1 byte, half, 90 %),
    ``random`` (random bytes of the same length), ``flipped`` (1 % of bytes flipped), ``nul`` (NUL bytes),
    ``latin1`` (a non-UTF-8 byte inserted after the first line), ``doubled`` (the content twice).
    """
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n = len(valid)
    flipped = bytearray(valid)
    for _ in range(max(1, n // 100)):
        k = rng.randrange(n) if n else 0
        if n:
            flipped[k] ^= 1 << rng.randrange(8)
    first = valid.find(b"\n")
    variants = {
        "empty": b"",
        "truncated_1": valid[:1],
        "truncated_half": valid[: n // 2],
        "truncated_90": valid[: int(n * 0.9)],
        "random": bytes(rng.randrange(256) for _ in range(max(n, 64))),
        "flipped": bytes(flipped),
        "nul": b"\x00" * max(n, 64),
        "latin1": valid[: first + 1] + b"caf\xe9\n" + valid[first + 1 :] if first >= 0 else b"caf\xe9" + valid,
        "doubled": valid + valid,
    }
    out = {}
    for name, data in variants.items():
        p = directory / f"{name}{suffix}"
        p.write_bytes(data)
        out[name] = p
    return out


__all__ = ["Outcome", "assert_clean", "hostile_files", "run_cases"]
