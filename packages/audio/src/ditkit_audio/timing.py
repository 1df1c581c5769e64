"""Per-symbol durations from espeak-ng's own phoneme timings (``TTSModule(stretch_weights="espeak")``).

espeak-ng is the phonemiser of the text front-end; its synthesis events also say when each phoneme starts
(:func:`ditkit_audio.espeak.espeak_phones`). For a corpus spoken by espeak-ng these are the true timings of the
recordings, and for any new text they are espeak-ng's rule-based prosody: the duration model of the front-end.
:func:`symbol_durations` maps the timed phonemes onto the tokenizer's symbol string (the ``--ipa`` rendering of the
text, with stress marks and word spaces, possibly of another accent than the voice's) by sequence alignment;
:func:`corpus_timing` computes and caches them for a corpus with ``speakers.csv`` (``id|voice|rate|pitch``).
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ditkit_audio.espeak import espeak_phones
from ditkit_core.errors import atomic_write

log = logging.getLogger(__name__)

TIMING_FILE = "espeak_timing.jsonl"
"""Per-utterance phoneme timings of a corpus (``{"id", "voice", "rate", "pitch", "text", "sample_rate",
"samples", "phones"}`` per line), next to its ``metadata.csv``."""

_ZERO = frozenset("ˈˌ ")  # stress marks and word spaces take no time of their own
_PAUSE = frozenset(".,?!;:-")  # punctuation matches espeak-ng's pauses (zero time when none)


def symbol_durations(symbols: str, phones: Sequence[Sequence[Any]], total: float) -> tuple[list[float], float]:
    """Seconds per symbol of ``symbols`` from timed phonemes.

    The phoneme names are spread over their characters and aligned to the symbols (``difflib``; pauses match
    punctuation, and a pause that no punctuation matches lengthens the symbol before it). A matched symbol starts
    where its character starts; the unmatched symbols between two matches share the time between them evenly
    (punctuation without a pause gets none; stress marks and word spaces never get any). Each symbol lasts until the
    next timed one starts; the first starts at 0 and the last ends at ``total``, so the durations sum to ``total``.

    Args:
        symbols: the tokenizer's symbol string.
        phones: ``[(ipa, start_s, end_s)]`` in seconds; an empty ``ipa`` is a pause.
        total: length of the audio in seconds (>= the last phoneme's end; trailing silence goes to the last symbol).

    Returns:
        ``(durations [len(symbols)], matched)``: seconds per symbol and the share of the non-pause symbols matched
        to a phoneme character (a check of the alignment).
    """
    n = len(symbols)
    if n == 0:
        return [], 1.0
    chars: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    for name, s, e in phones:
        name = str(name) or "|"  # a pause is one character that matches punctuation
        step = (float(e) - float(s)) / len(name)
        for i, c in enumerate(name):
            chars.append(c)
            starts.append(float(s) + i * step)
            ends.append(float(s) + (i + 1) * step)
    keep = [k for k, c in enumerate(symbols) if c not in _ZERO]
    target = ["|" if symbols[k] in _PAUSE else symbols[k] for k in keep]
    start: list[float | None] = [None] * n
    end: list[float | None] = [None] * n
    sm = difflib.SequenceMatcher(None, target, chars, autojunk=False)
    matched = 0
    for a, b, size in sm.get_matching_blocks():
        for j in range(size):
            start[keep[a + j]], end[keep[a + j]] = starts[b + j], ends[b + j]
            matched += target[a + j] != "|"
    # unmatched timed symbols share the gap between their matched neighbours; unmatched pauses get nothing
    timed = [k for k in keep if start[k] is not None or symbols[k] not in _PAUSE]
    i = 0
    while i < len(timed):
        if start[timed[i]] is not None:
            i += 1
            continue
        j = i
        while j < len(timed) and start[timed[j]] is None:
            j += 1
        prev = i - 1
        t0 = 0.0 if prev < 0 else float(end[timed[prev]] if end[timed[prev]] is not None else start[timed[prev]])
        t1 = float(total) if j >= len(timed) else float(start[timed[j]])
        t1 = max(t1, t0)
        for r, k in enumerate(timed[i:j]):
            start[k] = t0 + (t1 - t0) * r / (j - i)
        i = j
    if timed:
        start[timed[0]] = 0.0
    dur = [0.0] * n
    for a, k in enumerate(timed):
        nxt = float(total) if a + 1 >= len(timed) else float(start[timed[a + 1]])
        dur[k] = max(nxt - float(start[k]), 0.0)
    content = sum(1 for c in target if c != "|")
    return dur, (matched / content if content else 1.0)


def phones_seconds(timing: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The ``phones`` of an :func:`~ditkit_audio.espeak.espeak_phones` result in seconds."""
    sr = float(timing["sample_rate"])
    return [(str(p), s / sr, e / sr) for p, s, e in timing["phones"]]


def read_speakers(root: str | Path) -> dict[str, tuple[str, int, int]]:
    """``<root>/speakers.csv`` (``id|voice|rate|pitch``) as ``{id: (voice, rate, pitch)}``.

    Raises:
        FileNotFoundError: no ``speakers.csv``.
        ValueError: a malformed line (names the file, line and value).
    """
    path = Path(root) / "speakers.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; espeak-ng timings need each utterance's voice, rate and pitch")
    out = {}
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        try:
            uid, voice, rate, pitch = cols
            out[uid] = (voice, int(rate), int(pitch))
        except ValueError:
            raise ValueError(f"{path}:{ln}: expected id|voice|rate|pitch, got {line[:200]!r}") from None
    return out


