"""``FlowCLI``: LightningCLI with ditkit's defaults (class_path plugins, config saved with the run)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI


class FlowCLI(LightningCLI):
    """LightningCLI for ditkit apps: ``python -m ditkit_core.lightning.cli fit --config apps/<app>/configs/x.yaml``.

    Model and data are given by ``class_path`` (any ``LightningModule`` / ``LightningDataModule``), so a new
    domain plugs in without registration. Unknown YAML keys are rejected by jsonargparse with the key's name.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("model_class", L.LightningModule)
        kwargs.setdefault("datamodule_class", L.LightningDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf"} if _has_omegaconf() else {})
        super().__init__(*args, **kwargs)


def _has_omegaconf() -> bool:
    import importlib.util

    return importlib.util.find_spec("omegaconf") is not None


def main(args: list[str] | None = None) -> None:
    FlowCLI(args=args)


if __name__ == "__main__":
    main()
