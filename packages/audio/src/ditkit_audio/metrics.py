"""Speech metrics without downloaded models: CER / WER (edit distances counted by torchmetrics), mel-cepstral
distortion with DTW, duration error, F0 error, a speaker-similarity proxy."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.text import CharErrorRate, WordErrorRate


def _norm(s: str) -> str:
    return " ".join("".join(c for c in s.lower() if c.isalnum() or c in " '").split())


def error_rate(refs: list[str], hyps: list[str], unit: str = "char") -> float:
    """Corpus CER (``unit="char"``) or WER (``"word"``) after lower-casing and dropping punctuation.

    Total Levenshtein edits over the corpus / total reference characters (words). Both totals are torchmetrics'
    ``CharErrorRate`` / ``WordErrorRate`` states (what ``char_error_rate`` / ``word_error_rate`` divide, in float32);
    the division is done here in float64, and a corpus whose references are all empty gives its insertion count
    (edits / 1) instead of ``nan`` / ``inf``.

    Args:
        refs: reference transcripts.
        hyps: hypotheses, one per reference.
        unit: ``"char"`` or ``"word"``.

    Returns:
        The error rate (0 = perfect; may exceed 1 with many insertions).
    """
    if len(refs) != len(hyps):
        raise ValueError(f"error_rate: {len(refs)} references vs {len(hyps)} hypotheses")
    if unit not in ("char", "word"):
        raise ValueError(f"error_rate: unit={unit!r}, expected 'char' or 'word'")
    metric = CharErrorRate() if unit == "char" else WordErrorRate()
    metric.update([_norm(h) for h in hyps], [_norm(r) for r in refs])
    return float(metric.errors) / max(float(metric.total), 1.0)


def mel_cepstrum(logmel: Tensor, n_coeffs: int = 24) -> Tensor:
    """Mel cepstra ``[f, n_coeffs]`` (c1..c_n; c0, the energy, dropped) of a natural-log mel ``[f, M]``.

    ``c_k = (1 / M) sum_m log S_m cos(pi k (m + 1/2) / M)``: the real cepstrum of the even-symmetric log spectrum,
    the scale used by SPTK-style mel-cepstra in MCD (an orthonormal DCT is ``sqrt(2 M)`` times larger).
    """
    m = logmel.shape[-1]
    k = torch.arange(m, dtype=torch.float64)
    basis = torch.cos(math.pi / m * (k[None, :] + 0.5) * k[:, None]) / m  # [coef, m]
    return (logmel.double() @ basis.T)[..., 1 : n_coeffs + 1].float()


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotone alignment of a cost matrix ``[n, m]`` (steps (1,0), (0,1), (1,1)); returns index arrays."""
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        row, prev = D[i], D[i - 1]
        c = cost[i - 1]
        diag_up = np.minimum(prev[:-1], prev[1:]) + c  # best of (i-1, j-1), (i-1, j)
        for j in range(1, m + 1):
            row[j] = min(diag_up[j - 1], row[j - 1] + c[j - 1])
    i, j, pi, pj = n, m, [], []
    while i > 0 and j > 0:
        pi.append(i - 1)
        pj.append(j - 1)
        k = int(np.argmin([D[i - 1, j - 1], D[i - 1, j], D[i, j - 1]]))
        i, j = (i - 1, j - 1) if k == 0 else ((i - 1, j) if k == 1 else (i, j - 1))
    return np.array(pi[::-1]), np.array(pj[::-1])


def mcd_dtw(ref_logmel: Tensor, gen_logmel: Tensor, n_coeffs: int = 24) -> float:
    """Mel-cepstral distortion in dB between two log-mels ``[f, n_mels]`` aligned by DTW on cepstral distance.

    ``MCD = (10 / ln 10) * sqrt(2 * sum_k (c_k - c'_k)^2)`` averaged over the alignment path. Cepstra are DCTs of the
    natural-log mel on ditkit's mel filterbank (not SPTK's all-pass warped mel-cepstra): comparable within ditkit,
    only roughly with published figures.
    """
    a, b = mel_cepstrum(ref_logmel, n_coeffs), mel_cepstrum(gen_logmel, n_coeffs)
    dist = torch.cdist(a[None].double(), b[None].double())[0].numpy()  # [n, m]
    pi, pj = dtw_path(dist)
    return float(10.0 / math.log(10.0) * math.sqrt(2.0) * dist[pi, pj].mean())


def duration_error(pred_frames: Tensor, true_frames: Tensor) -> dict[str, float]:
    """Mean absolute relative error and mean absolute error (frames) of total durations."""
    p, t = pred_frames.float(), true_frames.float()
    return {"rel": float(((p - t).abs() / t).mean()), "abs_frames": float((p - t).abs().mean())}


