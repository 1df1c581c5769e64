"""The ``sample`` command on the trained debug run: many texts from a file in one process, speed, voices, one-line
errors for nothing to speak, and the make target passing a hostile ``TEXT`` through unchanged."""

import csv
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import soundfile as sf

from ditkit_audio.cli import APP, load, main
from ditkit_audio.inference import synthesize
from ditkit_audio.normalize import TextNormalizationWarning
from ditkit_audio.speak import PROMPT_SENTENCE, corpus_voices

ROOT = Path(__file__).resolve().parents[2]


def _common(run):
    return ["--config", str(run.config), "--ckpt", str(run.ckpt), "--steps", "1"]


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_text_file_speaks_every_line_into_numbered_wavs_and_an_index(debug_run, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("Dr. Smith has 2 cats.\n\n   \nThe dog\tsleeps at 7 pm!\n", encoding="utf-8")
    out = tmp_path / "many"
    main(["sample", *_common(debug_run), "--text-file", str(texts), "--out", str(out), "--batch-size", "1"])
    summary = _last_json(capsys)
    assert summary["wavs"] == 2 and summary["out"] == str(out) and summary["voice"] == "the model's own"
    assert sorted(p.name for p in out.iterdir()) == ["001.wav", "002.wav", "texts.tsv"]
    with (out / "texts.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["wav", "line", "seconds", "text", "spoken"]
    assert [r[:2] for r in rows[1:]] == [["001.wav", "1"], ["002.wav", "4"]]  # file line numbers, blanks skipped
    assert rows[1][3:] == ["Dr. Smith has 2 cats.", "Doctor Smith has two cats."]
    assert rows[2][3:] == ["The dog\tsleeps at 7 pm!", "The dog sleeps at seven P M!"]  # a tab survives the index
    for r in rows[1:]:
        assert float(r[2]) == pytest.approx(sf.info(str(out / r[0])).duration, abs=1e-3) and float(r[2]) > 0.1
    # `ditkit tts sample` runs the same function; its output folder is <run folder>/sample
    assert APP.run(["sample", *_common(debug_run), "--text-file", str(texts)]) == 0
    assert (debug_run.root / "sample" / "002.wav").exists() and (debug_run.root / "sample" / "texts.tsv").exists()
    with pytest.raises(SystemExit, match=r"--out must be a folder, got '.*x\.wav'"):
        main(["sample", *_common(debug_run), "--text-file", str(texts), "--out", str(tmp_path / "x.wav")])


def test_speed_divides_the_duration(debug_run, tmp_path):
    text = "The old farmer paints the red boat today. Did the child sleep near the river?"
    frames = {}
    for speed in ("1", "2", "0.5"):
        wav = tmp_path / f"speed{speed}.wav"
        flags = ["--text", text, "--speed", speed, "--duration", "heuristic", "--out", str(wav)]
        main(["sample", *_common(debug_run), *flags])
        frames[speed] = sf.info(str(wav)).frames
    assert frames["1"] / frames["2"] == pytest.approx(2.0, rel=0.05)
    assert frames["0.5"] / frames["1"] == pytest.approx(2.0, rel=0.05)


def test_synthesis_speaks_the_normalised_text(debug_run):
    m = load(debug_run.config, debug_run.ckpt)
    res = synthesize(m, ["Dr. Smith paid $5.20. He left at 7 p.m."], steps=1, vocode=False)
    assert res["pieces"] == [["doctor smith paid five dollars and twenty cents.", "he left at seven p m."]]
    with pytest.warns(TextNormalizationWarning, match="U\\+1F642"), pytest.raises(ValueError, match="empty after"):
        synthesize(m, ["🙂"], steps=1, vocode=False)


def test_voice_is_a_corpus_voice_prompt_or_a_recording(debug_run, tmp_path, capsys):
    voices = corpus_voices(debug_run.config)
    rows = [line.split("|") for line in (debug_run.root / "data" / "speakers.csv").read_text().splitlines()]
    assert set(voices) == {r[1] for r in rows} and set(voices) <= {"en+f3", "en+m3", "en-us+f2", "en+m1"}
    name = sorted(voices)[0]
    rates = sorted(int(r[2]) for r in rows if r[1] == name)
    assert 140 <= voices[name][0] <= 180 and rates[0] <= voices[name][0] <= rates[-1]  # the voice's median rate
    assert corpus_voices(tmp_path / "none.yaml") == {v: (160, 50) for v in ("en+f3", "en+m3", "en-us+f2", "en+m1")}

    common = [*_common(debug_run), "--text", "A cat sleeps."]
    main(["sample", *common, "--voice", name, "--out", str(tmp_path / "named.wav")])
    assert _last_json(capsys)["voice"] == f"espeak-ng voice {name}" and (tmp_path / "named.wav").exists()
    wav = sorted((debug_run.root / "data" / "wavs").glob("*.wav"))[0]
    said = (debug_run.root / "data" / "metadata.csv").read_text().splitlines()[0].split("|")[1]
    main(["sample", *common, "--voice", str(wav), "--prompt-text", said, "--out", str(tmp_path / "rec.wav")])
    assert _last_json(capsys)["voice"] == f"recording {wav}"
    for extra, message in (
        (["--voice", "robot"], r"^sample: --voice 'robot': neither a corpus voice \(en.*\) nor a \.wav file$"),
        (["--voice", str(wav)], r"--voice .*\.wav needs --prompt-text \(the transcript of the recording\)$"),
        (["--voice", name, "--prompt", str(wav)], r"give --voice or --prompt, not both$"),
        (["--voice", name, "--prompt-text", "A cat."], r"--prompt-text goes with a recording"),
        (["--voice", str(tmp_path / "gone.wav"), "--prompt-text", "A cat."], r"^sample: --voice: .*gone\.wav.*$"),
    ):
        with pytest.raises(SystemExit, match=message):
            main(["sample", *common, *extra, "--out", str(tmp_path / "bad.wav")])
    assert PROMPT_SENTENCE.split()[-1] == "today."  # the prompt is a corpus-grammar sentence


def test_nothing_to_speak_is_a_one_line_error_before_the_model_loads(tmp_path, capsys):
    config = tmp_path / "never_read.yaml"  # the texts are checked before the config or any model is read
    blank, emoji, binary = tmp_path / "blank.txt", tmp_path / "emoji.txt", tmp_path / "binary.txt"
    blank.write_text("\n   \n\n")
    emoji.write_text("A cat.\n\n🙂 🙂\n", encoding="utf-8")
    binary.write_bytes(b"A cat.\n\xff\xfe\n")
    cases = [
        (["--text", ""], r"^sample: --text '' is empty: nothing to speak$"),
        (["--text", "🙂"], r"^sample: --text '🙂': nothing to speak after normalisation$"),
        (["--text-file", str(blank)], r"^sample: --text-file .*blank\.txt: no texts \(every line is blank\)$"),
        (["--text-file", str(emoji)], r"^sample: --text-file .*emoji\.txt line 3: nothing to speak in '🙂 🙂'$"),
        (["--text-file", str(binary)], r"^sample: --text-file: .*binary\.txt line 2: not UTF-8"),
        (["--text-file", str(tmp_path / "nope.txt")], r"^sample: --text-file: .*nope\.txt: cannot read"),
    ]
    for args, message in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TextNormalizationWarning)
            with pytest.raises(SystemExit, match=message) as e:
                main(["sample", "--config", str(config), *args])
        assert "\n" not in str(e.value.code)
    with pytest.warns(TextNormalizationWarning, match=r"--text-file .*emoji\.txt line 3: normalize_text: dropped"):
        with pytest.raises(SystemExit):
            main(["sample", "--config", str(config), "--text-file", str(emoji)])
    # --dry-run shows what will be said without a model
    good = tmp_path / "good.txt"
    good.write_text("It costs $5.\n\nMeet at 10:30.\n")
    main(["sample", "--config", str(config), "--text-file", str(good), "--dry-run"])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines == [
        {"line": 1, "text": "It costs $5.", "spoken": "It costs five dollars."},
        {"line": 3, "text": "Meet at 10:30.", "spoken": "Meet at ten thirty."},
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_target_passes_hostile_text_unchanged(tmp_path):
    """``make sample-tts`` with quotes, ``$``, backticks and shell operators in TEXT / PROMPT_TEXT / TEXT_FILE: the
    program receives each value as written and nothing is executed (the root Makefile and the tts app.mk run in a
    scratch copy, so a command that escaped would write there)."""
    (tmp_path / "apps" / "tts").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "apps" / "tts" / "app.mk", tmp_path / "apps" / "tts" / "app.mk")
    text = 'It\'s "quoted" $HOME $$ ${X} $(touch made1) `touch made2` ; touch made3 & | > made4 \\ #end'
    name = 'it\'s "odd" $(touch made5) `x`.txt'
    (tmp_path / name).write_text("One cat.\n\n$(touch made6) `y` it's.\n")

    def dry(*assignments):
        cmd = ["make", "-s", "--no-print-directory", "sample-tts", f"PY={sys.executable}", "DRY_RUN=1", *assignments]
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]

    (one,) = dry(f"TEXT={text}", "VOICE=en+f3")
    assert one["text"] == text and one["voice"] == "en+f3" and one["line"] is None
    many = dry(f"TEXT_FILE={name}", f"PROMPT=ref {text}.wav", f"PROMPT_TEXT={text}")
    assert [(x["line"], x["text"]) for x in many] == [(1, "One cat."), (3, "$(touch made6) `y` it's.")]
    assert many[0]["prompt"] == f"ref {text}.wav" and many[0]["prompt_text"] == text
    (default,) = dry()
    assert default["text"] == "The old farmer paints the red boat today. Did the child sleep?"
    assert not list(tmp_path.glob("made*"))
