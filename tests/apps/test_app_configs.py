"""Every YAML under apps/ builds (without training) through ``ditkit fit``'s parser: a flow module containing at least
one core DiT whose stated widths are its real ones (or another trainable part of an app, such as a codec or a
vocoder), a data module and a trainer."""

from pathlib import Path

import pytest
import yaml

from ditkit_core.nn import DiT
from ditkit_core.sampling import find_dits

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(ROOT.glob("apps/*/configs/*.yaml"))


def _stated_model(path: Path) -> dict:
    return ((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("init_args", {}).get("model") or {}


def _input_width(dit: DiT) -> int:
    emb = dit.x_embed
    for _ in range(3):  # composite embeddings keep the plain projection as ``base``
        if hasattr(emb, "in_features"):
            return emb.in_features
        emb = getattr(emb, "base", emb)
    raise AssertionError(f"cannot find the input width of {type(dit.x_embed).__name__}")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_app_config_builds_a_core_dit_with_its_stated_widths(config, tmp_path, monkeypatch):
    from ditkit_core.lightning import FlowCLI, FlowMatchingModule

    monkeypatch.chdir(tmp_path)
    cli = FlowCLI(args=["--config", str(config), "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert cli.datamodule is not None and cli.trainer is not None
    if not isinstance(cli.model, FlowMatchingModule):
        return  # an app's codec / vocoder: built, no DiT to check
    dits = find_dits(cli.model)
    assert dits, f"{config.name}: the module contains no ditkit_core DiT"
    stated = _stated_model(config)
    for dit in dits:
        assert _input_width(dit) == dit.config.in_dim
        if dit.config.cond_channels:
            assert dit.cond_proj.in_features == dit.config.cond_channels
    main = dits[0].config
    for field in ("in_dim", "cond_channels", "pair_dim", "context_dim", "cond_dim"):
        if stated.get(field):
            assert stated[field] == getattr(main, field), f"{config.name}: model.{field}={stated[field]} is not real"