def f0_track(
    wav: Tensor,
    sample_rate: int,
    hop: int,
    win: int = 1024,
    fmin: float = 70.0,
    fmax: float = 400.0,
    voicing: float = 0.45,
) -> Tensor:
    """Autocorrelation pitch ``[f]`` in Hz (0 = unvoiced) on the same centred frames as the log-mel.

    A frame is voiced when its normalised autocorrelation peak in ``[sr / fmax, sr / fmin]`` exceeds ``voicing`` and
    its energy is above 1% of the loudest frame's.
    """
    x = torch.nn.functional.pad(wav[None, None].float(), (win // 2, win // 2), mode="reflect")[0, 0]
    frames = x.unfold(0, win, hop)  # [f, win]
    frames = frames - frames.mean(-1, keepdim=True)
    spec = torch.fft.rfft(frames * torch.hann_window(win), n=2 * win)
    ac = torch.fft.irfft(spec.abs().pow(2), n=2 * win)[:, :win]  # [f, win]
    energy = ac[:, 0]
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    norm = ac[:, lo:hi] / energy.clamp_min(1e-9)[:, None]
    peak, lag = norm.max(-1)
    f0 = sample_rate / (lag + lo).float()
    voiced = (peak > voicing) & (energy > 0.01 * energy.max())
    return torch.where(voiced, f0, torch.zeros_like(f0))


def f0_rmse_dtw(
    ref_logmel: Tensor, gen_logmel: Tensor, ref_wav: Tensor, gen_wav: Tensor, sample_rate: int, hop: int
) -> dict[str, float]:
    """F0 RMSE (Hz) over frames voiced in both signals, aligned by the cepstral DTW path; plus voicing disagreement."""
    a, b = mel_cepstrum(ref_logmel), mel_cepstrum(gen_logmel)
    pi, pj = dtw_path(torch.cdist(a[None].double(), b[None].double())[0].numpy())
    fa, fb = f0_track(ref_wav, sample_rate, hop), f0_track(gen_wav, sample_rate, hop)
    pi, pj = np.minimum(pi, fa.shape[0] - 1), np.minimum(pj, fb.shape[0] - 1)
    va, vb = fa[pi] > 0, fb[pj] > 0
    both = va & vb
    rmse = float((fa[pi][both] - fb[pj][both]).pow(2).mean().sqrt()) if both.any() else float("nan")
    return {"f0_rmse_hz": rmse, "voicing_error": float((va != vb).float().mean())}


def voice_vector(logmel: Tensor, n_coeffs: int = 20, range_db: float = 30.0) -> Tensor:
    """Utterance-level voice fingerprint ``[n_coeffs]``: the mean mel cepstra c1..c_n (:func:`mel_cepstrum`, the
    average spectral envelope) over the frames within ``range_db`` of the loudest one (speech, not pauses). On the
    open espeak-ng corpus it separates its six voices: cosine 0.70 between utterances of one voice, -0.14 between
    voices (after :func:`speaker_similarity`'s z-scoring); adding the cepstra's spread separated them less."""
    frame_energy = logmel.float().exp().mean(-1).clamp_min(1e-10).log()  # [f] natural log of power
    keep = frame_energy >= frame_energy.max() - range_db * math.log(10) / 10
    return mel_cepstrum(logmel.float()[keep], n_coeffs).mean(0)


def speaker_similarity(refs: list[Tensor], gens: list[Tensor], voices: list[str] | None = None) -> dict[str, float]:
    """A speaker-similarity proxy: cosine similarity of :func:`voice_vector` fingerprints, z-scored per dimension
    with the references' mean and spread (so the shared spectral shape of speech does not count).

    Args:
        refs: reference log-mels ``[f_i, M]`` (ground truth).
        gens: generated log-mels ``[g_i, M]``, one per reference.
        voices: each reference's voice label; gives the controls ``same_voice`` (mean over reference pairs of one
            voice) and ``other_voice`` (pairs of different voices). Without labels: ``reference_pairs`` (every pair).

    Returns:
        ``{"generated_vs_reference": mean cosine of each generated utterance with its reference, **controls}``.
    """
    if len(refs) != len(gens) or len(refs) < 2:
        raise ValueError(
            f"speaker_similarity: need >= 2 references and one generation each, got {len(refs)}/{len(gens)}"
        )
    r = torch.stack([voice_vector(m) for m in refs]).double()  # [n, d]
    g = torch.stack([voice_vector(m) for m in gens]).double()
    mu, sd = r.mean(0), r.std(0).clamp_min(1e-6)
    r, g = F.normalize((r - mu) / sd, dim=-1), F.normalize((g - mu) / sd, dim=-1)
    out = {"generated_vs_reference": float((r * g).sum(-1).mean())}
    pair = r @ r.T  # [n, n]
    off = ~torch.eye(len(refs), dtype=torch.bool)
    if voices is None:
        out["reference_pairs"] = float(pair[off].mean())
        return {k: round(v, 4) for k, v in out.items()}
    if len(voices) != len(refs):
        raise ValueError(f"speaker_similarity: {len(voices)} voice labels for {len(refs)} references")
    same = torch.tensor([[a == b for b in voices] for a in voices]) & off
    for name, sel in (("same_voice", same), ("other_voice", ~same & off)):
        if sel.any():
            out[name] = float(pair[sel].mean())
    return {k: round(v, 4) for k, v in out.items()}
