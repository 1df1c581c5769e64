"""Activation checkpointing (``CheckpointBlocks``): peak memory and time of one DiT train step, with and without.

Each setting runs in a fresh subprocess: a DiT (default DiT-S width, depth 8, 1024 tokens, batch 2, fp32, QK-norm
on) takes one small warm-up step, then the measured steps (forward + backward). Peak memory is the growth of the
process's maximum resident set during the first measured step (``torch.cuda.max_memory_allocated`` on CUDA); time
is the median process CPU time of the next steps (wall on CUDA). The peer is the same model without checkpointing.

Usage: python benchmarks/checkpointing.py [--tokens 1024] [--dim 384] [--depth 8] [--heads 6] [--batch 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import contextlib, json, resource, statistics, time
import torch
from ditkit_core.lightning import CheckpointBlocks
from ditkit_core.nn import DiT, DiTConfig
torch.set_num_threads(1)
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
m = DiT(DiTConfig(in_dim=4, dim={dim}, depth={depth}, heads={heads}, num_classes=10)).to(dev)
checkpointed = {checkpointed}

def step(n):
    x = torch.randn({batch}, n, 4, device=dev)
    t, y = torch.rand({batch}, device=dev), torch.randint(0, 10, ({batch},), device=dev)
    with m.runner(CheckpointBlocks.run) if checkpointed else contextlib.nullcontext():
        m(x, t, cond=y).pow(2).mean().backward()
    m.zero_grad(set_to_none=False)
    if dev == "cuda":
        torch.cuda.synchronize()

step(64)
if dev == "cuda":
    torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
else:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
step({tokens})
if dev == "cuda":
    peak = torch.cuda.max_memory_allocated() - base
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
times = []
for _ in range({repeats}):
    c0, w0 = time.process_time(), time.perf_counter()
    step({tokens})
    times.append(time.perf_counter() - w0 if dev == "cuda" else time.process_time() - c0)
print(json.dumps(dict(peak_bytes=max(int(peak), 0), step_s=statistics.median(times), device=dev)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _util import emit

    res = {}
    for checkpointed in (False, True):
        code = CHILD.format(checkpointed=checkpointed, **vars(args))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"checkpointing={checkpointed}: {out.stderr.strip().splitlines()[-1]}")
        res[checkpointed] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, ckpt = res[False], res[True]
    emit(
        bench="activation_checkpointing",
        **{k: getattr(args, k) for k in ("tokens", "dim", "depth", "heads", "batch")},
        peak_mib=round(ckpt["peak_bytes"] / 2**20, 1),
        peer="same model without checkpointing",
        peer_peak_mib=round(plain["peak_bytes"] / 2**20, 1),
        memory_ratio=round(ckpt["peak_bytes"] / max(plain["peak_bytes"], 1), 3),
        step_s=round(ckpt["step_s"], 4),
        peer_step_s=round(plain["step_s"], 4),
        time_ratio=round(ckpt["step_s"] / plain["step_s"], 3),
    )


if __name__ == "__main__":
    main()
