"""espeak-ng phoneme timings: the event script, their alignment to the tokenizer's symbols, and a TTS model whose
text is laid out by them (``stretch_weights="espeak"``)."""

import shutil
import wave

import pytest
import torch

from ditkit_audio.data import TTSDataModule
from ditkit_audio.espeak import espeak_phones, espeak_wav
from ditkit_audio.inference import espeak_durations, synthesize
from ditkit_audio.module import TTSModule
from ditkit_audio.text import TextTokenizer, normalize_text
from ditkit_audio.timing import TIMING_FILE, corpus_timing, phones_seconds, read_speakers, symbol_durations
from ditkit_audio.tokenizer import MelTokenizer
from ditkit_core.lightning import FlowConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import check_module_fits_batch

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_symbol_durations_follow_the_phonemes_exactly():
    phones = [("a", 0.0, 0.1), ("b", 0.1, 0.3), ("", 0.3, 0.5), ("eɪ", 0.5, 0.7)]
    # stress marks and spaces take no time; the pause goes to the comma; a two-character phoneme is split evenly;
    # the last symbol runs to the end of the audio
    dur, matched = symbol_durations("ˈa b,ˌeɪ", phones, 0.9)
    assert matched == 1.0
    assert dur == pytest.approx([0.0, 0.1, 0.0, 0.2, 0.2, 0.0, 0.1, 0.3])
    assert sum(dur) == pytest.approx(0.9)


def test_unmatched_symbols_share_the_gap_and_missing_pauses_get_nothing():
    phones = [("a", 0.0, 0.1), ("", 0.1, 0.2), ("b", 0.3, 0.4)]
    # 'x' and 'y' have no phoneme: they share the gap between a's end (0.1) and b's start (0.3); the unmatched
    # pause is absorbed by the symbol before it, the final '.' has no pause and gets no time
    dur, matched = symbol_durations("axyb.", phones, 0.5)
    assert matched == pytest.approx(0.5)
    assert dur == pytest.approx([0.1, 0.1, 0.1, 0.2, 0.0])
    assert symbol_durations("", phones, 0.5) == ([], 1.0)


@needs_espeak
def test_event_timings_are_exact_and_independent_of_what_ran_before(tmp_path):
    text = "Did the old farmer find 12 horses?"
    a = espeak_phones(text, voice="en-us+m2", rate=150, pitch=40)
    espeak_phones("Something else entirely, said quickly.", voice="en+f3", rate=200, pitch=70)
    assert espeak_phones(text, voice="en-us+m2", rate=150, pitch=40) == a  # a fresh process per text
    starts = [s for _, s, _ in a["phones"]]
    assert a["sample_rate"] == 22050 and starts == sorted(starts) and a["phones"][-1][2] == a["samples"]
    # the command line speaks the same audio: its wav is at least as long (it adds a closing pause)
    espeak_wav(text, tmp_path / "a.wav", voice="en-us+m2", rate=150, pitch=40)
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert a["samples"] <= w.getnframes() < a["samples"] + 0.6 * 22050
    # slower speech lasts longer, phoneme by phoneme
    slow = espeak_phones(text, voice="en-us+m2", rate=100, pitch=40)
    assert slow["samples"] > 1.3 * a["samples"]
    with pytest.raises(ValueError, match="rate=20"):
        espeak_phones(text, rate=20)


@needs_espeak
def test_en_us_timings_align_every_symbol_of_the_phonemiser():
    tok = TextTokenizer("phonemes")
    for text in ["When the doctor arrived, everyone started talking.", "Why does the quiet river sing?"]:
        res = espeak_phones(text, voice="en-us", rate=175, pitch=50)
        total = res["samples"] / res["sample_rate"]
        sym = tok.to_symbols(text)
        dur, matched = symbol_durations(sym, phones_seconds(res), total)
        assert matched == 1.0 and sum(dur) == pytest.approx(total)
        vowels = [d for c, d in zip(sym, dur) if c in "aeiouæɑɛɪʊʌəɚ"]
        assert min(vowels) > 0.02 and max(dur) < 0.5


