"""``FlowCLI``: LightningCLI with ditkit's defaults (class_path plugins, config saved with the run, legacy configs).

Config files written for earlier versions (flat module arguments such as ``lr`` or ``sample_steps``) are migrated in
memory with a warning that names the file and the command that rewrites it
(``python -m ditkit_core.lightning.migrate FILE``).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
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
        self._tmp = tempfile.TemporaryDirectory(prefix="ditkit-config-")
        self._config_files: list[Path] = []
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """``fit`` and ``validate``: the subcommands ditkit modules implement (no test / predict steps)."""
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "validate": {"model", "dataloaders", "datamodule"},
        }

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Migrate legacy config files named by ``--config`` before jsonargparse reads them."""
        if isinstance(args, list):
            args = self._migrate_args(args)
        super().parse_arguments(parser, args)

    def _migrate_args(self, args: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--config" and i + 1 < len(args):
                out += [a, self._migrated(args[i + 1])]
                i += 2
                continue
            if a.startswith("--config="):
                out.append("--config=" + self._migrated(a.split("=", 1)[1]))
            else:
                out.append(a)
            i += 1
        return out

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """Lightning's trainer with :class:`~ditkit_core.lightning.callbacks.StepProgressBar` in place of its default
        per-epoch bar (a progress-bar class of the config's own is kept)."""
        from lightning.pytorch.callbacks import TQDMProgressBar

        from ditkit_core.lightning.callbacks import StepProgressBar

        trainer = super().instantiate_trainer(**kwargs)
        for i, cb in enumerate(trainer.callbacks):
            if type(cb) is TQDMProgressBar:  # the default Lightning adds when the config names no bar
                trainer.callbacks[i] = StepProgressBar(refresh_rate=cb.refresh_rate)
        return trainer

    def before_instantiate_classes(self) -> None:
        """Loggers follow the run folder: a logger ``save_dir`` inside a config file's ``trainer.default_root_dir``
        moves with ``--trainer.default_root_dir`` (so a run moved on the command line keeps its logs with it)."""
        cfg = self.config.get(self.subcommand) if self.subcommand else self.config
        trainer = cfg.get("trainer") if cfg is not None else None
        root = trainer.get("default_root_dir") if trainer is not None else None
        loggers = trainer.get("logger") if trainer is not None else None
        if not root or not loggers or isinstance(loggers, bool):
            return
        import yaml

        file_roots = []
        for f in self._config_files:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
            r = (data.get("trainer") or {}).get("default_root_dir") if isinstance(data, dict) else None
            if r and Path(r) != Path(root):
                file_roots.append(Path(r))
        for lg in loggers if isinstance(loggers, list) else [loggers]:
            args = lg.get("init_args") if hasattr(lg, "get") else None
            save_dir = args.get("save_dir") if args is not None else None
            for r in file_roots:
                if save_dir and Path(save_dir).is_relative_to(r):
                    args["save_dir"] = str(Path(root) / Path(save_dir).relative_to(r))
                    break

    def _migrated(self, path: str) -> str:
        p = Path(path)
        if not p.is_file():
            return path
        self._config_files.append(p)
        from ditkit_core.lightning.migrate import migrate_config_file

        text, moved = migrate_config_file(p)
        if not moved:
            return path
        warnings.warn(
            f"{p}: module arguments {moved} use the flat layout of earlier versions; read as flow/optim/sampler "
            f"groups. Rewrite the file with: python -m ditkit_core.lightning.migrate {p}",
            stacklevel=2,
        )
        new = Path(self._tmp.name) / f"{len(list(Path(self._tmp.name).iterdir()))}_{p.name}"
        new.write_text(text)
        return str(new)


def _has_omegaconf() -> bool:
    import importlib.util

    return importlib.util.find_spec("omegaconf") is not None


def main(args: list[str] | None = None) -> None:
    FlowCLI(args=args)


if __name__ == "__main__":
    main()
