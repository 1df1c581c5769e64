"""Batched synthesis: sentence splitting, durations, optional voice prompt (infilling), CFG + sway sampling,
Griffin-Lim vocoding and crossfaded joining."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ditkit_audio.audio import crossfade_concat
from ditkit_audio.normalize import normalize_text as spoken_text
from ditkit_audio.text import normalize_text, split_sentences
from ditkit_audio.vocoder import resolve_vocoder
from ditkit_core.tokenizers import TokenBatch

MAX_SECONDS = 600.0
"""Longest speech one sentence piece may be given (a tiny ``speed`` would otherwise allocate without bound)."""


def _bad(name: str, value: Any, want: str) -> ValueError:
    return ValueError(f"synthesize: {name}={value!r}: {want}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_synthesis_args(
    texts: Any,
    *,
    steps: Any = None,
    cfg_scale: Any = None,
    sway: Any = None,
    duration: Any = "predictor",
    prompt_mel: Any = None,
    prompt_text: Any = None,
    seed: Any = 0,
    max_chars: Any = 120,
    crossfade_s: Any = 0.05,
    speed: Any = 1.0,
    n_mels: int | None = None,
) -> None:
    """Validate the arguments of :func:`synthesize` before any work; a ``ValueError`` names the argument and value.

    ``texts`` is a non-empty list of non-blank strings; ``steps`` a positive integer (or None); ``speed`` finite and
    > 0; ``cfg_scale`` / ``sway`` finite (or None); ``max_chars`` a positive integer; ``crossfade_s`` finite and >= 0;
    ``duration`` ``predictor`` or ``heuristic``; ``prompt_mel`` a finite ``[p, n_mels]`` tensor given with a non-blank
    ``prompt_text``.
    """
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
        raise _bad("texts", texts, "expected a non-empty list of strings")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise _bad(f"texts[{i}]", t, "expected a non-empty string")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise _bad("steps", steps, "must be an integer >= 1")
    if not _finite(speed) or speed <= 0:
        raise _bad("speed", speed, "must be a finite number > 0")
    for name, v in (("cfg_scale", cfg_scale), ("sway", sway)):
        if v is not None and not _finite(v):
            raise _bad(name, v, "must be a finite number")
    if duration not in ("predictor", "heuristic"):
        raise _bad("duration", duration, "choose 'predictor' or 'heuristic'")
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise _bad("max_chars", max_chars, "must be an integer >= 1")
    if not _finite(crossfade_s) or crossfade_s < 0:
        raise _bad("crossfade_s", crossfade_s, "must be a finite number >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _bad("seed", seed, "must be an integer")
    if (prompt_mel is None) != (prompt_text is None):
        raise ValueError("synthesize: prompt_mel and prompt_text go together")
    if prompt_mel is not None:
        ok = isinstance(prompt_mel, Tensor) and prompt_mel.dim() == 2 and prompt_mel.shape[0] >= 1
        if not ok or (n_mels is not None and prompt_mel.shape[1] != n_mels):
            shape = tuple(prompt_mel.shape) if isinstance(prompt_mel, Tensor) else type(prompt_mel).__name__
            raise _bad("prompt_mel", shape, f"expected a log-mel tensor [p >= 1, {n_mels or 'n_mels'}]")
        if not torch.isfinite(prompt_mel).all():
            raise _bad("prompt_mel", "non-finite", "NaN or infinite values")
        if not isinstance(prompt_text, str) or not prompt_text.strip():
            raise _bad("prompt_text", prompt_text, "expected the non-empty transcript of the prompt")


def text_pieces(text: str, max_chars: int = 120) -> list[str]:
    """The pieces one text is spoken in: the text front-end (:func:`ditkit_audio.normalize.normalize_text`: numbers,
    dates, abbreviations, acronyms read out; markup and unknown characters dropped with a warning), the tokenizer's
    normalisation (lower case), then sentences of at most ``max_chars`` characters. Written-out text (the corpus) is
    unchanged by the front-end."""
    return split_sentences(normalize_text(spoken_text(text)), max_chars)


def _check_frames(frames: Tensor, pieces: list[str], speed: float, prompt: int, tok: Any) -> None:
    """Durations must be finite and below :data:`MAX_SECONDS` per piece (names the piece and ``speed``)."""
    rate = float(getattr(tok, "sample_rate", 16000)) / float(getattr(tok, "hop", 400))
    limit = MAX_SECONDS * rate
    bad = ~torch.isfinite(frames) | (frames > limit)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"synthesize: speed={speed!r}: piece {pieces[i]!r} would last {float(frames[i]) / rate:.4g} s "
            f"(frames {float(frames[i]):.4g}, prompt {prompt}); the limit is {MAX_SECONDS:g} s"
        )


DEFAULT_TIMING_VOICE = ("en-us", 160, 50)
"""espeak-ng voice, rate (words per minute) and pitch whose phoneme timings set the durations of a
``stretch_weights="espeak"`` model (the middle of the open corpus's rates)."""


def espeak_durations(
    module: Any, pieces: list[str], timing_voice: tuple[str, int, int] = DEFAULT_TIMING_VOICE, workers: int = 4
) -> tuple[Tensor, Tensor]:
    """Frames per symbol ``[B, L]`` (padded with 0) and total frames ``[B]`` of text pieces as espeak-ng times them
    (:mod:`ditkit_audio.timing`), plus the module's mean trailing audio (``timing_tail``)."""
    from concurrent.futures import ThreadPoolExecutor

    from ditkit_audio.espeak import espeak_phones
    from ditkit_audio.timing import phones_seconds, symbol_durations

    tok = module.tokenizer
    voice, rate, pitch = timing_voice
    fps = float(tok.sample_rate) / float(tok.hop)
    tail = float(getattr(module, "timing_tail", 0.0))
    with ThreadPoolExecutor(max(1, workers)) as ex:
        timings = list(ex.map(lambda t: espeak_phones(t, voice=voice, rate=rate, pitch=pitch), pieces))
    durs, totals = [], []
    for piece, res in zip(pieces, timings):
        total = res["samples"] / res["sample_rate"] + tail
        d, _ = symbol_durations(tok.text.to_symbols(piece), phones_seconds(res), total)
        durs.append(torch.tensor(d) * fps)
        totals.append(total * fps)
    out = torch.zeros(len(pieces), max(len(d) for d in durs))
    for i, d in enumerate(durs):
        out[i, : len(d)] = d
    return out, torch.tensor(totals)


@torch.no_grad()
def synthesize(
    module: Any,
    texts: list[str],
    *,
    steps: int | None = None,
    cfg_scale: float | None = None,
    schedule: str | None = None,
    sway: float | None = None,
    method: str | None = None,
    duration: str = "predictor",
    prompt_mel: Tensor | None = None,
    prompt_text: str | None = None,
    seed: int = 0,
    max_chars: int = 120,
    crossfade_s: float = 0.05,
    vocode: bool = True,
    speed: float = 1.0,
    vocoder: Any = None,
    timing_voice: tuple[str, int, int] = DEFAULT_TIMING_VOICE,
    prompt_timing: tuple[str, int, int] | None = None,
) -> dict[str, Any]:
    """Speak ``texts`` with a :class:`~ditkit_audio.module.TTSModule` (all sentences in one batch).

    Args:
        module: the trained module.
        texts: one string per output; each goes through the text front-end and is split at sentence boundaries
            (pieces <= ``max_chars``, :func:`text_pieces`); the pieces are joined with ``crossfade_s`` equal-power
            crossfades.
        steps, cfg_scale, schedule, method: solver settings (defaults from ``module.sampler``); ``sway`` the sway
            coefficient (default ``module.sampler.sway``). Sampling runs through ``module.generate`` (CFG, known
            frames, the sampler's cache).
        duration: ``predictor`` (sentence-level duration model) or ``heuristic`` (frames per symbol).
        prompt_mel: optional reference log-mel ``[p, n_mels]`` of the voice to continue (zero-shot by infilling).
        prompt_text: its transcript (required with ``prompt_mel``, normalised like ``texts``); the target durations
            are scaled by the prompt's speaking rate (its true frames over its predicted frames).
        seed: noise seed.
        vocode: also return waveforms (Griffin-Lim, or ``vocoder``).
        vocoder: a trained :class:`~ditkit_audio.vocoder.Vocoder` or its directory (``make train-vocoder``) used
            instead of Griffin-Lim; its mel settings must match the tokenizer's (checked).
        speed: > 1 speaks faster (divides durations).
        timing_voice: espeak-ng ``(voice, rate, pitch)`` whose phoneme timings give the durations of a
            ``stretch_weights="espeak"`` model (``duration`` is then unused).
        prompt_timing: for such a model, the espeak-ng ``(voice, rate, pitch)`` the prompt was spoken with (a named
            voice): its symbols are laid out by that timing and the target keeps ``timing_voice``'s. None (a
            recording): the prompt is timed with ``timing_voice`` and the target scaled to the prompt's measured
            rate.

    Returns:
        ``{"mels": [[f_i, n_mels]], "wavs": [[s_i]] (if vocode), "pieces": [[str]], "frames": [[int]]}``.

    Raises:
        ValueError: an argument outside its range (named with its value, :func:`check_synthesis_args`), an empty
            text, or durations beyond :data:`MAX_SECONDS` (e.g. a tiny ``speed``).
    """
    tok = module.tokenizer
    check_synthesis_args(
        texts,
        steps=steps,
        cfg_scale=cfg_scale,
        sway=sway,
        duration=duration,
        prompt_mel=prompt_mel,
        prompt_text=prompt_text,
        seed=seed,
        max_chars=max_chars,
        crossfade_s=crossfade_s,
        speed=speed,
        n_mels=getattr(tok, "n_mels", None),
    )
    voc = resolve_vocoder(vocoder, tok) if vocode else None
    pieces = [text_pieces(t, max_chars) for t in texts]
    for i, p in enumerate(pieces):
        if not p:
            raise ValueError(f"synthesize: texts[{i}]={texts[i]!r}: empty after normalisation")
    if prompt_text is not None:
        prompt_text = spoken_text(prompt_text)
        if not prompt_text:
            raise _bad("prompt_text", prompt_text, "empty after normalisation")
    flat = [s for p in pieces for s in p]
    dev = module.device
    ids, lens = tok.text.batch(flat)
    ids, lens = ids.to(dev), lens.to(dev)
    sym_dur = None
    if getattr(module, "stretch_weights", None) == "espeak":
        sym_dur, frames = espeak_durations(module, flat, timing_voice)
        sym_dur, frames = sym_dur.to(dev) / speed, frames.to(dev) / speed
    else:
        frames = module.predict_frames(ids, lens, duration).float() / speed  # [B]
    P = 0
    if prompt_mel is not None:
        P = prompt_mel.shape[0]
        # prompt ids + a space + target ids (concatenated ids, so the prompt's symbols are exact for phonemes too)
        pseq = tok.text.encode(prompt_text) + [tok.text.space_id]
        if sym_dur is None:
            pid, plen = tok.text.batch([prompt_text])
            p_pred = float(module.predict_frames(pid.to(dev), plen.to(dev), duration)[0])
            frames = frames * (P / max(p_pred, 1.0))
        else:  # the prompt timed by espeak-ng too: with its own voice if known, else at the prompt's measured rate
            p_dur, p_tot = espeak_durations(module, [normalize_text(prompt_text)], prompt_timing or timing_voice)
            if prompt_timing is None:
                scale = P / max(float(p_tot[0]), 1.0)
                frames, sym_dur = frames * scale, sym_dur * scale
            p_row = torch.cat([p_dur[0, : len(pseq) - 1], p_dur.new_zeros(1)]).to(dev)
            sym_dur = torch.cat([p_row[None].expand(len(flat), -1), sym_dur], 1)
        ids, lens = tok.text.pad([pseq + tok.text.encode(s) for s in flat])
        ids, lens = ids.to(dev), lens.to(dev)
        if sym_dur is not None:
            sym_dur = torch.nn.functional.pad(sym_dur, (0, max(ids.shape[1] - sym_dur.shape[1], 0)))
    _check_frames(frames, flat, speed, P, tok)
    n = frames.round().long().clamp_min(2)  # [B]
    B, F_ = len(flat), int(n.max()) + P
    total = n + P
    mask = torch.arange(F_, device=dev)[None] < total[:, None]  # [B, F]
    x = torch.zeros(B, F_, tok.token_dim, device=dev)
    known = torch.zeros(B, F_, dtype=torch.bool, device=dev)
    if P:
        x[:, :P] = tok.normalize(prompt_mel.to(dev).float())
        known[:, :P] = True
    pos = torch.arange(F_, device=dev, dtype=torch.float32)[None, :, None].expand(B, F_, 1)
    if P:
        meta = module.text_meta(
            ids,
            lens,
            F_,
            n,
            prompt_frames=torch.full_like(n, P),
            prompt_text_len=torch.full_like(lens, len(pseq)),
            durations=sym_dur,
        )
    else:
        meta = module.text_meta(ids, lens, F_, n, durations=sym_dur)
    template = TokenBatch(x=x, mask=mask, pos=pos, known_mask=known, meta=meta)
    g = torch.Generator(device=dev).manual_seed(seed)
    solver = {} if sway is None else {"sway": sway}  # default: module.sampler.sway
    out = module.generate(
        template,
        steps=steps,
        method=method,
        schedule=schedule,
        cfg_scale=cfg_scale,
        known=x,
        known_mask=known[..., None],
        generator=g,
        **solver,
    ).x
    mels = [tok.denormalize(out[i, P : P + int(n[i])]).cpu() for i in range(B)]
    res: dict[str, Any] = {"pieces": pieces, "frames": [], "mels": []}
    k = 0
    for p in pieces:
        ms = mels[k : k + len(p)]
        res["frames"].append([m.shape[0] for m in ms])
        res["mels"].append(torch.cat(ms, 0))
        if vocode:
            wavs = [voc.vocode(m) for m in ms] if voc is not None else [tok.to_wav(m) for m in ms]
            res.setdefault("wavs", []).append(crossfade_concat(wavs, tok.sample_rate, crossfade_s))
        k += len(p)
    return res


def synthesize_groups(
    module: Any, texts: list[str], groups: Iterable[tuple[list[int], dict[str, Any]]]
) -> dict[str, list[Any]]:
    """:func:`synthesize` once per group of text indices, each group with its own keyword arguments (one batch per
    voice, or per band of lengths), results back in the texts' order.

    Returns:
        ``{"mels": [[f_i, n_mels]], "wavs": [[s_i]]}`` (``wavs`` empty when ``vocode=False``).
    """
    mels: list[Any] = [None] * len(texts)
    wavs: list[Any] = [None] * len(texts)
    for idx, kw in groups:
        res = synthesize(module, [texts[i] for i in idx], **kw)
        for j, i in enumerate(idx):
            mels[i] = res["mels"][j]
            wavs[i] = res["wavs"][j] if "wavs" in res else None
    return {"mels": mels, "wavs": wavs if all(w is not None for w in wavs) else []}
