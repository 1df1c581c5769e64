"""Training-free acceleration of sampling by reusing transformer computation across solver steps.

Both caches work on any module that contains :class:`~ditkit_core.nn.DiT` instances, with no registration:
they are context managers that temporarily replace ``DiT.run_blocks`` on those instances.

* :class:`StepCache` (TeaCache-like): skip the whole block stack at a step when the modulated input of the
  first block changed by less than ``threshold`` (accumulated relative L1 change) since the last full
  evaluation, and reuse that evaluation's residual ``blocks(h) - h``.
* :class:`BlockCache` (FORA / Block-wise Adaptive Caching, with TaylorSeer-style forecasting): each block is
  recomputed only at its scheduled calls; in between its residual is reused (``order=0``) or extrapolated
  linearly in ``t`` from its last two evaluations (``order=1``). :meth:`BlockCache.calibrate` picks each block's
  recompute calls from how fast its residual changes on a calibration run.

Classifier-free guidance calls the model twice at the same ``t``; the caches keep one state per branch
(the n-th call at a given time is branch n). A call at an earlier ``t`` than the previous one starts a new sampling
run: the caches reset, so one ``with`` block can wrap many runs (e.g. a policy re-planning every chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ditkit_core.nn.dit import DiT
from ditkit_core.nn.layers import modulate


def find_dits(model: nn.Module) -> list[DiT]:
    """All :class:`DiT` instances inside ``model`` (the model itself included)."""
    return [m for m in model.modules() if isinstance(m, DiT)]


class _Patch:
    """Swap ``dit.run_blocks`` for ``fn`` until exit."""

    def __init__(self, dit: DiT, fn: Callable):
        self.dit, self.fn = dit, fn

    def __enter__(self) -> _Patch:
        self.dit.run_blocks = self.fn  # instance attribute shadows the method
        return self

    def __exit__(self, *exc) -> None:
        del self.dit.run_blocks


@dataclass
class _BranchClock:
    """Tells apart the calls of one solver evaluation (CFG branches) by their repeated ``t``."""

    last_t: Tensor | None = None
    branch: int = 0
    new_run: bool = False  # time went backwards: a new sampling run started (caches reset their state)

    def tick(self, t: Tensor) -> int:
        same = self.last_t is not None and self.last_t.shape == t.shape and torch.equal(self.last_t, t)
        self.new_run = self.last_t is not None and not same and bool(t.float().mean() < self.last_t.float().mean())
        self.branch = self.branch + 1 if same else 0
        self.last_t = t.detach().clone()
        return self.branch


@dataclass
class CacheStats:
    """Counts of block evaluations run and skipped since the cache was entered."""

    computed: int = 0
    skipped: int = 0
    per_block: dict[int, int] = field(default_factory=dict)

    @property
    def skip_ratio(self) -> float:
        total = self.computed + self.skipped
        return self.skipped / total if total else 0.0


class _CacheContext:
    """Context-manager plumbing shared by the caches: patch every DiT's ``run_blocks`` on enter, restore on exit."""

    dits: list[DiT]
    stats: CacheStats
    _stack: ExitStack | None = None

    def _make(self, dit: DiT) -> Callable:
        raise NotImplementedError

    def __enter__(self):
        self.stats = CacheStats()
        self._stack = ExitStack()
        for dit in self.dits:
            self._stack.enter_context(_Patch(dit, self._make(dit)))
        return self

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        self._stack.close()


class StepCache(_CacheContext):
    """Skip all blocks at steps where the first block's modulated input barely changed.

    Args:
        model: a module containing one or more ``DiT``.
        threshold: accumulated relative L1 change of the indicator below which a step reuses the cached residual.
        max_skip: at most this many consecutive skipped calls per branch.

    Example:
        >>> with StepCache(model, threshold=0.05) as cache:
        ...     x = sample(fn, noise, steps=32)
        >>> cache.stats.skip_ratio
    """

    def __init__(self, model: nn.Module, threshold: float = 0.05, max_skip: int = 4):
        self.dits = find_dits(model)
        if not self.dits:
            raise ValueError("StepCache: the model contains no ditkit_core.nn.DiT")
        self.threshold, self.max_skip = threshold, max_skip
        self.stats = CacheStats()
        self._stack: ExitStack | None = None

    def _make(self, dit: DiT) -> Callable:
        clock, state = _BranchClock(), {}
        original = type(dit).run_blocks

        def run_blocks(h: Tensor, inp) -> Tensor:
            branch = clock.tick(inp.t)
            if clock.new_run:
                state.clear()
            blk0 = dit.blocks[0]
            shift, scale = blk0.adaLN(inp.c).chunk(6, dim=-1)[:2]
            ind = modulate(blk0.norm1(h), shift, scale)
            st = state.setdefault(branch, {"ind": None, "res": None, "acc": 0.0, "skips": 0})
            if st["ind"] is not None and st["res"] is not None and st["res"].shape == h.shape:
                rel = ((ind - st["ind"]).abs().mean() / st["ind"].abs().mean().clamp_min(1e-8)).item()
                st["acc"] += rel
                st["ind"] = ind
                if st["acc"] < self.threshold and st["skips"] < self.max_skip:
                    st["skips"] += 1
                    self.stats.skipped += len(dit.blocks)
                    return h + st["res"]
            out = original(dit, h, inp)
            st.update(ind=ind, res=out - h, acc=0.0, skips=0)
            self.stats.computed += len(dit.blocks)
            return out

        return run_blocks


