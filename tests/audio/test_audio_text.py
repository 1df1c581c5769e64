import shutil

import pytest
import torch

from ditkit_audio.text import FILLER, TextTokenizer, fill_to_frames, generate_sentences, split_sentences


def test_char_round_trip_and_batch():
    tok = TextTokenizer()
    text = "the quick brown fox, jumps!"
    assert tok.decode(tok.encode(text)) == text
    ids, lens = tok.batch(["ab", "abcd"])
    assert ids.shape == (2, 4) and lens.tolist() == [2, 4] and ids[0, 2:].eq(0).all()


def test_unknown_symbol_is_named():
    tok = TextTokenizer()
    with pytest.raises(ValueError, match=r"'\$'.*position 5"):
        tok.encode("cost $5")
    assert tok.unknown("cost $5 #") == ["#", "$", "5"]
    assert TextTokenizer(on_unknown="skip").decode(TextTokenizer(on_unknown="skip").encode("a$b")) == "ab"


def test_fill_to_frames_pads_with_filler():
    ids = torch.tensor([[5, 6, 0], [5, 6, 7]])
    out = fill_to_frames(ids, torch.tensor([2, 3]), 6)
    assert out.tolist() == [[5, 6, FILLER, FILLER, FILLER, FILLER], [5, 6, 7, FILLER, FILLER, FILLER]]
    assert fill_to_frames(ids, torch.tensor([2, 3]), 2).tolist() == [[5, 6], [5, 6]]


def test_sentence_generator_is_deterministic_and_in_vocab():
    a, b = generate_sentences(50, seed=1), generate_sentences(50, seed=1)
    assert a == b and len(set(a)) == 50
    tok = TextTokenizer()
    assert all(not tok.unknown(s) for s in a)


def test_split_sentences_respects_limit_and_keeps_words():
    text = "One two three. Four five six, seven eight nine ten eleven twelve! Done"
    parts = split_sentences(text, 20)
    assert all(0 < len(p) <= 20 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_sentences("Hello there. How are you?") == ["Hello there.", "How are you?"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_phoneme_tokenizer_uses_espeak_ipa():
    tok = TextTokenizer("phonemes")
    sym = tok.to_symbols("The lazy dog")
    assert "ˈ" in sym and "d" in sym
    assert tok.decode(tok.encode("The lazy dog")) == sym
