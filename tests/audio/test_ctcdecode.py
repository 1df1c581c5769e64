"""The probe's lexicon beam search: exact on clean emissions, the word prior where the sound is ambiguous, and
its configuration stored with the probe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ditkit_audio.asr import CTCProbe, load_probe, save_probe, score_probe
from ditkit_audio.ctcdecode import BeamConfig, LexiconBeamDecoder
from ditkit_audio.text import TextTokenizer

pytest.importorskip("flashlight.lib.text.decoder")
TEXT = TextTokenizer("chars")
ROOT = Path(__file__).resolve().parents[2]
SMALL = BeamConfig(n_words=3000, beam=50)


def emissions(frames: list[dict[str, float]]) -> torch.Tensor:
    """CTC log-probs ``[t, vocab]``: each frame's listed symbols get their probability ("" is the blank, "," a
    punctuation mark), the rest of the mass is spread over every other id."""
    v = TEXT.vocab_size
    out = torch.full((len(frames), v), 0.0)
    for t, probs in enumerate(frames):
        rest = (1.0 - sum(probs.values())) / (v - len(probs))
        out[t] = rest
        for s, p in probs.items():
            out[t, 0 if s == "" else TEXT.symbols.index(s) + 2] = p
    return out.log()


def spell(text: str, p: float = 0.999) -> list[dict[str, float]]:
    """One frame per character with a blank frame after each (so doubled letters survive)."""
    return [f for c in text for f in ({c: p}, {"": p})]


@pytest.fixture(scope="module")
def decoder():
    return LexiconBeamDecoder(TEXT.symbols, SMALL)


def test_clean_emissions_decode_exactly_and_punctuation_folds_into_the_blank(decoder):
    assert decoder.decode(emissions(spell("the little cat sat"))) == "the little cat sat"
    frames = spell("hello") + [{",": 0.9}] + spell(" world")
    assert decoder.decode(emissions(frames)) == "hello world"
    assert decoder.decode(emissions([{"": 0.95}] * 6)) == ""


def test_the_word_prior_resolves_what_greedy_decoding_misspells(decoder):
    frames = spell("the c") + [{"q": 0.5, "a": 0.4}, {"": 0.9}] + spell("t")  # "cqt" by the argmax
    lp = emissions(frames)
    ids = torch.unique_consecutive(lp.argmax(-1))
    assert TEXT.decode(ids[ids >= 2]) == "the cqt"
    assert decoder.decode(lp) == "the cat"  # "cqt" is no English word; "cat" is one edit of the sound away


def test_without_the_prior_the_more_likely_sound_wins_and_with_it_the_frequent_word():
    # Two real words one sound apart: "these" (frequent) and "theme" (rarer), "m" a little more likely.
    frames = spell("the") + [{"s": 0.4, "m": 0.5}, {"": 0.9}] + spell("e")
    lp = emissions(frames)
    flat = LexiconBeamDecoder(TEXT.symbols, BeamConfig(n_words=3000, beam=50, lm_weight=0.0, word_score=0.0))
    prior = LexiconBeamDecoder(TEXT.symbols, BeamConfig(n_words=3000, beam=50, lm_weight=2.0, word_score=0.0))
    assert flat.decode(lp) == "theme" and prior.decode(lp) == "these"


def test_beam_config_rejects_bad_settings():
    for bad in (dict(n_words=0), dict(beam=0), dict(lm_weight=-1.0), dict(word_score=float("nan"))):
        with pytest.raises(ValueError, match="BeamConfig"):
            BeamConfig(**bad)


def test_a_probe_keeps_its_decoder_through_save_and_load_and_scores_both_ways(tmp_path):
    probe = CTCProbe(vocab=TEXT.vocab_size, dim=32, depth=1, heads=2, decoder=SMALL.to_dict())
    save_probe(probe, tmp_path / "p")
    assert json.loads((tmp_path / "p" / "config.json").read_text())["decoder"] == SMALL.to_dict()
    back = load_probe(tmp_path / "p")
    assert back.decoder == SMALL.to_dict()
    items = [{"mel": torch.randn(60, 64), "text": "the cat"}, {"mel": torch.randn(40, 64), "text": "a dog"}]
    res = score_probe(back, items, TEXT)
    assert res["decoder"] == SMALL.to_dict() and {"cer", "wer", "cer_greedy", "wer_greedy"} <= set(res)
    hyps = back.transcribe([it["mel"] for it in items], TEXT)
    assert all(set(h) <= set("abcdefghijklmnopqrstuvwxyz' ") for h in hyps)  # lexicon words only
    greedy = CTCProbe(vocab=TEXT.vocab_size, dim=32, depth=1, heads=2)
    assert score_probe(greedy, items, TEXT)["decoder"] == "greedy"
    with pytest.raises(ValueError, match="greedily"):
        greedy.beam_decoder(TEXT)


def test_a_damaged_decoder_setting_is_refused_naming_the_file_and_field(tmp_path):
    from ditkit_core.errors import DataError

    save_probe(CTCProbe(vocab=TEXT.vocab_size, dim=32, depth=1, heads=2, decoder=SMALL.to_dict()), tmp_path / "p")
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    cfg["decoder"]["beam"] = [1, 2]
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match=r"config.json.*decoder.beam"):
        load_probe(tmp_path / "p")
    cfg["decoder"]["beam"] = 0
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="beam"):
        load_probe(tmp_path / "p")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_the_shipped_open_probe_reads_new_everyday_sentences(tmp_path):
    from ditkit_audio.cli import corpus_items, main
    from ditkit_audio.metrics import error_rate

    lines = (ROOT / "apps/tts/sentences/everyday.txt").read_text().splitlines()[:8]
    (tmp_path / "few.txt").write_text("\n".join(lines))
    main(["data-text", "--text-file", str(tmp_path / "few.txt"), "--out", str(tmp_path / "few")])
    probe = load_probe(ROOT / "apps/tts/pretrained/asr_probe_open")
    assert probe.decoder == BeamConfig().to_dict()  # the decoding chosen on the validation split ships with it
    items = corpus_items(tmp_path / "few")
    heard = probe.transcribe([it["mel"] for it in items], TEXT)
    greedy = probe.transcribe([it["mel"] for it in items], TEXT, greedy=True)
    refs = [it["text"] for it in items]
    assert error_rate(refs, heard) < 0.25 and error_rate(refs, heard) < error_rate(refs, greedy)
