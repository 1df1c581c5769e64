"""``SITSModule``: one flow-matching DiT for reconstruction, cloud removal, forecasting and change detection.

Condition injection: the DiT input of every token is the noisy token ``x_t`` (``in_dim = token_dim``); the given
values, their mask, the priors and the token features enter as condition channels
(``TokenBatch.x_cond [b, n, (2 + P) * token_dim + F]``, ``DiTConfig.cond_channels``, both derived from the
tokenizer). So the observed optical values, their cloud / gap mask and the SAR values are known-value channels, the
priors (interpolation, seasonal lag, pixel median of the given values, see :mod:`ditkit_geo.tokenizer`) give a coarse
estimate to refine, the band-group one-hot and day-of-year harmonics act as learned embeddings through the condition
projection, and 3-axis RoPE encodes (months, patch row, patch column). Training draws a random task mask per series
(:mod:`ditkit_geo.tasks`); the loss covers exactly the valid truth that is not given (no-data never is a target).
Geo trains without classifier-free guidance; condition dropout, where configured, keeps the condition channels
(``drop_x_cond`` is False: the given values are what the sampler clamps, not an optional hint).

Change-map head (optional, ``change_head=True``): a per-pixel logistic head on the DiT's last hidden states
(``forward(..., return_hidden=True)``) of an *analysis pass* (every observed entry given, ``x_t`` = the given values,
``t = 1``), averaged over dates and band groups; trained with binary cross-entropy on the ground-truth change maps of
batches that carry ``change`` (:meth:`SITSModule.auxiliary_losses`).

Source (``source_center``): optionally the noise of the probability path is centred on one of the priors,
``x_0 = prior + N(0, I)`` (a data-dependent prior as in PriorGrad, Lee et al. 2022), so an untrained model's draws
already scatter around the baseline and training only learns the correction; given entries are unaffected
(they are clamped to the observations along the path).

EMA: the trainer's :class:`ditkit_core.lightning.EMA` callback (``warmup: true`` ramps the decay as
``min(decay, (1 + k) / (10 + k))``); checkpoints hold the averaged weights. Checkpoints of earlier versions, which
kept their own ``model_ema`` copy, load with the averaged weights (:meth:`SITSModule.migrate_state_dict`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.flow import TimeSampler
from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig, allow_in_checkpoints
from ditkit_core.nn import DiTConfig
from ditkit_core.tokenizers import TokenBatch
from ditkit_geo.tasks import sample_given
from ditkit_geo.tokenizer import SITSTokenizer

allow_in_checkpoints(DiTConfig, TimeSampler)

DEFAULT_TASKS = {"reconstruct": 0.3, "cloud": 0.3, "forecast": 0.25, "random": 0.15}
EMA_PREFIX = "model_ema."  # the module's own EMA copy in checkpoints of earlier versions
DERIVED = ("in_dim", "out_dim", "cond_channels")  # DiT widths that always follow from the tokenizer


class SITSModule(FlowMatchingModule):
    """Flow matching over (time, band group, patch) tokens with task-mask conditioning.

    Args:
        tokenizer: a :class:`SITSTokenizer`.
        model: DiT configuration; ``in_dim`` / ``out_dim`` (the token width) and ``cond_channels`` are derived from
            the tokenizer (state them only with their real values). Use ``rope_axes: 3`` (head dim divisible by 6)
            for RoPE over (t, y, x).
        flow, optim, sampler, seed: as in :class:`~ditkit_core.lightning.FlowMatchingModule`.
        tasks: task -> sampling probability during training (see :mod:`ditkit_geo.tasks`).
        mask_ratio: range of hidden-date fractions.
        max_horizon: largest forecast horizon as a fraction of the series length.
        eval_samples: samples per series for CRPS / median prediction in ``write_samples`` and the evaluations.
        change_head: add the change-map head (trained when batches carry ``change [b, H, W]``).
        change_weight: weight of its binary cross-entropy in the loss.
        source_center: a prior of the tokenizer (e.g. ``seasonal``) on which the source noise is centred, or None.
    """

    LEGACY_ARGS: ClassVar[dict[str, tuple[str, str]]] = {}
    """No flat arguments of geo's own moved to a group; ``ema_decay`` (now the EMA callback) is dropped by
    :meth:`migrate_args`."""

    def __init__(
        self,
        tokenizer: SITSTokenizer,
        model: DiTConfig,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
        tasks: dict[str, float] | None = None,
        mask_ratio: tuple[float, float] = (0.1, 0.6),
        max_horizon: float = 0.34,
        eval_samples: int = 4,
        change_head: bool = False,
        change_weight: float = 0.2,
        source_center: str | None = None,
    ):
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        tokenizer = self.tokenizer
        self.tasks = dict(tasks or DEFAULT_TASKS)
        self.mask_ratio, self.max_horizon, self.eval_samples = tuple(mask_ratio), max_horizon, eval_samples
        self.register_buffer("static_ch", tokenizer.group_channel_mask(tokenizer.static_names), persistent=False)
        self.register_buffer("optical_ch", tokenizer.group_channel_mask(tokenizer.optical_names), persistent=False)
        self.change_weight = float(change_weight)
        if source_center is not None and source_center not in tokenizer.priors:
            raise ValueError(
                f"SITSModule.source_center={source_center!r}: not among the tokenizer's priors {tokenizer.priors}"
            )
        self.source_center = source_center
        p2 = tokenizer.patch**2
        self.change_head = (
            nn.Sequential(nn.LayerNorm(self.config.dim), nn.Linear(self.config.dim, p2)) if change_head else None
        )

    # ------------------------------------------------------------------ configuration
    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """``in_dim`` / ``out_dim`` = token width, ``cond_channels`` = the tokenizer's condition width.

        ``drop_x_cond`` is False: condition dropout never hides the given values (see the module docstring).
        """
        tok = self.tokenizer
        config = self.derive(config, in_dim=tok.token_dim, out_dim=tok.token_dim, cond_channels=tok.cond_channels)
        return dataclasses.replace(config, drop_x_cond=False)

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters of earlier versions: flat base arguments into groups; ``ema_decay`` dropped (the EMA is
        the trainer callback now), the DiT widths re-derived (earlier configs stated a placeholder ``in_dim``) and a
        ``time_sampler`` of None (the default sampler then) left to the group's default.

        LightningCLI's own entries (``_class_path``, ``_instantiator``), which every CLI-trained checkpoint holds
        beside the init arguments, are dropped too.
        """
        args = {k: v for k, v in args.items() if not k.startswith("_")}
        if "ema_decay" in args:
            args.pop("ema_decay")
            if args.get("time_sampler", 0) is None:  # None meant the default sampler
                args.pop("time_sampler")
            model = args.get("model")
            if isinstance(model, dict):
                args["model"] = {k: v for k, v in model.items() if k not in DERIVED}
        return super().migrate_args(args)

    def migrate_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Earlier layouts: the averaged ``model_ema.*`` weights become ``model.*`` (what inference used), the EMA
        counter is dropped, and the joint ``[x_t, conditions]`` input projection is split (base adapter)."""
        state = dict(state)
        ema = {k[len(EMA_PREFIX) :]: state.pop(k) for k in list(state) if k.startswith(EMA_PREFIX)}
        state.pop("ema_updates", None)
        for k, v in ema.items():
            state[f"model.{k}"] = v
        return super().migrate_state_dict(state)

    # ------------------------------------------------------------------ hooks
    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        """Draw the task masks (training: per global step; validation: fixed) and tokenize."""
        if "given" not in batch:
            seed = self.seed * 1_000_003 + (int(self.global_step) if self.training else 10_000_019)
            seed += int(batch["index"][0]) if "index" in batch else 0
            g = torch.Generator().manual_seed(seed)
            ok = torch.isfinite(batch["observed"]).cpu()
            given, _ = sample_given(
                ok,
                self.tokenizer.channel_group,
                self.static_ch.cpu(),
                self.optical_ch.cpu(),
                probs=self.tasks,
                ratio=self.mask_ratio,
                max_horizon=self.max_horizon,
                generator=g,
            )
            batch = {**batch, "given": given.to(batch["observed"].device)}
        return self.tokenizer.encode(batch)

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """``x_0 = N(0, I)``, shifted by the ``source_center`` prior tokens when set."""
        noise = torch.randn(x_1.shape, generator=generator, device=x_1.device, dtype=x_1.dtype)
        if self.source_center is None:
            return noise
        d, k = self.tokenizer.token_dim, self.tokenizer.priors.index(self.source_center)
        return noise + tokens.meta["priors"][..., k * d : (k + 1) * d].to(x_1.dtype)

    def auxiliary_losses(self, batch: dict[str, Tensor], tokens: TokenBatch) -> dict[str, Tensor]:
        """``change``: ``change_weight`` x the change head's BCE on batches that carry ``change`` (also logs the
        unweighted ``train/change_bce``)."""
        if self.change_head is None or "change" not in batch:
            return {}
        analysis = self.tokenizer.encode({**batch, "given": torch.isfinite(batch["observed"])})
        bce = F.binary_cross_entropy_with_logits(self.change_logits(analysis), batch["change"].float())
        self.log("train/change_bce", bce, batch_size=analysis.batch_size)
        return {"change": self.change_weight * bce}

    # ------------------------------------------------------------------ change head
    def change_logits(self, tokens: TokenBatch) -> Tensor:
        """Per-pixel change logits ``[b, H, W]`` from the analysis pass over ``tokens`` (see the module docstring)."""
        if self.change_head is None:
            raise RuntimeError("SITSModule.change_logits: the module was built with change_head=False")
        tokens = self.condition(tokens, None)
        x = tokens.meta["cond"]
        _, hidden = self.model(x, torch.ones(x.shape[0], device=x.device), return_hidden=True, **tokens.model_kwargs())
        t, h, w = tokens.meta["shape"]
        p = self.tokenizer.patch
        logit = self.change_head(hidden)  # [b, n, p * p]
        logit = rearrange(
            logit,
            "b (t g py px) (p1 p2) -> b (t g) (py p1) (px p2)",
            t=t,
            g=self.tokenizer.num_groups,
            py=h // p,
            px=w // p,
            p1=p,
            p2=p,
        )
        return logit.mean(1)  # [b, H, W]

    @torch.no_grad()
    def change_map(self, batch: dict[str, Tensor]) -> Tensor:
        """Change probabilities ``[b, H, W]`` of series batches (every observed entry is given)."""
        was = self.training
        self.eval()
        batch = {k: (v.to(self.device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        given = torch.isfinite(batch["observed"])
        prob = torch.sigmoid(self.change_logits(self.tokenizer.encode({**batch, "given": given})))
        self.train(was)
        return prob

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def complete(
        self, batch: dict[str, Tensor], given: Tensor, *, samples: int = 4, steps: int | None = None, seed: int = 0
    ) -> Tensor:
        """Fill everything not given: ``samples`` draws ``[s, b, T, C, H, W]`` (given entries equal observed).

        Args:
            batch: ``values`` (may be all NaN at inference), ``observed``, ``days``, ``doy`` like a dataset batch.
            given: ``[b, T, C, H, W]`` bool, which observed entries condition the model (task mask).
            samples: independent draws (for CRPS and the median prediction).
            steps: solver steps (default ``sampler.steps``).
            seed: noise seed.
        """
        dev = self.device
        batch = {k: (v.to(dev) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        tokens = self.tokenizer.encode({**batch, "given": given.to(dev)})
        out = []
        for s in range(samples):
            g = torch.Generator(device=dev).manual_seed(seed * 7919 + s)
            gen = self.generate(
                tokens, steps=steps, known=tokens.meta["cond"], known_mask=tokens.meta["given"], generator=g
            )
            out.append(self.tokenizer.decode(gen)["values"])
        return torch.stack(out)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        from ditkit_geo.viz import write_task_figures

        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "splits"):
            return []
        return write_task_figures(self, dm, Path(out_dir), tag)
