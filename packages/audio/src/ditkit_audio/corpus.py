"""Speech corpus loaders: LJSpeech-style (``metadata.csv`` + ``wavs/``) and nested (VCTK / LibriTTS-style) folders,
checked wav reading, resampling, loudness normalisation, length filtering and a feature cache.

Every record that cannot be used is skipped with a reason and counted in a :class:`CorpusReport` that names the file
(and the ``metadata.csv`` line); a file that makes the whole corpus unreadable (a non-UTF-8 ``metadata.csv``) raises a
:class:`~ditkit_core.errors.DataError` naming it. Caches are written atomically, and a damaged cache is named in a
warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditkit_audio.audio import AudioError, LogMel, load_wav, normalize_loudness
from ditkit_audio.text import TextTokenizer
from ditkit_core.errors import DataError, LoadReport, atomic_save, naming_file, read_text, safe_join

log = logging.getLogger("ditkit")

MAX_TRANSCRIPT_BYTES = 1 << 20
"""Largest transcript file (VCTK / LibriTTS) read; larger ones are skipped (``bad_text``)."""
CACHE_VERSION = 2
"""Bumped when the cached feature layout changes (old caches are then simply not found)."""


class CorpusNotFoundError(DataError, FileNotFoundError):
    """The corpus folder does not exist (a :class:`~ditkit_core.errors.DataError` and a ``FileNotFoundError``)."""


# ---------------------------------------------------------------------- report
@dataclass
class Utterance:
    """One wav and its transcript."""

    path: Path
    text: str
    speaker: str = ""


def _plain(value: Any) -> Any:
    """A value a ``weights_only`` cache can hold (numbers and short strings)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:200]
    if isinstance(value, float):
        return value
    return repr(value)[:200]


@dataclass
class CorpusReport(LoadReport):
    """What a corpus loader kept and skipped: counts per reason (``counts()``), every skip naming its file, line,
    field and value (``skips`` / ``messages``), and ``resampled`` (kept files whose rate was converted)."""

    resampled: int = 0

    @property
    def messages(self) -> list[str]:
        """One line per skipped record: ``<file>[ line <n>]: [<field>=<value>: ]<reason>``."""
        return [str(s) for s in self.skips]

    def summary(self, examples: int = 3) -> str:
        head, _, rest = super().summary(examples).partition("\n")
        head = f"{head} (resampled {self.resampled})"
        return f"{head}\n{rest}" if rest else head

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kept": self.kept,
            "resampled": self.resampled,
            "skips": [[s.reason, s.path, s.line, s.field, _plain(s.value)] for s in self.skips],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorpusReport:
        rep = cls(str(d["source"]), int(d["kept"]), resampled=int(d["resampled"]))
        for reason, path, line, fld, value in d["skips"]:
            rep.skip(str(reason), path=path, line=line, field=fld, value=value)
        return rep


# ---------------------------------------------------------------------- scanning
def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:  # a name too long for the file system, a loop of links
        return False


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:
        return False


