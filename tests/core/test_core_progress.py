"""`ditkit fit` counts its progress bar over the whole run (global step / max_steps), not per epoch."""

from __future__ import annotations

from pathlib import Path

import yaml

from ditkit_core.lightning import StepProgressBar
from ditkit_core.lightning.cli import FlowCLI

ROOT = Path(__file__).resolve().parents[2]


def test_fit_bar_counts_global_steps_across_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load((ROOT / "apps/toy2d/configs/debug.yaml").read_text())
    cfg["trainer"].update(logger=False, enable_progress_bar=True, max_steps=6, limit_train_batches=2, max_epochs=-1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli = FlowCLI(args=["fit", "--config", "c.yaml", "--trainer.default_root_dir", "run"])
    bar = cli.trainer.progress_bar_callback
    assert isinstance(bar, StepProgressBar)
    assert cli.trainer.current_epoch == 3  # three epochs of two batches ...
    assert bar.train_progress_bar.total == 6 and bar.train_progress_bar.n == 6  # ... on one bar over all six steps
