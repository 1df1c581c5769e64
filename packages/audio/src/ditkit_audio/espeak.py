"""The espeak-ng command line, called safely: user text always goes through stdin (``--stdin``), never as an
argument, so a text such as ``-f/etc/hostname`` or ``-w out.wav`` is spoken as text instead of being read as an
option; voices are checked against a plain-name pattern."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

_VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.\-]{0,63}")


def espeak_exe(who: str) -> str:
    """Path of the ``espeak-ng`` executable.

    Raises:
        RuntimeError: not on PATH (names the caller ``who``).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(f"{who}: espeak-ng is not on PATH (apt-get install espeak-ng)")
    return exe


def check_voice(voice: str) -> str:
    """``voice`` if it is a plain espeak-ng voice name (``en-us``, ``en+f3``); a ``ValueError`` naming it otherwise."""
    if not isinstance(voice, str) or not _VOICE.fullmatch(voice):
        raise ValueError(f"espeak-ng: voice={voice!r}: expected a voice name such as 'en-us' or 'en+f3'")
    return voice


def check_rate_pitch(rate: int, pitch: int, who: str) -> None:
    """A ``ValueError`` naming ``who`` and the value unless ``rate`` is 80..450 words per minute and ``pitch`` 0..99."""
    if not (isinstance(rate, int) and 80 <= rate <= 450):
        raise ValueError(f"{who}: rate={rate!r}: expected words per minute in [80, 450]")
    if not (isinstance(pitch, int) and 0 <= pitch <= 99):
        raise ValueError(f"{who}: pitch={pitch!r}: expected an integer in [0, 99]")


def run_espeak(options: list[str], text: str, who: str) -> str:
    """Run ``espeak-ng <options> --stdin`` with ``text`` on stdin (UTF-8); returns stdout.

    Args:
        options: fixed options built by this package (never user text).
        text: the text to speak or phonemise.
        who: the caller, named in errors.

    Raises:
        RuntimeError: espeak-ng is missing or exits with an error.
    """
    if not isinstance(text, str):
        raise TypeError(f"{who}: text must be a str, got {type(text).__name__}")
    res = subprocess.run(
        [espeak_exe(who), *options, "--stdin"],
        input=text,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{who}: espeak-ng failed on {text[:200]!r}: {res.stderr.strip()[:500]}")
    return res.stdout


def espeak_ipa(text: str, voice: str = "en-us") -> list[str]:
    """IPA lines that ``espeak-ng -q --ipa`` prints for ``text`` (one per clause group, blank lines dropped)."""
    out = run_espeak(["-q", "--ipa", "-v", check_voice(voice)], text, "phonemize")
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def espeak_wav(text: str, out: str | Path, *, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> Path:
    """Speak ``text`` into the wav file ``out`` (espeak-ng's own rate, 22.05 kHz).

    Args:
        text: what to say (passed on stdin).
        out: the wav to write (a path chosen by the caller).
        voice: espeak-ng voice name.
        rate: words per minute, 80..450.
        pitch: 0..99.

    Raises:
        ValueError: a bad voice, rate or pitch (named with its value).
        RuntimeError: espeak-ng is missing or fails.
    """
    check_rate_pitch(rate, pitch, "espeak-ng")
    out = Path(out)
    run_espeak(["-v", check_voice(voice), "-s", str(rate), "-p", str(pitch), "-w", str(out)], text, "espeak_wav")
    return out


def espeak_phones(text: str, *, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> dict:
    """Phoneme timings of ``text`` as espeak-ng speaks it with this voice, rate and pitch.

    Runs :mod:`ditkit_audio.espeak_events` in a fresh interpreter (the library keeps state between texts, a fresh
    process gives the command line's exact timings); the text goes through stdin as JSON.

    Returns:
        ``{"sample_rate": int, "samples": int, "phones": [[ipa, start, end], ...]}`` (sample positions at
        ``sample_rate``; an empty ``ipa`` is a pause).

    Raises:
        ValueError: a bad voice, rate or pitch (named with its value).
        RuntimeError: the library is missing or fails (names the text).
    """
    import json
    import sys

    if not isinstance(text, str):
        raise TypeError(f"espeak_phones: text must be a str, got {type(text).__name__}")
    check_rate_pitch(rate, pitch, "espeak_phones")
    script = Path(__file__).with_name("espeak_events.py")
    job = json.dumps({"text": text, "voice": check_voice(voice), "rate": rate, "pitch": pitch})
    res = subprocess.run(
        [sys.executable, "-I", str(script)], input=job, capture_output=True, encoding="utf-8", check=False
    )
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"espeak_phones: libespeak-ng failed on {text[:200]!r} (voice {voice}): {err[0][:300]}")
    return json.loads(res.stdout)
