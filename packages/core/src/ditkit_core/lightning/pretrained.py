"""``save_pretrained`` / ``from_pretrained``: ``model.safetensors`` + ``config.json``; loading never unpickles.

``config.json`` records the module as ``{"class_path": ..., "init_args": ...}`` (the LightningCLI form).
Init args are serialised recursively: JSON scalars, lists, dicts, dataclasses, and objects whose ``__init__``
arguments are stored as attributes of the same name (the convention ditkit tokenizers follow).

Loading is data, not code: no pickle is read, and a ``class_path`` is checked against an allow-list *before* its
module is imported. Allowed are classes defined in ditkit's own packages (``ditkit_*``) and classes a program
trusts explicitly with :func:`trust_classes` (a user's own plugin); anything else (``subprocess.Popen``,
``os.system``, ...) raises :class:`UntrustedClassError` naming it, and nothing is constructed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
TRUSTED_PREFIXES = ("ditkit_",)
_TRUSTED_CLASSES: set[str] = set()


class UntrustedClassError(ValueError):
    """A file asked to construct a class outside the allow-list."""


def trust_classes(*classes: type | str) -> None:
    """Allow these classes (objects or ``module.Class`` paths) in loaded configs and checkpoints."""
    for c in classes:
        _TRUSTED_CLASSES.add(c if isinstance(c, str) else f"{c.__module__}.{c.__qualname__}")


def is_trusted(path: str) -> bool:
    """Whether ``class_path`` may be imported and constructed while loading a file."""
    if not isinstance(path, str) or not path or any(ch in path for ch in " /\\:\x00"):
        return False
    return path in _TRUSTED_CLASSES or path.split(".", 1)[0].startswith(TRUSTED_PREFIXES)


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def to_config(obj: Any, where: str = "module") -> Any:
    """Serialise ``obj`` to JSON-able data (``class_path`` / ``init_args`` for objects)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_config(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {str(k): to_config(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        args = {f.name: to_config(getattr(obj, f.name), f"{where}.{f.name}") for f in dataclasses.fields(obj) if f.init}
        return {"class_path": _class_path(obj), "init_args": args}
    if hasattr(obj, "get_config"):
        return {"class_path": _class_path(obj), "init_args": to_config(obj.get_config(), where)}
    sig = inspect.signature(type(obj).__init__)
    args = {}
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in getattr(obj, "hparams", {}):
            value = obj.hparams[name]
        elif hasattr(obj, name):
            value = getattr(obj, name)
        elif p.default is not inspect.Parameter.empty:
            continue
        else:
            raise TypeError(
                f"save_pretrained: cannot serialise {where} ({_class_path(obj)}): init argument {name!r} "
                f"is not stored as an attribute; store it or define get_config()"
            )
        args[name] = to_config(value, f"{where}.{name}")
    return {"class_path": _class_path(obj), "init_args": args}


def _import(path: str, where: str = "config") -> type:
    if not is_trusted(path):
        raise UntrustedClassError(
            f"{where}: class_path {path!r} is not allowed: loading constructs only ditkit classes "
            f"(modules {', '.join(p + '*' for p in TRUSTED_PREFIXES)}) and classes trusted with "
            "ditkit_core.lightning.trust_classes(...)"
        )
    module, _, name = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:  # nested class: module.Outer.Inner
        module, _, outer = module.rpartition(".")
        obj = getattr(importlib.import_module(module), outer)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"from_pretrained: {path!r} is not a class")
    return obj


def from_config(data: Any, where: str = "config") -> Any:
    """Inverse of :func:`to_config`: build the allow-listed classes a config names (see the module docstring).

    Raises:
        UntrustedClassError: a ``class_path`` outside the allow-list (nothing is imported or constructed).
        ValueError: malformed ``class_path`` / ``init_args`` entries or arguments the class rejects, named by path.
    """
    if isinstance(data, list):
        return [from_config(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, dict):
        if "class_path" in data:
            extra = set(data) - {"class_path", "init_args"}
            if extra or not isinstance(data.get("init_args", {}), dict):
                raise ValueError(
                    f"{where}: a class_path entry takes only 'init_args' (a mapping), got keys {sorted(data)}"
                )
            cls = _import(data["class_path"], where)
            args = {k: from_config(v, f"{where}.{k}") for k, v in data.get("init_args", {}).items()}
            try:
                return cls(**args)
            except TypeError as e:
                raise ValueError(f"{where}: cannot build {data['class_path']}: {e}") from e
        return {k: from_config(v, f"{where}.{k}") for k, v in data.items()}
    return data


def save_pretrained(module: nn.Module, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``module``'s weights (safetensors) and constructor config (JSON) to ``directory``.

    ``dtype`` (e.g. ``torch.float16``) stores the floating-point tensors in that precision, half the size for
    shipping; :func:`from_pretrained` loads them back into the module's own precision.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = to_config(module)
    (directory / CONFIG_NAME).write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    # safetensors refuses shared storage: clone tensors that alias others
    seen: dict[int, str] = {}
    for k, v in state.items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        if ptr in seen and ptr != -1:
            state[k] = v.clone()
        seen[ptr] = k
    save_file(state, str(directory / WEIGHTS_NAME))
    return directory


def from_pretrained(directory: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a module written by :func:`save_pretrained` and load its weights (strict).

    Errors name the file: a missing or malformed ``config.json``, an untrusted ``class_path`` in it, a weights file
    that is not safetensors, or weights that do not fit the module. Older layouts are migrated through the module's
    ``migrate_state_dict`` when it has one.
    """
    from ditkit_core.errors import DataError, naming_file

    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.exists():
            raise FileNotFoundError(f"from_pretrained: {p} is missing")
    with naming_file(cfg_path, "not a ditkit config.json"):
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if not isinstance(cfg, dict) or "class_path" not in cfg:
        raise DataError("expected an object with class_path and init_args", path=cfg_path)
    try:
        cls = _import(cfg["class_path"], str(cfg_path))
        migrate = getattr(cls, "migrate_args", None)  # init arguments of earlier versions
        if callable(migrate) and isinstance(cfg.get("init_args"), dict):
            cfg = {**cfg, "init_args": migrate(cfg["init_args"])}
        module = from_config(cfg, where=str(cfg_path))
    except (UntrustedClassError, DataError):
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ImportError) as e:
        raise DataError(f"cannot build the model: {e}", path=cfg_path) from e
    if not isinstance(module, nn.Module):
        raise DataError(f"class_path {cfg['class_path']!r} is not a torch module", path=cfg_path)
    with naming_file(w_path, "not a safetensors weights file"):
        state = load_file(str(w_path), device=str(map_location))
    migrate = getattr(module, "migrate_state_dict", None)
    if callable(migrate):
        state = migrate(state)
    with naming_file(w_path, "weights do not fit the model of config.json"):
        module.load_state_dict(state, strict=True)
    return module.to(map_location)


LOG_NAME = "train_log.csv"


def export_run(
    module: nn.Module,
    directory: str | Path,
    metrics_csv: str | Path | list[str | Path] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """:func:`save_pretrained` plus the run's loss curve: ``train_log.csv`` (``step`` and every ``*loss*`` column of
    Lightning's CSV ``metrics.csv``, rows without a loss dropped), so a report can plot how the weights were trained.

    Several logs (a resumed run writes one per start) are joined in the order given; a later log's rows replace an
    earlier one's from its first step on.
    """
    import csv

    directory = save_pretrained(module, directory, dtype)
    paths = [metrics_csv] if isinstance(metrics_csv, (str, Path)) else list(metrics_csv or [])
    if not paths:
        return directory
    rows: list[dict[str, str]] = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            new = [r for r in csv.DictReader(f) if r.get("step") not in (None, "")]
        if new:
            first = min(int(r["step"]) for r in new)
            rows = [r for r in rows if int(r["step"]) < first] + new
    cols = ["step"] + sorted({k for r in rows for k in r if k and "loss" in k})
    kept = [r for r in rows if any(r.get(c) not in (None, "") for c in cols[1:])]
    with open(directory / LOG_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(kept)
    return directory
