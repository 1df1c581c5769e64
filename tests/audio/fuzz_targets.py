"""Entry point the audio fuzz suite runs in child processes (``ditkit_core.testing.fuzz.run_cases``).

:func:`load` calls one public audio load path on a hostile file and returns its numeric output (so the harness checks
it is finite). ``want`` states what the case must do beyond the general loader contract; a case that does something
else raises ``AssertionError`` (which the harness reports as an unclean exception, with this message).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _corpus(path: str, layout: str, cache: bool, text_kind: str) -> dict[str, Any]:
    from ditkit_audio.audio import LogMel
    from ditkit_audio.data import load_corpus
    from ditkit_audio.text import TextTokenizer

    items, rep = load_corpus(path, LogMel(16000, 1024, 400, 64), TextTokenizer(text_kind), layout=layout, cache=cache)
    return {
        "mels": [it["mel"].float() for it in items],
        "kept": [it["path"] for it in items],
        "texts": [it["text"] for it in items],
        "messages": rep.messages,
        "counts": rep.counts(),
    }


def _call(kind: str, path: str, kw: dict[str, Any]) -> Any:
    if kind == "read_wav":
        from ditkit_audio.audio import read_wav

        return {"wav": read_wav(path, sample_rate=kw.get("sample_rate"), stereo=kw.get("stereo", "error"))}
    if kind == "corpus":
        return _corpus(path, kw.get("layout", "auto"), kw.get("cache", False), kw.get("text_kind", "chars"))
    if kind == "wav_cache":
        from ditkit_audio.wavtools import load_wav_split

        tr, va, _ = load_wav_split(kw["config"], root=path, val_size=1)
        return {"wavs": [it["wav"] for it in tr + va], "mels": [it["mel"].float() for it in tr + va]}
    if kind in ("vocoder", "codec", "probe"):
        from ditkit_audio.asr import load_probe
        from ditkit_audio.codec import load_codec
        from ditkit_audio.vocoder import load_vocoder

        model = {"vocoder": load_vocoder, "codec": load_codec, "probe": load_probe}[kind](path)
        return {"weights": list(model.state_dict().values())}
    if kind == "yaml":
        from ditkit_audio.wavtools import mel_settings_from_config

        return mel_settings_from_config(path)
    raise ValueError(f"unknown fuzz kind {kind!r}")


def load(kind: str, path: str, expect: str = "", want: str = "any", **kw: Any) -> Any:
    """Run one case.

    Args:
        kind: ``read_wav``, ``corpus``, ``wav_cache``, ``vocoder`` / ``codec`` / ``probe`` or ``yaml``.
        path: the file or folder handed to the loader.
        expect: the file every error (and the skip or warning of ``want``) must name.
        want: ``any`` (a clean error or a finite result), ``error`` (must be refused), ``skip`` (a corpus that loads
            but skips ``expect``, never keeping it) or ``warn`` (a warning naming ``expect``, then a normal load).
        kw: loader options (``sample_rate``, ``layout``, ``cache``, ``config``, ``group``, ...).
    """
    kw.pop("group", None)
    cap = _Capture()
    logging.getLogger("ditkit").addHandler(cap)
    try:
        out = _call(kind, path, kw)
    finally:
        logging.getLogger("ditkit").removeHandler(cap)
    name = Path(expect).name
    if want == "error":
        raise AssertionError(f"accepted silently: {kind} {path}")
    if want == "skip":
        if not any(name in m for m in out["messages"]):
            raise AssertionError(f"no skip names {name}: {out['messages'][:5]}")
        if any(Path(k).name == name for k in out["kept"]):
            raise AssertionError(f"{name} was kept")
    if want == "warn" and not any(name in m for m in cap.messages):
        raise AssertionError(f"no warning names {name}: {cap.messages[:5]}")
    if kw.get("texts") is not None and out.get("texts") != kw["texts"]:
        raise AssertionError(f"wrong transcripts {out.get('texts')} (expected {kw['texts']})")
    return {k: v for k, v in out.items() if k not in ("kept", "messages", "counts", "texts")}
