"""The open-vocabulary corpus: determinism by seed, sentence forms disjoint between splits, held-out words, the
out-of-vocabulary figure, spoken text from the front-end, the split folders with their statistics; the CTC probe's
fixed-step training, its 40 Hz output layout and its command."""

import json
import re
import shutil

import pytest
import torch

from ditkit_audio.asr import CTCProbe, load_probe, save_probe, train_probe
from ditkit_audio.normalize import ALLOWED, normalize_text
from ditkit_audio.opencorpus import (
    FORMS,
    Vocabulary,
    fill_form,
    generate_open_sentences,
    held_out,
    oov_rate,
    open_splits,
    open_vocabulary,
    spoken_words,
    synthesize_open_corpus,
    word_class,
)
from ditkit_audio.text import TextTokenizer

WORD_SLOTS = {"noun", "adj", "adv", "ing", "past", "word", "name", "surname", "city", "pron", "acro", "title"}


def form_regex(form: str) -> re.Pattern:
    """A written sentence of ``form``: word slots match one word, the others (numbers, money, lists) anything."""
    parts = re.split(r"(\{\w+\})", form)
    out = []
    for p in parts:
        m = re.fullmatch(r"\{(\w+)\}", p)
        if m:
            out.append(r"[A-Za-z.]+" if m.group(1).lower() in WORD_SLOTS else r".+?")
        else:
            out.append(re.escape(p))
    return re.compile("(?i)" + "".join(out))


def test_generator_is_deterministic_in_its_seed():
    a = generate_open_sentences(60, seed=3, split="test")
    assert a == generate_open_sentences(60, seed=3, split="test")
    b = generate_open_sentences(60, seed=4, split="test")
    assert [s.written for s in a] != [s.written for s in b]
    assert len({s.spoken for s in a}) == 60  # distinct sentences


def test_forms_are_disjoint_between_splits_and_each_sentence_comes_from_its_own_split():
    assert not set(FORMS["train"]) & set(FORMS["test"]) and not set(FORMS["train"]) & set(FORMS["val"])
    assert not set(FORMS["val"]) & set(FORMS["test"])
    train_res = [form_regex(f) for f in FORMS["train"]]
    for split in ("val", "test"):
        for s in generate_open_sentences(150, seed=0, split=split):
            assert form_regex(FORMS[split][s.form]).fullmatch(s.written), (s.written, FORMS[split][s.form])
            assert not any(r.fullmatch(s.written) for r in train_res), s.written
    for s in generate_open_sentences(100, seed=0, split="train"):  # the regexes do recognise training sentences
        assert form_regex(FORMS["train"][s.form]).fullmatch(s.written), s.written


def test_every_split_has_short_long_question_and_list_forms():
    for split in FORMS:
        sents = generate_open_sentences(300, seed=1, split=split)
        lengths = [len(spoken_words(s.spoken)) for s in sents]
        assert min(lengths) <= 3 and max(lengths) >= 30, split
        assert any(s.spoken.endswith("?") for s in sents), split
        assert any(re.search(r"\w, \w+(, \w+)* and \w", s.written) for s in sents), split


def test_spoken_text_is_the_front_ends_reading_of_the_written_text():
    sents = generate_open_sentences(400, seed=2, split="train")
    assert any(re.search(r"\d", s.written) for s in sents) and any("$" in s.written for s in sents)
    for s in sents:
        assert s.spoken == normalize_text(s.written)
        assert set(s.spoken) <= ALLOWED and not re.search(r"\d", s.spoken)
        assert normalize_text(s.spoken) == s.spoken  # a fixed point: what espeak-ng reads is what is stored
        assert not TextTokenizer("chars").unknown(s.spoken)
    money = next(s for s in sents if "$" in s.written)
    assert "dollar" in money.spoken
    voc = open_vocabulary()
    rng = __import__("random").Random(0)
    assert fill_form("{Title} {Surname} paid {money}.", rng, voc).split()[0] in ("Dr.", "Mr.", "Mrs.", "Ms.", "Prof.")


def test_vocabulary_is_broad_and_classes_follow_the_endings():
    voc = open_vocabulary()
    assert voc.size > 5000
    assert (word_class("quickly"), word_class("running"), word_class("painted")) == ("adv", "ing", "past")
    assert (word_class("famous"), word_class("movement"), word_class("cat")) == ("adj", "noun", "word")
    assert all(w.isalpha() and w.islower() for w in voc.pools["noun"])


