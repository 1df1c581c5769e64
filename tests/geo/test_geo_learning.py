"""Heavier checks (``make test-slow``): a short training run beats the simple baselines."""

from pathlib import Path

import pytest

from ditkit_geo.cli import evaluate_all, train_from_config

ROOT = Path(__file__).resolve().parents[2]
PRESTO = ROOT / ".." / "shared" / "data" / "presto_algae"


@pytest.mark.slow
@pytest.mark.skipif(not (PRESTO / "s1_s2_era5_srtm.npy").exists(), reason="shared Presto arrays not present")
def test_presto_reconstruction_beats_linear_interpolation():
    module, dm = train_from_config(ROOT / "apps/sits/configs/presto.yaml", 800)
    (rec,) = evaluate_all(module, dm, samples=4, steps=8, tasks=("reconstruction",))
    assert rec["model_mae"] < rec["linear_mae"], rec


@pytest.mark.slow
def test_synthetic_forecast_beats_last_value():
    module, dm = train_from_config(ROOT / "apps/sits/configs/default.yaml", 400)
    (rec,) = evaluate_all(module, dm, samples=4, steps=8, tasks=("forecast",))
    assert rec["model_mae"] < rec["last_value_mae"], rec
