"""Shared fixtures for the audio tests: a tiny espeak-ng corpus written once per test run."""

from __future__ import annotations

import shutil

import pytest

from ditkit_audio.data import synthesize_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("corpus")
    return synthesize_corpus(root, 12, seed=3)
