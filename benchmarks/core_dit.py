"""DiT train step (forward + backward) vs diffusers' DiTTransformer2DModel at equal work, and vs the kernel floor.

* ditkit: ``DiT`` with QK-norm on (the default) and off.
* peer: diffusers ``DiTTransformer2DModel`` with patch size 1 on a ``sqrt(n) x sqrt(n)`` latent, so both models see
  the same tokens, widths, heads and depth (the peer has no QK-norm).
* floor: the same step's matmuls and attention alone (every linear layer of the ditkit model and one SDPA call per
  block, forward and backward, no norms, modulation, activations or rotations): the time no implementation of this
  architecture can go below on this machine.

Timed in interleaved rounds by process CPU time on one thread (see ``_util.compare``); one JSON line per precision
and QK-norm setting with the median step times, their spreads, ``ratio`` = peer / ditkit (> 1: ditkit faster) and
``floor_ratio`` = ditkit / floor. With ``--compile`` the ditkit model's blocks are compiled in place as well
(regional compilation). On CUDA it also reports bf16 model-FLOPs utilisation (MFU) of DiT-B at 1024 tokens.

Usage: python benchmarks/core_dit.py [--tokens 256] [--dim 384] [--depth 6] [--heads 6] [--batch 4] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import compare, emit, rounded  # noqa: E402

from ditkit_core import DiT, DiTConfig  # noqa: E402
from ditkit_core.lightning import compile_blocks  # noqa: E402


def ours(dim: int, depth: int, heads: int, in_ch: int, qk_norm: bool) -> tuple[nn.Module, callable]:
    m = DiT(DiTConfig(in_dim=in_ch, dim=dim, depth=depth, heads=heads, num_classes=1000, qk_norm=qk_norm))
    return m, lambda x, t, y: m(x, t, cond=y)


def peer(dim: int, depth: int, heads: int, in_ch: int, side: int):
    from diffusers import DiTTransformer2DModel

    m = DiTTransformer2DModel(
        num_attention_heads=heads,
        attention_head_dim=dim // heads,
        in_channels=in_ch,
        out_channels=in_ch,
        num_layers=depth,
        sample_size=side,
        patch_size=1,
        num_embeds_ada_norm=1000,
    )
    return m, lambda x, t, y: m(x, timestep=(t * 1000), class_labels=y).sample


class Floor(nn.Module):
    """Every matmul and one attention call per block of the ditkit DiT, nothing else."""

    def __init__(self, dim: int, depth: int, heads: int, in_ch: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.x_embed = nn.Linear(in_ch, dim)
        self.t = nn.Sequential(nn.Linear(256, dim), nn.Linear(dim, dim))
        self.label = nn.Embedding(1001, dim)
        hid = int(dim * mlp_ratio)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ada": nn.Linear(dim, 6 * dim),
                    "qkv": nn.Linear(dim, 3 * dim),
                    "proj": nn.Linear(dim, dim),
                    "fc1": nn.Linear(dim, hid),
                    "fc2": nn.Linear(hid, dim),
                }
            )
            for _ in range(depth)
        )
        self.final_ada, self.final = nn.Linear(dim, 2 * dim), nn.Linear(dim, in_ch)

    def forward(self, x, t, y):
        b, n, _ = x.shape
        h = self.x_embed(x)
        c = self.t(t[:, None].expand(b, 256)) + self.label(y)
        for blk in self.blocks:
            blk["ada"](c)
            q, k, v = blk["qkv"](h).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, -1)
            h = h + blk["proj"](a)
            h = h + blk["fc2"](blk["fc1"](h))
        self.final_ada(c)
        return self.final(h)


def step_fn(model, call, x, t, y, bf16: bool, device: str):
    params = [p for p in model.parameters() if p.requires_grad]

    def run():
        for p in params:
            p.grad = None
        ctx = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = call(x, t, y)
        out.float().square().mean().backward()

    return run


def dit_flops(tokens: int, dim: int, depth: int, mlp_ratio: float = 4.0) -> float:
    """Training FLOPs per sample (forward + backward = 3x forward), matmuls only."""
    per_layer = 2 * tokens * (4 * dim * dim + 2 * mlp_ratio * dim * dim) + 4 * tokens * tokens * dim
    return 3 * depth * per_layer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="also time the ditkit model with compiled blocks")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    side = int(math.isqrt(args.tokens))
    n = side * side
    torch.manual_seed(0)
    x_tok = torch.randn(args.batch, n, args.channels, device=device)
    x_img = x_tok.transpose(1, 2).reshape(args.batch, args.channels, side, side).contiguous()
    t = torch.rand(args.batch, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    try:
        p_model, p_call = peer(args.dim, args.depth, args.heads, args.channels, side)
        p_model.to(device)
    except ImportError:
        p_model = None
    floor = Floor(args.dim, args.depth, args.heads, args.channels).to(device)
    for qk_norm in (True, False):
        m, call = ours(args.dim, args.depth, args.heads, args.channels, qk_norm)
        m.to(device)
        for bf16 in (False, True):
            fns = {
                "ditkit": step_fn(m, call, x_tok, t, y, bf16, device),
                "floor": step_fn(floor, floor, x_tok, t, y, bf16, device),
            }
            if p_model is not None:
                fns["peer"] = step_fn(p_model, p_call, x_img, t, y, bf16, device)
            if args.compile:
                mc, callc = ours(args.dim, args.depth, args.heads, args.channels, qk_norm)
                compile_blocks(mc.to(device))
                fns["ditkit_compiled"] = step_fn(mc, callc, x_tok, t, y, bf16, device)
            res = compare(fns, rounds=args.rounds, inner=2, warmup=2)
            rec = dict(
                bench="core_dit",
                precision="bf16-autocast" if bf16 else "fp32",
                qk_norm=qk_norm,
                tokens=n,
                dim=args.dim,
                depth=args.depth,
                heads=args.heads,
                batch=args.batch,
                ditkit=rounded(res["ditkit"]),
                floor=rounded(res["floor"]),
                floor_ratio=round(res["ditkit"]["s"] / res["floor"]["s"], 3),
                ditkit_tokens_per_s=round(args.batch * n / res["ditkit"]["s"], 1),
            )
            if "peer" in res:
                rec.update(
                    peer="diffusers.DiTTransformer2DModel",
                    peer_time=rounded(res["peer"]),
                    peer_floor_ratio=round(res["peer"]["s"] / res["floor"]["s"], 3),
                    ratio=round(res["peer"]["s"] / res["ditkit"]["s"], 3),
                )
            if "ditkit_compiled" in res:
                rec.update(
                    compiled=rounded(res["ditkit_compiled"]),
                    compiled_floor_ratio=round(res["ditkit_compiled"]["s"] / res["floor"]["s"], 3),
                )
            emit(**rec)
    if device == "cuda":  # DiT-B at 1024 tokens, bf16: model-FLOPs utilisation
        m = DiT(DiTConfig.preset("B", in_dim=args.channels, num_classes=1000)).cuda()
        b = 32
        x = torch.randn(b, 1024, args.channels, device="cuda")
        tt, yy = torch.rand(b, device="cuda"), torch.randint(0, 1000, (b,), device="cuda")
        s = compare({"m": step_fn(m, lambda x, t, y: m(x, t, cond=y), x, tt, yy, True, "cuda")}, rounds=10)["m"]["s"]
        peak = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
        name = torch.cuda.get_device_name()
        peak_flops = next((v for k, v in peak.items() if k in name), float("nan"))
        emit(
            bench="core_dit_mfu",
            model="DiT-B",
            tokens=1024,
            batch=b,
            step_s=round(s, 4),
            mfu=round(b * dit_flops(1024, 768, 12) / s / peak_flops, 3),
        )


if __name__ == "__main__":
    main()
