"""Which training-free caches a policy's sampling runs under (the core's caches, composed per call).

A policy names its cache with ``sampler.cache`` (a :class:`~ditkit_core.lightning.CacheConfig`) or per call with one
of :data:`CACHES`:

* ``none``: plain sampling;
* ``expert``: MoDE expert caching (:class:`ditkit_core.sampling.ExpertCache`): the routes of a time-routed MoE are
  fused per solver time, exactly the routed result;
* ``block``: block-wise adaptive caching (:class:`ditkit_core.sampling.BlockCache`), with the per-block schedule
  calibrated on demonstration observations (:meth:`PolicyModule.calibrate_block_cache
  <ditkit_robotics.PolicyModule.calibrate_block_cache>`), else every ``interval`` evaluations;
* ``expert+block``: both; the expert cache feeds the block cache;
* ``step`` (a ``CacheConfig`` only): the core's StepCache.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from ditkit_core.lightning import CacheConfig

CACHES = ("none", "expert", "block", "expert+block")


def split_cache(cache: CacheConfig | str | None, default: CacheConfig) -> tuple[bool, CacheConfig]:
    """``(expert caching wanted, the core cache config)`` for a cache argument (None: ``default``).

    Raises:
        ValueError: a name outside :data:`CACHES`, or something that is neither a name nor a ``CacheConfig``.
    """
    if cache is None:
        cache = default
    if isinstance(cache, CacheConfig):
        return cache.kind == "expert", cache
    if not isinstance(cache, str) or cache not in CACHES:
        raise ValueError(f"cache={cache!r}: choose one of {CACHES} or pass a CacheConfig")
    kind = "block" if "block" in cache else ("expert" if cache == "expert" else "none")
    base = default if default.kind == kind else CacheConfig(kind=kind)
    return "expert" in cache, base


class ComposedCache:
    """Several cache contexts entered in order (the first installed block runner is called first).

    ``stats`` are those of the last cache (the one that decides which blocks run).
    """

    def __init__(self, caches: list[Any]):
        if not caches:
            raise ValueError("ComposedCache: no caches")
        self.caches = caches
        self._stack: ExitStack | None = None

    @property
    def stats(self) -> Any:
        return self.caches[-1].stats

    def __enter__(self) -> ComposedCache:
        self._stack = ExitStack()
        for c in self.caches:
            self._stack.enter_context(c)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None


__all__ = ["CACHES", "ComposedCache", "split_cache"]
