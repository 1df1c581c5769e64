"""Phoneme timings from libespeak-ng's synthesis events, as a standard-library-only script.

espeak-ng speaks a text through its C library with phoneme events on (``espeakINITIALIZE_PHONEME_EVENTS`` with IPA
names); each event gives a phoneme and the audio sample where it starts. The library keeps intonation state between
texts within one process, so :func:`ditkit_audio.espeak.espeak_phones` runs this file in a fresh interpreter per
text (``python -I espeak_events.py``), which makes the timings exactly those of the ``espeak-ng`` command line for
the same voice, rate and pitch.

Protocol: one JSON object on stdin ``{"text": str, "voice": str, "rate": int, "pitch": int}``; one JSON object on
stdout ``{"sample_rate": int, "samples": int, "phones": [[ipa, start, end], ...]}`` with sample positions; an empty
``ipa`` is a pause. The text is passed to the library as data, never as an option.
"""

import ctypes
import json
import sys

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_INIT = 0x0001 | 0x0002 | 0x8000  # phoneme events, IPA names, don't exit on error
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_EV_END, _EV_PHONEME = 0, 7  # espeakEVENT_LIST_TERMINATED, espeakEVENT_PHONEME
_UTF8 = 1  # espeakCHARS_UTF8


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def phone_events(text: str, voice: str, rate: int, pitch: int) -> dict:
    """Speak ``text`` with libespeak-ng and return the phoneme starts (see the module docstring)."""
    lib = ctypes.CDLL("libespeak-ng.so.1")
    sample_rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _INIT)
    if sample_rate <= 0:
        raise RuntimeError("espeak_Initialize failed")
    starts: list[tuple[str, int]] = []
    total = [0]

    def on_audio(wav, n, events):  # noqa: ARG001 (the samples themselves are not needed)
        total[0] += max(int(n), 0)
        i = 0
        while events[i].type != _EV_END:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                starts.append((ev.id.string.decode("utf-8", "replace"), int(ev.sample)))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_RATE, int(rate), 0)
    lib.espeak_SetParameter(_PITCH, int(pitch), 0)
    data = text.encode("utf-8")
    if lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _UTF8, None, None) != 0:
        raise RuntimeError("espeak_Synth failed")
    lib.espeak_Synchronize()
    phones = []
    for k, (name, s) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else total[0]
        phones.append([name, s, max(end, s)])
    return {"sample_rate": int(sample_rate), "samples": total[0], "phones": phones}


def main() -> None:
    job = json.loads(sys.stdin.read())
    out = phone_events(str(job["text"]), str(job["voice"]), int(job["rate"]), int(job["pitch"]))
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