def test_oov_rate_counts_tokens_and_types_of_test_missing_from_train():
    res = oov_rate(["the cat sat.", "A dog!"], ["The cat ran, the bird ran?"])
    # test tokens: the cat ran the bird ran -> ran, bird, ran unseen: 3 of 6; types the cat ran bird: 2 of 4
    assert res == {"token_oov": 0.5, "type_oov": 0.5, "train_vocab": 5, "test_vocab": 4, "test_tokens": 6}
    assert oov_rate(["a b"], ["a b a"])["token_oov"] == 0.0


def test_held_out_words_never_reach_training_and_make_the_test_split_partly_new():
    made_up = [f"zq{a}{b}" for a in "abcdefghij" for b in "klmnopqrst"]  # 100 words no sentence form contains
    pools = {k: tuple(made_up) for k in ("noun", "adj", "adv", "ing", "past", "word")}
    voc = Vocabulary({**pools, "name": ("Zqana", "Zqbob"), "surname": ("Zqkay",), "city": ("Zqville",)})
    kept_out = {w for w in made_up if held_out(w, 0.3)}
    assert 10 < len(kept_out) < 50
    train = generate_open_sentences(300, seed=0, split="train", vocabulary=voc, heldout_share=0.3)
    test = generate_open_sentences(100, seed=0, split="test", vocabulary=voc, heldout_share=0.3)
    train_words = {w for s in train for w in spoken_words(s.spoken)}
    assert not train_words & kept_out and set(made_up) - kept_out <= train_words
    assert {w for s in test for w in spoken_words(s.spoken)} & kept_out
    everything = generate_open_sentences(300, seed=0, split="train", vocabulary=voc, all_words=True)
    assert {w for s in everything for w in spoken_words(s.spoken)} & kept_out  # the probe's corpus says them all
    splits = open_splits({"train": 600, "val": 40, "test": 80}, seed=0)  # the real vocabulary
    test_texts = [s.spoken for s in splits["test"]]
    res = oov_rate([s.spoken for s in splits["train"]], test_texts)
    assert 0.05 < res["token_oov"] < 0.6 and res["type_oov"] > res["token_oov"]  # shares function words with train
    assert not {s.spoken for s in splits["train"]} & set(test_texts)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_open_corpus_writes_split_folders_spoken_metadata_and_statistics(tmp_path):
    stats = synthesize_open_corpus(tmp_path, {"train": 8, "val": 3, "test": 4}, seed=5)
    for split, n in (("train", 8), ("val", 3), ("test", 4)):
        rows = (tmp_path / split / "metadata.csv").read_text().splitlines()
        assert len(rows) == n and len(list((tmp_path / split / "wavs").glob("*.wav"))) == n
        for row in rows:
            uid, written, spoken = row.split("|")
            assert spoken == normalize_text(written)
        forms = [r.split("|") for r in (tmp_path / split / "forms.csv").read_text().splitlines()]
        assert {f[1] for f in forms} == {split}
        assert stats[split]["sentences"] == n and stats[split]["hours"] > 0
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    assert 0 <= stats["test"]["oov_vs_train"]["token_oov"] <= 1


def _toy_items(n: int = 6) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"mel": torch.randn(30 + 4 * i, 64, generator=g) - 5.5, "text": "ab ba"} for i in range(n)]


def test_probe_trains_for_exactly_its_steps_whatever_the_clock(capsys):
    text = TextTokenizer("chars")
    a = train_probe(_toy_items(), text, steps=3, batch_size=2, bucket=2, log_every=1, dim=32, depth=1, heads=2)
    logged = re.findall(r"step (\d+)", capsys.readouterr().out)
    assert logged == ["0", "1", "2"]
    b = train_probe(_toy_items(), text, steps=3, batch_size=2, bucket=2, log_every=0, dim=32, depth=1, heads=2)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k  # same data, seed and steps: the same weights (no wall-clock stop)
    with pytest.raises(TypeError):
        train_probe(_toy_items(), text, steps=3, max_seconds=1.0, dim=32, depth=1, heads=2)
    with pytest.raises(ValueError, match="steps"):
        train_probe(_toy_items(), text, steps=0)


def test_probe_upsampled_outputs_keep_forty_per_second_and_round_trip(tmp_path):
    m = CTCProbe(vocab=37, dim=32, depth=1, heads=2, stride=2, upsample=2).eval()
    mel = torch.randn(2, 41, 64)
    mask = torch.ones(2, 41, dtype=torch.bool)
    mask[1, 30:] = False
    lp, lens = m(mel, mask)
    assert lp.shape == (2, 42, 37) and lens.tolist() == [42, 30]
    save_probe(m, tmp_path / "p")
    back = load_probe(tmp_path / "p")
    assert (back.stride, back.upsample) == (2, 2) and torch.allclose(back(mel, mask)[0], lp)
    with pytest.raises(ValueError, match="stride"):
        CTCProbe(stride=3)


