"""Batched synthesis: sentence splitting, durations, optional voice prompt (infilling), CFG + sway sampling,
Griffin-Lim vocoding and crossfaded joining."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ditkit_audio.audio import crossfade_concat
from ditkit_audio.text import normalize_text, split_sentences
from ditkit_audio.vocoder import resolve_vocoder
from ditkit_core.tokenizers import TokenBatch


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
) -> dict[str, Any]:
    """Speak ``texts`` with a :class:`~ditkit_audio.module.TTSModule` (all sentences in one batch).

    Args:
        module: the trained module.
        texts: one string per output; each is split at sentence boundaries (pieces <= ``max_chars``) and the
            pieces are joined with ``crossfade_s`` equal-power crossfades.
        steps, cfg_scale, schedule, method: solver settings (defaults from the module); ``sway`` the sway
            coefficient (default ``module.sway``).
        duration: ``predictor`` (sentence-level duration model) or ``heuristic`` (frames per symbol).
        prompt_mel: optional reference log-mel ``[p, n_mels]`` of the voice to continue (zero-shot by infilling).
        prompt_text: its transcript (required with ``prompt_mel``); the target durations are scaled by the
            prompt's speaking rate (its true frames over its predicted frames).
        seed: noise seed.
        vocode: also return waveforms (Griffin-Lim, or ``vocoder``).
        vocoder: a trained :class:`~ditkit_audio.vocoder.Vocoder` or its directory (``make train-vocoder``) used
            instead of Griffin-Lim; its mel settings must match the tokenizer's (checked).
        speed: > 1 speaks faster (divides durations).

    Returns:
        ``{"mels": [[f_i, n_mels]], "wavs": [[s_i]] (if vocode), "pieces": [[str]], "frames": [[int]]}``.
    """
    tok = module.tokenizer
    voc = resolve_vocoder(vocoder, tok) if vocode else None
    if (prompt_mel is None) != (prompt_text is None):
        raise ValueError("synthesize: prompt_mel and prompt_text go together")
    pieces = [split_sentences(normalize_text(t), max_chars) for t in texts]
    for i, p in enumerate(pieces):
        if not p:
            raise ValueError(f"synthesize: text {i} is empty: {texts[i]!r}")
    flat = [s for p in pieces for s in p]
    dev = module.device
    ids, lens = tok.text.batch(flat)
    ids, lens = ids.to(dev), lens.to(dev)
    frames = module.predict_frames(ids, lens, duration).float() / speed  # [B]
    P = 0
    if prompt_mel is not None:
        P = prompt_mel.shape[0]
        pid, plen = tok.text.batch([prompt_text])
        p_pred = float(module.predict_frames(pid.to(dev), plen.to(dev), duration)[0])
        frames = frames * (P / max(p_pred, 1.0))
        # prompt ids + a space + target ids (concatenated ids, so the prompt's symbols are exact for phonemes too)
        pseq = tok.text.encode(prompt_text) + [tok.text.space_id]
        ids, lens = tok.text.pad([pseq + tok.text.encode(s) for s in flat])
        ids, lens = ids.to(dev), lens.to(dev)
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
            ids, lens, F_, n, prompt_frames=torch.full_like(n, P), prompt_text_len=torch.full_like(lens, len(pseq))
        )
    else:
        meta = module.text_meta(ids, lens, F_, n)
    template = TokenBatch(x=x, mask=mask, pos=pos, known_mask=known, meta=meta)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = module.generate(
        template,
        steps=steps,
        method=method,
        schedule=schedule,
        cfg_scale=cfg_scale,
        known=x,
        known_mask=known[..., None],
        generator=g,
        sway=module.sway if sway is None else sway,
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
