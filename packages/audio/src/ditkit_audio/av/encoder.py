"""A small audio-video feature network for Frechet distances, trained on the real procedural clips (no downloads).

Video branch: three strided 3D convolutions over the frames, pooled -> 64 features. Audio branch: 1D convolutions
over the log-mel frames, pooled -> 64 features. Joint features: an MLP over both (128). Heads trained on the truth
of each clip: family, ball count, colours present, number of collisions, and whether video and audio belong together
(half of each batch is re-paired at random), so the joint features see synchrony, not only the two marginals.

``python -m ditkit_audio.av.cli encoder --data outputs/av/data --out outputs/av/encoder`` (``make eval-av`` trains it
when missing) writes ``model.safetensors`` + ``config.json`` + ``report.json`` (held-out accuracies).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.errors import DataError, atomic_save, atomic_write, naming_file

MEL_MEAN, MEL_STD = -6.3, 1.35


class AVEncoder(nn.Module):
    """Clip features: ``video [b, f, h, w, 3]`` (uint8 or [0, 1]) + log-mel ``[b, f_a, n_mels]`` -> features.

    Args:
        n_mels: mel bands.
        width: channels of the last convolutions (video and audio features each have ``width`` values).
    """

    def __init__(self, n_mels: int = 64, width: int = 64):
        super().__init__()
        self.n_mels, self.width = n_mels, width
        self.video = nn.Sequential(
            nn.Conv3d(3, 16, (3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1)),
            nn.GELU(),
            nn.Conv3d(16, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv3d(32, width, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.audio = nn.Sequential(
            nn.Conv1d(n_mels, 64, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(64, 64, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv1d(64, width, 5, stride=2, padding=2),
            nn.GELU(),
        )
        # joint: per time step, video and audio features side by side, then a temporal conv (sees alignment)
        self.joint = nn.Sequential(
            nn.Conv1d(2 * width, 128, 3, padding=1), nn.GELU(), nn.Conv1d(128, 128, 3, padding=1)
        )
        self.heads = nn.ModuleDict(
            {
                "family": nn.Linear(2 * width + 128, 3),
                "balls": nn.Linear(2 * width + 128, 4),
                "colors": nn.Linear(2 * width + 128, 4),
                "events": nn.Linear(2 * width + 128, 1),
                "paired": nn.Linear(128, 1),
            }
        )

    def forward(self, video: Tensor, mel: Tensor) -> dict[str, Tensor]:
        """Features ``{"video": [b, w], "audio": [b, w], "joint": [b, 128], "all": [b, 2 w + 128]}``."""
        v = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()
        hv = self.video(rearrange(2 * v - 1, "b f h w c -> b c f h w"))  # [b, w, f', h', w']
        hv_t = hv.mean((3, 4))  # [b, w, f']
        ha_t = self.audio(rearrange((mel.float() - MEL_MEAN) / MEL_STD, "b f m -> b m f"))  # [b, w, f_a']
        ha_on_v = F.adaptive_avg_pool1d(ha_t, hv_t.shape[-1])
        hj = self.joint(torch.cat([hv_t, ha_on_v], 1))  # [b, 128, f']
        fv, fa, fj = hv_t.mean(-1), ha_t.mean(-1), hj.amax(-1)
        return {"video": fv, "audio": fa, "joint": fj, "all": torch.cat([fv, fa, fj], -1)}

    def predict(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: (h(feats["joint"]) if k == "paired" else h(feats["all"])) for k, h in self.heads.items()}

    @torch.no_grad()
    def features(self, video: Tensor, mel: Tensor, batch: int = 64) -> dict[str, Tensor]:
        """Features of many clips, in batches (eval mode)."""
        self.eval()
        parts = [self(video[i : i + batch], mel[i : i + batch]) for i in range(0, video.shape[0], batch)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def clip_targets(clips: object, merge: float) -> dict[str, Tensor]:
    """Training targets from a :class:`~ditkit_audio.av.store.ClipSet`'s truth."""
    from ditkit_audio.av.metrics import merge_events

    n = len(clips)
    colors = torch.zeros(n, 4)
    balls = torch.zeros(n, dtype=torch.long)
    events = torch.zeros(n)
    for i in range(n):
        cs = [c for c in clips.colors[i] if c >= 0]
        balls[i] = len(cs)
        colors[i, cs] = 1.0
        ev = clips.clip_events(i)
        events[i] = len(merge_events(ev[:, 0], merge)[0]) if len(ev) else 0
    return {"family": torch.as_tensor(clips.family).long(), "balls": balls, "colors": colors, "events": events}


