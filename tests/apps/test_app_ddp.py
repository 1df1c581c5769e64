"""Every app's debug config trains under 2-process data parallelism on CPU (gloo) with the shared ddp preset, with
the policy's condition dropout 0 (its null condition frozen: DDP's reducer must find no unused parameter) and the
latent molecule model's phases (declared unused parameters) among them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBUG = sorted(ROOT.glob("apps/*/configs/debug*.yaml"))
WRITES = {"policy/debug.yaml": "pretrained/model.safetensors"}  # files a config's run must leave in its run folder


@pytest.mark.slow
@pytest.mark.parametrize("config", DEBUG, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_debug_config_trains_under_two_process_ddp(config, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ditkit_core.lightning.cli",
            "fit",
            "--config",
            str(config),
            "--config",
            str(ROOT / "shared/trainer/ddp.yaml"),
            "--trainer.devices",
            "2",
            "--trainer.accelerator",
            "cpu",
            "--trainer.default_root_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-4000:]
    assert "MEMBER: 2/2" in r.stderr, r.stderr[-2000:]  # two processes really ran
    written = WRITES.get(f"{config.parent.parent.name}/{config.name}")
    assert written is None or (tmp_path / written).exists()
