"""The ``sample`` command of the TTS app, shared by ``python -m ditkit_audio.cli sample`` and ``ditkit tts sample``:
one text (``--text``) or one text per line of a file (``--text-file``, all in one process), through the text
front-end (:func:`ditkit_audio.normalize.normalize_text`), at a chosen speed, in a chosen voice.

Voices: the model is not conditioned on a speaker id; it continues a **voice prompt** (a reference mel and its
transcript, infilled before the target). ``--voice NAME`` names one of the espeak-ng voices the corpus was spoken
with (``speakers.csv`` of the config's corpus, else :data:`~ditkit_audio.data.DEFAULT_VOICES`): a prompt sentence is
synthesised with espeak-ng in that voice (at the voice's median corpus rate and pitch) and used as the prompt.
``--voice FILE.wav`` (or ``--prompt FILE.wav``) takes a reference recording, with ``--prompt-text`` its transcript.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPT_SENTENCE = "The old farmer paints the red boat today."
"""What a named voice says as its prompt (words of the corpus grammar, so the model knows every symbol)."""
PROMPT_RATE, PROMPT_PITCH = 160, 50
"""espeak-ng rate (words per minute) and pitch of a named voice without ``speakers.csv`` (the corpus ranges' middle)."""
MAX_TEXT_BYTES = 16 << 20
"""Largest ``--text-file`` read."""


@dataclass
class Text:
    """One text to speak: its line in ``--text-file`` (None for ``--text``), as written, and as it is spoken."""

    line: int | None
    text: str
    spoken: str


def _fail(message: str, who: str = "sample") -> SystemExit:
    return SystemExit(f"{who}: {message}")


def _spoken(text: str, where: str) -> str:
    """The front-end's form of ``text``; its warnings re-issued naming ``where`` (the flag and line)."""
    from ditkit_audio.normalize import TextNormalizationWarning, normalize_text

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spoken = normalize_text(text)
    for w in caught:
        warnings.warn(f"{where}: {w.message}", TextNormalizationWarning, stacklevel=3)
    return spoken


def read_text_file(path: str | Path, who: str = "sample") -> list[Text]:
    """The texts of a file, one per line (blank lines skipped; UTF-8, a BOM accepted); ``who`` names the command in
    the errors.

    Raises:
        SystemExit: the file cannot be read, is not UTF-8 (its line named), has no text, or a line has nothing to
            speak after normalisation (its number named); one line each.
    """
    from ditkit_core.errors import DataError, read_text

    try:
        raw = read_text(path, max_bytes=MAX_TEXT_BYTES)
    except (DataError, OSError) as e:
        raise _fail(f"--text-file: {e}", who) from None
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        spoken = _spoken(line, f"--text-file {path} line {n}")
        if not spoken:
            raise _fail(f"--text-file {path} line {n}: nothing to speak in {line.strip()[:80]!r}", who)
        out.append(Text(n, line.strip(), spoken))
    if not out:
        raise _fail(f"--text-file {path}: no texts (every line is blank)", who)
    return out


def read_texts(a: argparse.Namespace) -> list[Text]:
    """The texts of ``--text`` or ``--text-file``; a one-line ``SystemExit`` when there is nothing to speak."""
    if getattr(a, "text_file", None):
        return read_text_file(a.text_file)
    text = a.text or ""
    if not text.strip():
        raise _fail(f"--text {text!r} is empty: nothing to speak")
    spoken = _spoken(text, "--text")
    if not spoken:
        raise _fail(f"--text {text[:80]!r}: nothing to speak after normalisation")
    return [Text(None, text, spoken)]


# ---------------------------------------------------------------------- voices
def corpus_voices(config: str | Path | None) -> dict[str, tuple[int, int]]:
    """Voice name -> (espeak-ng rate, pitch): the medians per voice of the config corpus' ``speakers.csv``
    (``id|voice|rate|pitch``), else :data:`~ditkit_audio.data.DEFAULT_VOICES` at :data:`PROMPT_RATE` /
    :data:`PROMPT_PITCH`. Unreadable rows are skipped."""
    from ditkit_audio.data import DEFAULT_VOICES

    rows: dict[str, list[tuple[int, int]]] = {}
    try:
        from ditkit_audio.cli import corpus_root

        text = (corpus_root(config) / "speakers.csv").read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError):
        text = ""
    for line in text.splitlines():
        cols = line.split("|")
        if len(cols) == 4 and cols[2].strip().isdigit() and cols[3].strip().isdigit():
            rows.setdefault(cols[1].strip(), []).append((int(cols[2]), int(cols[3])))
    if not rows:
        return {v: (PROMPT_RATE, PROMPT_PITCH) for v in DEFAULT_VOICES}
    return {
        v: (round(statistics.median(r for r, _ in rp)), round(statistics.median(p for _, p in rp)))
        for v, rp in sorted(rows.items())
    }


