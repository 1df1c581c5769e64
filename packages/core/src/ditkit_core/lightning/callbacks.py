"""Callbacks: token throughput and periodic sample media."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO


class TokenThroughput(L.Callback):
    """Logs ``train/tokens_per_s`` (real tokens, padding excluded) and ``train/samples_per_s``."""

    def __init__(self, log_every_n_steps: int = 10):
        self.every = log_every_n_steps
        self._t0: float | None = None
        self._tokens = 0
        self._samples = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        x = batch.get("x") if isinstance(batch, dict) else None
        mask = batch.get("mask") if isinstance(batch, dict) else None
        if isinstance(mask, torch.Tensor):
            self._tokens += int(mask.sum())
            self._samples += mask.shape[0]
        elif isinstance(x, torch.Tensor):
            self._tokens += x.shape[0] * (x.shape[1] if x.dim() > 2 else 1)
            self._samples += x.shape[0]
        if (batch_idx + 1) % self.every == 0 and self._t0 is not None:
            dt = time.perf_counter() - self._t0
            if dt > 0 and self._tokens:
                pl_module.log("train/tokens_per_s", self._tokens / dt)
                pl_module.log("train/samples_per_s", self._samples / dt)
            self._t0, self._tokens, self._samples = time.perf_counter(), 0, 0


class SampleWriter(L.Callback):
    """After every ``every_n_epochs`` validation epochs, asks the module to write viewable samples.

    Calls ``pl_module.write_samples(out_dir, tag)`` (PNG, wav, ply, ... per domain) and logs the written paths;
    PNGs are also sent to the loggers as images and 16-bit PCM WAVs as audio (TensorBoard's ``add_image`` /
    ``add_audio``, or a logger's ``log_image`` / ``log_audio`` method), under ``samples/<file stem>`` at the global
    step. ``out_dir`` defaults to
    ``<trainer.default_root_dir>/samples``. Files are written by the global-zero rank; under a sharded strategy
    (FSDP), whose forward needs every rank, the other ranks run the same sampling into a temporary folder.
    """

    def __init__(self, out_dir: str | None = None, every_n_epochs: int = 1):
        if every_n_epochs < 1:
            raise ValueError(f"SampleWriter.every_n_epochs={every_n_epochs}: must be >= 1")
        self.out_dir, self.every = (Path(out_dir) if out_dir else None), every_n_epochs

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.out_dir is None:
            self.out_dir = Path(trainer.default_root_dir) / "samples"

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(pl_module, "write_samples"):
            return
        if (trainer.current_epoch + 1) % self.every:
            return
        sharded = "fsdp" in type(trainer.strategy).__name__.lower()
        if not trainer.is_global_zero and not sharded:
            return
        tag = f"epoch{trainer.current_epoch:03d}_step{trainer.global_step:06d}"
        if not trainer.is_global_zero:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                pl_module.write_samples(Path(tmp), tag)
            return
        paths = pl_module.write_samples(self.out_dir, tag) or []
        for p in paths:
            print(f"[SampleWriter] wrote {p}")
            self._log_media(trainer, Path(p))

    @staticmethod
    def _log_media(trainer: L.Trainer, path: Path) -> None:
        """Send a PNG as an image, a PCM WAV as audio, to every logger that takes it (other files are skipped).

        A file the logger cannot take (an unreadable image, a WAV that is not PCM) is skipped with a warning: sample
        media never stop a run.
        """
        kind = {".png": "image", ".wav": "audio"}.get(path.suffix.lower())
        if kind is None or not trainer.loggers:
            return
        key, step = f"samples/{path.stem}", trainer.global_step
        try:
            for logger in trainer.loggers:
                if hasattr(logger, f"log_{kind}"):  # e.g. WandbLogger: file paths
                    getattr(logger, f"log_{kind}")(key=key, **{f"{kind}s": [str(path)]}, step=step)
                    continue
                exp = getattr(logger, "experiment", None)
                if kind == "image" and hasattr(exp, "add_image"):
                    import matplotlib.image as mpimg

                    img = torch.from_numpy(mpimg.imread(str(path))[..., :3]).permute(2, 0, 1)
                    exp.add_image(key, img, step)
                elif kind == "audio" and hasattr(exp, "add_audio"):
                    wav, rate = read_pcm_wav(path)
                    exp.add_audio(key, wav[None], step, sample_rate=rate)
        except (OSError, ValueError, EOFError) as e:
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"SampleWriter: {path} not sent to the loggers as {kind}: {e}")


def read_pcm_wav(path: str | Path, max_seconds: float = 600.0) -> tuple[torch.Tensor, int]:
    """A PCM WAV (8, 16 or 32 bit integer samples, any channel count) as a mono waveform, with the standard library.

    Args:
        path: the ``.wav`` file.
        max_seconds: longer files are refused before their samples are read.

    Returns:
        ``(waveform [s] float32 in [-1, 1], sample rate)``; channels are averaged.

    Raises:
        ValueError: not a PCM WAV (``wave.Error``: e.g. float samples), a sample width other than 1, 2 or 4 bytes, or
            a file longer than ``max_seconds``; each message names the file.
    """
    import wave

    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate, frames = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
            if width not in (1, 2, 4):
                raise ValueError(f"{path}: {8 * width}-bit samples (expected 8, 16 or 32-bit PCM)")
            if rate < 1 or frames > max_seconds * rate:
                raise ValueError(f"{path}: {frames} frames at {rate} Hz (at most {max_seconds} s are read)")
            raw = w.readframes(frames)
    except wave.Error as e:
        raise ValueError(f"{path}: not a PCM WAV ({e})") from e
    data = np.frombuffer(raw, {1: np.uint8, 2: "<i2", 4: "<i4"}[width]).astype(np.float32)
    data = (data - 128.0) / 128.0 if width == 1 else data / float(2 ** (8 * width - 1))
    usable = data[: len(data) // channels * channels]
    return torch.from_numpy(usable.reshape(-1, channels).mean(axis=1)), rate


class CompileBlocks(L.Callback):
    """Applies ``torch.compile`` from outside the model code: each block of every ``DiT`` is compiled in place at the
    start of fitting (regional compilation, as torchtitan does: short compile times, one graph reused by every
    block; parameter names and checkpoints are unchanged).

    Args:
        mode: ``torch.compile`` mode (``default``, ``reduce-overhead``, ``max-autotune``).
        dynamic: allow dynamic shapes (variable sequence lengths) without recompiling.
    """

    def __init__(self, mode: str = "default", dynamic: bool | None = None):
        self.mode, self.dynamic = mode, dynamic

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        compile_blocks(pl_module, mode=self.mode, dynamic=self.dynamic)


class CheckpointBlocks(L.Callback):
    """Activation checkpointing applied from outside the model code: while fitting, every block of every ``DiT`` runs
    under ``torch.utils.checkpoint`` (non-reentrant), so its activations are recomputed in the backward pass instead
    of kept: memory falls from one set of activations per block to one per model, for about one more forward.

    It installs a block runner (:meth:`ditkit_core.nn.DiT.runner`) for the whole fit. Outside training mode or
    without gradients (validation, sampling) the runner passes straight through, so caches still apply there.
    Weights, outputs and gradients are unchanged. Switch it on from any YAML with ``shared/trainer/checkpoint.yaml``.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    @staticmethod
    def run(dit: Any, h: torch.Tensor, inp: Any, proceed: Any) -> torch.Tensor:
        """The block runner: each block checkpointed while training with gradients, else the next runner."""
        from torch.utils.checkpoint import checkpoint

        if not (dit.training and torch.is_grad_enabled()):
            return proceed(h, inp)
        for i in range(len(dit.blocks)):
            h = checkpoint(dit.block, i, h, inp, use_reentrant=False)
        return h

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from ditkit_core.sampling import find_dits

        for dit in find_dits(pl_module):
            self._stack.enter_context(dit.runner(self.run))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stack.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stack.close()


def compile_blocks(module: torch.nn.Module, mode: str = "default", dynamic: bool | None = None) -> int:
    """Compile every block of every DiT inside ``module`` in place; returns how many were compiled."""
    from ditkit_core.nn.dit import DiT

    n = 0
    for m in module.modules():
        if isinstance(m, DiT):
            for blk in m.blocks:
                blk.compile(mode=mode, dynamic=dynamic)
                n += 1
    return n


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file next to it and renames it into place.

    A run killed mid-write or a full disk never leaves a partial ``.ckpt``: the error propagates and the temporary
    file is removed.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        from ditkit_core.errors import atomic_save

        atomic_save(Path(path), lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp))