def test_probe_saved_before_the_stride_options_still_loads(tmp_path):
    m = CTCProbe(vocab=37, dim=32, depth=1, heads=2)
    save_probe(m, tmp_path / "p")
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    for k in ("stride", "upsample"):
        cfg.pop(k)
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    back = load_probe(tmp_path / "p")
    assert (back.stride, back.upsample) == (2, 1)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_train_asr_command_runs_its_steps_and_scores_a_test_folder(tiny_corpus, tmp_path, capsys):
    from ditkit_audio.cli import main

    main(
        ["train-asr", "--data", str(tiny_corpus), "--out", str(tmp_path / "probe"), "--steps", "2", "--val-size", "3"]
        + ["--dim", "32", "--depth", "1", "--heads", "2", "--upsample", "2", "--test", str(tiny_corpus)]
        + ["--monitor", str(tiny_corpus), "--monitor-every", "1"]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines() if x.startswith("{")]
    assert [x["step"] for x in lines[:-1]] == [1]  # the monitor scores after step 1 (the final score is the report)
    res = lines[-1]
    assert res["steps"] == 2 and res["test"]["utterances"] == 12 and 0 <= res["test"]["cer"]
    main(["eval-probe", "--asr", str(tmp_path / "probe"), "--data", str(tiny_corpus), "--n", "5"])
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["figure"] == "probe_ground_truth" and ev["utterances"] == 5


def test_probe_callback_sees_the_model_without_changing_the_run():
    text = TextTokenizer("chars")
    seen = []
    kw = dict(steps=4, batch_size=2, bucket=2, log_every=0, dim=32, depth=1, heads=2)
    a = train_probe(
        _toy_items(), text, callback=lambda step, m: seen.append((step, m.training)), callback_every=2, **kw
    )
    b = train_probe(_toy_items(), text, **kw)
    assert seen == [(2, False)]  # after step 2, in eval mode; not after the last step (the caller scores it)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_lexicon_corrects_non_words_to_the_nearest_frequent_word_and_keeps_real_words():
    from ditkit_audio.lexicon import Lexicon, levenshtein

    assert (levenshtein("kitten", "sitting"), levenshtein("", "abc"), levenshtein("same", "same")) == (3, 3, 0)
    lex = Lexicon(["the", "world", "hello", "help", "held", "chemistry"])
    assert lex.correct("wrld") == "world" and lex.correct("chemestry") == "chemistry"
    assert lex.correct("helo") == "hello"  # distance 1 to hello, help and held: the most frequent first
    assert lex.correct("held") == "held" and lex.correct("xyzzy") == "xyzzy"  # a word, and nothing near
    assert lex.correct("hxx") == "hxx"  # short words: at most one edit
    assert lex.correct_text("Hello, wrld!") == "hello world"


def test_word_strings_are_grammar_free_seeded_and_spoken():
    from ditkit_audio.opencorpus import word_strings

    a = word_strings(40, seed=2)
    assert a == word_strings(40, seed=2) and a != word_strings(40, seed=3)
    voc = open_vocabulary()
    known = {w.lower() for ws in voc.pools.values() for w in ws}
    for s in a:
        words = spoken_words(s.spoken)
        assert 2 <= len(words) <= 20 and set(words) <= known and (s.split, s.form) == ("free", -1)
        assert s.spoken == normalize_text(s.written) and s.spoken[-1] in ".?"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_data_text_speaks_each_line_of_a_file_into_a_test_folder(tmp_path, capsys):
    from ditkit_audio.cli import main
    from ditkit_audio.corpus import scan_corpus

    lines = tmp_path / "mine.txt"
    lines.write_text("Call Dr. Smith at 3 PM.\n\nThanks!\n")
    main(["data-text", "--text-file", str(lines), "--out", str(tmp_path / "mine")])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["sentences"] == 2 and res["hours"] > 0
    rows = (tmp_path / "mine" / "metadata.csv").read_text().splitlines()
    assert rows[0].split("|")[1:] == ["Call Dr. Smith at 3 PM.", "Call Doctor Smith at three P M."]
    assert len(scan_corpus(tmp_path / "mine")) == 2
    with pytest.raises(SystemExit, match="already holds wavs"):  # never mixes two texts' recordings
        main(["data-text", "--text-file", str(lines), "--out", str(tmp_path / "mine")])
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(SystemExit, match="data-text: .*every line is blank"):
        main(["data-text", "--text-file", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "e")])