def corpus_timing(root: str | Path, texts: dict[str, str], workers: int = 2) -> dict[str, dict[str, Any]]:
    """espeak-ng phoneme timings of a corpus's utterances, cached in ``<root>/espeak_timing.jsonl``.

    Args:
        root: corpus folder with ``speakers.csv``.
        texts: ``{id: text}`` as espeak-ng spoke it (the transcript).
        workers: espeak-ng processes at a time.

    Returns:
        ``{id: timing}`` (see :data:`TIMING_FILE`); cached lines whose voice, rate, pitch or text changed are redone.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    speakers = read_speakers(root)
    missing = sorted(set(texts) - set(speakers))
    if missing:
        raise ValueError(f"{root / 'speakers.csv'}: no voice for {len(missing)} utterances, e.g. {missing[0]!r}")
    path = root / TIMING_FILE
    have: dict[str, dict[str, Any]] = {}
    if path.exists():
        for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rec = json.loads(line)
                have[rec["id"]] = rec
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d: unreadable timing line, redone", path, ln)

    def current(uid: str) -> bool:
        rec = have.get(uid)
        v, r, p = speakers[uid]
        return rec is not None and (rec["voice"], rec["rate"], rec["pitch"], rec["text"]) == (v, r, p, texts[uid])

    todo = [u for u in sorted(texts) if not current(u)]
    if todo:

        def run(uid: str) -> dict[str, Any]:
            v, r, p = speakers[uid]
            res = espeak_phones(texts[uid], voice=v, rate=r, pitch=p)
            return {"id": uid, "voice": v, "rate": r, "pitch": p, "text": texts[uid], **res}

        with ThreadPoolExecutor(max(1, workers)) as ex:
            for rec in tqdm(ex.map(run, todo), total=len(todo), desc=f"espeak-ng timings ({root.name})"):
                have[rec["id"]] = rec
        with atomic_write(path) as f:
            f.write("".join(json.dumps(have[u], ensure_ascii=False) + "\n" for u in sorted(have)).encode())
    return {u: have[u] for u in texts}


__all__ = ["TIMING_FILE", "corpus_timing", "phones_seconds", "read_speakers", "symbol_durations"]