class BlockCache(_CacheContext):
    """Per-block reuse of residuals across solver calls, with optional first-order Taylor forecasting.

    Args:
        model: a module containing one or more ``DiT``.
        schedule: ``{block index: set of call indices to recompute}``; calls count per branch from 0.
            Blocks missing from the dict are recomputed every ``interval`` calls.
        interval: default recompute period (1 = never reuse).
        order: 0 reuses the last residual; 1 extrapolates linearly in ``t`` from the last two evaluations.
    """

    def __init__(
        self, model: nn.Module, schedule: dict[int, set[int]] | None = None, interval: int = 2, order: int = 1
    ):
        self.dits = find_dits(model)
        if not self.dits:
            raise ValueError("BlockCache: the model contains no ditkit_core.nn.DiT")
        if order not in (0, 1):
            raise ValueError(f"BlockCache: order must be 0 or 1, got {order}")
        if interval < 1:
            raise ValueError(f"BlockCache: interval must be >= 1, got {interval}")
        self.schedule, self.interval, self.order = schedule or {}, interval, order
        self.stats = CacheStats()
        self.record: list[dict[int, Tensor]] | None = None  # calibration: residual per block per call
        self._stack: ExitStack | None = None

    def recompute(self, block: int, call: int) -> bool:
        if block in self.schedule:
            return call in self.schedule[block] or call == 0
        return call % self.interval == 0

    def _make(self, dit: DiT) -> Callable:
        clock, calls, hist = _BranchClock(), {}, {}

        def run_blocks(h: Tensor, inp) -> Tensor:
            branch = clock.tick(inp.t)
            if clock.new_run:  # call indices of the schedule count from the start of each sampling run
                calls.clear()
                hist.clear()
            call = calls.get(branch, 0)
            calls[branch] = call + 1
            t = inp.t.float().mean()
            rec = {} if self.record is not None else None
            for i, blk in enumerate(dit.blocks):
                past = hist.setdefault((branch, i), [])
                if not past or self.recompute(i, call) or past[-1][1].shape != h.shape:
                    out = blk(h, inp)
                    res = out - h
                    past.append((t, res))
                    del past[:-2]
                    self.stats.computed += 1
                    self.stats.per_block[i] = self.stats.per_block.get(i, 0) + 1
                    h = out
                else:
                    (t1, r1) = past[-1]
                    if self.order == 1 and len(past) == 2 and float(t1 - past[0][0]) != 0.0:
                        t0, r0 = past[0]
                        res = r1 + (t - t1) / (t1 - t0) * (r1 - r0)
                    else:
                        res = r1
                    self.stats.skipped += 1
                    h = h + res
                if rec is not None:
                    rec[i] = res.detach()
            if rec is not None and branch == 0:
                self.record.append(rec)
            return h

        return run_blocks

    @classmethod
    def calibrate(
        cls, model: nn.Module, run: Callable[[], object], threshold: float = 0.1, order: int = 1, max_gap: int = 4
    ) -> BlockCache:
        """Choose each block's recompute calls from a calibration run (Block-wise Adaptive Caching).

        ``run()`` performs one full sampling with ``model`` (every block evaluated). For each block the relative
        L1 change of its residual since the last recompute accumulates call by call; when it exceeds
        ``threshold`` (or ``max_gap`` calls passed) the block is scheduled for recomputation.

        Returns:
            a :class:`BlockCache` with the chosen schedule (use it as a context manager for later sampling).
        """
        recorder = cls(model, interval=1, order=0)
        recorder.record = []
        with recorder:
            run()
        calls = recorder.record
        n_blocks = len(calls[0]) if calls else 0
        schedule: dict[int, set[int]] = {}
        for i in range(n_blocks):
            chosen, anchor, acc = {0}, calls[0][i], 0.0
            for c in range(1, len(calls)):
                r = calls[c][i]
                acc = ((r - anchor).abs().mean() / anchor.abs().mean().clamp_min(1e-8)).item()
                if acc > threshold or c - max(chosen) >= max_gap:
                    chosen.add(c)
                    anchor = r
            schedule[i] = chosen
        return cls(model, schedule=schedule, order=order)