def voice_prompt(tok: Any, voice: str, rate: int = PROMPT_RATE, pitch: int = PROMPT_PITCH) -> tuple[Any, str]:
    """A voice prompt ``(mel [p, n_mels], transcript)``: :data:`PROMPT_SENTENCE` spoken by espeak-ng in ``voice``,
    read at the tokenizer's rate, loudness-normalised like the corpus, as the tokenizer's features."""
    from ditkit_audio.audio import normalize_loudness, read_wav
    from ditkit_audio.espeak import espeak_wav

    with tempfile.TemporaryDirectory() as tmp:
        wav = espeak_wav(PROMPT_SENTENCE, Path(tmp) / "prompt.wav", voice=voice, rate=rate, pitch=pitch)
        audio = read_wav(wav, sample_rate=tok.sample_rate)
    return tok.features(normalize_loudness(audio)), PROMPT_SENTENCE


def synthesize_in_voices(
    module: Any, texts: list[str], voices: list[str], config: str | Path | None = None, **kw: Any
) -> dict[str, list[Any]]:
    """:func:`~ditkit_audio.inference.synthesize` with every text prompted by its own voice: one
    :func:`voice_prompt` per distinct espeak-ng voice (at the median rate and pitch of ``config``'s corpus,
    :func:`corpus_voices`), one batch per voice, results back in the texts' order. A model timed by espeak-ng
    (``stretch_weights="espeak"``) takes each voice's own timing too.

    Returns:
        ``{"mels": [[f_i, n_mels]], "wavs": [[s_i]]}`` (``wavs`` empty when ``vocode=False``).
    """
    from ditkit_audio.inference import synthesize_groups

    if len(voices) != len(texts):
        raise ValueError(f"synthesize_in_voices: {len(voices)} voices for {len(texts)} texts")
    rates = corpus_voices(config)

    def groups():
        for voice in sorted(set(voices)):
            rate, pitch = rates.get(voice, (PROMPT_RATE, PROMPT_PITCH))
            prompt, prompt_text = voice_prompt(module.tokenizer, voice, rate, pitch)
            group = dict(kw, prompt_mel=prompt, prompt_text=prompt_text)
            if getattr(module, "stretch_weights", None) == "espeak":
                group["timing_voice"] = group["prompt_timing"] = (voice, rate, pitch)
            yield [i for i, v in enumerate(voices) if v == voice], group

    return synthesize_groups(module, texts, groups())


def resolve_prompt(tok: Any, a: argparse.Namespace) -> tuple[Any, str | None, str, tuple[str, int, int] | None]:
    """``(prompt mel or None, transcript or None, what it is, espeak-ng (voice, rate, pitch) of a named voice or
    None)`` from ``--voice`` / ``--prompt`` / ``--prompt-text``.

    Raises:
        SystemExit: both ``--voice`` and ``--prompt``; a recording without ``--prompt-text`` or that cannot be read
            (named); ``--prompt-text`` with a named voice; a name that is neither a corpus voice nor a wav file (the
            voices listed).
    """
    from ditkit_audio.audio import normalize_loudness, read_wav
    from ditkit_core.errors import DataError

    voice, prompt, prompt_text = getattr(a, "voice", "") or "", a.prompt or "", a.prompt_text or ""
    if voice and prompt:
        raise _fail("give --voice or --prompt, not both")
    wav = prompt or (voice if voice.lower().endswith(".wav") or Path(voice).is_file() else "")
    if wav:
        flag = "--prompt" if prompt else "--voice"
        if not prompt_text.strip():
            raise _fail(f"{flag} {wav} needs --prompt-text (the transcript of the recording)")
        try:
            audio = read_wav(wav, sample_rate=tok.sample_rate, stereo="mix")
        except DataError as e:
            raise _fail(f"{flag}: {e}") from None
        return tok.features(normalize_loudness(audio)), prompt_text, f"recording {wav}", None
    if prompt_text:
        raise _fail("--prompt-text goes with a recording (--prompt FILE.wav or --voice FILE.wav)")
    if not voice:
        return None, None, "the model's own", None
    voices = corpus_voices(getattr(a, "config", None))
    if voice not in voices:
        raise _fail(f"--voice {voice!r}: neither a corpus voice ({', '.join(voices)}) nor a .wav file")
    mel, text = voice_prompt(tok, voice, *voices[voice])
    return mel, text, f"espeak-ng voice {voice}", (voice, *voices[voice])


# ---------------------------------------------------------------------- the command
def _write_index(path: Path, rows: list[list[Any]]) -> None:
    from ditkit_core.errors import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["wav", "line", "seconds", "text", "spoken"])
    w.writerows(rows)
    with atomic_write(path) as f:
        f.write(buf.getvalue().encode("utf-8"))