def scan_ljspeech(root: Path, report: CorpusReport) -> list[Utterance]:
    """``root/metadata.csv`` (``id|text[|normalised]``) + ``root/wavs/<id>.wav``.

    Bad rows, unsafe ids (``../x``, absolute, NUL), duplicate ids, missing wavs and wavs without a row are skipped
    and counted; an id that leaves ``wavs/`` is refused without touching the file.

    Raises:
        DataError: ``metadata.csv`` is not UTF-8 (names the line) or cannot be read.
    """
    meta = root / "metadata.csv"
    wav_dir = root / "wavs"
    items = []
    seen: set[str] = set()
    for lineno, line in enumerate(read_text(meta).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("|")
        uid = cols[0].strip()
        if len(cols) < 2 or not uid:
            report.skip("bad_row", path=meta, line=lineno, field="row", value=line)
            continue
        mentioned = uid in seen
        seen.add(uid)
        text = (cols[2] if len(cols) > 2 and cols[2].strip() else cols[1]).strip()
        if not text:
            report.skip("missing_text", path=meta, line=lineno, field="text", value=uid)
            continue
        try:
            wav = safe_join(wav_dir, f"{uid}.wav", path=meta, field="id", line=lineno)
        except DataError:
            report.skip("bad_id", path=meta, line=lineno, field="id", value=uid)
            continue
        if mentioned:
            report.skip("duplicate_id", path=meta, line=lineno, field="id", value=uid)
            continue
        if not _is_file(wav):
            report.skip("missing_wav", path=meta, line=lineno, field="wav", value=str(wav))
            continue
        items.append(Utterance(wav, text))
    try:
        wavs = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
    except OSError:
        wavs = []
    for w in wavs:
        if w.stem not in seen:
            report.skip("missing_text", path=w)  # a wav without a row in metadata.csv
    return items


_TRANSCRIPT_SUFFIXES = (".normalized.txt", ".original.txt", ".txt", ".lab")


def _nested_transcript(wav: Path, root: Path) -> Path | None:
    for suf in _TRANSCRIPT_SUFFIXES:  # LibriTTS: next to the wav
        p = wav.with_name(wav.stem + suf)
        if _exists(p):
            return p
    rel = wav.relative_to(root).parts  # VCTK: wav48/<spk>/<id>.wav -> txt/<spk>/<id>.txt
    for i, part in enumerate(rel[:-1]):
        if part.startswith("wav"):
            p = root.joinpath(*rel[:i], "txt", *rel[i + 1 : -1], wav.stem + ".txt")
            if _exists(p):
                return p
    return None


def scan_nested(root: Path, report: CorpusReport) -> list[Utterance]:
    """Every ``**/*.wav`` under ``root`` with a transcript next to it (LibriTTS ``.normalized.txt`` / ``.txt``) or in
    a parallel ``txt/`` tree (VCTK). The speaker is the wav's first folder below ``root`` (or below ``wav*/``).

    Wavs without a transcript, transcripts that are empty, not UTF-8 or over :data:`MAX_TRANSCRIPT_BYTES`
    (``bad_text``, naming the file and line) and files that resolve outside ``root`` (links, ``bad_path``) are
    skipped and counted.
    """
    items = []
    for wav in sorted(root.rglob("*.wav")):
        rel_name = str(wav.relative_to(root))
        try:
            safe_join(root, rel_name, path=root, field="wav")
        except DataError:
            report.skip("bad_path", path=wav, field="wav", value="resolves outside the corpus folder")
            continue
        tp = _nested_transcript(wav, root)
        if tp is None:
            report.skip("missing_text", path=wav, field="transcript", value="/".join(_TRANSCRIPT_SUFFIXES))
            continue
        try:
            safe_join(root, str(tp.relative_to(root)), path=root, field="transcript")
            text = read_text(tp, max_bytes=MAX_TRANSCRIPT_BYTES).strip()
        except DataError as e:
            report.skip("bad_text", path=tp, line=e.line, field="text", value=e.reason)
            continue
        if not text:
            report.skip("missing_text", path=tp, field="text", value="")
            continue
        rel = [p for p in wav.relative_to(root).parts[:-1] if not p.startswith("wav")]
        items.append(Utterance(wav, text, rel[0] if rel else ""))
    return items


def scan_corpus(root: str | Path, layout: str = "auto", report: CorpusReport | None = None) -> list[Utterance]:
    """List the utterances of a corpus folder (``layout``: ``auto``, ``ljspeech`` or ``nested``).

    Raises:
        CorpusNotFoundError: ``root`` is not a folder.
        DataError: an unreadable or non-UTF-8 ``metadata.csv``.
    """
    if layout not in ("auto", "ljspeech", "nested"):
        raise ValueError(f"scan_corpus: layout={layout!r}; choose auto, ljspeech or nested")
    root = Path(root)
    report = report if report is not None else CorpusReport(str(root))
    if not root.is_dir():
        raise CorpusNotFoundError(
            "not a directory (run `make data-tts` for the default corpus)", path=root, field="root", value=str(root)
        )
    if layout == "auto":
        layout = "ljspeech" if (root / "metadata.csv").exists() else "nested"
    return scan_ljspeech(root, report) if layout == "ljspeech" else scan_nested(root, report)


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
    report: CorpusReport | None = None,
) -> tuple[list[dict[str, Any]], CorpusReport]:
    """Read, check, resample, loudness-normalise and featurise utterances.

    Returns:
        ``[{"mel": [f, n_mels] float16, "text": str, "speaker": str, "path": str}]`` (finite mels only) and the
        report: every skip has a reason (missing, corrupt, empty, stereo, rate, too_large, nonfinite, range, silent,
        too_short, too_long, oov) and names the file.
    """
    if not (0 <= min_seconds < max_seconds and math.isfinite(max_seconds)):
        raise ValueError(f"load_features: min_seconds={min_seconds}, max_seconds={max_seconds}: need 0 <= min < max")
    if loudness_db is not None and not (math.isfinite(loudness_db) and loudness_db < 0):
        raise ValueError(f"load_features: loudness_db={loudness_db}: expected a finite level below 0 dBFS or None")
    report = report if report is not None else CorpusReport("<utterances>")
    if text.kind == "phonemes":  # phonemise all transcripts up front, several espeak-ng processes at a time
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(text.to_symbols, [u.text for u in items]))
    out = []
    for u in items:
        try:
            wav, sr = load_wav(u.path, sample_rate=logmel.sample_rate, resample=resample, stereo=stereo)
        except AudioError as e:
            fld, val = (e.field, e.value) if e.field is not None else ("wav", e.detail)
            report.skip(e.reason, path=u.path, field=fld, value=val)
            continue
        dur = wav.shape[0] / logmel.sample_rate
        if float(wav.abs().max()) < 1e-4:
            report.skip("silent", path=u.path, field="peak", value=float(wav.abs().max()))
            continue
        if dur < min_seconds or dur > max_seconds or wav.shape[0] <= logmel.n_fft // 2:
            reason = "too_long" if dur > max_seconds else "too_short"  # too short also: under half an FFT window
            report.skip(reason, path=u.path, field="seconds", value=round(dur, 3))
            continue
        bad = text.unknown(u.text)
        if bad:
            report.skip("oov", path=u.path, field="text", value=f"{u.text[:80]!r} has {''.join(bad[:20])!r}")
            continue
        if loudness_db is not None:
            wav = normalize_loudness(wav, loudness_db)
        mel = logmel(wav)
        if not torch.isfinite(mel).all():
            report.skip("nonfinite", path=u.path, field="mel", value="NaN or infinite features")
            continue
        report.resampled += int(sr != logmel.sample_rate)
        out.append({"mel": mel.half(), "text": u.text, "speaker": u.speaker, "path": str(u.path)})
    report.kept = len(out)
    return out, report