@needs_espeak
def test_corpus_timing_is_cached_and_redone_when_the_voice_changes(tiny_corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    speakers = read_speakers(root)
    texts = {line.split("|")[0]: line.split("|")[2] for line in (root / "metadata.csv").read_text().splitlines()}
    first = corpus_timing(root, texts)
    assert set(first) == set(texts) and (root / TIMING_FILE).exists()
    uid = sorted(texts)[0]
    voice, rate, pitch = speakers[uid]
    lines = (root / "speakers.csv").read_text().splitlines()
    lines = [f"{uid}|{voice}|{rate + 60}|{pitch}" if ln.startswith(uid + "|") else ln for ln in lines]
    (root / "speakers.csv").write_text("\n".join(lines) + "\n")
    again = corpus_timing(root, texts)
    assert again[uid]["rate"] == rate + 60 and again[uid]["samples"] < first[uid]["samples"]
    other = sorted(texts)[1]
    assert again[other] == first[other]
    (root / "speakers.csv").write_text("bad line\n")
    with pytest.raises(ValueError, match=r"speakers.csv:1: expected id\|voice\|rate\|pitch"):
        corpus_timing(root, texts)


def _module(**kw):
    torch.manual_seed(0)
    return TTSModule(
        MelTokenizer(gl_iters=4, text_kind="phonemes"),
        DiTConfig(in_dim=64, dim=32, depth=2, heads=2, rope_axes=1),
        text_dim=16,
        text_layers=1,
        duration_dim=16,
        duration_layers=1,
        stretch_weights="espeak",
        **kw,
    )


@needs_espeak
def test_espeak_timed_model_trains_lays_text_by_the_timings_and_samples(tiny_corpus):
    dm = TTSDataModule(str(tiny_corpus), val_size=3, batch_size=4, cache=False, text_kind="phonemes", timing=True)
    dm.setup()
    fps = dm.sample_rate / dm.hop
    for it, ids in zip(dm.train.items, dm.train.ids):  # frames per symbol sum to the recording's frames
        assert it["dur"].shape == ids.shape and float(it["dur"].sum()) == pytest.approx(it["mel"].shape[0], rel=1e-4)
    assert 0.1 < dm.timing_tail < 0.6
    batch = next(iter(dm.train_dataloader()))
    assert batch["dur"].shape == batch["ids"].shape
    m = _module(flow=FlowConfig(cond_dropout=0.0))
    m.timing_tail.fill_(dm.timing_tail)
    tokens = m.tokenize(batch)
    # each frame sits on the symbol whose timed span covers it
    i = 0
    n, dur = int(batch["mask"][i].sum()), batch["dur"][i]
    edges = dur.cumsum(0)
    want = torch.searchsorted(edges, torch.arange(n) + 0.5, right=True).clamp(max=int(batch["text_len"][i]) - 1)
    assert torch.equal(tokens.meta["text_index"][i, :n], want)
    check_module_fits_batch(m, batch, steps=30, lr=3e-3, drop=0.2)
    # synthesis: the length is espeak-ng's for the text (plus the corpus's trailing audio), halved at speed 2
    text = "Why does the quiet river sing?"
    d, total = espeak_durations(m, [text.lower()])
    res = synthesize(m.eval(), [text], steps=2, vocode=False)
    assert res["frames"][0] == [round(float(total[0]))] and float(d.sum()) == pytest.approx(float(total[0]), rel=1e-4)
    res2 = synthesize(m, [text], steps=2, vocode=False, speed=2.0)
    assert abs(res2["frames"][0][0] - float(total[0]) / 2) <= 1
    assert torch.isfinite(res["mels"][0]).all()
    # a prompt spoken by a known voice is timed by that voice and the target keeps its own timing; a recording of
    # unknown voice scales the target to the prompt's measured rate
    prompt, ptext = batch["mel"][0][: int(batch["mask"][0].sum())], batch["text"][0]
    kw = dict(steps=1, vocode=False, prompt_mel=prompt, prompt_text=ptext)
    assert synthesize(m, [text], prompt_timing=("en-us", 160, 50), **kw)["frames"] == res["frames"]
    _, p_tot = espeak_durations(m, [normalize_text(ptext)])
    want = float(total[0]) * prompt.shape[0] / float(p_tot[0])
    assert abs(synthesize(m, [text], **kw)["frames"][0][0] - want) <= 1
    slow = synthesize(m, [text], steps=1, vocode=False, timing_voice=("en-us", 100, 50))
    assert slow["frames"][0][0] > 1.4 * res["frames"][0][0]  # another voice's rate, another timing
    with pytest.raises(ValueError, match="needs per-symbol durations"):
        m.tokenize({k: v for k, v in batch.items() if k != "dur"})
    assert total[0] > 0 and fps == 40.0


def test_timing_needs_phonemes():
    with pytest.raises(ValueError, match="timing=True needs text_kind='phonemes'"):
        TTSDataModule("x", timing=True, text_kind="chars")
