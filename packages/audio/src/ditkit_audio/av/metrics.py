"""Measurements of audio-video clips against their truth, with detectors that work the same on real and generated
clips.

* Video: the coloured balls are tracked by colour (soft nearest-palette assignment, weighted centroids); a
  collision is a peak of the change of velocity across one frame interval, timed to a fraction of a frame by
  intersecting the straight paths before and after (:func:`video_events`).
* Audio: onsets are peaks of the positive spectral flux of the log-mel (:func:`audio_onsets`); the pitch of an
  onset is the palette pitch whose mel band rose most once the click has passed (:func:`onset_colors`).
* Synchrony: events closer than ``merge`` seconds are merged (an onset detector cannot resolve them), detections are
  matched one-to-one to references within ``tolerance`` (one video frame), and F1 and the median absolute offset
  are reported (:func:`match_events`).
* Continuous link (pulse clips): correlation of the shape's radius (square root of its area) with the audio's
  amplitude at the video frames (:func:`size_loudness_correlation`).
* Distributions: histogram distances and a Frechet distance between Gaussian fits of features
  (:func:`frechet_distance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ditkit_audio.av.synthetic import BACKGROUND, PALETTE, PITCHES, PULSE_COLOR, ClipSpec, render_audio_events


@dataclass
class DetectorSettings:
    """Thresholds of the detectors (chosen on the validation split of real clips).

    Attributes:
        color_tol: RGB distance at which a pixel stops counting for a palette colour.
        min_mass: pixels (soft) a colour needs in a frame to count as present.
        min_present: share of frames a colour must be present in to count as a ball.
        velocity_jump: change of velocity (pixels per frame) that counts as a collision.
        flux: positive log-mel flux (nats summed over bands) that counts as an onset.
        onset_offset: seconds subtracted from an onset frame's time (the STFT window's lead).
    """

    color_tol: float = 0.35
    min_mass: float = 6.0
    min_present: float = 0.5
    velocity_jump: float = 0.3
    flux: float = 20.0
    onset_offset: float = 0.0


def _frames01(video: Tensor | np.ndarray) -> np.ndarray:
    v = np.asarray(video.cpu() if isinstance(video, Tensor) else video)
    return v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v.astype(np.float32)


def track_blobs(video: Tensor | np.ndarray, settings: DetectorSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and mass of each palette colour in every frame.

    Args:
        video: ``[f, h, w, 3]`` uint8 or float in [0, 1].

    Returns:
        ``(centers [f, c, 2] (x, y) in pixels, NaN where absent; mass [f, c])`` for the ``c`` palette colours.
    """
    s = settings or DetectorSettings()
    v = _frames01(video)
    f, h, w, _ = v.shape
    refs = np.array(list(PALETTE) + [BACKGROUND, PULSE_COLOR], np.float32)  # [c + 2, 3]
    d = np.linalg.norm(v[..., None, :] - refs, axis=-1)  # [f, h, w, c + 2]
    nearest = d.argmin(-1)
    c = len(PALETTE)
    weight = np.clip(1 - d[..., :c] / s.color_tol, 0, 1) * (nearest[..., None] == np.arange(c))  # [f, h, w, c]
    mass = weight.sum((1, 2))  # [f, c]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (weight * xx[None, :, :, None]).sum((1, 2)) / mass
        cy = (weight * yy[None, :, :, None]).sum((1, 2)) / mass
    centers = np.stack([cx, cy], -1)
    centers[mass < s.min_mass] = np.nan
    return centers, mass


def ball_tracks(video: Tensor | np.ndarray, settings: DetectorSettings | None = None) -> dict[int, np.ndarray]:
    """colour id -> positions ``[f, 2]`` (gaps filled linearly) for colours present in ``min_present`` of frames."""
    s = settings or DetectorSettings()
    centers, _ = track_blobs(video, s)
    out = {}
    f = centers.shape[0]
    for c in range(centers.shape[1]):
        ok = ~np.isnan(centers[:, c, 0])
        if ok.sum() < max(3, s.min_present * f):
            continue
        k = np.arange(f)
        out[c] = np.stack([np.interp(k, k[ok], centers[ok, c, a]) for a in range(2)], -1)
    return out


