"""``ClipSet``: a split of audio-video clips as arrays, with its truth, saved as one checked ``.npz`` file.

The file stores the clip geometry (frame size, fps, duration, sample rate) next to the arrays, so a reader knows what
it holds without the generator's settings, and the truth of every clip (events, colours, envelope, tone). Loading
never unpickles (``allow_pickle=False``), checks every field's dtype, shape and range against the stored geometry,
and raises a :class:`~ditkit_core.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ditkit_audio.av.synthetic import Clip, ClipSpec
from ditkit_core.errors import DataError, atomic_save, check_array, check_count, naming_file

FORMAT = 1
UNKNOWN_FAMILY = 2
"""Family id of clips from real files (neither procedural family): the DiT's null class with ``num_classes: 2``."""
MAX_CLIPS = 1_000_000
MAX_EVENTS = 10_000_000


@dataclass
class ClipSet:
    """Clips of one split.

    Attributes:
        video: ``[n, f, h, w, 3]`` uint8.
        audio: ``[n, s]`` float32 in [-1, 1].
        family: ``[n]`` int64 (0 balls, 1 pulse, 2 unknown / real file).
        fps, sample_rate, seconds: geometry (frame size is ``video.shape[2]``).
        events: ``[e, 5]`` float32 rows ``(clip, time s, colour id, speed px/s, kind)``, sorted by clip then time.
        colors: ``[n, 4]`` int64 colour ids of each clip's balls (-1 = none).
        envelope: ``[n, f]`` float32 loudness envelope at the video frames (pulse clips).
        tone_hz: ``[n]`` float32.
        names: ``[n]`` source of each clip (file name and window for real files).
    """

    video: np.ndarray
    audio: np.ndarray
    family: np.ndarray
    fps: int
    sample_rate: int
    seconds: float
    events: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    colors: np.ndarray | None = None
    envelope: np.ndarray | None = None
    tone_hz: np.ndarray | None = None
    names: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, f = self.video.shape[:2]
        if self.colors is None:
            self.colors = np.full((n, 4), -1, np.int64)
        if self.envelope is None:
            self.envelope = np.zeros((n, f), np.float32)
        if self.tone_hz is None:
            self.tone_hz = np.zeros(n, np.float32)
        if self.names is None:
            self.names = np.array([f"clip{i}" for i in range(n)])

    def __len__(self) -> int:
        return int(self.video.shape[0])

    @property
    def size(self) -> int:
        return int(self.video.shape[2])

    def clip_events(self, i: int) -> np.ndarray:
        """Events of clip ``i``: ``[e, 4]`` rows ``(time, colour, speed, kind)``."""
        return self.events[self.events[:, 0] == i, 1:]

    def subset(self, idx: list[int] | np.ndarray) -> ClipSet:
        """The clips ``idx`` (renumbered from 0) with their events."""
        idx = np.asarray(idx, np.int64)
        remap = {int(old): new for new, old in enumerate(idx)}
        keep = np.isin(self.events[:, 0].astype(np.int64), idx)
        ev = self.events[keep].copy()
        ev[:, 0] = [remap[int(c)] for c in ev[:, 0]]
        order = np.lexsort((ev[:, 1], ev[:, 0])) if len(ev) else np.zeros(0, np.int64)
        return ClipSet(
            self.video[idx],
            self.audio[idx],
            self.family[idx],
            self.fps,
            self.sample_rate,
            self.seconds,
            ev[order],
            self.colors[idx],
            self.envelope[idx],
            self.tone_hz[idx],
            self.names[idx],
        )

    @classmethod
    def from_clips(cls, clips: list[Clip], spec: ClipSpec, names: list[str] | None = None) -> ClipSet:
        """Stack procedural clips (and their truth) into a split."""
        n = len(clips)
        ev = [np.concatenate([np.full((len(c.events), 1), i, np.float32), c.events], 1) for i, c in enumerate(clips)]
        colors = np.full((n, 4), -1, np.int64)
        for i, c in enumerate(clips):
            colors[i, : len(c.colors)] = c.colors
        return cls(
            video=np.stack([c.video for c in clips])
            if n
            else np.zeros((0, spec.frames, spec.size, spec.size, 3), np.uint8),
            audio=np.stack([c.audio for c in clips]).astype(np.float32)
            if n
            else np.zeros((0, spec.samples), np.float32),
            family=np.array([c.family for c in clips], np.int64),
            fps=spec.fps,
            sample_rate=spec.sample_rate,
            seconds=spec.seconds,
            events=np.concatenate(ev).astype(np.float32) if ev else np.zeros((0, 5), np.float32),
            colors=colors,
            envelope=np.stack([c.envelope for c in clips]).astype(np.float32) if n else None,
            tone_hz=np.array([c.tone_hz for c in clips], np.float32),
            names=np.array(names if names is not None else [f"clip{i}" for i in range(n)]),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the split atomically as an uncompressed ``.npz`` (audio as 16-bit PCM)."""
        pcm = np.round(np.clip(self.audio, -1, 1) * 32767).astype(np.int16)
        arrays = {
            "format": np.array(FORMAT),
            "video": self.video,
            "audio_pcm16": pcm,
            "family": self.family.astype(np.int64),
            "geometry": np.array([self.fps, self.sample_rate, self.seconds], np.float64),
            "events": self.events.astype(np.float32),
            "colors": self.colors.astype(np.int64),
            "envelope": self.envelope.astype(np.float32),
            "tone_hz": self.tone_hz.astype(np.float32),
            "names": np.asarray(self.names).astype(str),
        }
        return atomic_save(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def load_clipset(path: str | os.PathLike) -> ClipSet:
    """Read a split written by :meth:`ClipSet.save`, checking every field.

    Raises:
        DataError: naming the file and the field (missing / wrong dtype / wrong shape / out of range / unreadable).
        FileNotFoundError: no such file (the message names ``make data-av``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (make it with `make data-av`)")
    need = ("format", "video", "audio_pcm16", "family", "geometry", "events", "colors", "envelope", "tone_hz", "names")
    with naming_file(path, "not a clip file (.npz)"):
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in need if k not in z.files]
            if missing:
                raise DataError(f"missing field(s) {missing}", path=path, field="fields", value=sorted(z.files))
            data = {k: z[k] for k in need}
    fmt = check_array(data["format"], path=path, field="format")
    if fmt.shape != () or int(fmt) != FORMAT:
        raise DataError(
            f"unsupported format (this reader knows {FORMAT})", path=path, field="format", value=fmt.tolist()
        )
    video = data["video"]
    if video.dtype != np.uint8 or video.ndim != 5 or video.shape[-1] != 3:
        raise DataError(
            "must be uint8 [n, f, h, w, 3]", path=path, field="video", value=(str(video.dtype), video.shape)
        )
    n, f, h, w, _ = video.shape
    check_count(n, MAX_CLIPS, path=path, field="video clips")
    if h != w or not 4 <= h <= 1024 or not 1 <= f <= 100_000:
        raise DataError(
            "frames must be square, 4-1024 px, 1-100000 frames", path=path, field="video", value=video.shape
        )
    geo = check_array(data["geometry"], path=path, field="geometry", allow_nan=False)
    if geo.shape != (3,):
        raise DataError("must be [fps, sample_rate, seconds]", path=path, field="geometry", value=geo.shape)
    fps, sr, secs = float(geo[0]), float(geo[1]), float(geo[2])
    if fps != int(fps) or not 1 <= fps <= 240:
        raise DataError("fps must be an integer in [1, 240]", path=path, field="geometry.fps", value=fps)
    if sr != int(sr) or not 1000 <= sr <= 192_000:
        raise DataError(
            "sample rate must be an integer in [1000, 192000]", path=path, field="geometry.sample_rate", value=sr
        )
    if not 0 < secs <= 3600 or int(round(fps * secs)) != f:
        raise DataError(
            f"duration must give the {f} stored frames at {fps:g} fps", path=path, field="geometry.seconds", value=secs
        )
    pcm = data["audio_pcm16"]
    if pcm.dtype != np.int16 or pcm.shape != (n, int(round(sr * secs))):
        raise DataError(
            f"must be int16 [{n}, {int(round(sr * secs))}]",
            path=path,
            field="audio_pcm16",
            value=(str(pcm.dtype), pcm.shape),
        )
    family = check_array(data["family"], path=path, field="family")
    if (
        family.shape != (n,)
        or family.dtype.kind not in "iu"
        or (n and not (0 <= family.min() and family.max() <= UNKNOWN_FAMILY))
    ):
        raise DataError(
            f"must be integers in [0, {UNKNOWN_FAMILY}] of shape [{n}]", path=path, field="family", value=family.shape
        )
    events = check_array(data["events"], path=path, field="events", allow_nan=False)
    check_count(events.shape[0] if events.ndim == 2 else -1, MAX_EVENTS, path=path, field="events rows")
    if events.ndim != 2 or events.shape[1] != 5:
        raise DataError(
            "must be [e, 5] (clip, time, colour, speed, kind)", path=path, field="events", value=events.shape
        )
    if len(events):
        clip, t, c = events[:, 0], events[:, 1], events[:, 2]
        if (clip != np.round(clip)).any() or clip.min() < 0 or clip.max() >= n:
            raise DataError(f"clip index outside [0, {n})", path=path, field="events.clip", value=float(clip.max()))
        if t.min() < 0 or t.max() > secs + 1e-3:
            raise DataError(f"event time outside [0, {secs}] s", path=path, field="events.time", value=float(t.max()))
        if (c != np.round(c)).any() or c.min() < 0 or c.max() > 3:
            raise DataError("colour id outside [0, 3]", path=path, field="events.colour", value=float(c.max()))
    colors = check_array(data["colors"], path=path, field="colors")
    if colors.shape != (n, 4) or colors.dtype.kind not in "iu" or (n and (colors.min() < -1 or colors.max() > 3)):
        raise DataError(f"must be integers in [-1, 3] of shape [{n}, 4]", path=path, field="colors", value=colors.shape)
    envelope = check_array(data["envelope"], path=path, field="envelope", allow_nan=False)
    if envelope.shape != (n, f):
        raise DataError(f"must be [{n}, {f}]", path=path, field="envelope", value=envelope.shape)
    tone = check_array(data["tone_hz"], path=path, field="tone_hz", allow_nan=False)
    if tone.shape != (n,) or (n and (tone.min() < 0 or tone.max() > sr / 2)):
        raise DataError(f"must be [{n}] in [0, sample_rate / 2]", path=path, field="tone_hz", value=tone.shape)
    names = data["names"]
    if names.shape != (n,) or names.dtype.kind != "U":
        raise DataError(f"must be [{n}] strings", path=path, field="names", value=(str(names.dtype), names.shape))
    return ClipSet(
        video=video,
        audio=pcm.astype(np.float32) / 32767.0,
        family=family.astype(np.int64),
        fps=int(fps),
        sample_rate=int(sr),
        seconds=secs,
        events=events.astype(np.float32),
        colors=colors.astype(np.int64),
        envelope=envelope.astype(np.float32),
        tone_hz=tone.astype(np.float32),
        names=names,
    )


__all__ = ["FORMAT", "UNKNOWN_FAMILY", "ClipSet", "load_clipset"]
