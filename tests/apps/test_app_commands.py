"""Every app folder is a ``ditkit`` app: declared as an entry point by its package, an :class:`App` whose config,
benchmark and command functions exist, and whose commands take the common flags plus the app's own."""

import importlib
from pathlib import Path

import pytest
import torch

from ditkit_core.app import App

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the pyproject files are read as TOML)

ROOT = Path(__file__).resolve().parents[2]
COMMON = ("--config", "--pretrained", "--ckpt", "--out", "--steps", "--device", "--seed", "--cache", "--compile")
OWN = {  # app -> command -> flags of the app's own
    "toy2d": {
        "sample": ["--distribution", "--sets", "--points"],
        "eval": ["--distribution", "--sets", "--points"],
        "demo": ["--distribution", "--sets", "--points", "--train-config"],
    },
    "tts": {
        "sample": ["--text", "--text-file", "--voice", "--prompt", "--prompt-text", "--cfg", "--speed", "--duration"]
        + ["--vocoder", "--batch-size", "--dry-run"],
        "eval": ["--data", "--asr", "--n", "--val-size", "--vocoder"],
        "demo": ["--n", "--examples"],
    },
    "audio_video": {
        "sample": ["--task", "--input", "--data", "--index", "--n", "--cut", "--cfg-video", "--cfg-audio", "--scale"],
        "eval": ["--data", "--split", "--tasks", "--n", "--n-pulse", "--cfg-video", "--cfg-audio", "--encoder"],
        "demo": ["--n"],
    },
    "shapes": {
        "sample": ["--data", "--normalize", "--points", "--cfg", "--per-class"],
        "eval": ["--data", "--normalize", "--points", "--classes", "--n", "--emd-points", "--metrics"]
        + ["--stored-points"],
        "demo": ["--n", "--points"],
    },
    "molecules": {"sample": ["--n", "--props", "--cfg-scale"], "eval": ["--n", "--no-fcd"], "demo": ["--n"]},
    "policy": {
        "sample": ["--data", "--tasks", "--episodes", "--max-steps", "--no-gif"],
        "eval": ["--tag", "--data", "--tasks", "--episodes", "--max-steps", "--no-expert", "--no-gif"],
        "demo": ["--episodes"],
    },
    "sits": {"sample": ["--samples"], "eval": ["--samples"], "demo": ["--samples"]},
}


def declared() -> dict[str, str]:
    """``app -> "module:object"`` of the ``ditkit.apps`` entry points of every package's pyproject.toml."""
    out: dict[str, str] = {}
    for path in sorted(ROOT.glob("packages/*/pyproject.toml")):
        eps = tomllib.loads(path.read_text())["project"].get("entry-points", {}).get("ditkit.apps", {})
        assert not set(eps) & set(out), f"{path}: an app declared twice"
        out.update(eps)
    return out


def load(spec: str) -> object:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_app_folder_is_declared_by_its_package():
    folders = {p.parent.parent.name for p in ROOT.glob("apps/*/configs/default.yaml")}
    assert declared().keys() == folders == OWN.keys()


@pytest.mark.parametrize("name", sorted(OWN))
def test_each_entry_point_is_an_app_whose_files_and_commands_exist(name):
    app = load(declared()[name])
    assert isinstance(app, App) and app.name == name
    assert (ROOT / app.config).is_file() and app.config == f"apps/{name}/configs/default.yaml"
    assert app.bench is None or (ROOT / app.bench).is_file()
    assert app.pretrained == f"apps/{name}/pretrained"  # shipped weights: a pretrained folder with its loss log
    assert {"config.json", "model.safetensors", "train_log.csv"} <= {p.name for p in (ROOT / app.pretrained).iterdir()}
    assert set(app.commands) == set(OWN[name])
    for spec in app.commands.values():
        assert callable(load(spec)), spec
    for config, folder in app.shipped.items():  # further recipes with their own shipped weights
        assert (ROOT / config).is_file() and (ROOT / folder / "config.json").is_file()
        assert app.shipped_for(config) == folder and app.shipped_for(app.config) == app.pretrained


def test_a_config_with_its_own_shipped_weights_falls_back_to_them(tmp_path, capsys):
    import argparse

    other, own = tmp_path / "other.yaml", tmp_path / "own"
    other.write_text(f"trainer:\n  default_root_dir: {tmp_path / 'run'}\n")
    (tmp_path / "default.yaml").write_text(other.read_text())
    own.mkdir()
    (own / "config.json").write_text("{}")
    app = App(
        name="x", help="", config=str(tmp_path / "default.yaml"), pretrained="nowhere", shipped={str(other): str(own)}
    )
    args = argparse.Namespace(pretrained=None, ckpt=None, config=str(other))
    assert app.weights(args) == (None, own)
    assert f"using the shipped weights {own}" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no trained model"):  # the default config's folder has no weights
        app.weights(argparse.Namespace(pretrained=None, ckpt=None, config=app.config))