def video_events(video: Tensor | np.ndarray, fps: float, settings: DetectorSettings | None = None) -> np.ndarray:
    """Collisions seen in the frames: ``[e, 2]`` rows ``(time s, colour id)``, sorted by time.

    For the interval between frames ``k`` and ``k + 1`` the velocity change ``v_{k+1} - v_{k-1}`` (pixels per frame)
    is a collision where it peaks above ``velocity_jump``; its time is where the straight paths before and after
    intersect on the axis that changed most.
    """
    s = settings or DetectorSettings()
    rows = []
    for c, p in ball_tracks(video, s).items():
        vel = np.diff(p, axis=0)  # [f - 1, 2]: v_k = p_{k+1} - p_k
        n = vel.shape[0]
        if n < 3:
            continue
        jump = np.zeros(n)
        axis = np.zeros(n, np.int64)
        for k in range(1, n - 1):
            d = vel[k + 1] - vel[k - 1]
            axis[k] = int(np.abs(d).argmax())
            jump[k] = float(np.abs(d).max())
        for k in range(1, n - 1):
            if jump[k] < s.velocity_jump or jump[k] < jump[k - 1] or jump[k] <= jump[k + 1]:
                continue
            a = axis[k]
            u, w = vel[k - 1, a], vel[k + 1, a]
            frac = (p[k + 1, a] - p[k, a] - w) / (u - w) if abs(u - w) > 1e-6 else 0.5
            rows.append(((k + float(np.clip(frac, 0.0, 1.0))) / fps, c))
    return np.array(sorted(rows), np.float64).reshape(-1, 2)


