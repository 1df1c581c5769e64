"""Policy inference latency per action chunk: dense vs MoE vs MoE + expert caching vs block caching.

The default policy (apps/policy/configs/default.yaml) and its dense twin at equal active parameters
(mlp_ratio 4, no experts) sample one chunk (batch 1, horizon 16) with 1, 4 and 10 Euler steps. Rows:

* ``dense``, ``moe``: plain sampling;
* ``moe+expert_cache``: MoDE expert caching (routes precomputed per grid time, shared + chosen experts fused);
* ``dense+block_cache``, ``moe+expert_cache+block_cache``: Block-wise adaptive caching (ditkit_core BlockCache,
  schedule calibrated on demonstration observations; needs >= 4 steps to skip anything).

Each line reports the median ms per chunk, the speed-up over ``dense`` at the same step count (the peer figure),
the fraction of block evaluations skipped, and the max |action difference| against the uncached model of the
same kind (0 = exact). The MoE policy uses the trained weights of outputs/policy/pretrained and the dense twin
those of outputs/policy_dense/pretrained when present; otherwise they get random non-zero weights (latency is the
same; the block-cache skip ratio and error are only meaningful for trained weights, see the ``weights`` field).

Usage: python benchmarks/policy.py [--repeats 30] [--steps 1 4 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit, timeit  # noqa: E402

from ditkit_core.nn import DiTConfig  # noqa: E402
from ditkit_robotics import ActionChunkTokenizer, PolicyModule  # noqa: E402
from ditkit_robotics.evaluate import calibrate_block_cache, calibration_batch, expert_cache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build(moe: bool, pretrained: Path | None) -> tuple[PolicyModule, str]:
    if pretrained is not None and (pretrained / "config.json").exists():
        from ditkit_core.lightning import from_pretrained

        return from_pretrained(pretrained).eval(), "trained"
    args = yaml.safe_load((ROOT / "apps/policy/configs/default.yaml").read_text())["model"]["init_args"]
    args = copy.deepcopy(args)
    tok = ActionChunkTokenizer(**args.pop("tokenizer")["init_args"])
    cfg = dict(args.pop("model"))
    if not moe:
        cfg.update(mlp_ratio=cfg["mlp_ratio"] * (cfg["moe_shared"] + cfg["moe_top_k"]), moe_experts=0)
    args.pop("time_sampler", None)
    torch.manual_seed(0)
    policy = PolicyModule(tok, DiTConfig(**cfg), **args).eval()
    with torch.no_grad():  # a fresh DiT is exactly zero: give the zero-initialised layers weights
        for name, p in policy.model.named_parameters():
            if "adaLN" in name or "final" in name or "gate" in name:
                p.normal_(0, 0.05)
    return policy, "random"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4, 10])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pretrained", default=str(ROOT / "outputs/policy/pretrained"), help="trained MoE policy")
    ap.add_argument(
        "--dense-pretrained",
        default=str(ROOT / "outputs/policy_dense/pretrained"),
        help="trained dense twin (apps/policy/configs/dense.yaml)",
    )
    ap.add_argument("--data", default=str(ROOT / "data/policy/metaworld_demos.zarr"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    pre = Path(args.pretrained)
    moe, moe_weights = build(True, pre)
    dense, dense_weights = build(False, Path(args.dense_pretrained))
    weights = {"moe": moe_weights, "dense": dense_weights}
    tok = moe.tokenizer
    if Path(args.data).exists():
        calib = calibration_batch(args.data, 16, tok.n_obs_steps, tok.horizon)
    else:
        calib = {"obs": torch.randn(16, tok.n_obs_steps, tok.obs_dim), "task_id": torch.zeros(16, dtype=torch.long)}
    obs, tid = calib["obs"][5:6], calib["task_id"][5:6]
    params = {"dense": dense.num_active_parameters(), "moe": moe.num_active_parameters()}

    for steps in args.steps:

        def run(policy: PolicyModule, block=None, steps=steps) -> torch.Tensor:
            g = torch.Generator().manual_seed(0)
            with block if block is not None else nullcontext():
                return policy.predict_action(obs, tid, steps=steps, generator=g, clip=False)

        ref = {"dense": run(dense), "moe": run(moe)}
        base_ms = None
        variants = [
            ("dense", dense, False, False),
            ("moe", moe, False, False),
            ("moe+expert_cache", moe, True, False),
            ("dense+block_cache", dense, False, True),
            ("moe+expert_cache+block_cache", moe, True, True),
        ]
        for name, policy, use_expert, use_block in variants:
            if use_block and steps < 4:
                continue
            outer = expert_cache(policy, steps) if use_expert else nullcontext()
            with outer:
                block = calibrate_block_cache(policy, calib["obs"], calib["task_id"], steps) if use_block else None
                ms = 1000 * timeit(
                    lambda policy=policy, block=block: run(policy, block), repeats=args.repeats, warmup=3
                )
                out = run(policy, block)
            kind = "moe" if policy is moe else "dense"
            base_ms = ms if name == "dense" else base_ms
            emit(
                benchmark="policy_chunk_latency",
                variant=name,
                steps=steps,
                ms_per_chunk=round(ms, 3),
                dense_ms_per_chunk=round(base_ms, 3),
                speedup_vs_dense=round(base_ms / ms, 3),
                skip_ratio=round(block.stats.skip_ratio, 3) if block is not None else 0.0,
                max_action_diff=round(float((out - ref[kind]).abs().max()), 5),
                active_params=params[kind]["dit_active"] + params[kind]["encoder"],
                total_params=params[kind]["dit_total"] + params[kind]["encoder"],
                weights=weights[kind],
                goal_ms=10.0,
            )


if __name__ == "__main__":
    main()
