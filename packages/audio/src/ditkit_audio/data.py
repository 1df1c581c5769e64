"""Speech data: the embedded espeak-ng corpus (LJSpeech layout), the dataset, the length-bucketing batch sampler
(rank-aware under data parallelism) and the Lightning DataModule. The corpus loaders live in
:mod:`ditkit_audio.corpus` (re-exported here)."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from ditkit_audio.audio import MAX_RATE, MIN_RATE, LogMel
from ditkit_audio.corpus import (
    CorpusNotFoundError,
    CorpusReport,
    Utterance,
    load_corpus,
    load_features,
    scan_corpus,
    scan_ljspeech,
    scan_nested,
)
from ditkit_audio.espeak import espeak_exe, espeak_wav
from ditkit_audio.text import TextTokenizer, fit_symbol_frames, generate_sentences, normalize_text
from ditkit_core.errors import atomic_save, atomic_write
from ditkit_core.lightning.data import EpochShuffleSampler, seeded_loader

log = logging.getLogger(__name__)

DEFAULT_VOICES = ("en+f3", "en+m3", "en-us+f2", "en+m1")


# ---------------------------------------------------------------------- embedded corpus
def synthesize_corpus(
    out_dir: str | Path,
    n: int = 2000,
    *,
    seed: int = 0,
    voices: tuple[str, ...] = DEFAULT_VOICES,
    rates: tuple[int, int] = (140, 180),
    pitches: tuple[int, int] = (35, 65),
    workers: int = 2,
) -> Path:
    """Speak ``n`` generated sentences with espeak-ng into the LJSpeech layout.

    Writes ``out_dir/metadata.csv`` (``id|text|normalised text``), ``out_dir/wavs/<id>.wav`` (22.05 kHz, espeak-ng's
    rate) and ``out_dir/speakers.csv`` (``id|voice|rate|pitch``). Voice, rate and pitch vary per sentence.

    Raises:
        RuntimeError: espeak-ng is missing or fails on a sentence.
    """
    import random

    espeak_exe("synthesize_corpus")
    out = Path(out_dir)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    sentences = generate_sentences(n, seed)
    rng = random.Random(seed + 1)
    jobs = []
    for i, s in enumerate(sentences):
        uid = f"ES{i:05d}"
        jobs.append((uid, s, rng.choice(voices), rng.randint(*rates), rng.randint(*pitches)))

    def run(job: tuple[str, str, str, int, int]) -> None:
        uid, s, v, r, p = job
        wav = out / "wavs" / f"{uid}.wav"
        atomic_save(wav, lambda tmp: espeak_wav(s, tmp, voice=v, rate=r, pitch=p))  # text on stdin, never an argument

    with ThreadPoolExecutor(max(1, workers)) as ex:
        list(ex.map(run, jobs))
    with atomic_write(out / "speakers.csv") as f:
        f.write("".join(f"{u}|{v}|{r}|{p}\n" for u, _, v, r, p in jobs).encode())
    with atomic_write(out / "metadata.csv") as f:  # last: its presence marks a complete corpus
        f.write("".join(f"{u}|{s}|{normalize_text(s)}\n" for u, s, *_ in jobs).encode())
    return out


# ---------------------------------------------------------------------- dataset / datamodule
class TTSDataset(Dataset):
    """Featurised utterances -> ``{"mel": [f, n_mels], "ids": [L], "text": str}``."""

    def __init__(self, items: list[dict[str, Any]], text: TextTokenizer):
        self.items, self.text = items, text
        self.ids = [torch.tensor(s) for s in text.encode_many([it["text"] for it in items])]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        out = {"mel": it["mel"].float(), "ids": self.ids[i], "text": it["text"]}
        if "dur" in it:
            out["dur"] = it["dur"]
        return out


def _replicas(num_replicas: int | None, rank: int | None, sampler: Any) -> tuple[int, int]:
    """``(num_replicas, rank)``: given, else from an injected ``DistributedSampler``, else from an initialised
    ``torch.distributed`` process group, else a single process."""
    if num_replicas is None and sampler is not None and hasattr(sampler, "num_replicas") and hasattr(sampler, "rank"):
        num_replicas, rank = int(sampler.num_replicas), int(sampler.rank) if rank is None else rank
    if num_replicas is None or rank is None:
        dist = torch.distributed
        on = dist.is_available() and dist.is_initialized()
        num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if on else 1)
        rank = rank if rank is not None else (dist.get_rank() if on else 0)
    if not (isinstance(num_replicas, int) and num_replicas >= 1):
        raise ValueError(f"LengthBucketBatchSampler: num_replicas={num_replicas!r}: must be an integer >= 1")
    if not (isinstance(rank, int) and 0 <= rank < num_replicas):
        raise ValueError(f"LengthBucketBatchSampler: rank={rank!r}: must be in [0, num_replicas={num_replicas})")
    return num_replicas, rank


class LengthBucketBatchSampler(BatchSampler):
    """Batches of similar length (less padding, so much cheaper steps) in an order that depends on
    ``(seed, epoch)`` only: shuffle, cut into chunks of ``bucket`` batches, sort each chunk by length, split it into
    batches and shuffle the batches.

    Under data parallelism every rank builds the same batch list and takes a disjoint share of it (batch ``k`` goes
    to rank ``k % num_replicas``, like ``torch.utils.data.DistributedSampler``), with the same number of batches per
    rank: with ``drop_last`` the last ``len % num_replicas`` batches of the shuffled order are dropped (different ones
    every epoch), otherwise the first batches are repeated to fill up. One process sees exactly the single-process
    order.

    Args:
        lengths: frames per utterance.
        batch_size: utterances per batch.
        bucket: batches per sorted chunk.
        seed: shuffle seed.
        drop_last: drop a final short batch of each chunk (and the batches that do not divide among the ranks).
        num_replicas: data-parallel ranks (default: the ``torch.distributed`` world size when initialised, else 1).
        rank: this process's rank (default: from ``torch.distributed``, else 0).
        sampler: Lightning injects a ``DistributedSampler`` here under DDP; only its ``num_replicas`` / ``rank`` are
            used (the order stays the epoch-seeded one of this class).
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        bucket: int = 32,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        sampler: Any = None,
    ):
        if isinstance(lengths, Sampler):
            raise TypeError(
                "LengthBucketBatchSampler: lengths must be the frames per utterance, got a Sampler (Lightning passes "
                "one when the batch sampler was built outside a *_dataloader hook; build it inside the hook)"
            )
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"LengthBucketBatchSampler: batch_size={batch_size!r}: must be an integer >= 1")
        self.lengths, self.bucket, self.seed = [int(x) for x in lengths], max(1, int(bucket)), seed
        self.num_replicas, self.rank = _replicas(num_replicas, rank, sampler)
        # Lightning calls set_epoch on ``batch_sampler.sampler``: the epoch-seeded shuffle lives there
        super().__init__(EpochShuffleSampler(self.lengths, seed, shuffle=True), batch_size, bool(drop_last))
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def skip_batches(self, k: int) -> None:
        """Drop this rank's first ``k`` batches of the next epoch (resuming from a mid-epoch checkpoint; called by
        :func:`ditkit_core.lightning.resume_data_order`). The rest of the epoch is the uninterrupted order."""
        self._skip = int(k)

    def _all_batches(self) -> list[list[int]]:
        """The whole epoch's batches (every rank computes the same list)."""
        perm = list(iter(self.sampler))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.sampler.epoch + 1)
        chunk = self.bucket * self.batch_size
        out = []
        for k in range(0, len(perm), chunk):
            part = sorted(perm[k : k + chunk], key=lambda i: self.lengths[i])
            for j in range(0, len(part), self.batch_size):
                b = part[j : j + self.batch_size]
                if len(b) == self.batch_size or not self.drop_last:
                    out.append(b)
        order = torch.randperm(len(out), generator=g).tolist()
        return [out[i] for i in order]

    def _batches(self) -> list[list[int]]:
        out = self._all_batches()
        r = self.num_replicas
        if r == 1:
            return out
        if self.drop_last:
            total = len(out) // r * r
        else:
            total = math.ceil(len(out) / r) * r
            out = out + [out[i % len(out)] for i in range(total - len(out))] if out else out
        return out[self.rank : total : r]

    def __iter__(self):
        skip, self._skip = self._skip, 0
        return iter(self._batches()[skip:])

    def __len__(self) -> int:
        return len(self._batches())


