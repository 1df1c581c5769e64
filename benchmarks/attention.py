"""Time and peak memory of each attention backend at n = 1k, 4k, 16k tokens, dense and padded batches.

Each case runs in a fresh subprocess; peak memory is the growth of the process's maximum resident set (CPU) or
``torch.cuda.max_memory_allocated`` (GPU) during the call, compared with the size an ``[n, n]`` score tensor
would take. ``o_n_memory`` is true when the peak stays below a quarter of that size (no ``[n, n]`` tensor).

Usage: python benchmarks/attention.py [--sizes 1024 4096 16384] [--heads 2] [--dim 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, {bench!r})
from ditkit_core.nn.attention import attention, resolve_backend
backend, n, h, d, padded = {backend!r}, {n}, {h}, {d}, {padded}
b = 2
dev = "cuda" if torch.cuda.is_available() else "cpu"
dt = torch.bfloat16 if dev == "cuda" else torch.float32
g = torch.Generator(device=dev).manual_seed(0)
q, k, v = (torch.randn(b, h, n, d, device=dev, dtype=dt, generator=g) for _ in range(3))
mask = None
if padded:
    mask = torch.ones(b, n, dtype=torch.bool, device=dev)
    mask[1, n // 2:] = False  # second sequence is half padding
with torch.no_grad():
    attention(q[:, :, :64], k[:, :, :64], v[:, :, :64], mask=None if mask is None else mask[:, :64], backend=backend)
    if dev == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    out = attention(q, k, v, mask=mask, backend=backend)
    if dev == "cuda":
        torch.cuda.synchronize()
    dt_s = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() - base) if dev == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(json.dumps(dict(seconds=dt_s, peak_bytes=max(int(peak), 0), resolved=resolve_backend(backend, q, mask),
                      finite=bool(torch.isfinite(out).all()))))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--math-max", type=int, default=4096, help="skip the O(n^2) reference above this length")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _util import emit

    for n in args.sizes:
        for padded in (False, True):
            for backend in ("math", "sdpa", "flex", "auto"):
                if backend == "math" and n > args.math_max:
                    continue
                if backend == "flex" and n > 4096:  # eager flex materialises scores on CPU; compile it on GPU
                    continue
                code = CHILD.format(
                    bench=str(Path(__file__).parent), backend=backend, n=n, h=args.heads, d=args.dim, padded=padded
                )
                res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if res.returncode:
                    emit(
                        bench="attention",
                        backend=backend,
                        tokens=n,
                        padded=padded,
                        error=res.stderr.strip().splitlines()[-1],
                    )
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                scores = 2 * args.heads * n * n * 4
                emit(
                    bench="attention",
                    backend=backend,
                    resolved=r["resolved"],
                    tokens=n,
                    padded=padded,
                    ms=round(1000 * r["seconds"], 2),
                    peak_mib=round(r["peak_bytes"] / 2**20, 1),
                    nn_scores_mib=round(scores / 2**20, 1),
                    o_n_memory=r["peak_bytes"] < scores / 4,
                    finite=r["finite"],
                )


if __name__ == "__main__":
    main()
