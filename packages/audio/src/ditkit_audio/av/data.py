"""Audio-video data: the procedural splits written by ``make data-av`` (or synthesised on first use), or a folder of
real .mp4 files (with their audio track or a .wav beside each) cut into clips; log-mels computed once per split."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_audio.audio import LogMel
from ditkit_audio.av.store import ClipSet, load_clipset
from ditkit_audio.av.synthetic import ClipSpec, make_clips
from ditkit_core.errors import DataError, atomic_write
from ditkit_core.lightning import seeded_loader

SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 3000, "val": 200, "test": 200}
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


def clip_mels(clips: ClipSet, logmel: LogMel, frames: int, chunk: int = 64) -> Tensor:
    """Log-mels ``[n, frames, n_mels]`` of every clip's audio (the first ``frames`` frames)."""
    out = []
    for s in range(0, len(clips), chunk):
        wav = torch.from_numpy(np.ascontiguousarray(clips.audio[s : s + chunk]))
        out.append(logmel(wav)[:, :frames].float())
    if not out:
        return torch.zeros(0, frames, logmel.n_mels)
    return torch.cat(out)


class ClipDataset(Dataset):
    """Items ``{"video": uint8 [f, h, w, 3], "mel": [f_a, n_mels], "family": long, "index": long}`` of a split.

    Args:
        clips: the split.
        logmel: the tokenizer's log-mel settings.
        frames: mel frames kept per clip.
    """

    def __init__(self, clips: ClipSet, logmel: LogMel, frames: int):
        self.clips = clips
        self.video = torch.from_numpy(np.ascontiguousarray(clips.video))
        self.mel = clip_mels(clips, logmel, frames)
        self.family = torch.from_numpy(clips.family.astype(np.int64))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"video": self.video[i], "mel": self.mel[i], "family": self.family[i], "index": torch.tensor(i)}

    def batch(self, idx: list[int]) -> dict[str, Tensor]:
        """The collated items ``idx``."""
        items = [self[i] for i in idx]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def write_splits(
    root: str | os.PathLike, spec: ClipSpec, counts: dict[str, int] | None = None, seed: int = 0
) -> dict[str, Path]:
    """Synthesise the procedural splits into ``root/{train,val,test}.npz`` (+ ``spec.json``); returns the paths."""
    root = Path(root)
    counts = {**DEFAULT_COUNTS, **(counts or {})}
    bad = sorted(set(counts) - set(SPLITS))
    if bad or any(not (isinstance(v, int) and v >= 0) for v in counts.values()):
        raise ValueError(f"write_splits: counts={counts}: splits are {SPLITS}, counts integers >= 0")
    paths = {}
    for split in SPLITS:
        clips = make_clips(spec, counts[split], seed * 10 + SPLIT_SEEDS[split])
        names = [f"{split}{i:05d}" for i in range(len(clips))]
        paths[split] = ClipSet.from_clips(clips, spec, names).save(root / f"{split}.npz")
    with atomic_write(root / "spec.json", "w") as f:
        json.dump({"spec": spec.to_dict(), "counts": counts, "seed": seed}, f, indent=1)
    return paths


def split_of(name: str) -> str:
    """Deterministic split of a real file by the hash of its name: 10 % test, 10 % val, 80 % train."""
    h = int(hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:8], 16) % 10
    return "test" if h == 0 else "val" if h == 1 else "train"


class AVDataModule(L.LightningDataModule):
    """Clips for :class:`~ditkit_audio.av.module.AVModule`.

    Args:
        root: folder of the procedural splits (``train/val/test.npz``, from ``make data-av``).
        real: a folder of .mp4 files (or .mp4 + .wav pairs) to use instead; its files are split by name hash.
        synthesize: write the procedural splits with these counts when ``root`` has none (e.g. the debug config).
        size, fps, seconds, sample_rate: clip geometry (checked against the stored splits and the tokenizer).
        n_fft, hop, n_mels: log-mel settings (the tokenizer's).
        pulse_fraction: share of ``pulse`` clips when synthesising.
        batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        root: str = "outputs/av/data",
        real: str | None = None,
        synthesize: dict[str, int] | None = None,
        size: int = 32,
        fps: int = 16,
        seconds: float = 2.0,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        pulse_fraction: float = 0.25,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"AVDataModule.batch_size={batch_size!r}: must be an integer >= 1")
        if not (isinstance(num_workers, int) and num_workers >= 0):
            raise ValueError(f"AVDataModule.num_workers={num_workers!r}: must be an integer >= 0")
        self.spec = ClipSpec(
            size=size, fps=fps, seconds=seconds, sample_rate=sample_rate, pulse_fraction=pulse_fraction
        )
        self.root, self.real, self.synthesize = Path(root), real, synthesize
        self.size, self.fps, self.seconds, self.sample_rate = size, fps, float(seconds), sample_rate
        self.n_fft, self.hop, self.n_mels = n_fft, hop, n_mels
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train = self.val = self.test = None
        self.report = None

    @property
    def audio_frames(self) -> int:
        return int(round(self.seconds * self.sample_rate / self.hop))

    def logmel(self) -> LogMel:
        return LogMel(self.sample_rate, self.n_fft, self.hop, self.n_mels)

    def clipsets(self) -> dict[str, ClipSet]:
        """The three splits as :class:`ClipSet` (procedural or from the real folder), checked against the geometry."""
        if self.real is not None:
            from ditkit_audio.av.media import load_folder

            clips, self.report = load_folder(
                self.real, fps=self.fps, size=self.size, sample_rate=self.sample_rate, seconds=self.seconds
            )
            files = [n.rsplit("@", 1)[0] for n in clips.names]
            parts = {s: [i for i, f in enumerate(files) if split_of(f) == s] for s in SPLITS}
            if not parts["val"] and len(set(files)) > 1:  # tiny folders: the last training file validates
                last = files[parts["train"][-1]]
                parts["val"] = [i for i in parts["train"] if files[i] == last]
                parts["train"] = [i for i in parts["train"] if files[i] != last]
            return {s: clips.subset(parts[s]) for s in SPLITS}
        if not (self.root / "train.npz").exists():
            if self.synthesize is None:
                raise FileNotFoundError(f"{self.root / 'train.npz'} does not exist (make it with `make data-av`)")
            write_splits(self.root, self.spec, self.synthesize, self.seed)
        out = {}
        for s in SPLITS:
            cs = load_clipset(self.root / f"{s}.npz")
            got = {"size": cs.size, "fps": cs.fps, "seconds": cs.seconds, "sample_rate": cs.sample_rate}
            for k, v in got.items():
                if v != getattr(self, k):
                    raise DataError(
                        f"the stored clips have {k}={v!r}, the config asks {getattr(self, k)!r}",
                        path=self.root / f"{s}.npz",
                        field=k,
                        value=v,
                    )
            out[s] = cs
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        sets = self.clipsets()
        lm, fa = self.logmel(), self.audio_frames
        self.train, self.val, self.test = (ClipDataset(sets[s], lm, fa) for s in SPLITS)

    def train_dataloader(self) -> Any:
        return seeded_loader(
            self.train,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            drop_last=len(self.train) >= self.batch_size,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> Any:
        return seeded_loader(self.val, self.batch_size, shuffle=False, num_workers=self.num_workers)

    def test_dataloader(self) -> Any:
        return seeded_loader(self.test, self.batch_size, shuffle=False, num_workers=self.num_workers)


__all__ = ["AVDataModule", "ClipDataset", "DEFAULT_COUNTS", "SPLITS", "clip_mels", "split_of", "write_splits"]
