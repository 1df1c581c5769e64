"""Heavier end-to-end checks (``make test-slow``): short trainings reach quality thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from ditkit_core.testing import run_config

APP = Path(__file__).resolve().parents[2] / "apps" / "molecules" / "configs"


def _config(tmp_path: Path, name: str, **changes) -> Path:
    cfg = yaml.safe_load((APP / name).read_text())
    cfg["trainer"].update(
        default_root_dir=str(tmp_path),
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=False,
        max_steps=changes.pop("max_steps"),
    )
    cfg["model"]["init_args"].update(changes.pop("model", {}))
    cfg["data"]["init_args"].update(cache_dir=str(tmp_path / "cache"), **changes.pop("data", {}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_latent_model_valid_unique_novel(tmp_path):
    from ditkit_molecules.metrics import smiles_metrics

    cfg = _config(
        tmp_path, "latent.yaml", max_steps=900, model={"ae_steps": 600, "eval_samples": 0}, data={"limit": 1500}
    )
    run = run_config(cfg)
    module, dm = run.model, run.datamodule
    m = smiles_metrics(module.sample_smiles(200, seed=0), dm.train_smiles, with_fcd=False)
    assert m["validity"] >= 0.9 and m["uniqueness"] >= 0.8 and m["novelty"] >= 0.5, m
    from ditkit_molecules.latent_eval import reconstruction

    recon = reconstruction(module.tokenizer, dm.val)
    assert recon["exact"] >= 0.9, recon  # the autoencoder reconstructs held-out molecules


@pytest.mark.slow
def test_3d_model_improves_atom_stability(tmp_path):
    from ditkit_molecules.metrics import stability_metrics

    cfg = _config(tmp_path, "default.yaml", max_steps=400, model={"eval_samples": 0}, data={"limit": 400})
    run = run_config(cfg)
    module = run.model
    trained = stability_metrics(module.sample_molecules(64, seed=0))["atom_stability"]
    module.predict = lambda tokens, x_t, t, logits=False: torch.zeros_like(x_t)  # zero velocity: noise only
    untrained = stability_metrics(module.sample_molecules(64, seed=0))["atom_stability"]
    assert trained > untrained + 0.1, (trained, untrained)
