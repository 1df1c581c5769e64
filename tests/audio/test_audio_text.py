import shutil

import pytest
import torch

from ditkit_audio.text import (
    FILLER,
    TextTokenizer,
    fill_to_frames,
    fit_symbol_frames,
    generate_sentences,
    split_sentences,
    stretch_to_frames,
)


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


def test_stretch_spreads_symbols_uniformly_and_monotonically():
    index, frac = stretch_to_frames(torch.tensor([3, 5]), torch.tensor([6, 12]), 14)
    assert index[0].tolist() == [0, 0, 1, 1, 2, 2] + [-1] * 8  # 2 frames per symbol, -1 beyond the audio
    assert frac[0, :2].tolist() == pytest.approx([0.25, 0.75])
    row = index[1, :12]
    assert (row[1:] >= row[:-1]).all() and set(row.tolist()) == set(range(5))  # every symbol gets frames
    assert ((frac >= 0) & (frac < 1)).all() and frac[1, 12:].eq(0).all()
    short, _ = stretch_to_frames(torch.tensor([10]), torch.tensor([4]), 4)  # fewer frames than symbols
    assert short.tolist() == [[1, 3, 6, 8]]
    # a second segment (after a voice prompt) starts at its own text and frame offsets
    seg, _ = stretch_to_frames(
        torch.tensor([2]), torch.tensor([4]), 8, text_start=torch.tensor([7]), frame_start=torch.tensor([3])
    )
    assert seg.tolist() == [[-1, -1, -1, 7, 7, 8, 8, -1]]


def test_weighted_stretch_and_fitted_symbol_frames():
    # weights 1 and 3 over 8 frames: symbol 1 takes three quarters; a tail of 4 on the last symbol
    index, _ = stretch_to_frames(torch.tensor([2]), torch.tensor([8]), 8, weights=torch.tensor([[1.0, 3.0]]))
    assert index.tolist() == [[0, 0, 1, 1, 1, 1, 1, 1]]
    index, _ = stretch_to_frames(torch.tensor([2]), torch.tensor([8]), 8, weights=torch.tensor([[2.0, 2.0]]), tail=4.0)
    assert index.tolist() == [[0, 0, 1, 1, 1, 1, 1, 1]]
    index, _ = stretch_to_frames(torch.tensor([3]), torch.tensor([4]), 4, weights=torch.tensor([[1.0, 0.0, 1.0]]))
    assert 1 not in index.tolist()[0]  # weight 0: no frame of its own
    # sentence totals from known per-symbol durations (2 and 6 frames) and a 10-frame tail are recovered
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(2, 4, (int(n),), generator=g) for n in torch.randint(5, 30, (200,), generator=g)]
    totals = [float(2.0 * (s == 2).sum() + 6.0 * (s == 3).sum() + 10.0) for s in seqs]
    w, tail = fit_symbol_frames(seqs, totals, vocab=4, ridge=1e-3)
    assert w[2:].tolist() == pytest.approx([2.0, 6.0], abs=1e-3) and tail == pytest.approx(10.0, abs=1e-2)


def test_pad_and_space_id():
    tok = TextTokenizer()
    ids, lens = tok.pad([[5, 6], [7]])
    assert ids.tolist() == [[5, 6], [7, 0]] and lens.tolist() == [2, 1]
    assert tok.decode([tok.space_id]) == " "


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
    assert tok.encode_many(["The lazy dog", "a cat"]) == [tok.encode("The lazy dog"), tok.encode("a cat")]
    assert tok.decode([tok.space_id]) == " "


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_text_that_looks_like_an_espeak_option_is_spoken_as_text(tmp_path):
    from ditkit_audio.espeak import espeak_wav
    from ditkit_audio.text import phonemize

    secret = tmp_path / "secret.txt"
    secret.write_text("xylophone " * 500)  # what espeak-ng would say if it read the file (~6 minutes)
    out = phonemize(f"-f{secret}")
    assert "zˈaɪləfˌoʊn" not in out and "slˈæʃ" in out  # the path is read aloud ("slash"), the file is not read
    assert "hˈɛlp" in phonemize("--help") and "sage" not in phonemize("--help").lower()
    target = tmp_path / "x.wav"
    phonemize(f"-w {target}")
    assert not target.exists()
    # speaking: the wav goes where the caller says, the text's "-w" / "-f" are words
    said = espeak_wav(f"-w {target} -f{secret}", tmp_path / "said.wav")
    assert said.exists() and not target.exists()
    import soundfile as sf

    assert sf.info(str(said)).duration < 90.0  # the two paths read aloud, not 500 xylophones
    with pytest.raises(ValueError, match=r"voice='-f/etc/hostname'"):
        TextTokenizer("phonemes", voice="-f/etc/hostname")
