"""Procedural audio-video clips whose truth is known (the embedded default data of the audio-video app).

Two clip families:

* ``balls`` (family 0): 1-3 balls of distinct colours move in a box (elastic walls, elastic equal-mass ball-ball
  collisions). Every wall or ball collision makes a short percussive sound (a decaying tone with its octave and a
  2 ms noise click) whose pitch is set by the colour of the ball that hit and whose amplitude follows that ball's
  speed. A ball-ball collision sounds both balls' pitches at once. Every event (time, colour, speed, kind) is stored.
* ``pulse`` (family 1): one shape (disc or square) whose radius follows the loudness envelope of a steady tone: a
  continuous audio-visual link instead of discrete events. The envelope at every video frame is stored.

Everything is simulated at 512 steps per second and rendered with anti-aliased shapes; wall-hit times are exact
(solved inside the step), ball-ball times are within one simulation step (2 ms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.95, 0.20, 0.15),  # red
    (0.20, 0.90, 0.25),  # green
    (0.25, 0.45, 1.00),  # blue
    (0.95, 0.85, 0.15),  # yellow
)
"""RGB in [0, 1] of the ball colours (index = colour id)."""
COLOR_NAMES = ("red", "green", "blue", "yellow")
PITCHES: tuple[float, ...] = (330.0, 523.0, 830.0, 1318.0)
"""Pitch (Hz) of each colour's collision sound: 8 semitones apart, so a mel band decides the colour."""
BACKGROUND = (0.06, 0.06, 0.08)
PULSE_COLOR = (0.85, 0.85, 0.90)
FAMILIES = ("balls", "pulse")


@dataclass
class ClipSpec:
    """Geometry and content ranges of the procedural clips.

    Attributes:
        size: frame height = width in pixels.
        fps: video frames per second.
        seconds: clip duration.
        sample_rate: audio sample rate (Hz).
        radius: ball radius in pixels.
        speed: (min, max) ball speed in pixels per second.
        max_balls: balls per clip are drawn from 1..max_balls (distinct colours, so at most len(PALETTE)).
        pulse_fraction: share of ``pulse`` clips.
        decay: decay time (s) of a collision sound.
        noise_db: level of the steady background noise (dBFS).
    """

    size: int = 32
    fps: int = 16
    seconds: float = 2.0
    sample_rate: int = 16000
    radius: float = 3.0
    speed: tuple[float, float] = (12.0, 30.0)
    max_balls: int = 3
    pulse_fraction: float = 0.25
    decay: float = 0.06
    noise_db: float = -60.0

    def __post_init__(self) -> None:
        self.speed = tuple(float(s) for s in self.speed)
        checks = [
            (isinstance(self.size, int) and 8 <= self.size <= 512, "size", "an integer in [8, 512]"),
            (isinstance(self.fps, int) and 1 <= self.fps <= 120, "fps", "an integer in [1, 120]"),
            (0.25 <= float(self.seconds) <= 60.0, "seconds", "in [0.25, 60]"),
            (
                isinstance(self.sample_rate, int) and 4000 <= self.sample_rate <= 48000,
                "sample_rate",
                "an integer in [4000, 48000]",
            ),
            (1.0 <= self.radius <= self.size / 4, "radius", f"in [1, size/4={self.size / 4}]"),
            (len(self.speed) == 2 and 0 < self.speed[0] <= self.speed[1], "speed", "(min, max) with 0 < min <= max"),
            (
                isinstance(self.max_balls, int) and 1 <= self.max_balls <= len(PALETTE),
                "max_balls",
                f"an integer in [1, {len(PALETTE)}]",
            ),
            (0.0 <= self.pulse_fraction <= 1.0, "pulse_fraction", "in [0, 1]"),
            (0.005 <= self.decay <= 1.0, "decay", "in [0.005, 1] s"),
            (-120.0 <= self.noise_db <= -20.0, "noise_db", "in [-120, -20] dBFS"),
        ]
        for ok, name, what in checks:
            if not ok:
                raise ValueError(f"ClipSpec.{name}={getattr(self, name)!r}: must be {what}")

    @property
    def frames(self) -> int:
        return int(round(self.fps * self.seconds))

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.seconds))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Clip:
    """One clip and its truth.

    Attributes:
        video: ``[f, h, w, 3]`` uint8.
        audio: ``[s]`` float32 in [-1, 1].
        family: 0 balls, 1 pulse.
        colors: colour ids of the balls (balls family).
        events: ``[e, 4]`` float32 rows ``(time s, colour id, speed px/s, kind 0 wall / 1 ball)``, sorted by time.
        envelope: ``[f]`` loudness envelope at the video frames (pulse family; zeros otherwise).
        tone_hz: pitch of the pulse tone (0 for balls).
    """

    video: np.ndarray
    audio: np.ndarray
    family: int
    colors: list[int] = field(default_factory=list)
    events: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    envelope: np.ndarray | None = None
    tone_hz: float = 0.0


