"""Audio-video measurements: the detectors recover the known truth of procedural clips; matching, F1 and the Frechet
distance follow their closed forms."""

import numpy as np
import pytest
import torch

from ditkit_audio.av import metrics as M
from ditkit_audio.av.synthetic import ClipSpec, make_clip
from ditkit_audio.av.tokenizer import AVTokenizer

SPEC = ClipSpec()
TOK = AVTokenizer()


def single_ball_clips(n=6):
    out, seed = [], 0
    while len(out) < n:
        c = make_clip(SPEC, seed, family=0)
        seed += 1
        if len(c.colors) == 1 and len(c.events) >= 2:
            out.append(c)
    return out


def test_video_collisions_are_found_at_their_times():
    errors = []
    for c in single_ball_clips():
        det = M.video_events(c.video, SPEC.fps, M.DetectorSettings(velocity_jump=0.4))
        ref = M.merge_events(c.events[:, 0], 1 / SPEC.fps)[0]  # a corner hit is one collision on screen
        inner = ref[(ref > 1.5 / SPEC.fps) & (ref < SPEC.seconds - 2.5 / SPEC.fps)]  # frames on both sides
        matches = M.match_events(det[:, 0], inner, 1 / SPEC.fps)
        assert len(matches) == len(inner)
        errors += [abs(det[i, 0] - inner[j]) for i, j in matches]
        assert set(det[:, 1].astype(int)) <= set(c.colors)
    assert np.median(errors) < 0.01 and max(errors) < 0.05  # sub-frame timing (a frame is 62.5 ms)


def test_audio_onsets_and_their_pitch_colours():
    bands = M.pitch_bands(TOK.logmel.mel.mel_scale.fb, TOK.sample_rate)
    assert bands == sorted(bands) and len(set(bands)) == 4
    for c in single_ball_clips(4):
        mel = TOK.features(torch.from_numpy(c.audio))
        on = M.audio_onsets(mel, TOK.frame_rate, M.DetectorSettings(flux=30.0))
        ref, cols = M.merge_events(c.events[:, 0], 1 / SPEC.fps, [int(x) for x in c.events[:, 1]])
        matches = M.match_events(on[:, 0], ref, 1 / SPEC.fps)
        assert len(matches) == len(ref) == len(on)
        colors = M.onset_colors(mel, on[:, 1], bands)
        assert all(colors[i] in cols[j] for i, j in matches)


def test_rule_foley_puts_the_colour_pitch_at_every_tracked_collision():
    """The classical v2a control: sound rendered from the tracked collisions lands on the true events, mostly with the
    ball's pitch, at the data's loudness."""
    bands = M.pitch_bands(TOK.logmel.mel.mel_scale.fb, TOK.sample_rate)
    s = M.DetectorSettings(velocity_jump=0.4, flux=30.0)
    right = total = 0
    for c in single_ball_clips(4):
        wav = M.rule_foley(c.video, SPEC.fps, SPEC.sample_rate, s)
        assert wav.shape == c.audio.shape and wav.dtype == np.float32
        assert abs(np.abs(wav).max() - np.abs(c.audio).max()) < 0.1  # loudness from the tracked speed
        mel = TOK.features(torch.from_numpy(wav))
        on = M.audio_onsets(mel, TOK.frame_rate, s)
        ref = M.merge_events(c.events[:, 0], 1 / SPEC.fps)[0]
        inner = ref[(ref > 1.5 / SPEC.fps) & (ref < SPEC.seconds - 2.5 / SPEC.fps)]  # the tracker sees both sides
        matches = M.match_events(on[:, 0], inner, 1 / SPEC.fps)
        assert len(matches) == len(inner)
        colors = M.onset_colors(mel, on[:, 1], bands)
        right += sum(int(colors[i] == c.colors[0]) for i, _ in matches)
        total += len(matches)
    assert right / total >= 0.8
    still = np.repeat(make_clip(SPEC, 0, family=0).video[:1], SPEC.frames, 0)  # nothing moves: silence
    assert np.abs(M.rule_foley(still, SPEC.fps, SPEC.sample_rate, s)).max() < 0.01


def test_matching_is_one_to_one_and_f1_follows():
    det, ref = np.array([0.10, 0.12, 0.50, 0.90]), np.array([0.11, 0.52, 1.50])
    m = M.match_events(det, ref, 0.05)
    assert sorted(m) == [(0, 0), (2, 1)] or sorted(m) == [(1, 0), (2, 1)]
    c = M.SyncCounts()
    c.add(det, ref, 0.05)
    s = c.summary()
    p, r = 2 / 4, 2 / 3
    assert s["f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-4)
    t, labels = M.merge_events(np.array([0.0, 0.03, 0.08, 0.5]), 0.05, ["a", "b", "c", "d"])
    np.testing.assert_allclose(t, [0.0, 0.5])  # chained: 0.03 and 0.08 join the first event
    assert labels == [{"a", "b", "c"}, {"d"}]


def test_frechet_distance_closed_forms():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g) @ torch.randn(6, 6, generator=g)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    assert M.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-3)
    assert M.frechet_distance(x, x + shift) == pytest.approx(float(shift.square().sum()), rel=1e-4)
    y = torch.randn(400, 6, generator=g)
    assert M.frechet_distance(x, y) == pytest.approx(M.frechet_distance(y, x), rel=1e-6)
    assert M.histogram_distance([0, 0, 1], [0, 0, 1], np.arange(-0.5, 3)) == 0
    assert M.histogram_distance([0, 0], [2, 2], np.arange(-0.5, 3)) == 1


def test_size_follows_loudness_in_pulse_clips_only():
    pulse = make_clip(SPEC, 1, family=1)
    mel = TOK.features(torch.from_numpy(pulse.audio))
    assert M.size_loudness_correlation(pulse.video, mel, TOK.frame_rate, SPEC.fps) > 0.95
    other = make_clip(SPEC, 2, family=1)
    assert M.size_loudness_correlation(other.video, mel, TOK.frame_rate, SPEC.fps) < 0.8