def rule_foley(
    video: Tensor | np.ndarray,
    fps: int,
    sample_rate: int,
    settings: DetectorSettings | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Classical video-to-audio (no learning): the collisions :func:`video_events` finds in the frames, each rendered
    with the data's own sound rule (the palette pitch of the ball's colour, loudness from its tracked speed).

    It knows the synthesis rule exactly, so it bounds what the tracker alone allows; a learned model has to find the
    rule from the data.

    Args:
        video: ``[f, h, w, 3]`` uint8 or float in [0, 1].
        fps: frames per second of ``video``.
        sample_rate: audio sample rate (Hz).
        settings: detector thresholds.
        seed: seed of the click and noise-floor noise.

    Returns:
        Waveform ``[samples]`` float32 of the clip's duration.
    """
    s = settings or DetectorSettings()
    v = np.asarray(video.cpu() if isinstance(video, Tensor) else video)
    spec = ClipSpec(size=int(v.shape[1]), fps=int(fps), seconds=v.shape[0] / fps, sample_rate=int(sample_rate))
    tracks = ball_tracks(v, s)
    ev = video_events(v, fps, s)
    rows = []
    for t, c in ev:
        p = tracks[int(c)]
        f = p.shape[0]
        k = int(np.clip(np.floor(t * fps), 1, f - 3))  # the hit lies between frames k and k + 1
        before, after = p[k] - p[k - 1], p[k + 2] - p[k + 1]
        speed = float((np.linalg.norm(before) + np.linalg.norm(after)) / 2 * fps)
        rows.append((t, c, speed, 0.0))
    events = np.array(rows, np.float64).reshape(-1, 4)
    return render_audio_events(events, spec, np.random.default_rng(seed))


def audio_onsets(mel: Tensor | np.ndarray, frame_rate: float, settings: DetectorSettings | None = None) -> np.ndarray:
    """Onset frames of a log-mel ``[f_a, n_mels]`` (natural log): peaks of the positive flux above ``flux``.

    Returns:
        ``[e, 2]`` rows ``(time s, frame index)``.
    """
    s = settings or DetectorSettings()
    m = np.asarray(mel.cpu() if isinstance(mel, Tensor) else mel, np.float64)
    if m.shape[0] < 2:
        return np.zeros((0, 2))
    flux = np.zeros(m.shape[0])
    flux[1:] = np.clip(m[1:] - m[:-1], 0, None).sum(1)
    rows = []
    for j in range(1, m.shape[0]):
        lo, hi = max(1, j - 2), min(m.shape[0], j + 3)
        if flux[j] >= s.flux and flux[j] == flux[lo:hi].max() and (not rows or j - rows[-1][1] > 1):
            rows.append((j / frame_rate - s.onset_offset, j))
    return np.array(rows, np.float64).reshape(-1, 2)


def onset_colors(mel: Tensor | np.ndarray, frames: np.ndarray, bands: list[int]) -> np.ndarray:
    """Colour id of each onset: the palette pitch whose band (+-1) rose most from the frame before the onset to frames
    2-3 after it (50-75 ms: the broadband click has left the analysis window, a tone still rings, an older tone decays).

    Args:
        mel: log-mel ``[f_a, n_mels]``.
        frames: onset frame indices ``[e]``.
        bands: mel band of each palette pitch (:func:`pitch_bands`).
    """
    m = np.asarray(mel.cpu() if isinstance(mel, Tensor) else mel, np.float64)
    out = []
    for j in np.asarray(frames, np.int64):
        before = m[max(0, j - 1)]
        after = m[min(m.shape[0] - 1, j + 2) : min(m.shape[0], j + 4)].max(0)
        rise = after - before
        score = [rise[max(0, b - 1) : b + 2].max() for b in bands]
        out.append(int(np.argmax(score)))
    return np.array(out, np.int64)


def pitch_bands(fb: Tensor, sample_rate: int) -> list[int]:
    """Mel band of every palette pitch for a filterbank ``fb [n_freq, n_mels]``."""
    n_freq = fb.shape[0]
    return [int(fb[int(round(p / (sample_rate / 2) * (n_freq - 1)))].argmax()) for p in PITCHES]


def merge_events(times: np.ndarray, merge: float, labels: list | None = None) -> tuple[np.ndarray, list[set]]:
    """Merge events closer than ``merge`` seconds (chained) into one at the first time; labels become sets."""
    order = np.argsort(times, kind="stable")
    t = np.asarray(times, np.float64)[order]
    lab = [labels[i] for i in order] if labels is not None else [None] * len(t)
    out_t, out_l, last = [], [], -np.inf
    for ti, li in zip(t, lab):
        if out_t and ti - last <= merge:
            if li is not None:
                out_l[-1].add(li)
        else:
            out_t.append(ti)
            out_l.append(set() if li is None else {li})
        last = ti
    return np.array(out_t, np.float64), out_l


def match_events(det: np.ndarray, ref: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
    """One-to-one matches ``(i_det, i_ref)`` with ``|det - ref| <= tolerance``, closest pairs first."""
    pairs = sorted(
        (abs(float(d) - float(r)), i, j)
        for i, d in enumerate(det)
        for j, r in enumerate(ref)
        if abs(d - r) <= tolerance
    )
    used_d, used_r, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_d and j not in used_r:
            used_d.add(i)
            used_r.add(j)
            out.append((i, j))
    return out


@dataclass
class SyncCounts:
    """Accumulated matches over clips: F1 and offsets."""

    tp: int = 0
    n_det: int = 0
    n_ref: int = 0
    offsets: list | None = None

    def add(self, det: np.ndarray, ref: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
        m = match_events(det, ref, tolerance)
        self.tp += len(m)
        self.n_det += len(det)
        self.n_ref += len(ref)
        self.offsets = (self.offsets or []) + [float(det[i] - ref[j]) for i, j in m]
        return m

    def summary(self) -> dict[str, float]:
        p = self.tp / self.n_det if self.n_det else 0.0
        r = self.tp / self.n_ref if self.n_ref else 0.0
        off = np.abs(np.array(self.offsets or [np.nan]))
        return {
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "precision": round(p, 4),
            "recall": round(r, 4),
            "median_abs_offset_ms": round(float(np.nanmedian(off)) * 1000, 1) if self.offsets else float("nan"),
            "median_offset_ms": round(float(np.median(self.offsets)) * 1000, 1) if self.offsets else float("nan"),
            "detected": self.n_det,
            "reference": self.n_ref,
        }


def amplitude_per_frame(mel: Tensor | np.ndarray, frame_rate: float, fps: float, frames: int) -> np.ndarray:
    """Audio amplitude (square root of the mel power summed over bands) at the video frame times ``[frames]``."""
    m = np.asarray(mel.cpu() if isinstance(mel, Tensor) else mel, np.float64)
    amp = np.sqrt(np.exp(2 * m).sum(1))
    t_a = np.arange(m.shape[0]) / frame_rate
    return np.interp(np.arange(frames) / fps, t_a, amp)


def shape_radius(video: Tensor | np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Radius-like size of the bright shape in every frame: square root of its (soft) area ``[f]``."""
    v = _frames01(video)
    bright = np.clip((v.mean(-1) - np.mean(BACKGROUND)) / (np.mean(PULSE_COLOR) - np.mean(BACKGROUND)), 0, 1)
    return np.sqrt((bright * (bright > threshold)).sum((1, 2)))


