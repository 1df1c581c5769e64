"""DiT forward+backward throughput (tokens/s) vs diffusers' DiTTransformer2DModel at equal width/depth/heads/length.

The peer gets a latent grid with patch size 1, so both models see the same number of tokens; both get a class
label and a timestep. Prints one JSON line per precision (fp32, bf16 autocast) with both figures and the ratio.
On CUDA it also reports bf16 model-FLOPs utilisation (MFU) of DiT-B at 1024 tokens.

Usage: python benchmarks/core_dit.py [--tokens 256] [--dim 384] [--depth 6] [--heads 6] [--batch 4]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit, timeit  # noqa: E402

from ditkit_core import DiT, DiTConfig  # noqa: E402


def ours(dim: int, depth: int, heads: int, in_ch: int, qk_norm: bool) -> tuple[torch.nn.Module, callable]:
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


def step_fn(model, call, x, t, y, bf16: bool, device: str):
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def run():
        opt.zero_grad(set_to_none=True)
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
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
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
    for qk_norm in (True, False):
        m, call = ours(args.dim, args.depth, args.heads, args.channels, qk_norm)
        m.to(device)
        for bf16 in (False, True):
            ours_s = timeit(step_fn(m, call, x_tok, t, y, bf16, device), repeats=args.repeats)
            rec = dict(
                bench="core_dit",
                precision="bf16-autocast" if bf16 else "fp32",
                qk_norm=qk_norm,
                tokens=n,
                dim=args.dim,
                depth=args.depth,
                heads=args.heads,
                batch=args.batch,
                ditkit_tokens_per_s=round(args.batch * n / ours_s, 1),
            )
            if p_model is not None:
                peer_s = timeit(step_fn(p_model, p_call, x_img, t, y, bf16, device), repeats=args.repeats)
                rec.update(
                    peer="diffusers.DiTTransformer2DModel",
                    peer_tokens_per_s=round(args.batch * n / peer_s, 1),
                    ratio=round(peer_s / ours_s, 3),
                )
            emit(**rec)
    if device == "cuda":  # DiT-B at 1024 tokens, bf16: model-FLOPs utilisation
        m = DiT(DiTConfig.preset("B", in_dim=args.channels, num_classes=1000)).cuda()
        b = 32
        x = torch.randn(b, 1024, args.channels, device="cuda")
        tt, yy = torch.rand(b, device="cuda"), torch.randint(0, 1000, (b,), device="cuda")
        s = timeit(step_fn(m, lambda x, t, y: m(x, t, cond=y), x, tt, yy, True, "cuda"), repeats=10)
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