@pytest.mark.parametrize("name,command", [(a, c) for a, cs in sorted(OWN.items()) for c in cs])
def test_app_commands_take_the_common_flags_and_their_own(name, command, capsys):
    app = load(declared()[name])
    assert app.run(["--help"]) == 0
    assert f"ditkit {name} {{fit," in capsys.readouterr().out
    text = app.parser(command).format_help()
    for flag in (*COMMON, *OWN[name][command]):
        assert f"{flag} " in text or f"{flag}\n" in text or f"{flag}," in text, f"{name} {command}: {flag}"


def test_app_flags_parse_with_the_apps_defaults():
    apps = {n: load(s) for n, s in declared().items()}
    args = apps["policy"].parser("eval").parse_args(["--episodes", "2"])
    assert args.seed == 1000 and args.steps is None and args.cache is None  # reset seeds past the demonstrations'
    args = apps["shapes"].parser("eval").parse_args(["--classes", "mug", "--metrics", "cd"])
    assert args.config == "apps/shapes/configs/default.yaml" and args.classes == ["mug"] and args.seed == 0
    with pytest.raises(SystemExit):
        apps["tts"].parser("sample").parse_args([])  # --text or --text-file is required
    with pytest.raises(SystemExit):
        apps["tts"].parser("sample").parse_args(["--text", "A cat.", "--text-file", "lines.txt"])  # not both
    args = apps["policy"].parser("sample").parse_args([])
    assert args.seed == 1000 and args.episodes == 2 and args.tasks is None  # held-out seeds, a quick look
    assert apps["policy"].run(["train"]) == 2  # an unknown command
    without = App(name="x", help="no sample", config=apps["policy"].config, commands={"eval": "json:dumps"})
    assert without.run(["sample"]) == 2  # a common command the app does not declare


def test_missing_data_is_one_line_naming_the_command_that_makes_it(tmp_path, capsys):
    app = load(declared()["shapes"])
    args = [
        "eval",
        "--pretrained",
        str(ROOT / app.pretrained),
        "--data",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path),
    ]
    assert app.run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ditkit shapes eval: ") and "make data-shapes" in err[0]


def test_load_applies_steps_cache_and_regional_compilation():
    from ditkit_core.sampling import find_dits

    app = load(declared()["toy2d"])
    args = app.parser("sample").parse_args(["--pretrained", str(ROOT / app.pretrained), "--steps", "3"])
    plain = app.load(args)
    assert plain.sampler.steps == 3 and all(b._compiled_call_impl is None for b in find_dits(plain)[0].blocks)
    args = app.parser("sample").parse_args(
        ["--pretrained", str(ROOT / app.pretrained), "--cache", "block", "--compile"]
    )
    module = app.load(args)
    assert module.sampler.cache.kind == "block"
    assert all(b._compiled_call_impl is not None for b in find_dits(module)[0].blocks)  # compiled once, on first call


@pytest.mark.parametrize("app", sorted(p.parent.parent.name for p in ROOT.glob("apps/*/pretrained/student")))
def test_shipped_students_load_as_their_apps_module_and_serve_few_steps(app):
    from ditkit_core.lightning import load_run

    folder = ROOT / "apps" / app / "pretrained" / "student"
    assert {"config.json", "model.safetensors", "train_log.csv"} <= {p.name for p in folder.iterdir()}
    student, teacher = load_run(pretrained=folder), load_run(pretrained=folder.parent)
    assert type(student) is type(teacher)
    assert student.model.config.step_conditioning and not teacher.model.config.step_conditioning
    assert (student.sampler.method, student.sampler.cfg_scale, student.sampler.steps) == ("euler", 1.0, 4)
    # the student was fine-tuned from the teacher: same architecture, moved weights, a trained step embedding
    t, s = teacher.model.state_dict(), student.model.state_dict()
    assert set(s) - set(t) == {k for k in s if k.startswith("dt_embed.")}
    assert any(not torch.equal(s[k], t[k]) for k in t)
    assert float(s["dt_embed.mlp.2.weight"].abs().sum()) > 0  # zero-initialised, so non-zero means it learned
