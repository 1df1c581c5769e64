"""The ``ditkit`` command: lazy top-level help, the same flags in every app, clear errors for missing runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def ditkit(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "ditkit_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_top_level_help_lists_apps_without_importing_torch():
    code = "import sys, ditkit_core.cli as c; c.main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "toy2d" in out and out.strip().endswith("False")


def test_every_app_command_takes_the_common_flags():
    r = ditkit("toy2d", "eval", "--help")
    assert r.returncode == 0
    for flag in ("--config", "--pretrained", "--ckpt", "--out", "--steps", "--device", "--seed", "--cache"):
        assert flag in r.stdout


def test_missing_run_names_the_command_that_makes_it(tmp_path):
    cfg = yaml.safe_load((ROOT / "apps/toy2d/configs/debug.yaml").read_text())
    cfg["trainer"]["default_root_dir"] = str(tmp_path / "run")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = ditkit("toy2d", "eval", "--config", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert r.returncode != 0
    assert "ditkit toy2d fit --config" in r.stderr and r.stderr.count("\n") <= 2


def test_fit_then_eval_from_the_run_folder(tmp_path):
    cfg = yaml.safe_load((ROOT / "apps/toy2d/configs/debug.yaml").read_text())
    cfg["trainer"].update(default_root_dir=str(tmp_path / "run"), enable_checkpointing=True)
    cfg["trainer"]["callbacks"] = [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}}
    ]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert ditkit("toy2d", "fit", "--config", str(tmp_path / "c.yaml"), cwd=tmp_path).returncode == 0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    r = ditkit(
        "toy2d",
        "eval",
        "--config",
        str(tmp_path / "c.yaml"),
        "--steps",
        "2",
        "--sets",
        "4",
        "--points",
        "8",
        "--distribution",
        "moons",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())
    assert res["steps"] == 2 and res["data_vs_data_sliced_w1"] < res["noise_sliced_w1"]
