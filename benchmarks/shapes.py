"""ditkit-shapes benchmarks; prints one JSON line per figure.

1. 3D window vs global attention in the voxel DiT at 16^3 and 32^3 voxels (patch 2 -> 512 / 4096 tokens,
   4^3-patch windows as ``DiTConfig.window_grid`` / ``window_size``, every block windowed): forward time and peak
   memory, each measured in a fresh subprocess (peak RSS growth of the forward) so the two variants do not share
   allocator state.
2. PointFlow metrics for 100 generated vs 100 reference clouds: the full Chamfer protocol at 2,048 points
   (KD-tree nearest neighbours) with the per-pair time of dense torch distances as the peer (same values), and
   exact EMD (Hungarian assignment) on 256-point subsets, plus the time of one exact EMD at the full count.

Usage: ``python benchmarks/shapes.py [--quick] [--clouds 100 --points 2048 --emd-points 256]``
(``make bench-shapes``). Use ratios, not absolute timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ATTN_CHILD = r"""
import json, resource, sys, time, torch
from ditkit_core.nn import DiT, DiTConfig
voxels, patch, window, dim, depth, reps = (int(v) for v in sys.argv[1:7])
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[7]))
g = voxels // patch
windows = dict(window_grid=[g] * 3, window_size=[window] * 3, window_every=1) if window else {}
cfg = DiTConfig(in_dim=3 * patch**3, dim=dim, depth=depth, heads=dim // 48, rope_axes=3, **windows)
model = DiT(cfg).eval()
r = torch.arange(g, dtype=torch.float32)
pos = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(1, -1, 3)
x, t = torch.randn(1, g**3, cfg.in_dim), torch.rand(1)
with torch.no_grad():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); model(x, t, pos=pos); times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"tokens": g**3, "time_s": min(times), "peak_rss_growth_mb": (peak - before) / 1024}))
"""


def attention_figures(quick: bool, threads: int) -> None:
    dim, depth = 192, 2
    for voxels in (16, 32):
        res = {}
        for window in (0, 4):
            reps = 2 if voxels == 32 else 3
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    ATTN_CHILD,
                    str(voxels),
                    "2",
                    str(window),
                    str(dim),
                    str(depth),
                    str(1 if quick else reps),
                    str(threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            res["window" if window else "global"] = json.loads(out.stdout.strip().splitlines()[-1])
        g, w = res["global"], res["window"]
        n, heads, win = g["tokens"], dim // 48, 4**3
        # score memory a non-fused backend (``math``) would materialise per block: n^2 vs (n / w^3) w^6 entries
        scores_global_mb, scores_window_mb = n * n * heads * 4 / 2**20, n * win * heads * 4 / 2**20
        print(
            json.dumps(
                {
                    "figure": f"voxel_dit_attention_{voxels}^3",
                    "voxels": voxels,
                    "patch": 2,
                    "tokens": g["tokens"],
                    "window_patches": 4,
                    "dim": dim,
                    "depth": depth,
                    "batch": 1,
                    "window_time_s": round(w["time_s"], 4),
                    "global_time_s": round(g["time_s"], 4),
                    "speedup": round(g["time_s"] / w["time_s"], 2),
                    "window_peak_mb": round(w["peak_rss_growth_mb"], 1),
                    "global_peak_mb": round(g["peak_rss_growth_mb"], 1),
                    "score_matrix_mb_global": round(scores_global_mb, 1),
                    "score_matrix_mb_window": round(scores_window_mb, 1),
                    "attention_backend": "auto (sdpa flash on CPU)",
                    "threads": threads,
                }
            ),
            flush=True,
        )


def metric_figures(n: int, points: int, emd_points: int) -> None:
    import numpy as np
    import torch

    from ditkit_shapes.metrics import emd, evaluate_sets, pairwise_chamfer
    from ditkit_shapes.procedural import CLASSES, make_shape

    clouds = torch.stack([torch.from_numpy(make_shape(CLASSES[i % 6], points, i)) for i in range(2 * n)])
    gen, ref = clouds[:n], clouds[n:]
    t0 = time.perf_counter()
    cd = evaluate_sets(gen, ref, metrics=("cd",))
    cd_s = time.perf_counter() - t0
    # peer: dense torch distances on part of the generated-vs-reference block; values must agree
    k = min(n, 4)
    t0 = time.perf_counter()
    peer = pairwise_chamfer(gen[:k], ref, method="torch").numpy()
    peer_s = (time.perf_counter() - t0) / (k * n)
    t0 = time.perf_counter()
    ours = pairwise_chamfer(gen[:k], ref, method="kdtree")
    ours_s = (time.perf_counter() - t0) / (k * n)
    print(
        json.dumps(
            {
                "figure": f"chamfer_{n}_vs_{n}",
                "points": points,
                "pairs": (2 * n) ** 2 // 2,
                "protocol_time_s": round(cd_s, 2),
                "kdtree_per_pair_ms": round(1e3 * ours_s, 3),
                "dense_torch_peer_per_pair_ms": round(1e3 * peer_s, 3),
                "max_abs_diff_vs_dense": float(np.abs(ours.numpy() - peer).max()),
                "1-NNA-CD": cd["1-NNA-CD"],
            }
        ),
        flush=True,
    )
    t0 = time.perf_counter()
    e = evaluate_sets(gen, ref, metrics=("emd",), emd_points=emd_points)
    emd_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emd(gen[0].numpy(), ref[0].numpy())
    full_pair = time.perf_counter() - t0  # one exact EMD at the full point count
    print(
        json.dumps(
            {
                "figure": f"emd_exact_{n}_vs_{n}",
                "emd_points": emd_points,
                "pairs": (2 * n) ** 2 // 2,
                "protocol_time_s": round(emd_s, 2),
                f"one_pair_at_{points}_points_s": round(full_pair, 3),
                f"extrapolated_protocol_at_{points}_h": round(full_pair * (2 * n) ** 2 / 2 / 3600, 2),
                "1-NNA-EMD": e["1-NNA-EMD"],
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--clouds", type=int, default=100, help="generated and reference clouds (each)")
    ap.add_argument("--points", type=int, default=2048, help="points per cloud for Chamfer")
    ap.add_argument("--emd-points", type=int, default=256, help="points per cloud for exact EMD")
    ap.add_argument("--skip-attention", action="store_true")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    a = ap.parse_args()
    if not a.skip_attention:
        attention_figures(a.quick, a.threads)
    metric_figures(20 if a.quick else a.clouds, a.points, a.emd_points)


if __name__ == "__main__":
    main()
