"""Training-free acceleration of sampling by reusing transformer computation across solver evaluations.

Every cache works on any module that contains :class:`~ditkit_core.nn.DiT` instances, with no registration: it is a
context manager that installs a block runner on those DiTs (:meth:`DiT.runner <ditkit_core.nn.DiT.runner>`) and
reads which evaluation the solver is making from the solver/cache protocol
(:mod:`ditkit_core.sampling.protocol`): step, stage, evaluation index and CFG branch are given, never inferred
from repeated ``t``. Outside a solver (a plain model call) the caches compute everything. State is kept per
``(run, branch)``; a new sampling run starts from scratch, so one ``with`` block can wrap many runs.

* :class:`StepCache` (TeaCache-like): skip the whole block stack when the modulated input of the first block changed
  by less than ``threshold`` (accumulated relative L1 change) since the last full evaluation, reusing that
  evaluation's residual. :meth:`StepCache.calibrate` picks the threshold for a target skip ratio from one run of
  the model at hand (thresholds do not transfer between models).
* :class:`BlockCache` (FORA / block-wise adaptive caching, TaylorSeer-style forecasting): each block is recomputed
  only at its scheduled evaluations; in between its residual is reused (``order=0``) or extrapolated linearly in
  ``t`` (``order=1``). :meth:`BlockCache.calibrate` picks each block's recompute evaluations from a calibration run.
* :class:`ExpertCache` (MoDE): for time-only routed mixture-of-experts blocks, the routes of every solver time are
  fused once into one MLP per block (:meth:`MoEMlp.fuse <ditkit_core.nn.MoEMlp.fuse>`).

A cache that reuses nothing (``StepCache(threshold=0)``, ``BlockCache(interval=1)``) equals the plain forward for
every block partition (tested).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ditkit_core.nn.dit import BlockInputs, DiT
from ditkit_core.nn.layers import FusedExperts, MoEMlp, modulate
from ditkit_core.sampling.protocol import SolverCall, current_call
from ditkit_core.sampling.solvers import EVALS_PER_STEP, time_grid

Proceed = Callable[[Tensor, BlockInputs], Tensor]


def find_dits(model: nn.Module) -> list[DiT]:
    """All :class:`DiT` instances inside ``model`` (the model itself included)."""
    return [m for m in model.modules() if isinstance(m, DiT)]


@dataclass
class CacheStats:
    """Counts of block evaluations run and skipped since the cache was entered, and its peak memory."""

    computed: int = 0
    skipped: int = 0
    per_block: dict[int, int] = field(default_factory=dict)
    peak_bytes: int = 0

    @property
    def skip_ratio(self) -> float:
        total = self.computed + self.skipped
        return self.skipped / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed": self.computed,
            "skipped": self.skipped,
            "skip_ratio": round(self.skip_ratio, 4),
            "peak_MiB": round(self.peak_bytes / 2**20, 3),
        }


def _nbytes(obj: Any) -> int:
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


class _CacheContext:
    """Installs one block runner per DiT on enter, removes it on exit; keeps per-(run, branch) state."""

    name = "cache"

    def __init__(self, model: nn.Module):
        self.dits = find_dits(model)
        if not self.dits:
            raise ValueError(f"{type(self).__name__}: the model contains no ditkit_core.nn.DiT")
        self.stats = CacheStats()
        self._stack: ExitStack | None = None
        self._state: dict[int, dict[str, Any]] = {}  # id(dit) -> {"run": run id, branch: state}

    def _branch_state(self, dit: DiT, call: SolverCall) -> dict[str, Any]:
        st = self._state.setdefault(id(dit), {"run": None})
        if st["run"] != call.run:  # a new sampling run: forget everything
            st.clear()
            st["run"] = call.run
        return st.setdefault(call.branch, {})

    def _track_memory(self) -> None:
        self.stats.peak_bytes = max(self.stats.peak_bytes, _nbytes(list(self._state.values())))

    def _run(self, dit: DiT, h: Tensor, inp: BlockInputs, proceed: Proceed) -> Tensor:
        raise NotImplementedError

    def __enter__(self):
        self.stats = CacheStats()
        self._state = {}
        self._stack = ExitStack()
        for dit in self.dits:
            self._stack.enter_context(dit.runner(self._run))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stack is not None
        self._stack.close()
        self._state = {}  # free the cached tensors


class StepCache(_CacheContext):
    """Skip all blocks at evaluations where the first block's modulated input barely changed.

    Args:
        model: a module containing one or more ``DiT``.
        threshold: accumulated relative L1 change of the indicator below which an evaluation reuses the cached
            residual (0: never skip). Calibrate it per model with :meth:`calibrate`.
        max_skip: at most this many consecutive skipped evaluations per branch.

    Example:
        >>> cache = StepCache.calibrate(model, lambda: sample(fn, noise, steps=32), skip_ratio=0.5)
        >>> with cache:
        ...     x = sample(fn, noise, steps=32)
        >>> cache.stats.skip_ratio
    """

    name = "step"

    def __init__(self, model: nn.Module, threshold: float = 0.05, max_skip: int = 4):
        super().__init__(model)
        if threshold < 0 or max_skip < 0:
            raise ValueError(f"StepCache: threshold={threshold} and max_skip={max_skip} must be >= 0")
        self.threshold, self.max_skip = float(threshold), int(max_skip)
        self.changes: list[float] | None = None  # calibration: relative indicator change per evaluation

    def _run(self, dit: DiT, h: Tensor, inp: BlockInputs, proceed: Proceed) -> Tensor:
        call = current_call()
        if call is None:
            return proceed(h, inp)
        st = self._branch_state(dit, call)
        blk0 = dit.blocks[0]
        shift, scale = blk0.adaLN(inp.c).chunk(6, dim=-1)[:2]
        ind = modulate(blk0.norm1(h), shift, scale)
        depth = len(dit.blocks)
        if st.get("ind") is not None and st["res"].shape == h.shape:
            rel = float((ind - st["ind"]).abs().mean() / st["ind"].abs().mean().clamp_min(1e-8))
            if self.changes is not None and call.branch == "cond":
                self.changes.append(rel)
            st["acc"] += rel
            st["ind"] = ind
            if st["acc"] < self.threshold and st["skips"] < self.max_skip:
                st["skips"] += 1
                self.stats.skipped += depth
                return h + st["res"]
        out = proceed(h, inp)
        st.update(ind=ind, res=out - h, acc=0.0, skips=0)
        self.stats.computed += depth
        self._track_memory()
        return out

    @staticmethod
    def simulate(changes: list[float], threshold: float, max_skip: int) -> float:
        """Skip ratio the skip rule gives on a recorded sequence of indicator changes (first call always runs)."""
        acc, skips, skipped = 0.0, 0, 0
        for rel in changes:
            acc += rel
            if acc < threshold and skips < max_skip:
                skips += 1
                skipped += 1
            else:
                acc, skips = 0.0, 0
        return skipped / (len(changes) + 1)

    @classmethod
    def calibrate(
        cls, model: nn.Module, run: Callable[[], object], skip_ratio: float = 0.5, max_skip: int = 4
    ) -> StepCache:
        """Pick the threshold that skips ``skip_ratio`` of the evaluations of ``run()`` on this model.

        ``run()`` samples once (nothing is skipped while calibrating); the indicator changes it records are replayed
        through the skip rule and the threshold is found by bisection. Returns the calibrated cache.
        """
        if not 0.0 <= skip_ratio < 1.0:
            raise ValueError(f"StepCache.calibrate: skip_ratio={skip_ratio} must be in [0, 1)")
        recorder = cls(model, threshold=0.0, max_skip=max_skip)
        recorder.changes = []
        with recorder:
            run()
        changes = recorder.changes
        if not changes:
            raise ValueError("StepCache.calibrate: run() made no solver evaluations through the model")
        lo, hi = 0.0, max(sum(changes), 1e-6) * 2
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if cls.simulate(changes, mid, max_skip) < skip_ratio:
                lo = mid
            else:
                hi = mid
        return cls(model, threshold=hi, max_skip=max_skip)


class BlockCache(_CacheContext):
    """Per-block reuse of residuals across solver evaluations, with optional first-order Taylor forecasting.

    Args:
        model: a module containing one or more ``DiT``.
        schedule: ``{block index: set of evaluation indices to recompute}`` (evaluation 0 always computes).
            Blocks missing from the dict are recomputed every ``interval`` evaluations.
        interval: default recompute period (1 = never reuse).
        order: 0 reuses the last residual; 1 extrapolates linearly in ``t`` from the last two evaluations.
    """

    name = "block"

    def __init__(
        self, model: nn.Module, schedule: dict[int, set[int]] | None = None, interval: int = 2, order: int = 1
    ):
        super().__init__(model)
        if order not in (0, 1):
            raise ValueError(f"BlockCache: order must be 0 or 1, got {order}")
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"BlockCache: interval must be an integer >= 1, got {interval!r}")
        self.schedule, self.interval, self.order = schedule or {}, interval, order
        self.record: list[dict[int, Tensor]] | None = None  # calibration: residual per block per evaluation

    def recompute(self, block: int, index: int) -> bool:
        if block in self.schedule:
            return index in self.schedule[block] or index == 0
        return index % self.interval == 0

    def _run(self, dit: DiT, h: Tensor, inp: BlockInputs, proceed: Proceed) -> Tensor:
        call = current_call()
        if call is None:
            return proceed(h, inp)
        st = self._branch_state(dit, call)
        t = inp.t.float().mean()
        rec = {} if (self.record is not None and call.branch == "cond") else None
        for i in range(len(dit.blocks)):
            past = st.setdefault(i, [])
            if not past or self.recompute(i, call.index) or past[-1][1].shape != h.shape:
                out = dit.block(i, h, inp)
                res = out - h
                past.append((t, res))
                del past[:-2]
                self.stats.computed += 1
                self.stats.per_block[i] = self.stats.per_block.get(i, 0) + 1
                h = out
            else:
                t1, r1 = past[-1]
                if self.order == 1 and len(past) == 2 and float(t1 - past[0][0]) != 0.0:
                    t0, r0 = past[0]
                    res = r1 + (t - t1) / (t1 - t0) * (r1 - r0)
                else:
                    res = r1
                self.stats.skipped += 1
                h = h + res
            if rec is not None:
                rec[i] = res.detach()
        if rec is not None:
            self.record.append(rec)
        self._track_memory()
        return h

    @classmethod
    def calibrate(
        cls, model: nn.Module, run: Callable[[], object], threshold: float = 0.1, order: int = 1, max_gap: int = 4
    ) -> BlockCache:
        """Choose each block's recompute evaluations from a calibration run (block-wise adaptive caching).

        ``run()`` performs one full sampling with ``model`` (every block evaluated). For each block the relative L1
        change of its residual since the last recompute is measured evaluation by evaluation; when it exceeds
        ``threshold`` (or ``max_gap`` evaluations passed) the block is scheduled for recomputation.

        Returns:
            a :class:`BlockCache` with the chosen schedule.
        """
        recorder = cls(model, interval=1, order=0)
        recorder.record = []
        with recorder:
            run()
        calls = recorder.record
        n_blocks = len(calls[0]) if calls else 0
        schedule: dict[int, set[int]] = {}
        for i in range(n_blocks):
            chosen, anchor = {0}, calls[0][i]
            for c in range(1, len(calls)):
                r = calls[c][i]
                acc = float((r - anchor).abs().mean() / anchor.abs().mean().clamp_min(1e-8))
                if acc > threshold or c - max(chosen) >= max_gap:
                    chosen.add(c)
                    anchor = r
            schedule[i] = chosen
        return cls(model, schedule=schedule, order=order)


class ExpertCache(_CacheContext):
    """MoDE expert caching: fused routes per solver time for time-routed mixture-of-experts DiTs.

    Build it for the times the solver will evaluate (:func:`solver_times`); an evaluation at a time outside that set
    (or with different times in one batch) uses normal routing, so results never change. Rebuild (:meth:`build`)
    after the weights change.

    Args:
        model: a module containing DiTs whose MoE blocks use ``moe_router="time"``.
        times: the solver's evaluation times ``[K]``.

    Example:
        >>> with ExpertCache(policy, solver_times(4)):
        ...     actions = policy.predict_action(obs, task_id, steps=4)
    """

    name = "expert"

    def __init__(self, model: nn.Module, times: Tensor):
        super().__init__(model)
        self.dits = [d for d in self.dits if d.config.moe_experts]
        if not self.dits:
            raise ValueError("ExpertCache: the model contains no MoE DiT (DiTConfig.moe_experts=0)")
        for d in self.dits:
            if d.config.moe_router != "time":
                raise ValueError(
                    f"ExpertCache: routes must depend on t only; DiTConfig.moe_router="
                    f"{d.config.moe_router!r} (use 'time')"
                )
        self.times = times.flatten().float()
        self.hits = self.misses = 0
        self._tables: dict[int, list[list[FusedExperts]]] = {}
        self.build()

    @torch.no_grad()
    def build(self) -> None:
        """(Re)compute the fused experts from the current weights: ``table[dit][time][block]``."""
        self._tables = {}
        for dit in self.dits:
            p = next(dit.parameters())
            temb = dit.t_embed(self.times.to(p.device))  # [K, d]
            per_block = [blk.mlp.fuse(temb) if isinstance(blk.mlp, MoEMlp) else None for blk in dit.blocks]
            self._tables[id(dit)] = [
                [pb[j] if pb is not None else None for pb in per_block] for j in range(len(self.times))
            ]

    def _run(self, dit: DiT, h: Tensor, inp: BlockInputs, proceed: Proceed) -> Tensor:
        t = inp.t.float()
        dist = (self.times.to(t.device)[:, None] - t[None]).abs()  # [K, b]
        j = int(dist[:, 0].argmin())
        if float(dist[j].max()) > 1e-6:
            self.misses += 1
            return proceed(h, inp)
        self.hits += 1
        return proceed(h, dataclasses.replace(inp, experts=self._tables[id(dit)][j]))

    def __exit__(self, *exc: object) -> None:  # keep the fused tables for the next ``with``
        assert self._stack is not None
        self._stack.close()


def solver_times(steps: int, method: str = "euler", schedule: str = "uniform", **grid_kw: Any) -> Tensor:
    """The distinct times at which a fixed-step solver of :func:`~ditkit_core.sampling.sample` evaluates."""
    g = time_grid(steps, schedule, **grid_kw)
    t0, t1 = g[:-1], g[1:]
    if method == "euler":
        ts = [t0]
    elif method == "midpoint":
        ts = [t0, t0 + 0.5 * (t1 - t0)]
    elif method == "heun":
        ts = [t0, t1]
    elif method == "rk4":
        ts = [t0, t0 + 0.5 * (t1 - t0), t1]
    else:
        raise ValueError(f"solver_times: no fixed grid for method {method!r}")
    return torch.unique(torch.cat(ts))


def evaluations(steps: int, method: str = "euler") -> int:
    """Velocity evaluations of a fixed-step solver run (per CFG branch)."""
    return math.prod((steps, EVALS_PER_STEP[method]))


__all__ = ["BlockCache", "CacheStats", "ExpertCache", "StepCache", "evaluations", "find_dits", "solver_times"]
