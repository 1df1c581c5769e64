"""``save_pretrained`` / ``from_pretrained``: ``model.safetensors`` + ``config.json``; loading never unpickles.

``config.json`` records the module as ``{"class_path": ..., "init_args": ...}`` (the LightningCLI form).
Init args are serialised recursively: JSON scalars, lists, dicts, dataclasses, and objects whose ``__init__``
arguments are stored as attributes of the same name (the convention ditkit tokenizers follow). Loading imports
the named classes and calls their constructors with those arguments; no pickled code is ever executed.
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


def _import(path: str) -> type:
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


def from_config(data: Any) -> Any:
    """Inverse of :func:`to_config`."""
    if isinstance(data, list):
        return [from_config(v) for v in data]
    if isinstance(data, dict):
        if set(data) == {"class_path", "init_args"}:
            cls = _import(data["class_path"])
            args = {k: from_config(v) for k, v in data["init_args"].items()}
            return cls(**args)
        return {k: from_config(v) for k, v in data.items()}
    return data


def save_pretrained(module: nn.Module, directory: str | Path) -> Path:
    """Write ``module``'s weights (safetensors) and constructor config (JSON) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = to_config(module)
    (directory / CONFIG_NAME).write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
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
    """Rebuild a module written by :func:`save_pretrained` and load its weights (strict)."""
    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.exists():
            raise FileNotFoundError(f"from_pretrained: {p} is missing")
    module = from_config(json.loads(cfg_path.read_text()))
    state = load_file(str(w_path), device=str(map_location))
    module.load_state_dict(state, strict=True)
    return module.to(map_location)
