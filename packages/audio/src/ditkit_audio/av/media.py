"""Real audio-video files through PyAV: checked reading of .mp4 (with an audio track, or a .wav beside it), folders of
them cut into fixed-length clips with a load report, and writing .mp4 with sound.

Reading never trusts the container: the stream's frame size, the claimed duration and the number of decoded frames
and samples are bounded before anything large is allocated, and every failure is a :class:`MediaError` (a
:class:`~ditkit_core.errors.DataError`) naming the file and a short reason. :func:`load_folder` skips unusable files
with a count per reason in a :class:`~ditkit_core.errors.LoadReport` (each skip names the file):

``corrupt`` (not a container, undecodable), ``no_video``, ``no_audio`` (no audio track and no .wav beside it),
``no_frames``, ``too_large`` (frame size or duration beyond the limits), ``too_short`` (shorter than one clip),
``duration_mismatch`` (audio and video lengths differ by more than ``max(0.2 s, 5 %)``), ``nonfinite`` / ``range``
(audio samples), ``wav_error`` (the paired .wav is unusable, with its own reason), ``outside_root`` (a link that
leaves the folder), ``wav_without_video`` (a .wav with no .mp4).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ditkit_audio.audio import AudioError, read_wav
from ditkit_audio.av.store import UNKNOWN_FAMILY, ClipSet
from ditkit_core.errors import DataError, LoadReport, atomic_save

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
MAX_SIDE = 8192
"""Largest frame side accepted from a container header."""
MAX_SECONDS = 600.0
"""Longest file read (a header claiming more is refused before decoding)."""
MAX_FPS = 240


class MediaError(DataError):
    """An audio-video file cannot be used; ``reason`` is the short key counted by :func:`load_folder`."""

    def __init__(self, path: str | Path, reason: str, detail: str, *, field: str | None = None, value: Any = None):
        super().__init__(f"{reason}: {detail}", path=path, field=field, value=value)
        self.path, self.reason, self.detail = str(path), reason, detail


def _require_av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a declared dependency
        raise ImportError("reading / writing .mp4 needs PyAV: pip install av (declared by ditkit-audio)") from e
    return av


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``[h, w, 3]`` uint8 to a square and resize it to ``size`` x ``size`` (area averaging)."""
    h, w = frame.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = torch.from_numpy(np.ascontiguousarray(frame[y0 : y0 + s, x0 : x0 + s])).permute(2, 0, 1)[None].float()
    if s != size:
        sq = F.interpolate(sq, size=(size, size), mode="area" if s > size else "bilinear", align_corners=None)
    return sq[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def read_media(
    path: str | os.PathLike,
    *,
    fps: int,
    size: int,
    sample_rate: int,
    wav: str | os.PathLike | None = None,
    max_seconds: float = MAX_SECONDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a video file as frames at ``fps`` and ``size`` px, and its sound (or the ``wav`` beside it) at
    ``sample_rate``.

    Returns:
        ``(video [f, size, size, 3] uint8, audio [s] float32)`` with ``f / fps`` and ``s / sample_rate`` the file's
        video and audio durations.

    Raises:
        MediaError: with ``reason`` ``corrupt``, ``no_video``, ``no_audio``, ``no_frames``, ``too_large``,
            ``nonfinite``, ``range`` or ``wav_error``; the message names the file.
    """
    av = _require_av()
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "corrupt", "not a regular file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as e:  # av.error.* (InvalidDataError, ...) and OSError
        raise MediaError(path, "corrupt", f"cannot open as a media container ({type(e).__name__}: {e})") from None
    try:
        return _decode(av, container, path, fps, size, sample_rate, wav, max_seconds)
    except (MediaError, MemoryError):
        raise
    except Exception as e:  # a damaged header: streams without a codec, impossible sizes, ...
        raise MediaError(path, "corrupt", f"unreadable stream header ({type(e).__name__}: {e})") from None
    finally:
        container.close()


def _decode(
    av: Any, container: Any, path: Path, fps: int, size: int, sample_rate: int, wav: Any, max_seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    vstreams = [s for s in container.streams if s.type == "video"]
    if not vstreams:
        raise MediaError(path, "no_video", "the container has no video stream")
    vs = vstreams[0]
    w, h = int(vs.codec_context.width or 0), int(vs.codec_context.height or 0)
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise MediaError(
            path, "too_large" if max(w, h) > MAX_SIDE else "corrupt", f"frame size {w}x{h}", field="size", value=(w, h)
        )
    claimed = container.duration / 1e6 if container.duration else 0.0
    if claimed > max_seconds:
        raise MediaError(path, "too_large", f"duration beyond {max_seconds:g} s", field="duration", value=claimed)
    astreams = [s for s in container.streams if s.type == "audio"]
    if wav is None and not astreams:
        raise MediaError(path, "no_audio", "no audio stream and no .wav with the same name")
    use = [vs] + ([astreams[0]] if wav is None else [])
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if wav is None else None
    frames: list[tuple[float, np.ndarray]] = []
    chunks: list[np.ndarray] = []
    n_audio, max_frames, max_samples = 0, int(max_seconds * MAX_FPS), int(max_seconds * sample_rate)
    try:
        for packet in container.demux(*use):
            for fr in packet.decode():
                if isinstance(fr, av.VideoFrame):
                    if len(frames) >= max_frames:
                        raise MediaError(
                            path, "too_large", f"more than {max_frames} frames", field="frames", value=len(frames)
                        )
                    t = fr.time if fr.time is not None else len(frames) / float(vs.average_rate or fps)
                    frames.append((float(t), resize_frame(fr.to_ndarray(format="rgb24"), size)))
                elif resampler is not None:
                    for r in resampler.resample(fr):
                        a = r.to_ndarray().reshape(-1).astype(np.float32)
                        chunks.append(a)
                        n_audio += a.shape[0]
                    if n_audio > max_samples:
                        raise MediaError(
                            path, "too_large", f"more than {max_samples} audio samples", field="samples", value=n_audio
                        )
        if resampler is not None:
            for r in resampler.resample(None):
                chunks.append(r.to_ndarray().reshape(-1).astype(np.float32))
    except MediaError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # decoder errors of a damaged stream
        raise MediaError(path, "corrupt", f"cannot decode ({type(e).__name__}: {e})") from None
    if not frames:
        raise MediaError(path, "no_frames", "the video stream decodes to no frames")
    times = np.array([t for t, _ in frames])
    if not np.isfinite(times).all():
        raise MediaError(path, "corrupt", "non-finite frame times")
    order = np.argsort(times, kind="stable")
    times = times[order] - times[order][0]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
    step = step if math.isfinite(step) and step > 0 else 1.0 / fps
    duration = float(times[-1] + step)
    n_out = max(1, int(math.floor(duration * fps + 1e-6)))
    idx = np.clip(np.searchsorted(times, np.arange(n_out) / fps + 1e-6, side="right") - 1, 0, len(times) - 1)
    video = np.stack([frames[order[i]][1] for i in idx])
    if wav is not None:
        try:
            audio = read_wav(wav, sample_rate=sample_rate, stereo="mix").numpy()
        except AudioError as e:
            raise MediaError(
                path, "wav_error", f"paired wav unusable ({e})", field="wav", value=Path(wav).name
            ) from None
    else:
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if audio.size == 0:
            raise MediaError(path, "no_audio", "the audio stream decodes to no samples")
        if not np.isfinite(audio).all():
            raise MediaError(path, "nonfinite", "NaN or infinite audio samples")
        if float(np.abs(audio).max()) > 100.0:
            raise MediaError(path, "range", "audio peak beyond 100", field="peak", value=float(np.abs(audio).max()))
    return video, audio.astype(np.float32)


def cut_clips(
    video: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int, seconds: float, hop_s: float | None = None
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Cut aligned windows of ``seconds`` (every ``hop_s``, default non-overlapping): ``[(video, audio, start s)]``."""
    nf, ns = int(round(fps * seconds)), int(round(sample_rate * seconds))
    hop = seconds if hop_s is None else hop_s
    out, k = [], 0
    while True:
        start = k * hop
        f0, s0 = int(round(start * fps)), int(round(start * sample_rate))
        if f0 + nf > video.shape[0] or s0 + ns > audio.shape[0]:
            break
        out.append((video[f0 : f0 + nf], audio[s0 : s0 + ns], start))
        k += 1
    return out


def load_folder(
    root: str | os.PathLike,
    *,
    fps: int = 16,
    size: int = 32,
    sample_rate: int = 16000,
    seconds: float = 2.0,
    max_files: int = 100_000,
    tolerance: float = 0.2,
) -> tuple[ClipSet, LoadReport]:
    """Every video file in ``root`` (sorted, not recursive) with its audio track or a same-name .wav, cut into
    ``seconds``-long clips.

    Args:
        root: the folder.
        fps, size, sample_rate, seconds: clip geometry (frames are resampled, centre-cropped and resized).
        max_files: refuse folders with more media files than this.
        tolerance: audio and video durations may differ by ``max(tolerance s, 5 %)``.

    Returns:
        the clips (family 2 = unknown, no truth; names ``file@start``) and the report of kept / skipped files.

    Raises:
        DataError: the folder does not exist, or holds no usable file (the reasons are listed).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a folder", path=root)
    report = LoadReport(str(root))
    entries = sorted(root.iterdir())
    if len(entries) > 4 * max_files:
        raise DataError(f"more than {max_files} files", path=root, field="files", value=len(entries))
    videos = [p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES]
    stems = {p.stem for p in videos}
    for p in entries:
        if p.suffix.lower() == ".wav" and p.stem not in stems:
            report.skip("wav_without_video", path=p)
    clips, names = [], []
    base = root.resolve()
    for p in videos:
        try:
            real = p.resolve()
        except (OSError, RuntimeError):
            report.skip("corrupt", path=p, field="link", value="unresolvable")
            continue
        if base not in real.parents:
            report.skip("outside_root", path=p, field="link", value=str(real.name))
            continue
        wav = p.with_suffix(".wav")
        wav = wav if wav.exists() else None
        try:
            video, audio = read_media(p, fps=fps, size=size, sample_rate=sample_rate, wav=wav)
        except MediaError as e:
            report.skip(e.reason, path=p, field="detail", value=e.detail[:200])
            continue
        dv, da = video.shape[0] / fps, audio.shape[0] / sample_rate
        if abs(dv - da) > max(tolerance, 0.05 * max(dv, da)):
            report.skip("duration_mismatch", path=p, field="video_s/audio_s", value=(round(dv, 3), round(da, 3)))
            continue
        windows = cut_clips(video, audio, fps, sample_rate, seconds)
        if not windows:
            report.skip("too_short", path=p, field="seconds", value=round(min(dv, da), 3))
            continue
        report.kept += 1
        for v, a, start in windows:
            clips.append((v, a))
            names.append(f"{p.name}@{start:.2f}")
    report.log()
    report.require_some()
    n = len(clips)
    return (
        ClipSet(
            video=np.stack([v for v, _ in clips]),
            audio=np.stack([a for _, a in clips]).astype(np.float32),
            family=np.full(n, UNKNOWN_FAMILY, np.int64),
            fps=fps,
            sample_rate=sample_rate,
            seconds=seconds,
            names=np.array(names),
        ),
        report,
    )


def write_mp4(
    path: str | os.PathLike,
    video: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    scale: int = 1,
    crf: int = 12,
) -> Path:
    """Write frames ``[f, h, w, 3]`` (uint8, or float in [0, 1]) with an optional mono track as H.264 + AAC .mp4,
    atomically. ``scale`` enlarges frames by pixel repetition (tiny clips play at a viewable size)."""
    av = _require_av()
    v = np.asarray(video)
    if v.dtype != np.uint8:
        v = np.clip(np.round(v.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"write_mp4: video must be [f, h, w, 3], got {v.shape}")
    if scale > 1:
        v = v.repeat(scale, 1).repeat(scale, 2)
    h, w = v.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sides
        v = np.pad(v, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    if audio is not None:
        a = np.asarray(audio, np.float32).reshape(-1)
        if not np.isfinite(a).all():
            raise ValueError(f"write_mp4: {path}: NaN or infinite audio samples")
        a = np.clip(a, -1, 1)

    def write(tmp: str) -> None:
        c = av.open(tmp, mode="w", format="mp4")
        try:
            vs = c.add_stream("libx264", rate=int(fps))
            vs.width, vs.height, vs.pix_fmt = v.shape[2], v.shape[1], "yuv420p"
            vs.options = {"crf": str(crf)}
            ast = None
            if audio is not None:
                ast = c.add_stream("aac", rate=int(sample_rate))
                ast.layout = "mono"
            for img in v:
                for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
            if ast is not None:
                pts = 0
                for s in range(0, a.shape[0], 1024):
                    fr = av.AudioFrame.from_ndarray(a[None, s : s + 1024].copy(), format="flt", layout="mono")
                    fr.sample_rate, fr.pts = int(sample_rate), pts
                    pts += fr.samples
                    for p in ast.encode(fr):
                        c.mux(p)
                for p in ast.encode():
                    c.mux(p)
        finally:
            c.close()

    return atomic_save(path, write, suffix=".mp4")


__all__ = [
    "MAX_SECONDS",
    "MediaError",
    "VIDEO_SUFFIXES",
    "cut_clips",
    "load_folder",
    "read_media",
    "resize_frame",
    "write_mp4",
]
