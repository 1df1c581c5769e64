"""Speech corpora: the embedded espeak-ng corpus (LJSpeech layout), loaders for LJSpeech-style and nested
(VCTK / LibriTTS-style) folders with resampling, loudness normalisation, length filtering and a feature cache,
and the Lightning DataModule."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ditkit_audio.audio import AudioError, LogMel, normalize_loudness, read_wav
from ditkit_audio.text import TextTokenizer, fit_symbol_frames, generate_sentences, normalize_text
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

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("synthesize_corpus: espeak-ng is not on PATH (apt-get install espeak-ng)")
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
        res = subprocess.run(
            [exe, "-v", v, "-s", str(r), "-p", str(p), "-w", str(out / "wavs" / f"{uid}.wav"), s],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"synthesize_corpus: espeak-ng failed for {uid} {s!r}: {res.stderr.strip()}")

    with ThreadPoolExecutor(max(1, workers)) as ex:
        list(ex.map(run, jobs))
    (out / "metadata.csv").write_text("".join(f"{u}|{s}|{normalize_text(s)}\n" for u, s, *_ in jobs))
    (out / "speakers.csv").write_text("".join(f"{u}|{v}|{r}|{p}\n" for u, _, v, r, p in jobs))
    return out


# ---------------------------------------------------------------------- scanning
@dataclass
class Utterance:
    """One wav and its transcript."""

    path: Path
    text: str
    speaker: str = ""


@dataclass
class LoadReport:
    """What a loader kept and skipped, with the reason for every skipped file (nothing is dropped silently)."""

    kept: int = 0
    resampled: int = 0
    skipped: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)

    def skip(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self.messages.append(message)

    def summary(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"kept {self.kept} utterances (resampled {self.resampled}); skipped: {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "resampled": self.resampled,
            "skipped": dict(self.skipped),
            "messages": self.messages,
        }


def scan_ljspeech(root: Path, report: LoadReport) -> list[Utterance]:
    """``root/metadata.csv`` (``id|text[|normalised]``) + ``root/wavs/<id>.wav``; bad rows / missing wavs reported."""
    meta = root / "metadata.csv"
    items = []
    for lineno, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < 2 or not cols[0].strip():
            report.skip("bad_row", f"{meta}:{lineno}: expected 'id|text[|normalised text]', got {line!r}")
            continue
        text = (cols[2] if len(cols) > 2 and cols[2].strip() else cols[1]).strip()
        if not text:
            report.skip("missing_text", f"{meta}:{lineno}: empty transcript for id {cols[0]!r}")
            continue
        wav = root / "wavs" / f"{cols[0].strip()}.wav"
        if not wav.exists():
            report.skip("missing_wav", f"{meta}:{lineno}: {wav} does not exist")
            continue
        items.append(Utterance(wav, text))
    listed = {u.path.name for u in items}
    for w in sorted((root / "wavs").glob("*.wav")):
        if w.name not in listed and not any(w.stem in m for m in report.messages):
            report.skip("missing_text", f"{w}: no row in {meta}")
    return items


_TRANSCRIPT_SUFFIXES = (".normalized.txt", ".original.txt", ".txt", ".lab")


def _nested_transcript(wav: Path, root: Path) -> Path | None:
    for suf in _TRANSCRIPT_SUFFIXES:  # LibriTTS: next to the wav
        p = wav.with_name(wav.stem + suf)
        if p.exists():
            return p
    rel = wav.relative_to(root).parts  # VCTK: wav48/<spk>/<id>.wav -> txt/<spk>/<id>.txt
    for i, part in enumerate(rel[:-1]):
        if part.startswith("wav"):
            p = root.joinpath(*rel[:i], "txt", *rel[i + 1 : -1], wav.stem + ".txt")
            if p.exists():
                return p
    return None


def scan_nested(root: Path, report: LoadReport) -> list[Utterance]:
    """Every ``**/*.wav`` under ``root`` with a transcript next to it (LibriTTS ``.normalized.txt`` / ``.txt``) or in
    a parallel ``txt/`` tree (VCTK). The speaker is the wav's first folder below ``root`` (or below ``wav*/``)."""
    items = []
    for wav in sorted(root.rglob("*.wav")):
        tp = _nested_transcript(wav, root)
        if tp is None:
            report.skip("missing_text", f"{wav}: no transcript ({'/'.join(_TRANSCRIPT_SUFFIXES)} next to it or txt/)")
            continue
        text = tp.read_text(encoding="utf-8").strip()
        if not text:
            report.skip("missing_text", f"{tp}: empty transcript")
            continue
        rel = [p for p in wav.relative_to(root).parts[:-1] if not p.startswith("wav")]
        items.append(Utterance(wav, text, rel[0] if rel else ""))
    return items


def scan_corpus(root: str | Path, layout: str = "auto", report: LoadReport | None = None) -> list[Utterance]:
    """List the utterances of a corpus folder (``layout``: ``auto``, ``ljspeech`` or ``nested``)."""
    root = Path(root)
    report = report if report is not None else LoadReport()
    if not root.is_dir():
        raise FileNotFoundError(f"scan_corpus: {root} is not a directory (run `make data-tts` for the default corpus)")
    if layout == "auto":
        layout = "ljspeech" if (root / "metadata.csv").exists() else "nested"
    if layout == "ljspeech":
        return scan_ljspeech(root, report)
    if layout == "nested":
        return scan_nested(root, report)
    raise ValueError(f"scan_corpus: layout={layout!r}; choose auto, ljspeech or nested")


# ---------------------------------------------------------------------- features
def load_features(
    items: list[Utterance],
    logmel: LogMel,
    text: TextTokenizer,
    *,
    min_seconds: float = 0.3,
    max_seconds: float = 8.0,
    loudness_db: float | None = -23.0,
    resample: bool = True,
    stereo: str = "error",
    report: LoadReport | None = None,
) -> tuple[list[dict[str, Any]], LoadReport]:
    """Read, check, resample, loudness-normalise and featurise utterances.

    Returns:
        ``[{"mel": [f, n_mels] float16, "text": str, "speaker": str, "path": str}]`` and the report (every skip has a
        reason: corrupt, empty, stereo, rate, nonfinite, silent, too_short, too_long, oov, and a message naming the
        file).
    """
    import soundfile as sf

    report = report if report is not None else LoadReport()
    if text.kind == "phonemes":  # phonemise all transcripts up front, several espeak-ng processes at a time
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(text.to_symbols, [u.text for u in items]))
    out = []
    for u in items:
        try:
            info_sr = sf.info(str(u.path)).samplerate
        except Exception:
            info_sr = logmel.sample_rate
        try:
            wav = read_wav(u.path, sample_rate=logmel.sample_rate, resample=resample, stereo=stereo)
        except AudioError as e:
            report.skip(e.reason, str(e))
            continue
        dur = wav.shape[0] / logmel.sample_rate
        if float(wav.abs().max()) < 1e-4:
            report.skip("silent", f"{u.path}: silent (peak < 1e-4)")
            continue
        if dur < min_seconds or dur > max_seconds:
            reason = "too_short" if dur < min_seconds else "too_long"
            report.skip(reason, f"{u.path}: {dur:.2f} s outside [{min_seconds}, {max_seconds}] s")
            continue
        bad = text.unknown(u.text)
        if bad:
            report.skip("oov", f"{u.path}: transcript {u.text!r} has symbols {bad} outside the {text.kind} vocabulary")
            continue
        if loudness_db is not None:
            wav = normalize_loudness(wav, loudness_db)
        report.resampled += int(info_sr != logmel.sample_rate)
        out.append({"mel": logmel(wav).half(), "text": u.text, "speaker": u.speaker, "path": str(u.path)})
    report.kept = len(out)
    return out, report


def load_corpus(
    root: str | Path, logmel: LogMel, text: TextTokenizer, *, layout: str = "auto", cache: bool = True, **kw: Any
) -> tuple[list[dict[str, Any]], LoadReport]:
    """:func:`scan_corpus` + :func:`load_features`, cached in ``root/.ditkit_cache`` keyed by files and settings."""
    root = Path(root)
    report = LoadReport()
    items = scan_corpus(root, layout, report)
    key = json.dumps(
        {
            "files": [(str(u.path), u.path.stat().st_size, u.path.stat().st_mtime_ns, u.text) for u in items],
            "skips": report.messages,
            "mel": [logmel.sample_rate, logmel.n_fft, logmel.hop, logmel.n_mels, logmel.f_max],
            "text": [text.kind, text.symbols],
            "kw": sorted(kw.items()),
        },
        default=str,
    )
    path = root / ".ditkit_cache" / f"feats_{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"
    if cache and path.exists():
        blob = torch.load(path, weights_only=True)
        rep = LoadReport(
            blob["report"]["kept"],
            blob["report"]["resampled"],
            Counter(blob["report"]["skipped"]),
            blob["report"]["messages"],
        )
        return blob["items"], rep
    feats, report = load_features(items, logmel, text, report=report, **kw)
    if cache:
        path.parent.mkdir(exist_ok=True)
        torch.save({"items": feats, "report": report.to_dict()}, path)
    return feats, report


# ---------------------------------------------------------------------- dataset / datamodule
class TTSDataset(Dataset):
    """Featurised utterances -> ``{"mel": [f, n_mels], "ids": [L], "text": str}``."""

    def __init__(self, items: list[dict[str, Any]], text: TextTokenizer):
        self.items, self.text = items, text
        self.ids = [torch.tensor(s) for s in text.encode_many([it["text"] for it in items])]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"mel": self.items[i]["mel"].float(), "ids": self.ids[i], "text": self.items[i]["text"]}


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length (less padding, so much cheaper steps) in an order that depends on
    ``(seed, epoch)`` only: shuffle, cut into chunks of ``bucket`` batches, sort each chunk by length, split it into
    batches and shuffle the batches.

    Args:
        lengths: frames per utterance.
        batch_size: utterances per batch.
        bucket: batches per sorted chunk.
        seed: shuffle seed.
        drop_last: drop a final short batch of each chunk.
    """

    def __init__(self, lengths: list[int], batch_size: int, bucket: int = 32, seed: int = 0, drop_last: bool = True):
        self.lengths, self.batch_size, self.bucket, self.seed = list(lengths), batch_size, max(1, bucket), seed
        self.drop_last = drop_last
        # Lightning calls set_epoch on ``batch_sampler.sampler``: the epoch-seeded shuffle lives there
        self.sampler = EpochShuffleSampler(self.lengths, seed, shuffle=True)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _batches(self) -> list[list[int]]:
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

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def collate_tts(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of items: ``mel [b, f, n_mels]``, ``mask [b, f]``, ``ids [b, L]``, ``text_len [b]``, ``text``."""
    f = max(it["mel"].shape[0] for it in batch)
    L_ = max(it["ids"].shape[0] for it in batch)
    b, m = len(batch), batch[0]["mel"].shape[1]
    mel, mask = torch.zeros(b, f, m), torch.zeros(b, f, dtype=torch.bool)
    ids = torch.zeros(b, L_, dtype=torch.long)
    for i, it in enumerate(batch):
        n = it["mel"].shape[0]
        mel[i, :n], mask[i, :n] = it["mel"], True
        ids[i, : it["ids"].shape[0]] = it["ids"]
    return {
        "mel": mel,
        "mask": mask,
        "ids": ids,
        "text_len": torch.tensor([it["ids"].shape[0] for it in batch]),
        "text": [it["text"] for it in batch],
    }


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
        seed: int = 0,
    ):
        super().__init__()
        self.root, self.layout, self.synthesize = root, layout, synthesize
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.text_kind, self.min_seconds, self.max_seconds, self.loudness_db = (
            text_kind,
            min_seconds,
            max_seconds,
            loudness_db,
        )
        self.val_size, self.batch_size, self.limit, self.cache, self.seed = val_size, batch_size, limit, cache, seed
        self.bucket = bucket
        self.report: LoadReport | None = None

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
        print(f"[TTSDataModule] {root}: {self.report.summary()}")
        for m in self.report.messages[:5]:
            print(f"[TTSDataModule]   skipped {m}")
        if self.limit:
            items = items[: self.limit]
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
