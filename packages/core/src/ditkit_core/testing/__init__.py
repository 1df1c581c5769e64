"""Contract checks every domain reuses in its tests (plain functions: call them from pytest tests).

* :func:`check_tokenizer_round_trip`: ``decode(encode(raw))`` reproduces ``raw``.
* :func:`check_module_fits_batch`: a few optimiser steps on one batch lower the flow-matching loss.
* :func:`check_pretrained_round_trip`: ``save_pretrained`` / ``from_pretrained`` give identical outputs.
* :func:`perturb_weights`: moves a zero-initialised model off zero so its paths carry signal in tests.
* :func:`run_config`: runs ``ditkit fit`` on a YAML config in-process (debug configs of every app).
* :func:`config_copy`: an app YAML written elsewhere with some fields replaced (e.g. its run and data folders).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def _close(a: Any, b: Any, atol: float, path: str = "raw") -> None:
    if isinstance(a, Tensor):
        torch.testing.assert_close(a, b, atol=atol, rtol=0, msg=lambda m: f"{path}: {m}")
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], atol, f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, atol, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def check_tokenizer_round_trip(
    tokenizer: Any, raw: Any, atol: float = 0.0, compare: Callable[[Any, Any], None] | None = None
) -> None:
    """Assert ``decode(encode(raw)) == raw`` (within ``atol``) and that tokens have width ``token_dim``."""
    tokens = tokenizer.encode(raw)
    assert tokens.x.shape[-1] == tokenizer.token_dim, (
        f"tokens have width {tokens.x.shape[-1]}, tokenizer.token_dim={tokenizer.token_dim}"
    )
    back = tokenizer.decode(tokens)
    (compare or (lambda a, b: _close(a, b, atol)))(raw, back)


def check_module_fits_batch(module: Any, batch: Any, steps: int = 30, lr: float = 3e-3, drop: float = 0.2) -> None:
    """Assert that ``steps`` Adam steps on one batch lower the module's flow-matching loss by ``drop`` (fraction).

    The loss is evaluated with fixed noise before and after so the comparison is exact.
    """
    torch.manual_seed(0)
    module.train()
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)

    def loss(seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return module.flow_loss(module.tokenize(batch), g)["loss"]

    with torch.no_grad():
        before = float(loss(123))
    for i in range(steps):
        opt.zero_grad()
        loss(i).backward()
        opt.step()
    with torch.no_grad():
        after = float(loss(123))
    assert after < (1 - drop) * before, f"loss did not fall enough: {before:.4f} -> {after:.4f}"


def check_pretrained_round_trip(
    module: torch.nn.Module, inputs: Callable[[torch.nn.Module], Tensor], directory: str | Path
) -> torch.nn.Module:
    """Save, reload and compare ``inputs(module)`` outputs exactly; returns the reloaded module."""
    from ditkit_core.lightning.pretrained import from_pretrained, save_pretrained

    module.eval()
    save_pretrained(module, directory)
    loaded = from_pretrained(directory).eval()
    assert type(loaded) is type(module)
    with torch.no_grad():
        torch.testing.assert_close(inputs(loaded), inputs(module), atol=0, rtol=0)
    return loaded


def perturb_weights(module: torch.nn.Module, scale: float = 0.1, seed: int | None = 0) -> torch.nn.Module:
    """Add ``scale * N(0, 1)`` to every parameter in place, so adaLN-Zero paths are active; returns the module.

    ``seed=None`` draws from torch's global generator (after the caller's ``torch.manual_seed``).
    """
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
    return module


def run_config(config: str | Path, *overrides: str, command: str = "fit") -> Any:
    """Run ``ditkit <command> --config <config> <overrides>`` in-process and return the LightningCLI object."""
    from ditkit_core.lightning.cli import FlowCLI

    return FlowCLI(args=[command, "--config", str(config), *overrides])


def config_copy(src: str | Path, dest: str | Path, updates: dict[str, Any]) -> Path:
    """Write the YAML config ``src`` to ``dest`` with dotted fields replaced, e.g.
    ``{"trainer.default_root_dir": tmp, "data.init_args.root": tmp / "data"}`` (paths are written as strings).

    Raises:
        KeyError: a dotted field whose parent is not a mapping of the config.
    """
    import yaml

    cfg = yaml.safe_load(Path(src).read_text())
    for key, value in updates.items():
        *parents, leaf = key.split(".")
        node = cfg
        for name in parents:
            if not isinstance(node.get(name), dict):
                raise KeyError(f"{src}: {key!r}: {name!r} is not a mapping of the config")
            node = node[name]
        node[leaf] = str(value) if isinstance(value, Path) else value
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg))
    return dest


__all__ = [
    "check_module_fits_batch",
    "check_pretrained_round_trip",
    "check_tokenizer_round_trip",
    "config_copy",
    "perturb_weights",
    "run_config",
]
