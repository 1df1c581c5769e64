"""Shared fixtures for the audio tests: a tiny espeak-ng corpus written once per test run."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from ditkit_audio.data import synthesize_corpus
from ditkit_core.testing import config_copy, run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("corpus")
    return synthesize_corpus(root, 12, seed=3)


@pytest.fixture(scope="session")
def debug_run(tmp_path_factory):
    """The debug app config trained once (its corpus synthesised) under a temporary folder, checkpoint kept."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("tts_debug")
    config = config_copy(
        ROOT / "apps/tts/configs/debug.yaml",
        root / "debug.yaml",
        {
            "trainer.default_root_dir": root,
            "trainer.enable_checkpointing": True,
            "trainer.logger": False,  # the YAML's loggers write under its own run folder
            "data.init_args.root": root / "data",
        },
    )
    run_config(config)
    (ckpt,) = (root / "checkpoints").glob("*.ckpt")
    return SimpleNamespace(config=config, root=root, ckpt=ckpt)
