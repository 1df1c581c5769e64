"""TTS benchmark: real-time factor of the default model (16 / 32 steps; Griffin-Lim and the neural vocoder timed on
the same mels in the same run) and the DiT backbone's step time vs a plain pre-norm transformer of the same size (the
F5-TTS backbone from `f5-tts` is used instead when it is importable; it is not installed by default because it pulls
a CUDA torch). One JSON line per figure.

    .venv/bin/python benchmarks/tts.py [--config apps/tts/configs/default.yaml] [--ckpt CKPT|none] [--threads 2]

The trained run is loaded with ``ditkit_core.lightning.load_run`` from the config's default checkpoint
(``<trainer.default_root_dir>/checkpoints/last.ckpt``); without one (or with ``--ckpt none``) the config's module is
built with untrained weights (it times the same).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit, timeit  # noqa: E402

from ditkit_audio.inference import synthesize  # noqa: E402
from ditkit_audio.module import TTSModule  # noqa: E402
from ditkit_audio.tokenizer import MelTokenizer  # noqa: E402
from ditkit_audio.vocoder import Vocoder, resolve_vocoder  # noqa: E402
from ditkit_core.lightning import default_checkpoint, from_config, load_run, read_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "The old farmer paints the red boat today.",
    "Did the quiet child sleep near the river?",
    "Seven brave horses walk home slowly.",
    "Why does the clever king call the doctor?",
]


class PlainTransformer(nn.Module):
    """Baseline backbone: input projection + pre-norm ``nn.TransformerEncoder`` + output projection, time added as a
    sinusoid-MLP embedding to every token (no adaLN, no RoPE)."""

    def __init__(self, in_dim: int, out_dim: int, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.inp, self.out = nn.Linear(in_dim, dim), nn.Linear(dim, out_dim)
        self.t = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, int(mlp_ratio * dim), dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.enc = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + self.t(t[:, None, None].expand(-1, x.shape[1], 1))
        return self.out(self.enc(h, src_key_padding_mask=~mask))


def default_module(config: str, ckpt: str | None) -> tuple[TTSModule, str]:
    """The trained run of ``config`` (``ckpt`` or its default checkpoint), else its shipped weights, else its module
    with untrained weights."""
    from ditkit_audio.cli import APP

    path = Path(ckpt) if ckpt and ckpt != "none" else default_checkpoint(config)
    if ckpt != "none" and path.is_dir():  # a save_pretrained folder
        return load_run(config, pretrained=path), f"pretrained ({path})"
    if ckpt != "none" and path.exists():
        return load_run(config, ckpt=path), f"trained ({path})"
    shipped = APP.shipped_for(config)
    if ckpt is None and shipped and (ROOT / shipped / "config.json").exists():
        return load_run(config, pretrained=ROOT / shipped), f"shipped ({shipped})"
    torch.manual_seed(0)
    return from_config(read_config(config)["model"]).eval(), "untrained weights of the config's shapes"


def neural_vocoder(path: str, tok: MelTokenizer) -> tuple[Vocoder, str]:
    """The trained vocoder, or an untrained one of the shipped size (it times the same) when none is trained."""
    if Path(path, "config.json").exists():
        return resolve_vocoder(path, tok), f"trained ({path})"
    cfg = read_config(ROOT / "apps/tts/configs/vocoder.yaml")["model"]["init_args"]
    torch.manual_seed(0)
    kw = {k: getattr(tok, k) for k in ("sample_rate", "n_fft", "hop", "n_mels", "mel_mean", "mel_std")}
    size = {k: cfg[k] for k in ("dim", "intermediate", "layers")}
    return Vocoder(**kw, **size).eval(), "untrained weights, shipped size (run make train-vocoder)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "apps/tts/configs/default.yaml"))
    ap.add_argument(
        "--ckpt",
        default=None,
        help="checkpoint or pretrained folder (default: the run's last.ckpt, else shipped weights; none: untrained)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vocoder", default="", help="trained neural vocoder (default: the vocoder config's run folder)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m, kind = default_module(a.config, a.ckpt)
    sr = m.tokenizer.sample_rate
    vocoder_dir = a.vocoder or read_config(ROOT / "apps/tts/configs/vocoder.yaml")["trainer"]["default_root_dir"]
    voc, voc_kind = neural_vocoder(vocoder_dir, m.tokenizer)
    for steps in (16, 32):
        t0 = time.perf_counter()
        res = synthesize(m, TEXTS, steps=steps, vocode=False)
        acoustic = time.perf_counter() - t0
        t0 = time.perf_counter()
        wavs = [m.tokenizer.to_wav(mel) for mel in res["mels"]]
        gl = time.perf_counter() - t0
        t0 = time.perf_counter()
        voc.vocode_batch(res["mels"])
        neural = time.perf_counter() - t0
        secs = sum(w.shape[0] for w in wavs) / sr
        emit(
            figure="tts_rtf_cpu",
            steps=steps,
            cfg_scale=m.sampler.cfg_scale,
            acoustic_model=kind,
            sentences=len(TEXTS),
            audio_s=round(secs, 2),
            rtf_total_griffinlim=round((acoustic + gl) / secs, 4),
            rtf_acoustic=round(acoustic / secs, 4),
            rtf_griffinlim_only=round(gl / secs, 4),
            rtf_total_neural=round((acoustic + neural) / secs, 4),
            rtf_neural_vocoder_only=round(neural / secs, 4),
            vocoder_speedup=round(gl / neural, 1),
            neural_vocoder=voc_kind,
            goal="rtf_total_neural < 0.3 at 16 steps on one thread (--threads 1)",
        )

    # backbone step time: the DiT (adaLN-Zero, RoPE, QK-norm) vs a plain transformer of the same width/depth/heads; the
    # baseline reads the same per-frame input width ([x_t, reference mel, text embedding])
    cfg = m.config
    b, f = 4, 250
    x = torch.randn(b, f, cfg.in_dim)
    x_cond = torch.randn(b, f, cfg.cond_channels)
    t = torch.rand(b)
    mask = torch.ones(b, f, dtype=torch.bool)
    pos = torch.arange(f, dtype=torch.float32)[None, :, None].expand(b, f, 1)
    width = cfg.in_dim + cfg.cond_channels
    base = PlainTransformer(width, cfg.output_dim, cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio).eval()
    joint = torch.cat([x, x_cond], -1)
    peer = "plain nn.TransformerEncoder (f5-tts not installed: it needs a CUDA torch)"
    with torch.no_grad():
        t_dit = timeit(lambda: m.model(x, t, mask=mask, pos=pos, x_cond=x_cond), repeats=a.repeats)
        t_base = timeit(lambda: base(joint, t, mask), repeats=a.repeats)
    emit(
        figure="tts_backbone_step",
        batch=b,
        frames=f,
        dim=cfg.dim,
        depth=cfg.depth,
        dit_params=sum(p.numel() for p in m.model.parameters()),
        baseline_params=sum(p.numel() for p in base.parameters()),
        dit_ms=round(1e3 * t_dit, 2),
        baseline_ms=round(1e3 * t_base, 2),
        ratio_dit_over_baseline=round(t_dit / t_base, 3),
        baseline=peer,
    )


if __name__ == "__main__":
    main()
