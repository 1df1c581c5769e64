"""Lightning training of the small mel models (the neural vocoder and the SQ-codec), so ``ditkit fit`` trains them
from their app configs like any other model (``apps/tts/configs/vocoder.yaml``, ``sqcodec.yaml``).

* :class:`MelCropDataModule`: the train / held-out split of a TTS config's corpus with waveforms
  (:func:`~ditkit_audio.wavtools.load_wav_split`), served as an endless stream of seeded random crops
  (:class:`MelCrops`): ``aligned`` (log-mel + the waveform under it, for the vocoder) or ``padded`` (log-mel + mask,
  short utterances zero-padded, for the codec). The same seed gives the same batches in the same order.
* :class:`MelModelModule`: what both models share: AdamW with linear warm-up and a cosine decay over
  ``trainer.max_steps`` (the core's :class:`~ditkit_core.lightning.OptimConfig` group), the mel settings checked
  against the data's at fit start (a mismatch names the setting), a per-step loss history, and at the end of fitting
  the trained model written to ``trainer.default_root_dir`` in the core's pretrained format with its held-out figures
  in ``report.json`` (``export``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset

from ditkit_audio.wavtools import MEL_KEYS, load_wav_split, random_segments, save_model
from ditkit_core.lightning import OptimConfig, warmup_cosine

CROPS = ("aligned", "padded")


def padded_segments(
    items: list[dict], batch_size: int, frames: int, n_mels: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """A batch of random log-mel crops ``[b, frames, n_mels]`` with their mask ``[b, frames]``; utterances shorter
    than ``frames`` are zero-padded (mask False on the padding)."""
    mel = torch.zeros(batch_size, frames, n_mels)
    mask = torch.zeros(batch_size, frames, dtype=torch.bool)
    for b in range(batch_size):
        it = items[int(torch.randint(len(items), (1,), generator=generator))]
        f = it["mel"].shape[0]
        k = int(torch.randint(max(1, f - frames + 1), (1,), generator=generator))
        crop = it["mel"][k : k + frames].float()
        mel[b, : crop.shape[0]], mask[b, : crop.shape[0]] = crop, True
    return mel, mask


class MelCrops(IterableDataset):
    """Endless batches of random crops of ``items`` (one batch per element; use ``DataLoader(batch_size=None)``).

    Args:
        items: ``{"mel": [f, n_mels], "wav": [s]}`` items (:func:`~ditkit_audio.wavtools.load_wav_split`).
        batch_size, frames: crops per batch and frames per crop.
        hop: samples per frame (``aligned`` crops cut the waveform under the frames).
        seed: seed of the crop generator (restarted by every ``iter``).
        crop: ``aligned`` -> ``{"mel", "wav"}`` from utterances of at least ``frames`` frames; ``padded`` ->
            ``{"mel", "mask"}`` from every utterance.
    """

    def __init__(self, items: list[dict], batch_size: int, frames: int, hop: int, seed: int = 0, crop: str = "aligned"):
        super().__init__()
        if crop not in CROPS:
            raise ValueError(f"MelCrops.crop={crop!r}: choose one of {CROPS}")
        if not items:
            raise ValueError("MelCrops: no utterances to crop")
        self.items, self.batch_size, self.frames, self.hop, self.seed, self.crop = (
            items,
            batch_size,
            frames,
            hop,
            seed,
            crop,
        )
        usable = sum(it["mel"].shape[0] >= frames for it in items)
        if crop == "aligned" and usable == 0:
            raise ValueError(f"MelCrops: no utterance has >= segment_frames={frames} frames")

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        g = torch.Generator().manual_seed(self.seed)
        n_mels = self.items[0]["mel"].shape[-1]
        while True:
            if self.crop == "aligned":
                mel, wav = random_segments(self.items, self.batch_size, self.frames, self.hop, g)
                yield {"mel": mel, "wav": wav}
            else:
                mel, mask = padded_segments(self.items, self.batch_size, self.frames, n_mels, g)
                yield {"mel": mel, "mask": mask}


def _need_int(owner: str, name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}.{name}={value!r}: must be an integer >= {low}")


class MelCropDataModule(L.LightningDataModule):
    """Random crops of a TTS config's corpus for the vocoder / codec; the held-out split is never trained on.

    Args:
        tts_config: the TTS app config whose corpus, mel and text settings and data options are used (read at
            ``setup``).
        root: corpus folder (default: the TTS config's ``data.init_args.root``).
        val_size: held-out utterances (the split of ``make eval-tts`` with 64 / seed 0).
        seed: split seed and crop seed.
        batch_size: crops per batch.
        segment_frames: frames per crop.
        crop: ``aligned`` (vocoder: log-mel + waveform) or ``padded`` (codec: log-mel + mask).
    """

    def __init__(
        self,
        tts_config: str = "apps/tts/configs/default.yaml",
        root: str | None = None,
        val_size: int = 64,
        seed: int = 0,
        batch_size: int = 16,
        segment_frames: int = 24,
        crop: Literal["aligned", "padded"] = "aligned",
    ):
        super().__init__()
        _need_int("MelCropDataModule", "val_size", val_size, 1)
        _need_int("MelCropDataModule", "batch_size", batch_size, 1)
        _need_int("MelCropDataModule", "segment_frames", segment_frames, 2)
        if crop not in CROPS:
            raise ValueError(f"MelCropDataModule.crop={crop!r}: choose one of {CROPS}")
        self.tts_config, self.root, self.val_size, self.seed = tts_config, root, val_size, seed
        self.batch_size, self.segment_frames, self.crop = batch_size, segment_frames, crop
        self.train_items: list[dict] | None = None
        self.val_items: list[dict] = []
        self.settings: dict[str, Any] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.train_items is None:
            self.train_items, self.val_items, self.settings = load_wav_split(
                self.tts_config, root=self.root, val_size=self.val_size, seed=self.seed
            )
            print(f"[{type(self).__name__}] mel settings {self.settings}", flush=True)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        crops = MelCrops(
            self.train_items, self.batch_size, self.segment_frames, self.settings["hop"], self.seed, self.crop
        )
        return DataLoader(crops, batch_size=None)


class MelModelModule(L.LightningModule):
    """Shared training loop of the small mel models; subclasses set :attr:`net` and :meth:`losses`.

    Args:
        optim: AdamW, warm-up and cosine floor (:class:`~ditkit_core.lightning.OptimConfig`; the cosine horizon is
            ``optim.max_steps`` or else ``trainer.max_steps``); a mapping fills the fields it names over ``defaults``.
        defaults: the model's own optimiser defaults (used where ``optim`` is None or a partial mapping).
        export: at the end of fitting write the model to ``trainer.default_root_dir`` (core pretrained format) and its
            held-out figures to ``report.json`` there.
        asr: CTC probe folder for the figures' CER / WER (skipped when it is not trained).
        eval_n: held-out utterances in the figures.
        log_every: print the losses every this many steps (0: never).
    """

    tag = "model"
    """Prefix of printed lines."""

    def __init__(
        self,
        optim: OptimConfig | dict[str, Any] | None,
        defaults: OptimConfig,
        export: bool,
        asr: str | None,
        eval_n: int,
        log_every: int,
    ):
        super().__init__()
        _need_int(type(self).__name__, "eval_n", eval_n, 1)
        if optim is None:
            optim = defaults
        elif isinstance(optim, dict):
            optim = OptimConfig(**{**dataclasses.asdict(defaults), **optim})
        elif not isinstance(optim, OptimConfig):
            raise ValueError(f"{type(self).__name__}.optim: expected an OptimConfig or a mapping, got {optim!r}")
        self.optim = optim
        self.export, self.asr, self.eval_n, self.log_every = export, asr, eval_n, log_every
        self.history: list[dict[str, float]] = []
        self._t0 = 0.0
        self._shape: tuple[int, ...] = ()

    @property
    def net(self) -> nn.Module:
        """The trained model (a :class:`~ditkit_audio.wavtools.MelModule`)."""
        raise NotImplementedError

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss": total, <part>: value, ...}`` for one batch of crops."""
        raise NotImplementedError

    def evaluate(self, items: list[dict]) -> dict[str, Any]:
        """Held-out figures of :attr:`net` on ``items`` (with waveforms)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.losses(batch)
        parts = {k: float(v.detach()) for k, v in out.items() if k != "loss"}
        self.history.append(parts)
        self._shape = tuple(batch["mel"].shape[:2])
        for k, v in parts.items():
            self.log(f"train/{k}", v, prog_bar=True, batch_size=self._shape[0])
        step = int(self.global_step)
        if self.log_every and step % self.log_every == 0:
            text = " ".join(f"{k} {v:.4f}" for k, v in parts.items())
            print(f"[{self.tag}] step {step} {text} ({time.perf_counter() - self._t0:.0f} s)", flush=True)
        return out["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        o = self.optim
        steps = o.max_steps or (int(self.trainer.max_steps) if self._trainer is not None else -1)
        if steps <= 0:
            raise ValueError(f"{type(self).__name__}: set trainer.max_steps (the cosine horizon), got {steps}")
        opt = torch.optim.AdamW(self.net.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(o.warmup_steps, steps, o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        settings = getattr(dm, "settings", None) or {}
        for k in MEL_KEYS:
            if k in settings and settings[k] != getattr(self.net, k):
                raise ValueError(
                    f"{type(self).__name__}: model.init_args.{k}={getattr(self.net, k)!r} differs from the TTS "
                    f"config's {k}={settings[k]!r} ({getattr(dm, 'tts_config', 'data')})"
                )
        n = sum(p.numel() for p in self.net.parameters())
        print(f"[{self.tag}] {n} parameters", flush=True)

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def train_log(self) -> dict[str, Any]:
        """Steps, seconds, crop shape and the mean of every loss part over the first and last 50 steps."""
        hist, n = self.history, min(50, len(self.history))
        log: dict[str, Any] = {"steps": len(hist), "seconds": round(time.perf_counter() - self._t0, 1)}
        if self._shape:
            log["batch_size"], log["segment_frames"] = self._shape
        for k in hist[0] if hist else ():
            log[f"{k}_first"] = round(sum(h[k] for h in hist[:n]) / n, 4)
            log[f"{k}_last"] = round(sum(h[k] for h in hist[-n:]) / n, 4)
        return log

    def on_train_end(self) -> None:
        if not self.export or not self.trainer.is_global_zero:
            return
        out = Path(self.trainer.default_root_dir)
        net = self.net.eval()
        save_model(net, out)
        dm = getattr(self.trainer, "datamodule", None)
        report: dict[str, Any] = {"train": self.train_log()}
        items = list(getattr(dm, "val_items", None) or [])[: self.eval_n]
        if items:
            with torch.no_grad():
                report.update(self.evaluate(items))
        save_model(net, out, report)
        print(f"[{self.tag}] wrote {out} (report.json)", flush=True)


def trained_probe(asr: str | None) -> tuple[Any, Any]:
    """``(probe, its text tokenizer)`` when ``asr`` holds a trained CTC probe, else ``(None, None)``."""
    if not asr or not (Path(asr) / "config.json").exists():
        return None, None
    from ditkit_audio.asr import load_probe
    from ditkit_audio.text import TextTokenizer

    return load_probe(asr), TextTokenizer("chars")


def fit(
    module: MelModelModule,
    items: list[dict],
    *,
    steps: int,
    batch_size: int,
    segment_frames: int,
    seed: int,
    crop: str,
    hop: int,
    max_seconds: float | None = None,
) -> MelModelModule:
    """Train ``module`` on crops of ``items`` for ``steps`` steps in one process (no files written unless
    ``module.export``); the loop ``ditkit fit`` runs from the app configs, for notebooks and tests."""
    import datetime

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        max_time=None if max_seconds is None else datetime.timedelta(seconds=max_seconds),
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    crops = MelCrops(items, batch_size, segment_frames, hop, seed, crop)
    trainer.fit(module, train_dataloaders=DataLoader(crops, batch_size=None))
    return module


def fit_config(config: str | Path, *overrides: str) -> dict[str, Any]:
    """``ditkit fit --config config [overrides]`` in this process; returns the ``report.json`` it wrote."""
    from ditkit_audio.wavtools import read_json
    from ditkit_core.lightning import FlowCLI

    cli = FlowCLI(args=["fit", "--config", str(config), *overrides])
    return read_json(Path(cli.trainer.default_root_dir) / "report.json", max_bytes=1 << 26)
