"""Every app YAML logs to TensorBoard and CSV inside its run folder (``<trainer.default_root_dir>/logs``), at fixed
paths; a debug fit of the toy app writes both there (and nothing beside its run folder)."""

import csv
from pathlib import Path

import pytest
import yaml

from ditkit_core.testing import run_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(ROOT.glob("apps/*/configs/*.yaml"))
LOGGERS = {"lightning.pytorch.loggers.TensorBoardLogger": "tensorboard", "lightning.pytorch.loggers.CSVLogger": "csv"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_app_config_logs_to_tensorboard_and_csv_under_its_run_folder(config):
    trainer = yaml.safe_load(config.read_text())["trainer"]
    loggers = trainer.get("logger")
    assert isinstance(loggers, list), f"{config.name}: trainer.logger should list the TensorBoard and CSV loggers"
    assert {lg["class_path"]: lg["init_args"].get("version") for lg in loggers} == LOGGERS
    for lg in loggers:  # -> <default_root_dir>/logs/tensorboard and <default_root_dir>/logs/csv/metrics.csv
        assert lg["init_args"]["save_dir"] == trainer["default_root_dir"] and lg["init_args"]["name"] == "logs"


def moved_run(config: Path, dest: Path, root: Path, **trainer) -> Path:
    """``config`` written to ``dest`` with its run folder, its loggers' folders included, moved to ``root``."""
    cfg = yaml.safe_load(config.read_text())
    old = Path(cfg["trainer"]["default_root_dir"])
    cfg["trainer"].update(default_root_dir=str(root), **trainer)
    for lg in cfg["trainer"]["logger"]:
        lg["init_args"]["save_dir"] = str(root / Path(lg["init_args"]["save_dir"]).relative_to(old))
    dest.write_text(yaml.safe_dump(cfg))
    return dest


def test_toy2d_debug_fit_writes_metrics_csv_and_tensorboard_events_in_its_run_folder(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)  # anything written outside the run folder would land here
    writer = {"class_path": "ditkit_core.lightning.SampleWriter", "init_args": {"every_n_epochs": 1}}
    config = moved_run(
        ROOT / "apps/toy2d/configs/debug.yaml", tmp_path / "c.yaml", tmp_path / "run", callbacks=[writer]
    )
    cli = run_config(config)
    logs = tmp_path / "run" / "logs"
    rows = list(csv.DictReader((logs / "csv" / "metrics.csv").open()))
    steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert steps == list(range(cli.trainer.global_step)) == [0, 1, 2, 3]  # log_every_n_steps 1
    assert sum(bool(r.get("val/loss")) for r in rows) == 1  # one validation epoch
    (events,) = (logs / "tensorboard").glob("events.out.tfevents.*")
    tags = EventAccumulator(str(events)).Reload().Tags()
    assert {"train/loss", "val/loss"} <= set(tags["scalars"])
    pngs = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert pngs and set(tags["images"]) == {f"samples/{p.stem}" for p in pngs}  # the SampleWriter's figures
    assert (logs / "tensorboard" / "config.yaml").is_file()  # the run's full config, saved by `ditkit fit`
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "run"]


def test_loggers_follow_a_run_folder_moved_on_the_command_line(tmp_path, monkeypatch):
    from ditkit_core.lightning.cli import FlowCLI

    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load((ROOT / "apps/toy2d/configs/debug.yaml").read_text())
    root = cfg["trainer"]["default_root_dir"]
    assert all(lg["init_args"]["save_dir"] == root for lg in cfg["trainer"]["logger"])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    FlowCLI(args=["fit", "--config", "c.yaml", "--trainer.default_root_dir", "moved", "--trainer.max_steps", "2"])
    assert (tmp_path / "moved" / "logs" / "csv" / "metrics.csv").is_file()
    assert (tmp_path / "moved" / "logs" / "tensorboard").is_dir()
    assert not (tmp_path / root).exists()  # nothing written to the YAML's own run folder