def sample_command(
    module: Any, a: argparse.Namespace, target: str | Path | None = None, texts: list[Text] | None = None
) -> None:
    """Speak the texts of ``a`` (see :func:`read_texts`) with a loaded module.

    ``--text``: writes ``target`` (default ``<a.out>/sample.wav``) and its mel PNG, prints one JSON line.
    ``--text-file``: writes ``<target or a.out>/<NNN>.wav`` (1-based, in file order; batches of ``a.batch_size``
    texts) and ``texts.tsv`` (``wav, line, seconds, text, spoken``), prints a JSON summary. ``a.dry_run``: prints
    each text, its spoken form and the voice / prompt flags given (JSON lines) and writes nothing.
    ``ditkit tts sample`` calls it as ``(module, args)`` (``args.out`` a folder, ``args.steps`` None: the model's);
    ``texts``: already read by the caller.
    """
    texts = read_texts(a) if texts is None else texts
    if getattr(a, "dry_run", False):
        given = {k: v for k in ("voice", "prompt", "prompt_text") if (v := getattr(a, k, ""))}
        for t in texts:
            print(json.dumps({"line": t.line, "text": t.text, "spoken": t.spoken} | given))
        return
    from ditkit_audio.audio import write_wav
    from ditkit_audio.inference import synthesize

    tok = module.tokenizer
    prompt_mel, prompt_text, voice, named = resolve_prompt(tok, a)
    kw = dict(steps=a.steps, cfg_scale=a.cfg, duration=a.duration, prompt_mel=prompt_mel, prompt_text=prompt_text)
    kw |= dict(seed=a.seed, speed=a.speed, vocoder=a.vocoder or None)
    if getattr(module, "stretch_weights", None) == "espeak" and named is not None:
        kw["timing_voice"] = kw["prompt_timing"] = named  # prompt and target timed in that voice's rate and pitch
    if not getattr(a, "text_file", None):
        t0 = time.perf_counter()
        res = synthesize(module, [texts[0].spoken], **kw)
        dt = time.perf_counter() - t0
        from ditkit_audio.viz import plot_mels

        wav = res["wavs"][0]
        target = Path(target) if target is not None else Path(a.out) / "sample.wav"
        out = write_wav(target, wav, tok.sample_rate)
        plot_mels([res["mels"][0]], ["generated"], target.with_suffix(".png"), title=texts[0].text[:100])
        secs = wav.shape[0] / tok.sample_rate
        info = {"wav": str(out), "pieces": res["pieces"][0], "seconds": round(secs, 2), "rtf": round(dt / secs, 3)}
        print(json.dumps(info | {"voice": voice}))
        return
    folder = Path(target) if target is not None else Path(a.out)
    if folder.suffix.lower() == ".wav":
        raise _fail(f"--text-file writes <out>/<NNN>.wav and texts.tsv: --out must be a folder, got {str(folder)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(texts))))
    rows, total, t0 = [], 0.0, time.perf_counter()
    size = getattr(a, "batch_size", 8) or 8
    for k in range(0, len(texts), size):
        chunk = texts[k : k + size]
        res = synthesize(module, [t.spoken for t in chunk], **kw)
        for i, (t, wav) in enumerate(zip(chunk, res["wavs"]), k + 1):
            name = f"{i:0{width}d}.wav"
            write_wav(folder / name, wav, tok.sample_rate)
            secs = wav.shape[0] / tok.sample_rate
            total += secs
            rows.append([name, t.line, round(secs, 3), t.text, t.spoken])
    dt = time.perf_counter() - t0
    _write_index(folder / "texts.tsv", rows)
    summary = {"out": str(folder), "wavs": len(rows), "index": str(folder / "texts.tsv"), "voice": voice}
    print(json.dumps(summary | {"seconds": round(total, 2), "rtf": round(dt / max(total, 1e-9), 3)}))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def add_sample_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``sample`` beyond the common ones (config, checkpoint, steps, seed, output)."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to speak (numbers, dates, abbreviations are read out)")
    what.add_argument("--text-file", default="", help="texts to speak, one per line (blank lines skipped)")
    p.add_argument(
        "--voice", default="", help="a corpus espeak-ng voice (e.g. en+f3) or a reference .wav (with --prompt-text)"
    )
    p.add_argument("--prompt", default="", help="a voice prompt (.wav) to continue")
    p.add_argument("--prompt-text", default="", help="the transcript of --prompt / --voice FILE.wav")
    p.add_argument("--cfg", type=finite_float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="speaking speed: 2.0 speaks twice as fast")
    p.add_argument("--duration", choices=["predictor", "heuristic"], default="predictor")
    p.add_argument("--vocoder", default="", help="trained neural vocoder directory (default: Griffin-Lim)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="texts per synthesis batch (--text-file)")
    p.add_argument("--dry-run", action="store_true", help="print each text and its spoken form, then stop")


sample_command.add_arguments = add_sample_arguments

__all__ = [
    "PROMPT_SENTENCE",
    "Text",
    "add_sample_arguments",
    "corpus_voices",
    "finite_float",
    "positive_float",
    "positive_int",
    "read_text_file",
    "read_texts",
    "resolve_prompt",
    "sample_command",
    "voice_prompt",
]
