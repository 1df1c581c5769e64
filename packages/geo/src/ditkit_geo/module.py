"""``SITSModule``: one flow-matching DiT for reconstruction, cloud removal, forecasting and change detection.

Condition injection: the DiT input of every token is ``[x_t, given values, given mask, priors, features]``
(``(3 + P) * token_dim + G + 2K`` channels), so the observed optical values, their cloud / gap mask and the SAR
values enter as known-value channels (an input-level condition injector), the priors (interpolation, seasonal lag,
pixel median of the given values, see :mod:`ditkit_geo.tokenizer`) give a coarse estimate to refine, the band-group
one-hot and day-of-year harmonics act as learned embeddings through the input projection, and 3-axis RoPE encodes
(months, patch row, patch column). Training draws a random task mask per series (:mod:`ditkit_geo.tasks`);
the loss covers exactly the valid truth that is not given (no-data never is a target).

Change-map head (optional, ``change_head=True``): a per-pixel logistic head on the DiT's last hidden states of an
*analysis pass* (every observed entry given, ``x_t`` = the given values, ``t = 1``), averaged over dates and band
groups; trained with binary cross-entropy on the ground-truth change maps of batches that carry ``change``.

Source (``source_center``): optionally the noise of the probability path is centred on one of the priors,
``x_0 = prior + N(0, I)`` (a data-dependent prior as in PriorGrad, Lee et al. 2022), so an untrained model's draws
already scatter around the baseline and training only learns the correction; given entries are unaffected
(they are clamped to the observations along the path).

EMA (``ema_decay > 0``): an exponential moving average of the DiT weights, used for every evaluation-mode call
(validation, sampling, the change head) and stored in checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.flow import TimeSampler
from ditkit_core.lightning.module import FlowMatchingModule, allow_in_checkpoints
from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.tokenizers import TokenBatch
from ditkit_geo.tasks import sample_given
from ditkit_geo.tokenizer import SITSTokenizer

allow_in_checkpoints(DiTConfig, TimeSampler)

DEFAULT_TASKS = {"reconstruct": 0.3, "cloud": 0.3, "forecast": 0.25, "random": 0.15}


class SITSModule(FlowMatchingModule):
    """Flow matching over (time, band group, patch) tokens with task-mask conditioning.

    Args:
        tokenizer: a :class:`SITSTokenizer`.
        model: DiT configuration; ``in_dim`` / ``out_dim`` are derived from the tokenizer (given values are
            replaced). Use ``rope_axes: 3`` (head dim divisible by 6) for RoPE over (t, y, x).
        tasks: task -> sampling probability during training (see :mod:`ditkit_geo.tasks`).
        mask_ratio: range of hidden-date fractions.
        max_horizon: largest forecast horizon as a fraction of the series length.
        eval_samples: samples per series for CRPS / median prediction in ``write_samples``.
        ema_decay: EMA decay of the DiT weights (0 = no EMA); the decay ramps as ``min(decay, (1 + k) / (10 + k))``.
        change_head: add the change-map head (trained when batches carry ``change [b, H, W]``).
        change_weight: weight of its binary cross-entropy in the loss.
        source_center: a prior of the tokenizer (e.g. ``seasonal``) on which the source noise is centred, or None.
        time_sampler, lr, weight_decay, warmup_steps, max_steps, seed, sample_steps, sample_method,
            sample_schedule: as in :class:`~ditkit_core.lightning.FlowMatchingModule`.
    """

    def __init__(
        self,
        tokenizer: SITSTokenizer,
        model: DiTConfig,
        tasks: dict[str, float] | None = None,
        mask_ratio: tuple[float, float] = (0.1, 0.6),
        max_horizon: float = 0.34,
        eval_samples: int = 4,
        ema_decay: float = 0.0,
        change_head: bool = False,
        change_weight: float = 0.2,
        source_center: str | None = None,
        time_sampler: TimeSampler | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        max_steps: int | None = None,
        seed: int = 0,
        sample_steps: int = 16,
        sample_method: str = "euler",
        sample_schedule: str = "uniform",
    ):
        base = dataclasses.replace(model, in_dim=tokenizer.token_dim, out_dim=tokenizer.token_dim)
        super().__init__(
            tokenizer,
            base,
            time_sampler=time_sampler,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            max_steps=max_steps,
            seed=seed,
            sample_steps=sample_steps,
            sample_method=sample_method,
            sample_schedule=sample_schedule,
        )
        self.config = dataclasses.replace(model, in_dim=tokenizer.input_dim, out_dim=tokenizer.token_dim)
        self.model = DiT(self.config)
        self.tasks = dict(tasks or DEFAULT_TASKS)
        self.mask_ratio, self.max_horizon, self.eval_samples = tuple(mask_ratio), max_horizon, eval_samples
        self.register_buffer("static_ch", tokenizer.group_channel_mask(tokenizer.static_names), persistent=False)
        self.register_buffer("optical_ch", tokenizer.group_channel_mask(tokenizer.optical_names), persistent=False)
        self.ema_decay, self.change_weight = float(ema_decay), float(change_weight)
        if source_center is not None and source_center not in tokenizer.priors:
            raise ValueError(
                f"SITSModule.source_center={source_center!r}: not among the tokenizer's priors {tokenizer.priors}"
            )
        self.source_center = source_center
        self.model_ema: DiT | None = None
        if self.ema_decay > 0:
            self.model_ema = copy.deepcopy(self.model).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        p2 = tokenizer.patch**2
        self.change_head = (
            nn.Sequential(nn.LayerNorm(self.config.dim), nn.Linear(self.config.dim, p2)) if change_head else None
        )

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

    def model_input(self, tokens: TokenBatch, x_t: Tensor) -> Tensor:
        """``[b, n, (3 + P) d + f]``: noisy tokens, given values, given mask, priors, group / day-of-year features."""
        m = tokens.meta
        return torch.cat(
            [x_t, m["cond"], m["given"].to(x_t.dtype), m["priors"].to(x_t.dtype), m["features"].to(x_t.dtype)], -1
        )

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """``x_0 = N(0, I)``, shifted by the ``source_center`` prior tokens when set."""
        noise = torch.randn(x_1.shape, generator=generator, device=x_1.device, dtype=x_1.dtype)
        if self.source_center is None:
            return noise
        d, k = self.tokenizer.token_dim, self.tokenizer.priors.index(self.source_center)
        return noise + tokens.meta["priors"][..., k * d : (k + 1) * d].to(x_1.dtype)

    @property
    def net(self) -> DiT:
        """The DiT used now: the EMA copy in evaluation mode (when kept), else the trained weights."""
        return self.model_ema if (self.model_ema is not None and not self.training) else self.model

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop_cond: Tensor | None = None) -> Tensor:
        return self.net(self.model_input(tokens, x_t), t, drop_cond=drop_cond, **tokens.model_kwargs())

    # ------------------------------------------------------------------ change head
    def change_logits(self, tokens: TokenBatch) -> Tensor:
        """Per-pixel change logits ``[b, H, W]`` from the analysis pass over ``tokens`` (see the module docstring)."""
        if self.change_head is None:
            raise RuntimeError("SITSModule.change_logits: the module was built with change_head=False")
        net, store = self.net, {}
        hook = net.final.register_forward_hook(lambda mod, inp, out: store.__setitem__("h", inp[0]))
        try:
            x = tokens.meta["cond"]
            net(self.model_input(tokens, x), torch.ones(x.shape[0], device=x.device), **tokens.model_kwargs())
        finally:
            hook.remove()
        t, h, w = tokens.meta["shape"]
        p = self.tokenizer.patch
        logit = self.change_head(store["h"])  # [b, n, p * p]
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

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.change_head is not None and "change" in batch:
            tokens = self.tokenizer.encode({**batch, "given": torch.isfinite(batch["observed"])})
            bce = F.binary_cross_entropy_with_logits(self.change_logits(tokens), batch["change"].float())
            self.log("train/change_bce", bce, batch_size=tokens.batch_size)
            loss = loss + self.change_weight * bce
        return loss

    @torch.no_grad()
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.model_ema is None:
            return
        self.ema_updates += 1
        k = float(self.ema_updates)
        decay = min(self.ema_decay, (1 + k) / (10 + k))
        for e, p in zip(self.model_ema.parameters(), self.model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.model_ema.buffers(), self.model.buffers(), strict=True):
            e.copy_(b)

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
            steps: solver steps (default ``sample_steps``).
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