# ---------------------------------------------------------------------- rendering
def _coverage(dist: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased coverage of a shape boundary at signed distance ``dist - radius`` (one-pixel ramp)."""
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


def render_balls(pos: np.ndarray, colors: list[int], spec: ClipSpec) -> np.ndarray:
    """One frame ``[h, w, 3]`` float in [0, 1] with balls at ``pos [n, 2]`` (x, y in pixels, pixel centres at +0.5)."""
    s = spec.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    img = np.broadcast_to(np.array(BACKGROUND, np.float32), (s, s, 3)).copy()
    for (x, y), c in zip(pos, colors):
        a = _coverage(np.hypot(xx - x, yy - y), spec.radius)[..., None]
        img = img * (1 - a) + a * np.array(PALETTE[c], np.float32)
    return img


def render_pulse(center: np.ndarray, radius: float, square: bool, spec: ClipSpec) -> np.ndarray:
    """One frame with a disc (or square) of ``radius`` pixels at ``center``."""
    s = spec.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    dx, dy = np.abs(xx - center[0]), np.abs(yy - center[1])
    d = np.maximum(dx, dy) if square else np.hypot(dx, dy)
    a = _coverage(d, radius)[..., None]
    bg = np.array(BACKGROUND, np.float32)
    return bg * (1 - a) + a * np.array(PULSE_COLOR, np.float32)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- physics
def simulate_balls(spec: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Ball positions at every video frame ``[f, n, 2]``, the colour ids and the events ``[e, 4]``."""
    n = int(rng.integers(1, spec.max_balls + 1))
    colors = [int(c) for c in rng.choice(len(PALETTE), size=n, replace=False)]
    r, s = spec.radius, float(spec.size)
    pos = np.zeros((n, 2))
    for i in range(n):  # rejection sampling of non-overlapping starts
        for _ in range(200):
            p = rng.uniform(r + 0.5, s - r - 0.5, size=2)
            if all(np.hypot(*(p - pos[j])) > 2 * r + 1 for j in range(i)):
                break
        pos[i] = p
    # directions away from the axes (20-70 degrees in each quadrant) so every wall hit reverses a clear component
    ang = rng.uniform(math.radians(20), math.radians(70), size=n) + rng.integers(0, 4, size=n) * (math.pi / 2)
    speed = rng.uniform(*spec.speed, size=n)
    vel = np.stack([np.cos(ang), np.sin(ang)], 1) * speed[:, None]
    sub = 32
    dt = 1.0 / (spec.fps * sub)
    frames = np.zeros((spec.frames, n, 2), np.float32)
    events: list[tuple[float, int, float, int]] = []
    lo, hi = r, s - r
    for k in range(spec.frames * sub):
        if k % sub == 0:
            frames[k // sub] = pos
        t0 = k * dt
        new = pos + vel * dt
        for i in range(n):
            for axis in range(2):
                for wall in (lo, hi):
                    crossed = (new[i, axis] < wall) if wall == lo else (new[i, axis] > wall)
                    if crossed and (vel[i, axis] < 0 if wall == lo else vel[i, axis] > 0):
                        frac = (wall - pos[i, axis]) / (vel[i, axis] * dt)
                        events.append((t0 + float(np.clip(frac, 0, 1)) * dt, colors[i], float(np.hypot(*vel[i])), 0))
                        vel[i, axis] = -vel[i, axis]
                        new[i, axis] = 2 * wall - new[i, axis]
        for i in range(n):
            for j in range(i + 1, n):
                d = new[j] - new[i]
                dist = float(np.hypot(*d))
                rel = vel[j] - vel[i]
                if 0 < dist < 2 * r and float(rel @ d) < 0:  # touching and approaching: exchange normal components
                    u = d / dist
                    imp = float(rel @ u) * u
                    vel[i] += imp
                    vel[j] -= imp
                    t = t0 + dt
                    events.append((t, colors[i], float(np.hypot(*vel[i])), 1))
                    events.append((t, colors[j], float(np.hypot(*vel[j])), 1))
        pos = new
    ev = np.array(sorted(events), np.float32).reshape(-1, 4)
    return frames, colors, ev


# ---------------------------------------------------------------------- sound
def collision_sound(pitch: float, amplitude: float, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """A percussive hit: 1 ms attack, exponential decay of a tone and its octave, plus a 2 ms noise click."""
    sr = spec.sample_rate
    n = int(min(spec.seconds, 6 * spec.decay + 0.01) * sr)
    t = np.arange(n) / sr
    env = np.exp(-t / spec.decay) * np.minimum(1.0, t / 0.001)
    tone = np.sin(2 * np.pi * pitch * t) + 0.35 * np.sin(2 * np.pi * 2 * pitch * t + 0.5)
    click = np.zeros(n)
    k = min(n, int(0.002 * sr))
    click[:k] = rng.standard_normal(k) * np.linspace(1, 0, k)
    return (amplitude * (env * tone / 1.35 + 0.25 * click)).astype(np.float32)


def speed_amplitude(speed: float, spec: ClipSpec) -> float:
    """Peak amplitude of a collision sound: 0.12 at the slowest speed rising linearly to 0.5 at the fastest."""
    lo, hi = spec.speed
    frac = 0.0 if hi == lo else (speed - lo) / (hi - lo)
    return float(0.12 + 0.38 * np.clip(frac, 0.0, 1.5))


def render_audio_events(events: np.ndarray, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """The clip's soundtrack ``[s]``: every event's collision sound on a steady noise floor."""
    out = rng.standard_normal(spec.samples).astype(np.float32) * (10 ** (spec.noise_db / 20))
    for t, c, v, _ in events:
        start = int(round(float(t) * spec.sample_rate))
        if start >= spec.samples:
            continue
        snd = collision_sound(PITCHES[int(c)], speed_amplitude(float(v), spec), spec, rng)
        end = min(spec.samples, start + snd.shape[0])
        out[start:end] += snd[: end - start]
    return np.clip(out, -1.0, 1.0)


def smooth_envelope(spec: ClipSpec, rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """A smooth random loudness envelope in [0.1, 1] at ``times`` (a sum of three slow sinusoids)."""
    f = rng.uniform(0.3, 1.6, size=3)
    ph = rng.uniform(0, 2 * np.pi, size=3)
    w = rng.uniform(0.5, 1.0, size=3)
    raw = (w[None] * np.sin(2 * np.pi * f[None] * times[:, None] + ph[None])).sum(1) / w.sum()
    return (0.55 + 0.45 * raw).astype(np.float32)


# ---------------------------------------------------------------------- clips
def make_clip(spec: ClipSpec, seed: int, family: int | None = None) -> Clip:
    """One clip of ``family`` (None: drawn with ``spec.pulse_fraction``), fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    if family is None:
        family = int(rng.random() < spec.pulse_fraction)
    if family not in (0, 1):
        raise ValueError(f"make_clip: family={family!r}: choose 0 (balls) or 1 (pulse)")
    if family == 0:
        traj, colors, events = simulate_balls(spec, rng)
        video = np.stack([render_balls(p, colors, spec) for p in traj])
        audio = render_audio_events(events, spec, rng)
        return Clip(to_uint8(video), audio, 0, colors, events, np.zeros(spec.frames, np.float32), 0.0)
    s = spec.size
    center = rng.uniform(0.4 * s, 0.6 * s, size=2)
    square = bool(rng.random() < 0.5)
    tone = float(rng.uniform(300.0, 1300.0))
    frame_t = np.arange(spec.frames) / spec.fps
    env_frames = smooth_envelope(spec, np.random.default_rng(seed + 1), frame_t)
    audio_t = np.arange(spec.samples) / spec.sample_rate
    env_audio = smooth_envelope(spec, np.random.default_rng(seed + 1), audio_t)
    r_min, r_max = 0.08 * s, 0.38 * s
    video = np.stack([render_pulse(center, r_min + (r_max - r_min) * e, square, spec) for e in env_frames])
    noise = rng.standard_normal(spec.samples).astype(np.float32) * (10 ** (spec.noise_db / 20))
    audio = 0.4 * env_audio * np.sin(2 * np.pi * tone * audio_t).astype(np.float32) + noise
    return Clip(
        to_uint8(video), np.clip(audio, -1, 1).astype(np.float32), 1, [], np.zeros((0, 4), np.float32), env_frames, tone
    )


def make_clips(spec: ClipSpec, n: int, seed: int) -> list[Clip]:
    """``n`` clips with seeds ``seed * 100003 + i`` (splits use different ``seed`` values)."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"make_clips: n={n!r} must be an integer >= 0")
    return [make_clip(spec, seed * 100_003 + i) for i in range(n)]


__all__ = [
    "BACKGROUND",
    "COLOR_NAMES",
    "FAMILIES",
    "PALETTE",
    "PITCHES",
    "Clip",
    "ClipSpec",
    "collision_sound",
    "make_clip",
    "make_clips",
    "render_audio_events",
    "render_balls",
    "render_pulse",
    "simulate_balls",
    "smooth_envelope",
    "speed_amplitude",
]
