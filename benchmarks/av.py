"""Audio-video benchmark (one JSON line per figure).

* Training throughput: one optimiser step (forward + backward) of the joint DiT (each stream its own weights, one
  attention over all video and audio tokens) vs the peer: two separate single-stream DiTs of the same width, depth and
  heads (the same parameters, no cross-modal attention), each on its own stream. Real tokens per second of CPU time.
* Generation: seconds of compute per second of clip at 16 Euler steps, for v2a (video given) and joint generation,
  with classifier-free guidance (two branches) and without, batch 1 and 16.

Candidate and peer are timed in interleaved rounds by process CPU time (``_util.compare``).

    .venv/bin/python benchmarks/av.py [--config apps/audio_video/configs/default.yaml] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import compare, emit, rounded  # noqa: E402

from ditkit_core.nn import DiT  # noqa: E402


def build(config: str, ckpt: str | None):
    """The app's module: the trained run when a checkpoint exists, else untrained weights of the same shapes."""
    from ditkit_core.lightning import FlowCLI, load_run

    if ckpt and Path(ckpt).exists():
        return load_run(config=config, ckpt=ckpt), "trained"
    cli = FlowCLI(args=["--config", config, "--trainer.logger", "false"], run=False)
    return cli.model, "untrained weights, app shapes"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="apps/audio_video/configs/default.yaml")
    ap.add_argument("--ckpt", default="outputs/av/checkpoints/last.ckpt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module, weights = build(args.config, args.ckpt)
    module.train()
    tok, net = module.tokenizer, module.model
    b = args.batch
    video = torch.randint(0, 256, (b, tok.frames, tok.size, tok.size, 3), dtype=torch.uint8)
    mel = torch.randn(b, tok.audio_frames, tok.n_mels) * tok.mel_std + tok.mel_mean
    batch = {"video": video, "mel": mel, "family": torch.zeros(b, dtype=torch.long)}
    tokens = module.condition(module.tokenize(batch), None)
    x, pos, xc = tokens.x, tokens.pos, tokens.x_cond
    t = torch.rand(b)
    lay = module.layout()
    cfgs = net.joint.configs
    torch.manual_seed(0)
    peers = {n: DiT(cfgs[n]) for n in ("video", "audio")}
    xs, ps, cs = lay.split(x), lay.split_tokens(pos), lay.split_cond(xc)

    def joint_step() -> None:
        net.zero_grad(set_to_none=True)
        out = net(x, t, pos=pos, x_cond=xc, cond=tokens.cond)
        out.square().mean().backward()

    def separate_step() -> None:
        for n, d in peers.items():
            d.zero_grad(set_to_none=True)
            d(xs[n], t, pos=ps[n], x_cond=cs[n], cond=tokens.cond).square().mean().backward()

    n_tok = b * x.shape[1]
    res = compare({"joint": joint_step, "separate": separate_step}, rounds=args.rounds, inner=2, warmup=1)
    emit(
        bench="av_train_step",
        weights=weights,
        batch=b,
        tokens_per_sample={"video": tok.video_tokens, "audio": tok.audio_tokens},
        params={
            "joint": sum(p.numel() for p in net.parameters()),
            "separate": sum(sum(p.numel() for p in d.parameters()) for d in peers.values()),
        },
        joint=rounded(res["joint"]),
        separate=rounded(res["separate"]),
        joint_tokens_per_s=round(n_tok / res["joint"]["s"], 1),
        separate_tokens_per_s=round(n_tok / res["separate"]["s"], 1),
        ratio_joint_over_separate_time=round(res["joint"]["s"] / res["separate"]["s"], 3),
        threads=args.threads,
    )
    module.eval()
    for bs in (1, b):
        sub = {k: v[:bs] for k, v in batch.items()}
        fns = {}
        for task in ("v2a", "joint"):
            for cfg in (1.0, 2.0):
                g = torch.Generator().manual_seed(0)
                fns[f"{task}_cfg{cfg:g}"] = lambda task=task, cfg=cfg, g=g, sub=sub: module.sample_task(
                    sub, task, steps=16, cfg_video=cfg, cfg_audio=cfg, generator=g
                )
        res = compare(fns, rounds=3, inner=1, warmup=1)
        emit(
            bench="av_generation",
            weights=weights,
            batch=bs,
            steps=16,
            clip_seconds=tok.seconds,
            seconds_per_clip_second={k: round(v["s"] / (bs * tok.seconds), 4) for k, v in res.items()},
            spread={k: round(v["spread"], 3) for k, v in res.items()},
            threads=args.threads,
        )


if __name__ == "__main__":
    main()