def train_encoder(
    train: object, test: object, steps: int = 800, batch: int = 32, lr: float = 2e-3, seed: int = 0
) -> tuple[AVEncoder, dict]:
    """Train on a :class:`~ditkit_audio.av.data.ClipDataset` and report held-out accuracies on another."""
    torch.manual_seed(seed)
    enc = AVEncoder(train.mel.shape[-1])
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=1e-4)
    merge = 1.0 / train.clips.fps
    tg = clip_targets(train.clips, merge)
    g = torch.Generator().manual_seed(seed)
    n = len(train)
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        v, m = train.video[idx], train.mel[idx]
        shuffle = torch.rand(batch, generator=g) < 0.5
        perm = torch.randperm(batch, generator=g)
        m_in = torch.where(shuffle[:, None, None], m[perm], m)
        paired = (~shuffle | (perm == torch.arange(batch))).float()
        out = enc.predict(enc(v, m_in))
        t = {k: x[idx] for k, x in tg.items()}
        keep = paired.bool()  # clip targets only where the audio is the clip's own
        loss = F.binary_cross_entropy_with_logits(out["paired"][:, 0], paired)
        if keep.any():
            loss = loss + F.cross_entropy(out["family"][keep], t["family"][keep])
            loss = loss + F.cross_entropy(out["balls"][keep], t["balls"][keep])
            loss = loss + F.binary_cross_entropy_with_logits(out["colors"][keep], t["colors"][keep])
            loss = loss + 0.1 * F.mse_loss(out["events"][keep, 0], t["events"][keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
        for pg in opt.param_groups:
            pg["lr"] = lr * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps))
    return enc.eval(), evaluate_encoder(enc, test)


@torch.no_grad()
def evaluate_encoder(enc: AVEncoder, data: object) -> dict:
    """Held-out accuracies of the heads (and of telling matched from re-paired clips)."""
    tg = clip_targets(data.clips, 1.0 / data.clips.fps)
    f = enc.features(data.video, data.mel)
    out = enc.predict(f)
    rolled = enc.predict(enc.features(data.video, data.mel.roll(1, 0)))
    acc = lambda a, b: round(float((a == b).float().mean()), 4)  # noqa: E731
    return {
        "family_acc": acc(out["family"].argmax(-1), tg["family"]),
        "balls_acc": acc(out["balls"].argmax(-1), tg["balls"]),
        "colors_acc": acc((out["colors"] > 0).float(), tg["colors"]),
        "events_mae": round(float((out["events"][:, 0] - tg["events"]).abs().mean()), 3),
        "paired_acc": round(
            0.5 * (float((out["paired"] > 0).float().mean()) + float((rolled["paired"] <= 0).float().mean())), 4
        ),
        "clips": len(data),
    }


def save_encoder(enc: AVEncoder, out: str | Path, report: dict) -> Path:
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(out / "model.safetensors", lambda tmp: save_file(enc.state_dict(), tmp))
    with atomic_write(out / "config.json", "w") as f:
        json.dump({"n_mels": enc.n_mels, "width": enc.width}, f)
    with atomic_write(out / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    return out


def load_encoder(path: str | Path) -> AVEncoder:
    """Read an encoder folder; a config or weights that do not fit raise a DataError naming the file."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} does not exist (make it with `python -m ditkit_audio.av.cli encoder`)")
    with naming_file(cfg_path, "not an encoder config"):
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if (
        not isinstance(cfg, dict)
        or set(cfg) != {"n_mels", "width"}
        or not all(isinstance(v, int) and 1 <= v <= 4096 for v in cfg.values())
    ):
        raise DataError("expected {n_mels, width} integers in [1, 4096]", path=cfg_path, value=cfg)
    enc = AVEncoder(**cfg)
    with naming_file(path / "model.safetensors", "weights do not fit the encoder"):
        enc.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    return enc.eval()


def main(argv: list[str] | None = None) -> None:
    from ditkit_audio.av.data import AVDataModule

    ap = argparse.ArgumentParser(prog="ditkit-av encoder")
    ap.add_argument("--data", default="outputs/av/data")
    ap.add_argument("--out", default="outputs/av/encoder")
    ap.add_argument("--steps", type=int, default=800)
    args = ap.parse_args(argv)
    dm = AVDataModule(root=args.data)
    dm.setup()
    enc, report = train_encoder(dm.train, dm.val, steps=args.steps)
    save_encoder(enc, args.out, {"val": report, "steps": args.steps})
    print(json.dumps({"encoder": str(args.out), "val": report}))


__all__ = ["AVEncoder", "evaluate_encoder", "load_encoder", "save_encoder", "train_encoder"]