def size_loudness_correlation(
    video: Tensor | np.ndarray, mel: Tensor | np.ndarray, frame_rate: float, fps: float
) -> float:
    """Pearson correlation over frames between the shape's radius and the audio amplitude (pulse clips)."""
    r = shape_radius(video)
    a = amplitude_per_frame(mel, frame_rate, fps, r.shape[0])
    if r.std() < 1e-8 or a.std() < 1e-8:
        return 0.0
    return float(np.corrcoef(r, a)[0, 1])


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: np.ndarray) -> float:
    """Total-variation distance between the histograms of ``a`` and ``b`` on ``bins`` (0 = same, 1 = disjoint)."""
    ha = np.histogram(np.asarray(a, np.float64), bins=bins)[0].astype(np.float64)
    hb = np.histogram(np.asarray(b, np.float64), bins=bins)[0].astype(np.float64)
    if ha.sum() == 0 or hb.sum() == 0:
        return 1.0 if ha.sum() != hb.sum() else 0.0
    return float(0.5 * np.abs(ha / ha.sum() - hb / hb.sum()).sum())


def frechet_distance(x: Tensor, y: Tensor, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussian fits of features ``x [n, d]`` and ``y [m, d]``.

    ``|mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2)``, the matrix roots by symmetric eigendecomposition
    (float64).
    """
    x, y = x.double(), y.double()
    mx, my = x.mean(0), y.mean(0)
    sx = torch.cov(x.T) + eps * torch.eye(x.shape[1], dtype=x.dtype)
    sy = torch.cov(y.T) + eps * torch.eye(y.shape[1], dtype=y.dtype)
    ex, vx = torch.linalg.eigh(sx)
    root_x = vx @ torch.diag(ex.clamp_min(0).sqrt()) @ vx.T
    mid = root_x @ sy @ root_x
    em = torch.linalg.eigvalsh((mid + mid.T) / 2).clamp_min(0)
    return float((mx - my).pow(2).sum() + torch.trace(sx) + torch.trace(sy) - 2 * em.sqrt().sum())


__all__ = [
    "DetectorSettings",
    "SyncCounts",
    "amplitude_per_frame",
    "audio_onsets",
    "ball_tracks",
    "frechet_distance",
    "histogram_distance",
    "match_events",
    "merge_events",
    "onset_colors",
    "pitch_bands",
    "rule_foley",
    "shape_radius",
    "size_loudness_correlation",
    "track_blobs",
    "video_events",
]
