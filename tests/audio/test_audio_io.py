import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ditkit_audio.audio import AudioError, LogMel, crossfade_concat, normalize_loudness, read_wav, write_wav
from ditkit_audio.data import load_corpus, scan_corpus
from ditkit_audio.text import TextTokenizer


def _sine(freq=440.0, sr=22050, secs=1.0, amp=0.5):
    t = np.arange(int(sr * secs)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_read_resamples_and_keeps_pitch(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, _sine(440.0), 22050)
    w = read_wav(p, sample_rate=16000)
    assert abs(w.shape[0] - 16000) <= 1
    spec = torch.fft.rfft(w).abs()
    assert abs(int(spec.argmax()) * 16000 / w.shape[0] - 440.0) < 2.0
    with pytest.raises(AudioError, match="22050 Hz, expected 16000") as e:
        read_wav(p, sample_rate=16000, resample=False)
    assert e.value.reason == "rate"


def test_bad_files_raise_named_errors(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(tmp_path / "stereo.wav", np.stack([_sine(), _sine(330.0)], 1), 22050)
    for name, reason in (("corrupt", "corrupt"), ("empty", "empty"), ("stereo", "stereo"), ("nope", "missing")):
        with pytest.raises(AudioError) as e:
            read_wav(tmp_path / f"{name}.wav")
        assert e.value.reason == reason and name in str(e.value)
    mixed = read_wav(tmp_path / "stereo.wav", stereo="mix")
    assert mixed.dim() == 1


def test_loudness_and_crossfade():
    w = torch.from_numpy(_sine(amp=0.05))
    out = normalize_loudness(w, -20.0)
    assert abs(20 * math.log10(float(out.pow(2).mean().sqrt())) + 20.0) < 0.2
    a, b = torch.ones(1000), torch.ones(800)
    j = crossfade_concat([a, b], 16000, fade_s=0.01)  # 160-sample fade
    assert j.shape[0] == 1800 - 160
    assert float(j.min()) > 0.99  # equal-power fade of identical constants stays >= 1 / ... and never dips to 0


def test_griffin_lim_round_trip_of_features():
    lm = LogMel(16000, 1024, 400, 64, gl_iters=32)
    t = torch.arange(16000) / 16000
    w = 0.3 * torch.sin(2 * math.pi * (200 + 300 * t) * t)  # chirp
    m = lm(w)
    assert m.shape == (lm.frames(16000), 64)

    def convergence(n_iter):  # spectral convergence ||M - M'|| / ||M|| of the re-analysed Griffin-Lim output
        back = lm(lm.invert(m, n_iter=n_iter))[: m.shape[0]]
        return float((m.exp() - back.exp()).norm() / m.exp().norm())

    torch.manual_seed(0)
    one, many = convergence(1), convergence(32)
    assert many < 0.2 and many < 0.75 * one  # phase iterations recover a consistent spectrogram


def _write_lj(root, rows, wavs):
    (root / "wavs").mkdir(parents=True)
    for name, data, sr in wavs:
        if isinstance(data, bytes):
            (root / "wavs" / f"{name}.wav").write_bytes(data)
        else:
            sf.write(root / "wavs" / f"{name}.wav", data, sr)
    (root / "metadata.csv").write_text("".join(r + "\n" for r in rows))


def test_ljspeech_loader_counts_every_skip(tmp_path):
    good = _sine(secs=1.0)
    _write_lj(
        tmp_path,
        [
            "ok1|Hello there.|hello there.",
            "ok2|A small cat.",
            "bad|Corrupt file.",
            "emp|Empty file.",
            "st|Stereo file.",
            "ghost|No wav here.",
            "oov|Price: $5.",
            "long|Too long.",
            "justid",
        ],
        [
            ("ok1", good, 22050),
            ("ok2", good, 16000),
            ("bad", b"not a wav", 0),
            ("emp", np.zeros(0, np.float32), 16000),
            ("st", np.stack([good, good], 1), 22050),
            ("oov", good, 16000),
            ("long", _sine(secs=3.0), 16000),
            ("orphan", good, 16000),
        ],
    )
    lm, tok = LogMel(16000, 1024, 400, 64), TextTokenizer()
    items, rep = load_corpus(tmp_path, lm, tok, max_seconds=2.0)
    assert sorted(it["text"] for it in items) == ["A small cat.", "hello there."]
    assert rep.kept == 2 and rep.resampled == 1
    assert rep.counts() == {
        "corrupt": 1,
        "empty": 1,
        "stereo": 1,
        "missing_wav": 1,
        "oov": 1,
        "too_long": 1,
        "bad_row": 1,
        "missing_text": 1,
    }
    assert any("metadata.csv line 9" in m for m in rep.messages) and any("orphan.wav" in m for m in rep.messages)
    assert items[0]["mel"].shape[1] == 64
    items2, rep2 = load_corpus(tmp_path, lm, tok, max_seconds=2.0)  # cached
    assert len(items2) == 2 and rep2.counts() == rep.counts() and rep2.messages == rep.messages
    assert list((tmp_path / ".ditkit_cache").glob("*.pt"))


def test_nested_layouts(tmp_path):
    libri = tmp_path / "libri" / "19" / "198"
    libri.mkdir(parents=True)
    sf.write(libri / "19_198_1.wav", _sine(), 24000)
    (libri / "19_198_1.normalized.txt").write_text("A red boat.")
    sf.write(libri / "19_198_2.wav", _sine(), 24000)  # no transcript
    vctk = tmp_path / "vctk"
    (vctk / "wav48" / "p225").mkdir(parents=True)
    (vctk / "txt" / "p225").mkdir(parents=True)
    sf.write(vctk / "wav48" / "p225" / "p225_001.wav", _sine(), 48000)
    (vctk / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.")
    from ditkit_audio.data import CorpusReport

    rep = CorpusReport("libri")
    items = scan_corpus(tmp_path / "libri", report=rep)
    assert [(u.text, u.speaker) for u in items] == [("A red boat.", "19")] and rep.counts() == {"missing_text": 1}
    items = scan_corpus(vctk)
    assert [(u.text, u.speaker) for u in items] == [("Please call Stella.", "p225")]
    feats, rep = load_corpus(vctk, LogMel(16000, 1024, 400, 64), TextTokenizer(), cache=False)
    assert rep.kept == 1 and rep.resampled == 1


def test_write_wav_round_trip(tmp_path):
    w = torch.from_numpy(_sine(sr=16000))
    back = read_wav(write_wav(tmp_path / "x.wav", w, 16000), sample_rate=16000)
    assert (back - w).abs().max() < 1e-4


def _float_wav(path, samples, sr=16000, subtype="FLOAT"):
    sf.write(path, np.asarray(samples), sr, subtype=subtype)
    return path


def _wav_header(sr, data=b"\0\1" * 4000, channels=1, bits=16):
    """A PCM wav whose header says ``sr`` Hz (soundfile refuses to write odd rates itself)."""
    import struct

    ba = channels * bits // 8
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, sr, (sr * ba) & 0xFFFFFFFF, ba, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def test_huge_nan_and_inf_samples_are_skipped_by_name(tmp_path):
    good = _sine(secs=1.0)
    bad = {
        "huge": good * 1e30,  # finite in float32, but loudness normalisation would make it a silent mel
        "nan": np.where(np.arange(good.size) == 100, np.nan, good),
        "inf": np.where(np.arange(good.size) == 7, np.inf, good),
    }
    (tmp_path / "wavs").mkdir()
    for name, x in bad.items():
        _float_wav(tmp_path / "wavs" / f"{name}.wav", x.astype(np.float32))
    _float_wav(tmp_path / "wavs" / "f64.wav", good.astype(np.float64) * 1e300, subtype="DOUBLE")
    sf.write(tmp_path / "wavs" / "ok.wav", good, 16000)
    (tmp_path / "metadata.csv").write_text("".join(f"{n}|A red cat.\n" for n in ("huge", "nan", "inf", "f64", "ok")))
    items, rep = load_corpus(tmp_path, LogMel(16000, 1024, 400, 64), TextTokenizer(), cache=False)
    assert [Path(it["path"]).name for it in items] == ["ok.wav"]
    assert rep.counts() == {"nonfinite": 3, "range": 1}
    assert any("huge.wav: peak=5e+29: range" in m for m in rep.messages)
    for name in ("nan", "inf", "f64"):
        assert any(f"{name}.wav: samples=" in m and "nonfinite" in m for m in rep.messages)
    with pytest.raises(AudioError, match=r"huge\.wav: peak=5e\+29: range") as e:
        read_wav(tmp_path / "wavs" / "huge.wav")
    assert e.value.reason == "range"


def test_ljspeech_ids_that_leave_the_corpus_are_refused(tmp_path):
    root = tmp_path / "corpus"
    (root / "wavs").mkdir(parents=True)
    sf.write(tmp_path / "x.wav", _sine(), 16000)  # a readable wav outside the corpus folder
    sf.write(root / "wavs" / "ok.wav", _sine(), 16000)
    (root / "metadata.csv").write_text(f"ok|A cat.\n../../x|A dog.\n{tmp_path / 'x'}|A bird.\nok|Again.\n")
    items, rep = load_corpus(root, LogMel(16000, 1024, 400, 64), TextTokenizer(), cache=False)
    assert [it["text"] for it in items] == ["A cat."]
    assert rep.counts() == {"bad_id": 2, "duplicate_id": 1}
    assert rep.messages[0] == f"{root / 'metadata.csv'} line 2: id='../../x': bad_id"
    assert rep.messages[1].startswith(f"{root / 'metadata.csv'} line 3: id=")


def test_text_files_that_are_not_utf8_are_named_with_the_line(tmp_path):
    from ditkit_core.errors import DataError

    (tmp_path / "lj" / "wavs").mkdir(parents=True)
    (tmp_path / "lj" / "metadata.csv").write_bytes(b"a|A cat.\nb|Caf\xe9 noir.\n")
    with pytest.raises(DataError, match=r"metadata\.csv line 2: not UTF-8"):
        scan_corpus(tmp_path / "lj")
    vctk = tmp_path / "vctk"
    for spk in ("p1", "p2"):
        (vctk / "wav48" / spk).mkdir(parents=True)
        (vctk / "txt" / spk).mkdir(parents=True)
        sf.write(vctk / "wav48" / spk / f"{spk}_001.wav", _sine(), 48000)
    (vctk / "txt" / "p1" / "p1_001.txt").write_text("Please call Stella.")
    (vctk / "txt" / "p2" / "p2_001.txt").write_bytes(b"Ask her\nto bring \xff these things.")
    items, rep = load_corpus(vctk, LogMel(16000, 1024, 400, 64), TextTokenizer(), cache=False)
    assert [it["text"] for it in items] == ["Please call Stella."] and rep.counts() == {"bad_text": 1}
    assert rep.messages[0].startswith(f"{vctk / 'txt' / 'p2' / 'p2_001.txt'} line 2: text='not UTF-8")


def test_damaged_wavs_and_hostile_headers_are_named(tmp_path, monkeypatch):
    import ditkit_audio.audio as audio

    sf.write(tmp_path / "full.wav", _sine(), 16000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:30])  # killed mid-write: header incomplete
    (tmp_path / "odd.wav").write_bytes(_wav_header(16001))  # 16001 -> 16000 Hz needs a 256 M-tap sinc kernel
    (tmp_path / "absurd.wav").write_bytes(_wav_header(2**31 - 1))
    for name, reason, text in (
        ("cut", "corrupt", "cannot decode"),
        ("odd", "rate", "kernel of 256240000 taps"),
        ("absurd", "rate", "sample_rate=2147483647"),
    ):
        with pytest.raises(AudioError, match=text) as e:
            read_wav(tmp_path / f"{name}.wav", sample_rate=16000)
        assert e.value.reason == reason and str(e.value).startswith(str(tmp_path / f"{name}.wav"))
    assert read_wav(tmp_path / "odd.wav").shape == (4000,)  # no resampling asked: the file is fine
    monkeypatch.setattr(audio, "MAX_SAMPLES", 1000)  # a header claiming more samples is refused before reading
    with pytest.raises(AudioError, match=r"full\.wav: samples=22050: too_large"):
        read_wav(tmp_path / "full.wav")


def _corpus_with_cache(root):
    _write_lj(
        root, ["a|A red cat.", "b|A small dog."], [("a", _sine(secs=0.8), 16000), ("b", _sine(330, 16000), 16000)]
    )
    return load_corpus(root, LogMel(16000, 1024, 400, 64), TextTokenizer())


def test_truncated_feature_cache_is_named_and_rebuilt(tmp_path, caplog):
    items, rep = _corpus_with_cache(tmp_path)
    (cache,) = (tmp_path / ".ditkit_cache").glob("feats_*.pt")
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temporary file left behind
    blob = cache.read_bytes()
    lm, tok = LogMel(16000, 1024, 400, 64), TextTokenizer()
    for damaged in (blob[: len(blob) // 2], b"", os.urandom(512)):
        cache.write_bytes(damaged)
        with caplog.at_level(logging.WARNING, logger="ditkit"):
            caplog.clear()
            again, rep2 = load_corpus(tmp_path, lm, tok)
        assert str(cache) in caplog.text and "rebuilding" in caplog.text
        assert [it["text"] for it in again] == [it["text"] for it in items] and rep2.counts() == rep.counts()
        assert all(torch.equal(a["mel"], b["mel"]) for a, b in zip(again, items))
        assert cache.read_bytes() != damaged and torch.load(cache, weights_only=True)["payload"]["report"]["kept"] == 2


def test_a_cache_holding_code_is_refused_without_running_it(tmp_path, caplog):
    _corpus_with_cache(tmp_path)
    (cache,) = (tmp_path / ".ditkit_cache").glob("feats_*.pt")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    torch.save({"items": [Payload()], "report": {}}, cache)
    with caplog.at_level(logging.WARNING, logger="ditkit"):
        items, _ = load_corpus(tmp_path, LogMel(16000, 1024, 400, 64), TextTokenizer())
    assert not marker.exists() and len(items) == 2 and str(cache) in caplog.text