# ---------------------------------------------------------------------- caches
def content_digest(obj: Any) -> str:
    """SHA-256 of a cache payload (nested dicts / lists of tensors, strings and numbers; dict order ignored)."""
    h = hashlib.sha256()

    def walk(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(o, dict):
            h.update(b"D%d" % len(o))
            for k in sorted(o, key=str):
                walk(str(k))
                walk(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(b"L%d" % len(o))
            for v in o:
                walk(v)
        else:
            h.update(f"{type(o).__name__}:{o!r}".encode())

    walk(obj)
    return h.hexdigest()


def read_cache(path: Path, check: Callable[[Any, Path], Any], what: str = "cache") -> Any | None:
    """Load a cache written by :func:`write_cache` with ``weights_only=True`` (loading never runs code), verify its
    checksum and ``check(payload, path)`` it.

    Returns:
        the checked payload; None for a missing file, and for a damaged one (truncated, random or flipped bytes,
        foreign objects, wrong layout), which is named in a warning and removed so that the caller rebuilds it.
    """
    if not path.exists():
        return None
    try:
        with naming_file(path, f"damaged {what}"):
            blob = torch.load(path, weights_only=True, map_location="cpu")
            if not (isinstance(blob, dict) and set(blob) == {"payload", "sha256"}):
                raise DataError("not a ditkit cache (expected {'payload', 'sha256'})", path=path)
            if content_digest(blob["payload"]) != blob["sha256"]:
                raise DataError("checksum mismatch (the file changed after it was written)", path=path)
            return check(blob["payload"], path)
    except DataError as e:
        log.warning("%s; rebuilding it", e)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def write_cache(path: Path, payload: Any) -> bool:
    """``torch.save({"payload", "sha256"})`` to a temporary file renamed onto ``path`` (a killed run leaves no
    truncated cache). A folder that cannot be written is warned about and skipped (returns False): the cache is only
    an optimisation."""
    blob = {"payload": payload, "sha256": content_digest(payload)}
    try:
        atomic_save(path, lambda tmp: torch.save(blob, tmp))
        return True
    except OSError as e:
        log.warning("%s: cannot write the cache (%s); continuing without it", path, e)
        return False


def _check_features(blob: Any, path: Path, n_mels: int) -> tuple[list[dict[str, Any]], CorpusReport]:
    if not (isinstance(blob, dict) and isinstance(blob.get("items"), list) and isinstance(blob.get("report"), dict)):
        raise DataError("expected {'items': [...], 'report': {...}}", path=path)
    for k, it in enumerate(blob["items"]):
        mel = it.get("mel") if isinstance(it, dict) else None
        if not (isinstance(mel, torch.Tensor) and mel.dim() == 2 and mel.shape[1] == n_mels and mel.shape[0] > 0):
            raise DataError(f"item {k}: expected a mel [f, {n_mels}]", path=path, field="mel", value=mel)
        if not torch.isfinite(mel).all():
            raise DataError(f"item {k}: non-finite mel values", path=path, field="mel")
        if not all(isinstance(it.get(f), str) for f in ("text", "speaker", "path")):
            raise DataError(f"item {k}: text / speaker / path must be strings", path=path, field="item", value=k)
    try:
        report = CorpusReport.from_dict(blob["report"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"bad report ({type(e).__name__}: {e})", path=path, field="report") from None
    if report.kept != len(blob["items"]):
        raise DataError("report and items disagree", path=path, field="kept", value=report.kept)
    return blob["items"], report


def load_corpus(
    root: str | Path, logmel: LogMel, text: TextTokenizer, *, layout: str = "auto", cache: bool = True, **kw: Any
) -> tuple[list[dict[str, Any]], CorpusReport]:
    """:func:`scan_corpus` + :func:`load_features`, cached in ``root/.ditkit_cache`` keyed by files and settings.

    The cache is written atomically; a damaged cache file is named in a warning and rebuilt.
    """
    root = Path(root)
    report = CorpusReport(str(root))
    items = scan_corpus(root, layout, report)
    key = json.dumps(
        {
            "version": CACHE_VERSION,
            "files": [(str(u.path), u.path.stat().st_size, u.path.stat().st_mtime_ns, u.text) for u in items],
            "skips": report.messages,
            "mel": [logmel.sample_rate, logmel.n_fft, logmel.hop, logmel.n_mels, logmel.f_max],
            "text": [text.kind, text.symbols],
            "kw": sorted(kw.items()),
        },
        default=str,
    )
    path = root / ".ditkit_cache" / f"feats_{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"
    if cache:
        hit = read_cache(path, lambda b, p: _check_features(b, p, logmel.n_mels), "feature cache")
        if hit is not None:
            return hit
    feats, report = load_features(items, logmel, text, report=report, **kw)
    if cache:
        write_cache(path, {"items": feats, "report": report.to_dict()})
    return feats, report
