import numpy as np
import pytest
import torch

from ditkit_audio.metrics import dtw_path, error_rate, mcd_dtw, mel_cepstrum


def test_error_rate_closed_forms():
    assert error_rate(["abc"], ["abd"]) == 1 / 3  # one substitution in 3 characters, divided in float64
    assert error_rate(["kitten"], ["sitting"]) == 3 / 6  # 2 substitutions + 1 insertion
    assert error_rate(["the cat"], ["the cat"]) == 0.0
    assert error_rate(["the cat sat"], ["the bat sat"], "word") == 1 / 3  # substitution
    assert error_rate(["the cat sat"], ["the cat sat down"], "word") == 1 / 3  # insertion
    assert error_rate(["the cat sat"], ["the sat"], "word") == 1 / 3  # deletion
    assert error_rate(["a b c d"], ["a x c"], "word") == 2 / 4  # substitution + deletion
    assert error_rate(["Hello, World!"], ["hello world"]) == 0.0  # case and punctuation ignored
    assert error_rate(["Hello, World!"], ["hello  world"], "word") == 0.0  # and runs of spaces


def test_error_rate_is_corpus_level_and_handles_empty_references():
    # 1 + 2 edits over 4 + 2 reference characters (the mean of the sentence rates would be 0.625)
    assert error_rate(["abcd", "ab"], ["abed", ""]) == 3 / 6
    assert error_rate(["", "abc"], ["xy", "abc"]) == 2 / 3  # an empty reference adds its insertions, no units
    assert error_rate([""], ["ab"]) == 2.0  # only empty references: the insertion count, not nan / inf
    assert error_rate([], []) == 0.0
    with pytest.raises(ValueError, match="2 references vs 1"):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unit"):
        error_rate(["a"], ["a"], "phone")


def test_dtw_path_is_monotone_and_finds_diagonal():
    cost = np.ones((5, 5)) - np.eye(5)
    pi, pj = dtw_path(cost)
    assert pi.tolist() == list(range(5)) and pj.tolist() == list(range(5))
    pi, pj = dtw_path(np.random.default_rng(0).random((7, 4)))
    assert pi[0] == 0 and pj[0] == 0 and pi[-1] == 6 and pj[-1] == 3
    assert (np.diff(pi) >= 0).all() and (np.diff(pj) >= 0).all()


def test_mcd_zero_for_identical_and_invariant_to_time_stretch():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 64, generator=g).cumsum(0) * 0.1 - 5
    assert mcd_dtw(a, a) < 1e-6
    stretched = a.repeat_interleave(2, 0)  # same content, twice as slow
    other = torch.randn(40, 64, generator=g).cumsum(0) * 0.1 - 5
    assert mcd_dtw(a, stretched) < 1e-6 < mcd_dtw(a, other)


def test_mel_cepstrum_is_scaled_dct():
    x = torch.randn(3, 64, dtype=torch.float64)
    c = mel_cepstrum(x, 63).double() * (2 * 64) ** 0.5  # back to the orthonormal DCT-II
    # c1..c63 of an orthonormal DCT keep all energy except c0 = mean * sqrt(64)
    energy = x.pow(2).sum(-1) - (x.mean(-1) * 8).pow(2)
    torch.testing.assert_close(c.pow(2).sum(-1), energy, atol=1e-4, rtol=1e-4)
    # a cosine ripple of amplitude a at quefrency k gives c_k = a / 2 (real cepstrum of an even log spectrum)
    m = torch.arange(64, dtype=torch.float64)
    ripple = 0.8 * torch.cos(torch.pi * 3 * (m + 0.5) / 64)
    assert abs(float(mel_cepstrum(ripple[None], 5)[0, 2]) - 0.4) < 1e-6


def test_ctc_probe_learns(tiny_corpus):
    import torch.nn.functional as F

    from ditkit_audio.asr import CTCProbe, train_probe
    from ditkit_audio.audio import LogMel
    from ditkit_audio.data import load_corpus, mel_batch
    from ditkit_audio.text import TextTokenizer

    tok = TextTokenizer()
    items, _ = load_corpus(tiny_corpus, LogMel(), tok, cache=False)
    items = items[:4]

    def ctc(model):
        mel, mask = mel_batch([it["mel"] for it in items])
        tgt = [torch.tensor(tok.encode(it["text"])) for it in items]
        with torch.no_grad():
            lp, lens = model.eval()(mel, mask)
        return float(F.ctc_loss(lp.transpose(0, 1), torch.cat(tgt), lens, torch.tensor([len(x) for x in tgt])))

    torch.manual_seed(0)
    fresh = CTCProbe(vocab=tok.vocab_size, dim=48, depth=1, heads=2)
    trained = train_probe(items, tok, steps=60, batch_size=4, lr=3e-3, log_every=0, dim=48, depth=1, heads=2)
    assert ctc(trained) < 0.6 * ctc(fresh)
    assert len(trained.transcribe([it["mel"] for it in items], tok)) == 4


def test_f0_track_finds_sine_pitch():
    import math

    from ditkit_audio.metrics import f0_track

    sr = 16000
    t = torch.arange(sr) / sr
    f0 = f0_track(0.5 * torch.sin(2 * math.pi * 200 * t), sr, 400)
    assert abs(float(f0[2:-2].median()) - 200) < 3
    assert f0_track(torch.zeros(sr), sr, 400).eq(0).all()


def test_speaker_similarity_separates_voices_and_scores_a_copy_as_one():
    from ditkit_audio.metrics import speaker_similarity

    g = torch.Generator().manual_seed(0)
    m = torch.arange(64, dtype=torch.float32)

    def utterance(voice: int) -> torch.Tensor:  # a voice = a spectral envelope; words = random frame-level detail
        envelope = -0.06 * m if voice == 0 else -2.0 + 1.5 * torch.sin(m / 6.0)
        return envelope + 0.3 * torch.randn(80, 64, generator=g) - 4.0

    refs = [utterance(v) for v in (0, 0, 0, 1, 1, 1)]
    labels = ["a", "a", "a", "b", "b", "b"]
    same = speaker_similarity(refs, refs, labels)
    assert same["generated_vs_reference"] == pytest.approx(1.0)
    assert same["same_voice"] > 0.5 > same["other_voice"]
    swapped = speaker_similarity(refs, refs[3:] + refs[:3], labels)  # every generation in the other voice
    assert swapped["generated_vs_reference"] < same["same_voice"]
    assert "reference_pairs" in speaker_similarity(refs, refs)
    with pytest.raises(ValueError, match="voice labels"):
        speaker_similarity(refs, refs, labels[:2])