class RunGuard(L.Callback):
    """Keeps every run in one folder and fails loudly where Lightning would lose work silently.

    * ``ModelCheckpoint`` callbacks without a ``dirpath`` write to ``<default_root_dir>/checkpoints``;
    * every checkpoint folder is created and checked for writing before training starts (a clear error instead of a
      run that ends without checkpoints);
    * checkpoints are written atomically (:class:`AtomicCheckpointIO`).

    ``FlowMatchingModule.configure_callbacks`` adds it to every run.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from lightning.pytorch.callbacks import ModelCheckpoint

        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
                cb.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
            if isinstance(cb, ModelCheckpoint) and trainer.is_global_zero:
                check_writable(Path(cb.dirpath))
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it; raise a clear error naming it otherwise."""
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise OSError(
            f"checkpoint folder {folder} is not writable ({e.strerror or e}); set "
            "trainer.default_root_dir or the ModelCheckpoint dirpath to a writable folder"
        ) from e


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, counted over the whole run when ``trainer.max_steps`` is set: ``global step / max_steps`` with
    the overall ETA (the default bar restarts every epoch, so its ETA covers one epoch only). A resumed run starts
    at its restored step and its rate counts only the new steps. Without ``max_steps`` it is Lightning's bar.
    ``ditkit fit`` uses it in place of the default bar.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.max_steps is None or trainer.max_steps < 0:
            return super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # the first epoch of this process
            bar.reset(total=trainer.max_steps)
            bar.initial = bar.n = trainer.global_step
            bar.refresh()
        bar.set_description(f"Epoch {trainer.current_epoch}")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.max_steps is None or trainer.max_steps < 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n, bar = trainer.global_step, self.train_progress_bar
        if bar is not None and not bar.disable and (n % max(self.refresh_rate, 1) == 0 or n >= trainer.max_steps):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.max_steps is None or trainer.max_steps < 0:
            return super().on_train_epoch_end(trainer, pl_module)
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
