"""`make demo` end to end (slow): every app's demo from its shipped weights, the page checked in headless Chromium,
and every demo metric equal to the shipped weights' recorded figures (``make check-pretrained``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_renders_every_app_and_reproduces_the_shipped_figures(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "ditkit_core.cli", "demo", "--out", str(out), "--check-figures"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith('{"app"')]
    assert {r["app"] for r in rows} == {p.parent.name for p in ROOT.glob("apps/*/pretrained/figures.json")}
    assert all(r["ok"] for r in rows)
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("chromium:")]
    loaded, total = (int(w) for w in line.split()[1:4:2])  # "chromium: N of M media files loaded; ..."
    assert loaded == total > 10 and "console errors: none" in line
    assert (out / "screenshot.png").stat().st_size > 10_000
