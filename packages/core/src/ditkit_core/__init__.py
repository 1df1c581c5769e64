"""ditkit_core: the flow-matching Diffusion Transformer shared by every ditkit domain.

Conventions (every package follows them):

* Time runs from noise to data: ``t = 0`` is noise ``x_0 ~ N(0, I)``, ``t = 1`` is data ``x_1``.
  The linear (rectified) path is ``x_t = (1 - t) * x_0 + t * x_1`` with target velocity ``u_t = x_1 - x_0``.
* Conversion to the diffusers / SD3 "flow-match Euler" convention: diffusers uses ``sigma = 1 - t``
  (``sigma = 1`` is noise), ``x_sigma = sigma * noise + (1 - sigma) * data`` and its transformers predict
  ``noise - data``. Hence ``t = 1 - sigma``, ``v_ditkit = -v_diffusers``; a diffusers timestep ``T`` in
  ``[0, 1000]`` is ``sigma = T / 1000``. Their "shift" ``sigma' = s * sigma / (1 + (s - 1) * sigma)``
  equals :func:`ditkit_core.flow.shift_time` with the same ``s``.
* Token batches: ``x [b, n, d]``, ``mask [b, n]`` bool (True = real token), ``pos [b, n, k]``,
  ``context [b, m, c]`` with ``context_mask [b, m]``, global ``cond [b, c]`` (or class labels ``[b]``).

Importing this package is light: it imports torch only when a name above is first used. Import submodules for more.
"""

from typing import Any

__all__ = ["DiT", "DiTConfig", "TokenBatch", "Tokenizer"]
__version__ = "0.1.0"
_LAZY = {
    "DiT": "ditkit_core.nn",
    "DiTConfig": "ditkit_core.nn",
    "TokenBatch": "ditkit_core.tokenizers",
    "Tokenizer": "ditkit_core.tokenizers",
}


def __getattr__(name: str) -> Any:  # lazy: `import ditkit_core` (and the `ditkit` command) does not import torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ditkit_core' has no attribute {name!r}")
