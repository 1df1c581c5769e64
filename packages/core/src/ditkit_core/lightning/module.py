"""``FlowMatchingModule``: the generic Lightning training loop for a tokenizer + DiT + probability path.

A domain extends it through public hooks, never by re-listing its arguments:

* :meth:`~FlowMatchingModule.resolve_config` fills derived config fields (``in_dim`` from the tokenizer, a domain's
  ``cond_channels``), and checks the widths a YAML states against the real ones;
* :meth:`~FlowMatchingModule.build_network` returns the network (a core :class:`~ditkit_core.nn.DiT`, or a module
  that composes one); it is called once;
* :meth:`~FlowMatchingModule.tokenize` turns a batch into a :class:`~ditkit_core.tokenizers.TokenBatch`;
* :meth:`~FlowMatchingModule.condition` fills ``cond``, ``context``, ``x_cond`` and ``pair`` with the domain's
  encoders, for a given condition-dropout mask (called once per batch and per CFG branch);
* :meth:`~FlowMatchingModule.auxiliary_losses` adds a domain's own losses (duration, change maps, ...);
* :meth:`~FlowMatchingModule.generate` is the only sampling path (solver, guidance, known values, caches).

Options come in three typed groups (:mod:`ditkit_core.lightning.config`): ``flow``, ``optim`` and ``sampler``.
Noise and times are drawn from :meth:`~FlowMatchingModule.rng`, seeded by ``(seed, global_step, rank)``: a resumed
run repeats the loss curve of an uninterrupted one, and data-parallel ranks draw different noise.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn

from ditkit_core.flow import LinearPath, TimeSampler, drop_conditions, masked_mse, ot_pair
from ditkit_core.lightning.config import (
    CacheConfig,
    FlowConfig,
    OptimConfig,
    SamplerConfig,
    migrate_module_args,
    plain,
)
from ditkit_core.lightning.pretrained import from_config, to_config
from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.nn.config import ConfigError
from ditkit_core.sampling import BlockCache, ExpertCache, StepCache, find_dits, sample, solver_times
from ditkit_core.tokenizers import TokenBatch, Tokenizer

FORMAT = 2  # checkpoint layout version written by this module (1: flat arguments, joint input projection)


# Checkpoints of earlier versions kept typed objects in their hyper-parameters; allow-list these data-only classes for
# torch.load's weights_only unpickler so old runs still load without an unsafe load.
def allow_in_checkpoints(*classes: type) -> None:
    """Allow-list data-only config classes (dataclasses) for ``torch.load(weights_only=True)``."""
    torch.serialization.add_safe_globals(list(classes))


allow_in_checkpoints(DiTConfig, TimeSampler, FlowConfig, OptimConfig, SamplerConfig, CacheConfig)


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.dim() < 2 or "embed" in name or "norm" in name or "register_tokens" in name or name.endswith("gate")


def _group(cls: type, value: Any, where: str) -> Any:
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**value)
    raise ConfigError(f"{where}: expected a {cls.__name__} or a mapping, got {type(value).__name__}")


class FlowMatchingModule(L.LightningModule):
    """Trains a DiT to predict the velocity (or the data) of the linear path on a tokenizer's tokens.

    Args:
        tokenizer: turns a DataModule batch into a :class:`TokenBatch` (and back).
        model: the DiT configuration; ``in_dim`` 0 is resolved from ``tokenizer.token_dim``.
        flow: path, times, condition dropout, prediction target and loss weights (:class:`FlowConfig`).
        optim: AdamW + warm-up + cosine (:class:`OptimConfig`).
        sampler: defaults of :meth:`generate` (:class:`SamplerConfig`).
        seed: seed of the noise / time generator (:meth:`rng`).

    Domain subclasses add their own arguments and pass ``flow``, ``optim``, ``sampler`` and ``seed`` through; plain
    attributes that :meth:`resolve_config` / :meth:`build_network` read are set before ``super().__init__``.
    """

    LEGACY_ARGS: ClassVar[dict[str, tuple[str, str]]] = {}
    """A domain's own flat arguments of earlier versions -> ``(group, field)`` (see ``migrate_module_args``)."""

    UNUSED_PARAMETERS: ClassVar[bool] = False
    """True when some trainable parameters take no part in some training steps (phased training, heads used by some
    tasks only). :class:`~ditkit_core.lightning.DiTDDPStrategy` (the ``ddp`` preset) then lets DDP find them each step
    instead of failing; the default keeps DDP's cheaper static bucketing."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        model: DiTConfig,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if isinstance(tokenizer, dict) and "class_path" in tokenizer:  # rebuilt from a checkpoint's hparams
            tokenizer = from_config(tokenizer, "model.tokenizer")
        if isinstance(model, dict):
            model = DiTConfig.from_dict(model)
        self.flow = _group(FlowConfig, flow, "flow")
        self.optim = _group(OptimConfig, optim, "optim")
        self.sampler = _group(SamplerConfig, sampler, "sampler")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"FlowMatchingModule.seed={seed!r}: must be an integer >= 0")
        self.seed = seed
        self.save_hyperparameters(ignore=["tokenizer"])
        for k, v in list(self.hparams.items()):  # checkpoints hold plain data only
            self.hparams[k] = plain(v)
        try:  # the tokenizer as class_path / init_args data (allow-listed on load)
            self.hparams["tokenizer"] = to_config(tokenizer, "tokenizer")
        except TypeError as e:
            warnings.warn(
                f"FlowMatchingModule: tokenizer not stored in hparams ({e}); pass it to "
                "load_from_checkpoint(tokenizer=...)",
                stacklevel=2,
            )
        self.tokenizer = tokenizer
        self.config = self.resolve_config(model)
        if self.flow.self_condition > 0:
            self.config = self.derive(self.config, self_cond=True)
        self.hparams["model"] = plain(self.config)
        self.model = self.build_network(self.config)
        self.path = LinearPath(self.flow.sigma_min)
        self.time_sampler = self.flow.time_sampler
        weights = self.flow.channel_weights
        if weights is not None and len(weights) != self.config.output_dim:
            raise ConfigError(
                f"FlowConfig.channel_weights has {len(weights)} entries; the token width is {self.config.output_dim}"
            )
        self.register_buffer("channel_weights", None if weights is None else torch.tensor(weights), persistent=False)
        if self.flow.cond_dropout == 0:  # never used in training: keep them out of the optimiser and of DDP's reducer
            for dit in find_dits(self.model):
                for p in dit.unconditional_parameters():
                    p.requires_grad_(False)
        self._step_threshold: float | None = None  # StepCache threshold calibrated on the first sampling run

    # ------------------------------------------------------------------ hooks domains override
    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """Fill derived fields (``in_dim`` 0 -> ``tokenizer.token_dim``) and check the stated ones.

        Domains override it to add their own derived widths (``cond_channels``, ``pair_dim``, grid windows) with
        :meth:`derive`.
        """
        return self.derive(config, in_dim=int(getattr(self.tokenizer, "token_dim", config.in_dim)))

    @staticmethod
    def derive(config: DiTConfig, **fields: Any) -> DiTConfig:
        """``config`` with ``fields`` set where they are 0 / None; a stated value that differs is a ConfigError."""
        import dataclasses

        changes = {}
        for name, value in fields.items():
            stated = getattr(config, name)
            if stated in (0, None):
                changes[name] = value
            elif stated != value:
                raise ConfigError(
                    f"DiTConfig.{name}={stated!r}: this module's real {name} is {value!r} (set it to "
                    f"{value!r} or leave it out to have it derived)"
                )
        return dataclasses.replace(config, **changes) if changes else config

    def build_network(self, config: DiTConfig) -> nn.Module:
        """The network: ``forward(x, t, **TokenBatch.model_kwargs(), drop_cond=...) -> [b, n, out_dim]``."""
        return DiT(config)

    def tokenize(self, batch: Any) -> TokenBatch:
        """DataModule batch -> tokens."""
        return self.tokenizer.encode(batch)

    def condition(self, tokens: TokenBatch, drop: Tensor | None) -> TokenBatch:
        """Fill ``cond`` / ``context`` / ``x_cond`` / ``pair`` from the domain's encoders (identity by default).

        Args:
            tokens: the batch's tokens (``x`` is the data; do not read it as a condition unless it is given, see
                ``known_mask``).
            drop: ``[b]`` bool, True = this sample is in the unconditional branch (or None: none dropped).
        """
        return tokens

    def sampling_inputs(self, tokens: TokenBatch) -> dict[str, Tensor]:
        """``known`` / ``known_mask`` for :meth:`generate` that reproduce a training batch's task (the entries the
        loss skips are given). Used by few-step distillation to sample the teacher on training batches."""
        if tokens.known_mask is None:
            return {}
        km = tokens.known_mask if tokens.known_mask.shape == tokens.x.shape else tokens.known_mask[..., None]
        return {"known": tokens.x, "known_mask": km.expand_as(tokens.x)}

    def auxiliary_losses(self, batch: Any, tokens: TokenBatch) -> dict[str, Tensor]:
        """A domain's own weighted losses, added to the flow loss and logged as ``train/<name>``."""
        return {}

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """Source sample ``x_0`` shaped like ``x_1`` (standard normal; domains may centre or project it)."""
        return torch.randn(x_1.shape, generator=generator, device=x_1.device, dtype=x_1.dtype)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        """Write viewable samples (PNG, wav, ply, ...) to ``out_dir``; called by ``SampleWriter``."""
        return []

    def migrate_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """State-dict adapter for earlier layouts: a joint input projection over ``[x, x_cond]`` is split.

        ``W [x, c] = W_x x + W_c c``, so the split model computes exactly what the joint one did.
        """
        state = dict(state)
        for name, mod in self.named_modules():
            if not isinstance(mod, DiT) or mod.cond_proj is None:
                continue
            pre = f"{name}." if name else ""
            w = state.get(f"{pre}x_embed.weight")
            if (
                w is not None
                and f"{pre}cond_proj.weight" not in state
                and w.shape[1] == (mod.config.in_dim + mod.config.cond_channels)
            ):
                state[f"{pre}x_embed.weight"] = w[:, : mod.config.in_dim].contiguous()
                state[f"{pre}cond_proj.weight"] = w[:, mod.config.in_dim :].contiguous()
        return state

    # ------------------------------------------------------------------ randomness
    def rng(self, offset: int = 0) -> torch.Generator:
        """Generator seeded by ``(seed, global_step, global rank, offset)``.

        The same step draws the same numbers after a resume; data-parallel ranks draw different ones (rank 0 draws
        what a single process draws).
        """
        rank = int(self.trainer.global_rank) if self._trainer is not None else 0
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed * 1_000_003 + int(self.global_step) * 7919 + offset + rank * 104_729_731)
        return g

    # ------------------------------------------------------------------ training
    def velocity(
        self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop: Tensor | None = None, x_self: Tensor | None = None
    ) -> Tensor:
        """The solver's velocity ``[b, n, d]`` at ``x_t`` for conditioned ``tokens`` (converts data predictions);
        ``x_self`` is the previous estimate of the clean tokens for a self-conditioned network."""
        kw = tokens.model_kwargs()
        if x_self is not None:
            kw["x_self"] = x_self
        out = self.model(x_t, t, drop_cond=drop, **kw)
        if self.flow.prediction == "data":
            return self.path.x1_to_velocity(x_t, out, t)
        return out

    def flow_loss(self, tokens: TokenBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Flow-matching loss on one token batch; returns ``loss`` (with MoE aux) and its parts."""
        x_1 = tokens.x
        b = x_1.shape[0]
        x_0 = self.sample_noise(x_1, tokens, generator)
        if self.flow.ot_pairing:
            x_0 = ot_pair(x_0, x_1, tokens.mask)
        t = self.time_sampler(b, device=x_1.device, generator=generator)
        ps = self.path.sample(x_0, x_1, t)
        drop = drop_conditions(b, self.flow.cond_dropout, x_1.device, generator)
        kw = self.condition(tokens, drop).model_kwargs()
        if self.flow.self_condition > 0:  # an estimate of x_1 (no gradient) for some samples, zeros for the rest
            use = torch.rand(b, device=x_1.device, generator=generator) < self.flow.self_condition
            x_self = torch.zeros_like(x_1)
            if bool(use.any()):
                with torch.no_grad():
                    est = self.model(ps.x_t, t, drop_cond=drop, x_self=x_self, **kw)
                    if self.flow.prediction == "velocity":
                        est = self.path.velocity_to_x1(ps.x_t, est, t)
                x_self = torch.where(use[:, None, None], est, x_self)
            kw["x_self"] = x_self
        out = self.model(ps.x_t, t, drop_cond=drop, **kw)
        target = x_1 if self.flow.prediction == "data" else ps.u_t
        mask = tokens.mask
        if tokens.known_mask is not None:
            known = tokens.known_mask if tokens.known_mask.shape == x_1.shape else tokens.known_mask[..., None]
            m = torch.ones_like(x_1, dtype=torch.bool) if mask is None else mask[..., None].expand_as(x_1)
            mask = m & ~known.expand_as(x_1)
        if self.channel_weights is not None:
            w = self.channel_weights.to(out.dtype)
            fm = masked_mse(out * w.sqrt(), target * w.sqrt(), mask) * (w.numel() / w.sum())
        else:
            fm = masked_mse(out, target, mask)
        aux = sum((d.aux_loss() for d in find_dits(self.model)), torch.zeros((), device=x_1.device))
        return {"loss": fm + aux, "fm": fm, "aux": aux}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens = self.tokenize(batch)
        out = self.flow_loss(tokens, self.rng())
        bs = tokens.batch_size
        self.log("train/loss", out["fm"], prog_bar=True, batch_size=bs)
        if self.config.moe_experts:
            self.log("train/moe_balance", out["aux"], batch_size=bs)
        loss = out["loss"]
        for name, value in self.auxiliary_losses(batch, tokens).items():
            self.log(f"train/{name}", value, batch_size=bs)
            loss = loss + value
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens = self.tokenize(batch)
        g = torch.Generator(device=self.device).manual_seed(self.seed + 10_007 * batch_idx)  # same noise each epoch
        out = self.flow_loss(tokens, g)
        self.log("val/loss", out["fm"], prog_bar=True, batch_size=tokens.batch_size, sync_dist=True)
        return out["fm"]

    def configure_optimizers(self) -> dict[str, Any]:
        o = self.optim
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (no_decay if _no_decay(name, p) else decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=o.lr,
            betas=o.betas,
        )
        total = o.max_steps
        if total is None:
            total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 10_000
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(o.warmup_steps, total, o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_callbacks(self) -> list[L.Callback]:
        from ditkit_core.lightning.callbacks import RunGuard

        return [RunGuard()]

    def on_train_start(self) -> None:
        from ditkit_core.lightning.data import resume_data_order

        resume_data_order(self.trainer)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cls = type(self)
        checkpoint["ditkit"] = {"format": FORMAT, "class_path": f"{cls.__module__}.{cls.__qualname__}"}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("ditkit", {}).get("format", 1) < FORMAT:
            checkpoint["state_dict"] = self.migrate_state_dict(checkpoint["state_dict"])

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Init arguments of earlier versions (flat ``lr``, ``sample_steps``, ...) in today's groups."""
        return migrate_module_args(args, cls.LEGACY_ARGS)[0]

    # ------------------------------------------------------------------ generation
    def make_cache(self, config: CacheConfig, calibrate: Any = None, grid: dict[str, Any] | None = None) -> Any:
        """A cache context for ``config`` (None for ``kind: none``).

        Args:
            config: the cache settings.
            calibrate: samples once with the call's settings (StepCache calibration).
            grid: the call's solver grid, the arguments of :func:`~ditkit_core.sampling.solver_times` (``steps``,
                ``method``, ``schedule``, ``shift``, ``sway``; :meth:`generate` passes them; default: ``sampler``'s).
        """
        if config.kind == "none":
            return None
        if config.kind == "block":
            return BlockCache(self.model, interval=config.interval, order=config.order)
        if config.kind == "expert":
            s = self.sampler
            grid = grid or {
                "steps": s.steps,
                "method": s.method,
                "schedule": s.schedule,
                "shift": s.shift,
                "sway": s.sway,
            }
            return ExpertCache(self.model, solver_times(**grid))
        if self._step_threshold is None:
            if calibrate is None:
                raise ValueError("make_cache: a step cache is calibrated on one sampling run; pass calibrate")
            self._step_threshold = StepCache.calibrate(
                self.model, calibrate, config.skip_ratio, config.max_skip
            ).threshold
        return StepCache(self.model, threshold=self._step_threshold, max_skip=config.max_skip)

    @torch.no_grad()
    def generate(
        self,
        template: TokenBatch,
        *,
        steps: int | None = None,
        method: str | None = None,
        schedule: str | None = None,
        cfg_scale: float | None = None,
        known: Tensor | None = None,
        known_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        cache: CacheConfig | str | None = None,
        return_trajectory: bool = False,
        **solver_kwargs: Any,
    ) -> TokenBatch | tuple[TokenBatch, list[Tensor]]:
        """Sample tokens shaped like ``template.x`` under ``template``'s conditioning.

        Args:
            template: a :class:`TokenBatch` whose ``x`` gives the shape (values ignored) and whose
                mask / pos / context / cond (and the domain's :meth:`condition`) condition the model.
            steps, method, schedule, cfg_scale: solver settings (defaults from ``sampler``).
            known, known_mask: values to keep (see :func:`ditkit_core.sampling.sample`).
            generator: RNG for the initial noise.
            progress: show a progress bar over the solver steps.
            cache: a :class:`CacheConfig`, a kind name, or None for ``sampler.cache``.
            return_trajectory: also return the states at every grid time (``steps + 1`` tensors).
            **solver_kwargs: more :func:`~ditkit_core.sampling.sample` options (``shift``, ``sway``, ...).

        Returns:
            ``template`` with ``x`` replaced by the sample (padded tokens zeroed) (and the trajectory).
        """
        s = self.sampler
        steps = s.steps if steps is None else steps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"generate: steps={steps!r} must be a positive integer")
        kw = {
            "method": method or s.method,
            "schedule": schedule or s.schedule,
            "shift": s.shift,
            "sway": s.sway,
            "cfg_scale": s.cfg_scale if cfg_scale is None else cfg_scale,
            "cfg_rescale": s.cfg_rescale,
            "cfg_interval": s.cfg_interval,
            **solver_kwargs,
        }
        cache_cfg = s.cache if cache is None else (CacheConfig(kind=cache) if isinstance(cache, str) else cache)
        was_training = self.training
        self.eval()
        b = template.x.shape[0]
        branches: dict[bool, tuple[TokenBatch, Tensor | None]] = {}
        estimates: dict[bool, Tensor] = {}  # self-conditioning: each branch's last estimate of x_1

        def fn(x: Tensor, t: Tensor, cond_drop: bool = False) -> Tensor:
            if cond_drop not in branches:
                drop = torch.ones(b, dtype=torch.bool, device=x.device) if cond_drop else None
                branches[cond_drop] = (self.condition(template, drop), drop)
            tokens, drop = branches[cond_drop]
            if not self.config.self_cond:
                return self.velocity(tokens, x, t, drop)
            v = self.velocity(tokens, x, t, drop, estimates.get(cond_drop, torch.zeros_like(x)))
            estimates[cond_drop] = self.path.velocity_to_x1(x, v, t)
            return v

        def run(g: torch.Generator | None) -> Any:
            estimates.clear()
            x_0 = self.sample_noise(template.x, template, g)
            return sample(
                fn,
                x_0,
                steps=steps,
                known=known,
                known_mask=known_mask,
                progress=progress,
                return_trajectory=return_trajectory,
                euler_at_end=self.flow.prediction == "data",  # the data-prediction velocity is undefined at t = 1
                **kw,
            )

        state = generator.get_state() if generator is not None else None
        grid = {"steps": steps, **{k: kw[k] for k in ("method", "schedule", "shift", "sway")}}
        ctx = self.make_cache(cache_cfg, calibrate=lambda: run(_clone(generator, state)), grid=grid)
        if ctx is None:
            x = run(generator)
        else:
            with ctx:
                x = run(generator)
            self.last_cache_stats = ctx.stats
        traj = None
        if return_trajectory:
            x, traj = x
        if template.mask is not None:
            x = x * template.mask[..., None].to(x.dtype)
        self.train(was_training)
        return (template.replace(x=x), traj) if return_trajectory else template.replace(x=x)


def _clone(generator: torch.Generator | None, state: Tensor | None) -> torch.Generator | None:
    if generator is None:
        return None
    g = torch.Generator(device=generator.device)
    g.set_state(state)
    return g


def warmup_cosine(warmup: int, total: int, floor: float) -> Any:
    """``step -> lr factor``: linear warm-up over ``warmup`` steps, then cosine from 1 to ``floor`` at ``total``."""

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return lr_lambda


__all__ = ["FORMAT", "FlowMatchingModule", "allow_in_checkpoints", "warmup_cosine"]
