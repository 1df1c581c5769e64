"""The demo report: manifests are checked and made relative, the page links every media file, loss logs become
curves, and the page renders in headless Chromium with every media file loaded and no console error."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ditkit_core.lightning.pretrained import LOG_NAME, export_run
from ditkit_core.report import CHROMIUM, check_page, read_loss_log, write_manifest, write_report


def _media(root: Path) -> dict[str, Path]:
    import soundfile as sf
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    png = root / "grid.png"
    Image.fromarray((np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)).save(png)
    gif = root / "roll.gif"
    frames = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    wav = root / "speech.wav"
    t = np.arange(8000) / 16000
    sf.write(wav, 0.2 * np.sin(2 * math.pi * 440 * t), 16000)
    log = root / "metrics.csv"
    log.write_text("epoch,step,train/loss,val/loss\n0,9,1.5,\n0,19,1.2,\n0,19,,1.3\n1,29,0.9,\n")
    return {"png": png, "gif": gif, "wav": wav, "log": log}


def _demo(root: Path) -> Path:
    m = _media(root / "src")
    a = {
        "title": "App A",
        "media": [{"path": m["png"], "caption": "a grid"}, m["wav"]],
        "metrics": [{"name": "err", "model": 0.1, "controls": {"baseline": 0.3}, "goal": "< baseline", "met": True}],
        "log": m["log"],
    }
    write_manifest(a, root / "a", app="a")
    b = {"media": [m["gif"]], "metrics": [{"name": "f1", "model": float("nan"), "goal": ">= 0.8", "met": False}]}
    write_manifest(b, root / "b", app="b")
    (root / "c").mkdir()
    (root / "c" / "error.txt").write_text("Traceback ...\nValueError: broken <tag>")
    return write_report(root)


def test_manifest_paths_are_relative_and_checked(tmp_path):
    m = _media(tmp_path / "src")
    out = tmp_path / "app"
    path = write_manifest({"media": [m["png"]], "metrics": [], "log": m["log"]}, out, app="x")
    data = json.loads(path.read_text())
    assert data["media"][0]["path"] == "grid.png" and (out / "grid.png").read_bytes() == m["png"].read_bytes()
    assert data["log"] == "metrics.csv"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        write_manifest({"media": ["nope.png"]}, out, app="x")
    (out / "table.csv").write_text("a\n")
    with pytest.raises(ValueError, match="table.csv"):
        write_manifest({"media": ["table.csv"]}, out, app="x")
    with pytest.raises(TypeError, match="list"):
        write_manifest([], out, app="x")


def test_report_links_every_media_file_and_shows_failures(tmp_path):
    page = _demo(tmp_path)
    html = page.read_text()
    for src in ("a/grid.png", "a/speech.wav", "a/loss.png", "b/roll.gif"):
        assert f'src="{src}"' in html and (tmp_path / src).exists()
    assert "<audio controls" in html and "the demo failed" in html
    assert "broken &lt;tag&gt;" in html  # error text is escaped, not markup
    assert ">met<" in html and ">not met<" in html and ">nan<" in html


def test_loss_log_and_export(tmp_path):
    m = _media(tmp_path)
    series = read_loss_log(m["log"])
    assert series["train/loss"] == ([9.0, 19.0, 29.0], [1.5, 1.2, 0.9]) and series["val/loss"] == ([19.0], [1.3])
    from torch import nn

    resumed = tmp_path / "resumed.csv"  # a resumed run's second log replaces the first from its first step on
    resumed.write_text("epoch,step,train/loss\n1,19,1.1\n1,39,0.8\n")
    out = export_run(nn.Linear(2, 3), tmp_path / "pre", [m["log"], resumed])
    rows = (out / LOG_NAME).read_text().splitlines()
    assert rows[0] == "step,train/loss,val/loss"
    assert [r.split(",")[:2] for r in rows[1:]] == [["9", "1.5"], ["19", "1.1"], ["39", "0.8"]]
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()


needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and shutil.which("chromium")), reason="Debian's chromium is installed by make setup"
)


@needs_chromium
def test_report_renders_in_headless_chromium(tmp_path):
    page = _demo(tmp_path)
    res = check_page(page, tmp_path / "screenshot.png")
    assert res["total"] == 4 and res["loaded"] == 4, res  # png, wav, loss curve, gif
    assert res["console_errors"] == [], res
    from PIL import Image

    assert Image.open(tmp_path / "screenshot.png").size[0] == 1280


@needs_chromium
def test_chromium_check_reports_a_missing_file(tmp_path):
    page = _demo(tmp_path)
    (tmp_path / "b" / "roll.gif").unlink()
    res = check_page(page)
    assert res["failed"] == ["b/roll.gif"] and res["loaded"] == res["total"] - 1


def test_shipped_figures_are_recorded_and_compared(tmp_path):
    from ditkit_core.demo import compare_figures, record_figures

    run = {"metrics": [{"name": "acc", "model": 0.8}, {"name": "f1", "model": 0.5}, {"name": "note", "model": None}]}
    run["metrics"].append({"name": "ms", "model": 12.0, "check": False})  # a timing: never a reference figure
    manifest = write_manifest(run, tmp_path / "a", app="a")
    figures = record_figures(manifest, tmp_path / "figures.json", tol=0.05)
    assert json.loads(figures.read_text()) == {"acc": {"value": 0.8, "tol": 0.05}, "f1": {"value": 0.5, "tol": 0.05}}
    assert all(r["ok"] for r in compare_figures(manifest, figures))
    moved = {"metrics": [{"name": "acc", "model": 0.86}, {"name": "f1", "model": 0.53}]}
    rows = compare_figures(write_manifest(moved, tmp_path / "b", app="a"), figures)
    assert [(r["metric"], r["ok"]) for r in rows] == [("acc", False), ("f1", True)]
    rows = compare_figures(write_manifest({"metrics": []}, tmp_path / "c", app="a"), figures)
    assert not any(r["ok"] for r in rows)  # a figure the run no longer reports is a mismatch
