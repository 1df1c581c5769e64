"""``load_run``: the one way every CLI loads a trained run, from a Lightning checkpoint or a pretrained folder.

Loading is data, not code. A ``.ckpt`` is read with ``torch.load(weights_only=True)``; its hyper-parameters are
validated against the module's typed configs (earlier flat arguments are migrated) and every ``class_path`` in them,
and in the YAML config, must pass the allow-list of :mod:`ditkit_core.lightning.pretrained` before anything is
imported. A pretrained folder (``model.safetensors`` + ``config.json``) is read by
:func:`~ditkit_core.lightning.pretrained.from_pretrained`. Weights of an earlier layout go through the module's
``migrate_state_dict``. Output paths follow the config's ``trainer.default_root_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ditkit_core.errors import DataError, naming_file
from ditkit_core.lightning.config import plain
from ditkit_core.lightning.pretrained import UntrustedClassError, _import, from_pretrained

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


def read_config(config: str | os.PathLike) -> dict[str, Any]:
    """Read an app YAML (a LightningCLI config) as plain data; errors name the file."""
    import yaml

    path = Path(config)
    if not path.exists():
        raise FileNotFoundError(f"config {path} does not exist")
    with naming_file(path, "not a YAML config"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DataError("expected a mapping at the top level", path=path)
    return data


def run_dir(config: str | os.PathLike) -> Path:
    """The run folder of an app config: its ``trainer.default_root_dir`` (everything a run writes goes there)."""
    root = (read_config(config).get("trainer") or {}).get("default_root_dir")
    if not root:
        raise DataError("trainer.default_root_dir is not set", path=config, field="trainer.default_root_dir")
    return Path(root)


def default_checkpoint(config: str | os.PathLike) -> Path:
    """``<trainer.default_root_dir>/checkpoints/last.ckpt`` of an app config."""
    return run_dir(config) / CHECKPOINT_DIR / LAST


def _module_class(path: str, where: str) -> type:
    cls = _import(path, where)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UntrustedClassError(f"{where}: class_path {path!r} is not a torch module")
    return cls


def load_run(
    config: str | os.PathLike | None = None,
    ckpt: str | os.PathLike | None = None,
    pretrained: str | os.PathLike | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Load a trained module for inference (eval mode).

    Args:
        config: the app YAML; used for the module class when the checkpoint does not name it.
        ckpt: a Lightning checkpoint written by a ditkit run.
        pretrained: a ``save_pretrained`` folder (takes precedence over ``ckpt``).
        map_location: device of the loaded weights.

    Raises:
        FileNotFoundError: no weights (the message names the command that makes them).
        UntrustedClassError: a class outside the allow-list was named.
        DataError: a malformed checkpoint or config, named.
    """
    if pretrained is not None:
        return from_pretrained(pretrained, map_location=map_location).eval()
    if ckpt is None:
        raise FileNotFoundError("load_run: no weights given (pass a checkpoint or a pretrained folder)")
    path = Path(ckpt)
    if not path.exists():
        hint = f" (train it first, e.g. `ditkit fit --config {config}`)" if config is not None else ""
        raise FileNotFoundError(f"checkpoint {path} does not exist{hint}")
    with naming_file(path, "not a readable checkpoint (weights-only load)"):
        ck = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ck, dict) or not isinstance(ck.get("state_dict"), dict):
        raise DataError("not a Lightning checkpoint (no state_dict)", path=path)
    meta = ck.get("ditkit") or {}
    hparams = plain(dict(ck.get("hyper_parameters") or {}))
    private = {k: hparams.pop(k) for k in list(hparams) if k.startswith("_")}  # LightningCLI's _class_path, ...
    class_path = meta.get("class_path") or private.get("_class_path")
    if class_path is None and config is not None:
        class_path = (read_config(config).get("model") or {}).get("class_path")
    if not isinstance(class_path, str):
        raise DataError("the checkpoint does not name its module class; pass the app config", path=path)
    cls = _module_class(class_path, str(path))
    migrate = getattr(cls, "migrate_args", None)
    if callable(migrate):
        hparams = migrate(hparams)
    try:
        module = cls(**hparams)
    except (UntrustedClassError, DataError):
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise DataError(f"hyper-parameters do not fit {class_path}: {e}", path=path, field="hyper_parameters") from e
    state = ck["state_dict"]
    if meta.get("format", 1) < 2 and hasattr(module, "migrate_state_dict"):
        state = module.migrate_state_dict(state)
    with naming_file(path, "weights do not fit the module"):
        module.load_state_dict(state, strict=True)
    return module.to(map_location).eval()


__all__ = ["default_checkpoint", "load_run", "read_config", "run_dir"]
