"""Procedural audio-video clips: the stored truth is what the frames and the soundtrack show."""

import numpy as np
import pytest

from ditkit_audio.av.synthetic import PALETTE, ClipSpec, make_clip, make_clips, render_audio_events, speed_amplitude


def ball_clip(seed=0, **kw):
    return make_clip(ClipSpec(**kw), seed, family=0)


def test_clips_are_deterministic_and_shaped_by_the_spec():
    spec = ClipSpec(size=24, fps=8, seconds=1.5)
    a, b = make_clip(spec, 5), make_clip(spec, 5)
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.video.shape == (12, 24, 24, 3) and a.video.dtype == np.uint8
    assert a.audio.shape == (24000,) and np.isfinite(a.audio).all() and np.abs(a.audio).max() <= 1
    assert not np.array_equal(make_clip(spec, 6).audio, a.audio)


def test_every_wall_event_puts_the_ball_against_a_wall():
    spec = ClipSpec()
    for seed in range(6):
        clip = ball_clip(seed)
        for t, c, _, kind in clip.events:
            if kind != 0:
                continue
            k = int(np.floor(t * spec.fps))
            if k + 1 >= spec.frames:
                continue
            rgb = np.array(PALETTE[int(c)])
            frac = t * spec.fps - k
            pts = []
            for f in (k, k + 1):  # the ball's centroid in the two frames around the event
                img = clip.video[f].astype(np.float64) / 255
                w = np.clip(1 - np.linalg.norm(img - rgb, axis=-1) / 0.35, 0, 1)
                yy, xx = np.mgrid[0 : spec.size, 0 : spec.size] + 0.5
                pts.append(((w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()))
            pos = (1 - frac) * np.array(pts[0]) + frac * np.array(pts[1])
            gap = min(pos.min() - spec.radius, spec.size - spec.radius - pos.max())
            assert gap < 1.2, f"seed {seed}: event at {t:.3f}s but colour {int(c)} is {gap:.2f}px from a wall"


def test_each_event_starts_a_sound_at_its_time_whose_level_follows_speed():
    spec = ClipSpec()
    clip = ball_clip(3)
    sr = spec.sample_rate
    assert len(clip.events) > 0
    floor = render_audio_events(clip.events[:0], spec, np.random.default_rng(0))
    for ev in clip.events:
        one = render_audio_events(ev[None], spec, np.random.default_rng(0)) - floor  # same noise floor
        start = int(np.flatnonzero(np.abs(one) > 1e-4)[0])
        assert abs(start - round(float(ev[0]) * sr)) <= 2
        assert 0.7 < np.abs(one).max() / speed_amplitude(float(ev[2]), spec) < 1.3
    assert speed_amplitude(spec.speed[1], spec) > 3 * speed_amplitude(spec.speed[0], spec)


def test_balls_have_distinct_colours_and_pulse_clips_follow_their_envelope():
    spec = ClipSpec(pulse_fraction=0.5)
    clips = make_clips(spec, 12, seed=1)
    assert {c.family for c in clips} == {0, 1}
    for c in clips:
        if c.family == 0:
            assert len(set(c.colors)) == len(c.colors) >= 1
            assert np.all(np.diff(c.events[:, 0]) >= 0)
        else:
            area = (c.video.astype(np.float64).mean(-1) > 128).sum((1, 2))
            assert np.corrcoef(np.sqrt(area), c.envelope)[0, 1] > 0.95
            assert 0.1 <= c.envelope.min() and c.envelope.max() <= 1.0


@pytest.mark.parametrize(
    "kw,field",
    [({"size": 4}, "size"), ({"fps": 0}, "fps"), ({"speed": (5, 1)}, "speed"), ({"max_balls": 5}, "max_balls")],
)
def test_spec_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=f"ClipSpec.{field}="):
        ClipSpec(**kw)