def collate_tts(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of items: ``mel [b, f, n_mels]``, ``mask [b, f]``, ``ids [b, L]``, ``text_len [b]``, ``text``,
    and ``dur [b, L]`` (frames per symbol, 0 on padding) when every item has one."""
    f = max(it["mel"].shape[0] for it in batch)
    L_ = max(it["ids"].shape[0] for it in batch)
    b, m = len(batch), batch[0]["mel"].shape[1]
    mel, mask = torch.zeros(b, f, m), torch.zeros(b, f, dtype=torch.bool)
    ids = torch.zeros(b, L_, dtype=torch.long)
    for i, it in enumerate(batch):
        n = it["mel"].shape[0]
        mel[i, :n], mask[i, :n] = it["mel"], True
        ids[i, : it["ids"].shape[0]] = it["ids"]
    out = {
        "mel": mel,
        "mask": mask,
        "ids": ids,
        "text_len": torch.tensor([it["ids"].shape[0] for it in batch]),
        "text": [it["text"] for it in batch],
    }
    if all("dur" in it for it in batch):
        dur = torch.zeros(b, L_)
        for i, it in enumerate(batch):
            dur[i, : it["dur"].shape[0]] = it["dur"]
        out["dur"] = dur
    return out


class TTSDataModule(L.LightningDataModule):
    """An LJSpeech-style or nested speech corpus as log-mel frames + text ids.

    Args:
        root: corpus folder (default: the embedded corpus written by ``make data-tts``).
        layout: ``auto``, ``ljspeech`` or ``nested``.
        synthesize: if > 0 and ``root`` has no corpus, synthesise this many espeak-ng sentences there first.
        sample_rate, n_fft, hop, n_mels: features (must match the module's tokenizer; checked at fit start).
        text_kind: ``chars`` or ``phonemes``.
        min_seconds, max_seconds: length filter.
        loudness_db: target level of :func:`normalize_loudness` (None: keep levels).
        val_size: held-out utterances (the last ones of a seeded permutation).
        batch_size: utterances per batch.
        limit: use only the first ``limit`` utterances (0: all).
        bucket: > 0 batches training utterances of similar length (chunks of ``bucket`` batches sorted by length,
            :class:`LengthBucketBatchSampler`); 0 shuffles freely.
        timing: give every item ``dur`` (frames per text symbol) from espeak-ng's phoneme timings of the recording
            (:mod:`ditkit_audio.timing`; the corpus needs ``speakers.csv``, timings are cached next to it), for
            ``TTSModule(stretch_weights="espeak")``.
        seed: split and shuffle seed.
    """

    def __init__(
        self,
        root: str = "outputs/tts/data",
        layout: str = "auto",
        synthesize: int = 0,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        text_kind: str = "chars",
        min_seconds: float = 0.3,
        max_seconds: float = 6.0,
        loudness_db: float | None = -23.0,
        val_size: int = 32,
        batch_size: int = 16,
        limit: int = 0,
        cache: bool = True,
        bucket: int = 0,
        timing: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if layout not in ("auto", "ljspeech", "nested"):
            raise ValueError(f"TTSDataModule: layout={layout!r}; choose auto, ljspeech or nested")
        if text_kind not in ("chars", "phonemes"):
            raise ValueError(f"TTSDataModule: text_kind={text_kind!r}; choose chars or phonemes")
        if timing and text_kind != "phonemes":
            raise ValueError(f"TTSDataModule: timing=True needs text_kind='phonemes', got {text_kind!r}")
        for name, value, lo in (
            ("synthesize", synthesize, 0),
            ("sample_rate", sample_rate, MIN_RATE),
            ("n_fft", n_fft, 2),
            ("hop", hop, 1),
            ("n_mels", n_mels, 1),
            ("val_size", val_size, 1),
            ("batch_size", batch_size, 1),
            ("limit", limit, 0),
            ("bucket", bucket, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"TTSDataModule: {name}={value!r}: must be an integer >= {lo}")
        if sample_rate > MAX_RATE:
            raise ValueError(f"TTSDataModule: sample_rate={sample_rate}: must be <= {MAX_RATE}")
        if not (0 <= min_seconds < max_seconds and math.isfinite(max_seconds)):
            raise ValueError(
                f"TTSDataModule: min_seconds={min_seconds!r}, max_seconds={max_seconds!r}: need 0 <= min < max"
            )
        if loudness_db is not None and not (math.isfinite(loudness_db) and loudness_db < 0):
            raise ValueError(f"TTSDataModule: loudness_db={loudness_db!r}: expected a finite level below 0 or None")
        self.root, self.layout, self.synthesize = root, layout, synthesize
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.text_kind, self.min_seconds, self.max_seconds, self.loudness_db = (
            text_kind,
            min_seconds,
            max_seconds,
            loudness_db,
        )
        self.val_size, self.batch_size, self.limit, self.cache, self.seed = val_size, batch_size, limit, cache, seed
        self.bucket, self.timing = bucket, bool(timing)
        self.timing_tail = 0.0  # mean seconds a recording runs past espeak-ng's last phoneme (timing=True)
        self.report: CorpusReport | None = None

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train", None) is not None:
            return
        root = Path(self.root)
        if self.synthesize > 0 and not (root / "metadata.csv").exists():
            log.warning("TTSDataModule: synthesising %d espeak-ng sentences into %s", self.synthesize, root)
            synthesize_corpus(root, self.synthesize, seed=self.seed)
        logmel = LogMel(self.sample_rate, self.n_fft, self.hop, self.n_mels)
        self.text = TextTokenizer(self.text_kind)
        items, self.report = load_corpus(
            root,
            logmel,
            self.text,
            layout=self.layout,
            cache=self.cache,
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
            loudness_db=self.loudness_db,
        )
        if self.report.skips:
            self.report.log()  # a warning naming the skipped files, visible at the default log level
        else:
            print(f"[TTSDataModule] {self.report.summary()}")
        if self.limit:
            items = items[: self.limit]
        if self.timing:
            items = self._add_timing(root, items)
        if len(items) <= self.val_size:
            raise ValueError(
                f"TTSDataModule: {len(items)} usable utterances in {root}, need more than val_size={self.val_size}"
            )
        perm = torch.randperm(len(items), generator=torch.Generator().manual_seed(self.seed)).tolist()
        self.train = TTSDataset([items[i] for i in perm[: -self.val_size]], self.text)
        self.val = TTSDataset([items[i] for i in perm[-self.val_size :]], self.text)
        frames = torch.tensor([float(it["mel"].shape[0]) for it in self.train.items])
        chars = torch.tensor([float(len(i)) for i in self.train.ids])
        self.frames_per_symbol = float(frames.sum() / chars.sum())
        # expected frames per symbol + trailing silence from sentence totals (the stretch prior of the text encoder)
        self.symbol_frames, self.tail_frames = fit_symbol_frames(self.train.ids, frames.tolist(), self.text.vocab_size)

    def _add_timing(self, root: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items with ``dur [L]`` (frames per symbol, summing to the item's frames) from espeak-ng's timings."""
        from ditkit_audio.timing import corpus_timing, phones_seconds, symbol_durations

        texts = {Path(it["path"]).stem: it["text"] for it in items}
        timings = corpus_timing(root, texts)
        fps = self.sample_rate / self.hop
        out, tails, matched = [], [], []
        for it in items:
            rec = timings[Path(it["path"]).stem]
            f = int(it["mel"].shape[0])
            sym = self.text.to_symbols(it["text"])
            dur, m = symbol_durations(sym, phones_seconds(rec), f / fps)
            tails.append(f / fps - rec["samples"] / rec["sample_rate"])
            matched.append(m)
            out.append({**it, "dur": torch.tensor(dur) * fps})
        self.timing_tail = float(torch.tensor(tails).mean()) if tails else 0.0
        print(
            f"[TTSDataModule] espeak-ng timings: {sum(matched) / max(len(matched), 1):.1%} of symbols matched, "
            f"mean trailing audio {self.timing_tail:.3f} s"
        )
        return out

    def train_dataloader(self):
        if self.bucket > 0:
            lengths = [int(it["mel"].shape[0]) for it in self.train.items]
            sampler = LengthBucketBatchSampler(
                lengths, self.batch_size, self.bucket, self.seed, drop_last=len(self.train) > self.batch_size
            )
            return DataLoader(self.train, batch_sampler=sampler, collate_fn=collate_tts)
        return seeded_loader(
            self.train,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            collate_fn=collate_tts,
            drop_last=len(self.train) > self.batch_size,
        )

    def val_dataloader(self):
        return seeded_loader(self.val, self.batch_size, shuffle=False, collate_fn=collate_tts)

    def heldout(self) -> list[dict[str, Any]]:
        """The validation items (with ``mel`` and ``text``) for evaluation."""
        return self.val.items


def mel_batch(mels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Pad ``[f_i, m]`` tensors to ``[b, f, m]`` with a mask ``[b, f]``."""
    f = max(m.shape[0] for m in mels)
    out = torch.zeros(len(mels), f, mels[0].shape[1])
    mask = torch.zeros(len(mels), f, dtype=torch.bool)
    for i, m in enumerate(mels):
        out[i, : m.shape[0]], mask[i, : m.shape[0]] = m.float(), True
    return out, mask


__all__ = [
    "CorpusNotFoundError",
    "CorpusReport",
    "LengthBucketBatchSampler",
    "TTSDataModule",
    "TTSDataset",
    "Utterance",
    "collate_tts",
    "load_corpus",
    "load_features",
    "mel_batch",
    "scan_corpus",
    "scan_ljspeech",
    "scan_nested",
    "synthesize_corpus",
]
