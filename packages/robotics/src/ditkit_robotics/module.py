"""``PolicyModule``: a flow-matching DiT policy over action chunks (Diffusion Policy / pi0 / MoDE style).

Tokens are the normalised actions of a chunk (``horizon`` tokens of width ``action_dim``, learned positions);
the observation history (and the task) condition the DiT through adaLN (``cond``) and cross-attention
(``context``), filled by the observation encoder in :meth:`PolicyModule.condition`. Sampling integrates the learned
velocity from noise (t = 0) to actions (t = 1) with a few solver steps through the core's ``generate``; the
receding-horizon controller executes the first ``n_action_steps`` actions and re-plans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ditkit_core.lightning import CacheConfig, FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.sampling import BlockCache, ExpertCache, solver_times
from ditkit_core.tokenizers import TokenBatch
from ditkit_robotics.caching import ComposedCache, split_cache
from ditkit_robotics.inputs import check_policy_inputs, check_task_count
from ditkit_robotics.model import ObsEncoder
from ditkit_robotics.tokenizer import ActionChunkTokenizer


class PolicyModule(FlowMatchingModule):
    """Flow-matching action-chunk policy.

    Args:
        tokenizer: the :class:`ActionChunkTokenizer` (horizon, dims, normalisation, env bounds).
        model: DiT config; ``in_dim`` = ``action_dim`` (derived when 0), ``cond_dim`` = encoder width (> 0),
            ``context_dim`` = ``cond_dim`` or 0, ``learned_pos`` >= ``horizon``. Dense or MoE
            (``moe_router="time"`` = MoDE, with expert caching through ``sampler.cache: {kind: expert}``).
        num_tasks: tasks of a multi-task policy (task embedding; 0/1 = single task); must match the data's tasks.
        n_action_steps: actions executed per chunk before re-planning.
        flow, optim, sampler, seed: see :class:`ditkit_core.lightning.FlowMatchingModule` (the flat arguments of
            earlier versions, ``lr``, ``sample_steps``, ..., are migrated by the core).
    """

    def __init__(
        self,
        tokenizer: ActionChunkTokenizer,
        model: DiTConfig,
        num_tasks: int = 0,
        n_action_steps: int = 8,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ):
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or not 0 <= num_tasks <= 1_000_000:
            raise ConfigError(f"PolicyModule.num_tasks={num_tasks!r}: must be an integer in [0, 1000000]")
        self.num_tasks, self.n_action_steps = num_tasks, n_action_steps
        self._expert_caches: dict[tuple, tuple[list, int, ExpertCache]] = {}  # grid -> (params, version, cache)
        self._block_schedules: dict[tuple[int, str, str], dict[int, set[int]]] = {}
        self._with_experts = False  # the generate() call running asked for expert caching besides its cache
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        horizon = self.tokenizer.horizon  # (a checkpoint's tokenizer is rebuilt from its data by the core)
        if (
            isinstance(n_action_steps, bool)
            or not isinstance(n_action_steps, int)
            or not 1 <= n_action_steps <= horizon
        ):
            raise ConfigError(f"PolicyModule.n_action_steps={n_action_steps!r}: must be in [1, horizon={horizon}]")
        tok = self.tokenizer
        self.encoder = ObsEncoder(tok.obs_dim, tok.n_obs_steps, self.config.cond_dim, num_tasks)

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Checkpoint hyper-parameters -> init arguments: the core's migration of flat arguments, without the
        ``_class_path`` / ``_instantiator`` entries LightningCLI records next to them."""
        args = {k: v for k, v in args.items() if k not in ("_class_path", "_instantiator")}
        return super().migrate_args(args)

    # ------------------------------------------------------------------ hooks
    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """``in_dim`` from the tokenizer; the encoder width, cross-attention and positions checked."""
        config = super().resolve_config(config)
        if config.cond_dim <= 0:
            raise ConfigError(f"DiTConfig.cond_dim={config.cond_dim}: must be > 0 (the observation encoder width)")
        if config.context_dim not in (0, config.cond_dim):
            raise ConfigError(
                f"DiTConfig.context_dim={config.context_dim}: must be 0 or cond_dim={config.cond_dim} (the encoder's "
                "context tokens have the encoder width)"
            )
        if config.learned_pos < self.tokenizer.horizon:
            raise ConfigError(
                f"DiTConfig.learned_pos={config.learned_pos}: must be >= tokenizer.horizon={self.tokenizer.horizon}"
            )
        return config

    def setup(self, stage: str) -> None:
        """Check the data's task count against ``num_tasks``; fit the normaliser from the training data."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None:
            return
        check_task_count(self.num_tasks, dm)
        if not bool(self.tokenizer.fitted) and hasattr(dm, "stats"):
            self.tokenizer.fit({k: v.to(self.device) for k, v in dm.stats().items()})

    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        if "obs" not in batch:
            raise KeyError(f"PolicyModule.tokenize: batch needs key 'obs', got keys {sorted(batch)}")
        return self.tokenizer.encode(batch)

    def condition(self, tokens: TokenBatch, drop: Tensor | None) -> TokenBatch:
        """Encode the normalised history (``meta["obs"] [b, n_obs, obs_dim]``, ``meta["task_id"] [b]``) into
        ``cond [b, c]`` and ``context [b, n_obs (+1), c]`` (none when ``context_dim`` is 0).

        Dropped samples (``drop``) keep their encoding here; the DiT swaps in its null condition and hides the context.
        """
        if "obs" not in tokens.meta:
            raise KeyError("PolicyModule.condition: tokens.meta needs 'obs' (normalised observation history)")
        cond, ctx = self.encoder(tokens.meta["obs"], tokens.meta.get("task_id"))
        return tokens.replace(cond=cond, context=ctx if self.config.context_dim else None)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(
        self,
        template: TokenBatch,
        *,
        steps: int | None = None,
        method: str | None = None,
        schedule: str | None = None,
        cache: CacheConfig | str | None = None,
        **kwargs: Any,
    ) -> TokenBatch:
        """The core's :meth:`~ditkit_core.lightning.FlowMatchingModule.generate`, with the policy's caches.

        ``cache`` may also name one of :data:`ditkit_robotics.caching.CACHES` (``expert+block`` composes both).
        The caches are built for this call's solver grid (``steps`` / ``method`` / ``schedule``).
        """
        self._with_experts, config = split_cache(cache, self.sampler.cache)
        try:
            return super().generate(template, steps=steps, method=method, schedule=schedule, cache=config, **kwargs)
        finally:
            self._with_experts = False

    def make_cache(self, config: CacheConfig, calibrate: Any = None, grid: dict[str, Any] | None = None) -> Any:
        """The cache context of one :meth:`generate` call (None for none).

        ``expert``: the :class:`ExpertCache` of the call's solver grid, kept between calls and rebuilt when the
        weights change; ``block``: a :class:`BlockCache` with the schedule of :meth:`calibrate_block_cache` for this
        grid (else every ``config.interval`` evaluations); ``step``: the core's StepCache.
        """
        s = self.sampler
        steps, method, schedule = (
            (grid["steps"], grid["method"], grid["schedule"]) if grid else (s.steps, s.method, s.schedule)
        )
        caches = []
        if self._with_experts or config.kind == "expert":
            caches.append(self.expert_cache(steps, method, schedule))
        if config.kind == "block":
            plan = self._block_schedules.get((steps, method, schedule))
            caches.append(BlockCache(self.model, schedule=plan, interval=config.interval, order=config.order))
        elif config.kind == "step":
            caches.append(super().make_cache(config, calibrate, grid))
        return None if not caches else caches[0] if len(caches) == 1 else ComposedCache(caches)

    def expert_cache(
        self, steps: int | None = None, method: str | None = None, schedule: str | None = None
    ) -> ExpertCache:
        """MoDE expert cache (fused routes per solver time) for a solver grid (defaults: ``sampler``).

        Built once per grid and kept; rebuilt when a weight of the DiT was changed in place since (an optimiser
        step, ``load_state_dict``, an edit under ``no_grad``).

        Raises:
            ValueError: the DiT is dense, or its routes depend on the tokens (``moe_router`` other than ``time``),
                or ``method`` has no fixed grid.
        """
        s = self.sampler
        key = (s.steps if steps is None else steps, method or s.method, schedule or s.schedule, s.shift, s.sway)
        hit = self._expert_caches.get(key)
        if hit is None or _version(hit[0]) != hit[1]:
            params = list(self.model.parameters())
            times = solver_times(key[0], key[1], key[2], shift=s.shift, sway=s.sway)
            hit = self._expert_caches[key] = (params, _version(params), ExpertCache(self.model, times.to(self.device)))
        return hit[2]

    @torch.no_grad()
    def calibrate_block_cache(
        self,
        obs: Tensor,
        task_id: Tensor | None,
        steps: int | None = None,
        threshold: float = 0.15,
        max_gap: int = 3,
        method: str | None = None,
    ) -> BlockCache:
        """Block-wise adaptive caching: per-block recompute evaluations chosen on a batch of demonstration
        observations (``obs [b, n_obs_steps, obs_dim]`` raw, ``task_id [b]``) at ``steps`` solver steps.

        The schedule is kept for this grid: ``cache="block"`` / ``"expert+block"`` use it from then on.

        Returns:
            the calibrated :class:`BlockCache` (its ``schedule`` maps block -> recomputed evaluations).
        """
        s = self.sampler
        steps = s.steps if steps is None else steps
        obs, task_id = check_policy_inputs(self, obs, task_id, steps, method, where="calibrate_block_cache")
        g = torch.Generator(device=self.device).manual_seed(0)
        cache = BlockCache.calibrate(
            self.model,
            lambda: self.predict_action(obs, task_id, steps=steps, method=method, generator=g, cache="none"),
            threshold=threshold,
            order=1,
            max_gap=max_gap,
        )
        self._block_schedules[(steps, method or s.method, s.schedule)] = cache.schedule
        return cache

    @torch.no_grad()
    def predict_action(
        self,
        obs: Tensor,
        task_id: Tensor | None = None,
        *,
        steps: int | None = None,
        method: str | None = None,
        generator: torch.Generator | None = None,
        clip: bool = True,
        cache: CacheConfig | str | None = None,
    ) -> Tensor:
        """Sample an action chunk for each observation history (through :meth:`generate`).

        Args:
            obs: raw observations ``[b, n_obs_steps, obs_dim]``.
            task_id: ``[b]`` long for multi-task policies.
            steps: solver steps (default ``sampler.steps``).
            method: solver (default ``sampler.method``).
            generator: RNG of the initial noise.
            clip: clip to the environment's action bounds.
            cache: ``none`` / ``expert`` / ``block`` / ``expert+block`` or a ``CacheConfig`` (default
                ``sampler.cache``).

        Returns:
            actions ``[b, horizon, action_dim]`` in environment units.

        Raises:
            ValueError: naming the argument: ``obs`` of the wrong shape or with NaN / inf / beyond-float32 values,
                ``task_id`` missing, non-integer or outside ``[0, num_tasks)`` (multi-task policies; single-task
                policies ignore it), ``steps`` outside ``[1, 10000]``, an unknown ``method`` or ``cache``.
        """
        obs, task_id = check_policy_inputs(self, obs, task_id, steps, method, cache=cache)
        template = self.tokenizer.template(obs.to(self.device), None if task_id is None else task_id.to(self.device))
        out = self.generate(template, steps=steps, method=method, generator=generator, cache=cache)
        return self.tokenizer.decode(out, clip=clip)["action"]

    def on_fit_end(self) -> None:
        """Write ``<default_root_dir>/pretrained`` (safetensors + JSON) for ``make eval-policy``."""
        if self.trainer.is_global_zero:
            from ditkit_core.lightning import save_pretrained

            path = save_pretrained(self, Path(self.trainer.default_root_dir) / "pretrained")
            print(f"[PolicyModule] wrote {path}")

    # ------------------------------------------------------------------ monitoring
    def on_validation_epoch_end(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or self.trainer.sanity_checking or not hasattr(dm, "val_set"):
            return
        d = dm.val_set.data
        n = min(256, d["obs"].shape[0])
        g = torch.Generator(device=self.device).manual_seed(0)
        pred = self.predict_action(
            d["obs"][:n].to(self.device), d["task_id"][:n].to(self.device), generator=g, clip=False
        )
        err = (pred - d["action"][:n].to(self.device))[:, : self.n_action_steps].pow(2).mean()
        self.log("val/action_mse", err, prog_bar=True, sync_dist=True)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        """Plot sampled action chunks against the demonstrations for a few validation samples (PNG)."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "val_set"):
            return []
        from ditkit_robotics.viz import plot_chunks

        d = dm.val_set.data
        idx = torch.linspace(0, d["obs"].shape[0] - 1, 4).long()
        g = torch.Generator(device=self.device).manual_seed(0)
        pred = self.predict_action(d["obs"][idx].to(self.device), d["task_id"][idx].to(self.device), generator=g)
        return [
            plot_chunks(
                pred.cpu(),
                d["action"][idx],
                Path(out_dir) / f"policy_chunks_{tag}.png",
                n_action_steps=self.n_action_steps,
            )
        ]

    def num_active_parameters(self) -> dict[str, Any]:
        """Total and active (per token) parameter counts of the DiT."""
        return {
            "dit_total": self.model.num_parameters(),
            "dit_active": self.model.num_parameters(active_only=True),
            "encoder": sum(p.numel() for p in self.encoder.parameters()),
        }


def _version(params: list[Tensor]) -> int:
    """Sum of the in-place version counters of ``params``: it grows with every in-place change of a weight."""
    return sum(p._version for p in params)
