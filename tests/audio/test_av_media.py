"""Real audio-video files (PyAV) and clip files: round trips, skipped files counted per reason and named, and the
fuzz contract of every load path on hostile files (child processes)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ditkit_audio.av.media import MediaError, load_folder, read_media, write_mp4
from ditkit_audio.av.store import ClipSet, load_clipset
from ditkit_audio.av.synthetic import ClipSpec, make_clip, make_clips
from ditkit_core.errors import DataError
from ditkit_core.testing.fuzz import assert_clean, hostile_files, run_cases

SPEC = ClipSpec(size=16, fps=8, seconds=2.0, radius=2.0)
ENV = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def clip():
    return make_clip(SPEC, 0, family=0)


def test_mp4_round_trip_keeps_frames_and_sound_in_sync(tmp_path, clip):
    path = write_mp4(tmp_path / "a.mp4", clip.video, SPEC.fps, clip.audio, SPEC.sample_rate, scale=2)
    video, audio = read_media(path, fps=SPEC.fps, size=SPEC.size, sample_rate=SPEC.sample_rate)
    assert video.shape == clip.video.shape
    assert np.abs(video.astype(np.float64) - clip.video).mean() < 8  # lossy H.264 on 16 px frames
    n = SPEC.samples
    assert abs(audio.shape[0] - n) < 0.05 * n
    first = lambda a: int(np.flatnonzero(np.abs(a) > 0.05)[0])  # noqa: E731 - the first collision's onset
    assert abs(first(audio) - first(clip.audio)) <= 16  # AAC priming removed: sound and frames stay aligned (1 ms)
    # another frame rate and size: frames are resampled in time and resized
    v2, a2 = read_media(path, fps=4, size=8, sample_rate=8000)
    assert v2.shape == (8, 8, 8, 3) and abs(a2.shape[0] - 16000) < 1000


def test_folder_skips_bad_files_by_reason_and_name(tmp_path, clip):
    d = tmp_path / "clips"
    write_mp4(d / "good.mp4", clip.video, SPEC.fps, clip.audio, SPEC.sample_rate)
    write_mp4(d / "pair.mp4", clip.video, SPEC.fps)  # silent video + a wav beside it: used
    sf.write(d / "pair.wav", clip.audio, SPEC.sample_rate)
    write_mp4(d / "silent.mp4", clip.video, SPEC.fps)  # no audio track, no wav
    write_mp4(d / "mismatch.mp4", clip.video, SPEC.fps)
    sf.write(d / "mismatch.wav", clip.audio[: SPEC.samples // 2], SPEC.sample_rate)
    write_mp4(d / "short.mp4", clip.video[:8], SPEC.fps, clip.audio[:16000], SPEC.sample_rate)
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    sf.write(d / "orphan.wav", clip.audio, SPEC.sample_rate)
    (d / "notes.txt").write_text("not media")
    clips, rep = load_folder(d, fps=SPEC.fps, size=SPEC.size, sample_rate=SPEC.sample_rate, seconds=2.0)
    assert rep.kept == 2 and len(clips) == 2 and sorted(clips.names) == ["good.mp4@0.00", "pair.mp4@0.00"]
    assert rep.counts() == {"no_audio": 1, "duration_mismatch": 1, "too_short": 1, "corrupt": 1, "wav_without_video": 1}
    text = rep.summary()
    for name in ("silent.mp4", "mismatch.mp4", "short.mp4", "corrupt.mp4", "orphan.wav"):
        assert name in text
    assert (clips.family == 2).all() and clips.video.shape[1:] == (16, 16, 16, 3)
    with pytest.raises(MediaError, match="silent.mp4: no_audio"):
        read_media(d / "silent.mp4", fps=8, size=16, sample_rate=16000)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.mp4").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable record"):
        load_folder(empty)


def test_clip_file_round_trip_and_named_field_errors(tmp_path):
    clips = make_clips(ClipSpec(size=16, fps=8, seconds=1.0, pulse_fraction=0.5), 4, seed=0)
    cs = ClipSet.from_clips(clips, ClipSpec(size=16, fps=8, seconds=1.0))
    path = cs.save(tmp_path / "s.npz")
    back = load_clipset(path)
    np.testing.assert_array_equal(back.video, cs.video)
    np.testing.assert_allclose(back.audio, cs.audio, atol=1 / 32767)
    np.testing.assert_array_equal(back.events, cs.events)
    sub = back.subset([2, 0])
    np.testing.assert_array_equal(sub.clip_events(0), back.clip_events(2))
    z = dict(np.load(path))
    for field, value in (
        ("family", z["family"] + 7),
        ("events", z["events"] * np.nan),
        ("geometry", z["geometry"] * [1, 1, 2]),
    ):
        np.savez(tmp_path / "bad.npz", **{**z, field: value})
        with pytest.raises(DataError, match=f"bad.npz: {field}"):
            load_clipset(tmp_path / "bad.npz")


def test_fuzz_every_av_load_path(tmp_path, clip):
    good = write_mp4(tmp_path / "src.mp4", clip.video, SPEC.fps, clip.audio, SPEC.sample_rate)
    cases = [
        {"kind": "read_media", "path": str(p)}
        for p in hostile_files(good.read_bytes(), tmp_path / "mp4", ".mp4").values()
    ]
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(good, folder / "a_good.mp4")
    for name, p in hostile_files(good.read_bytes(), tmp_path / "h", ".mp4", seed=1).items():
        if name != "doubled":  # a doubled file may decode as a valid clip: not a skip
            shutil.copy(p, folder / f"h_{name}.mp4")
    cases.append({"kind": "folder", "path": str(folder), "want": "kept=1"})
    npz = ClipSet.from_clips(
        make_clips(ClipSpec(size=16, fps=8, seconds=1.0), 3, 0), ClipSpec(size=16, fps=8, seconds=1.0)
    ).save(tmp_path / "c.npz")
    cases += [
        {"kind": "clipset", "path": str(p)} for p in hostile_files(npz.read_bytes(), tmp_path / "npz", ".npz").values()
    ]
    outcomes = run_cases("av_fuzz_targets:load", cases, env=ENV, timeout=300)
    assert_clean(outcomes, name_key="path")
    refused = [o for o in outcomes if o.case["kind"] != "folder" and o.status == "error"]
    assert len(refused) >= 12  # empty / truncated / random / NUL variants are refused, by name
