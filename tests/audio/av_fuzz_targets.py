"""Entry point the audio-video fuzz tests run in child processes (``ditkit_core.testing.fuzz.run_cases``).

:func:`load` calls one public audio-video load path on a (hostile) file or folder and returns its numeric output, so
the harness can check that it is finite; ``want`` states what the case must do beyond the general loader contract.
"""

from __future__ import annotations

from typing import Any


def load(kind: str, path: str, want: str = "any", **kw: Any) -> Any:
    if kind == "read_media":
        from ditkit_audio.av.media import read_media

        video, audio = read_media(path, fps=8, size=16, sample_rate=16000, **kw)
        out = {"video": video.astype("float32"), "audio": audio}
    elif kind == "folder":
        from ditkit_audio.av.media import load_folder

        clips, report = load_folder(path, fps=8, size=16, sample_rate=16000, seconds=2.0)
        out = {"video": clips.video.astype("float32"), "audio": clips.audio, "counts": report.counts()}
        if want.startswith("kept="):
            assert report.kept == int(want[5:]), f"kept {report.kept}, wanted {want}: {report.summary()}"
        return out
    elif kind == "clipset":
        from ditkit_audio.av.store import load_clipset

        cs = load_clipset(path)
        out = {"video": cs.video.astype("float32"), "audio": cs.audio, "events": cs.events, "envelope": cs.envelope}
    else:
        raise AssertionError(f"unknown kind {kind!r}")
    if want == "error":
        raise AssertionError(f"{path}: accepted a file that must be refused")
    return out
