"""``SITSModule``: one flow-matching DiT for reconstruction, cloud removal, forecasting and change detection.

Condition injection: the DiT input of every token is ``[x_t, given values, given mask, features]``
(``3 * token_dim + G + 2K`` channels), so the observed optical values, their cloud / gap mask and the SAR
values enter as known-value channels (an input-level condition injector), the band-group one-hot and
day-of-year harmonics act as learned embeddings through the input projection, and 3-axis RoPE encodes
(months, patch row, patch column). Training draws a random task mask per series (:mod:`ditkit_geo.tasks`);
the loss covers exactly the valid truth that is not given (no-data never is a target).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

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
        time_sampler, lr, weight_decay, warmup_steps, max_steps, seed, sample_steps, sample_method,
            sample_schedule: as in :class:`~ditkit_core.lightning.FlowMatchingModule`.
    """

    def __init__(self, tokenizer: SITSTokenizer, model: DiTConfig, tasks: dict[str, float] | None = None,
                 mask_ratio: tuple[float, float] = (0.1, 0.6), max_horizon: float = 0.34, eval_samples: int = 4,
                 time_sampler: TimeSampler | None = None, lr: float = 1e-3, weight_decay: float = 0.0,
                 warmup_steps: int = 100, max_steps: int | None = None, seed: int = 0, sample_steps: int = 16,
                 sample_method: str = "euler", sample_schedule: str = "uniform"):
        base = dataclasses.replace(model, in_dim=tokenizer.token_dim, out_dim=tokenizer.token_dim)
        super().__init__(tokenizer, base, time_sampler=time_sampler, lr=lr, weight_decay=weight_decay,
                         warmup_steps=warmup_steps, max_steps=max_steps, seed=seed, sample_steps=sample_steps,
                         sample_method=sample_method, sample_schedule=sample_schedule)
        self.config = dataclasses.replace(model, in_dim=tokenizer.input_dim, out_dim=tokenizer.token_dim)
        self.model = DiT(self.config)
        self.tasks = dict(tasks or DEFAULT_TASKS)
        self.mask_ratio, self.max_horizon, self.eval_samples = tuple(mask_ratio), max_horizon, eval_samples
        self.register_buffer("static_ch", tokenizer.group_channel_mask(tokenizer.static_names), persistent=False)
        self.register_buffer("optical_ch", tokenizer.group_channel_mask(tokenizer.optical_names), persistent=False)

    # ------------------------------------------------------------------ hooks
    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        """Draw the task masks (training: per global step; validation: fixed) and tokenize."""
        if "given" not in batch:
            seed = self.seed * 1_000_003 + (int(self.global_step) if self.training else 10_000_019)
            seed += int(batch["index"][0]) if "index" in batch else 0
            g = torch.Generator().manual_seed(seed)
            ok = torch.isfinite(batch["observed"]).cpu()
            given, _ = sample_given(ok, self.tokenizer.channel_group, self.static_ch.cpu(), self.optical_ch.cpu(),
                                    probs=self.tasks, ratio=self.mask_ratio, max_horizon=self.max_horizon,
                                    generator=g)
            batch = {**batch, "given": given.to(batch["observed"].device)}
        return self.tokenizer.encode(batch)

    def model_input(self, tokens: TokenBatch, x_t: Tensor) -> Tensor:
        """``[b, n, 3 d + f]``: noisy tokens, given values, given mask, group / day-of-year features."""
        m = tokens.meta
        return torch.cat([x_t, m["cond"], m["given"].to(x_t.dtype), m["features"].to(x_t.dtype)], -1)

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop_cond: Tensor | None = None) -> Tensor:
        return self.model(self.model_input(tokens, x_t), t, drop_cond=drop_cond, **tokens.model_kwargs())

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def complete(self, batch: dict[str, Tensor], given: Tensor, *, samples: int = 4, steps: int | None = None,
                 seed: int = 0) -> Tensor:
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
            gen = self.generate(tokens, steps=steps, known=tokens.meta["cond"], known_mask=tokens.meta["given"],
                                generator=g)
            out.append(self.tokenizer.decode(gen)["values"])
        return torch.stack(out)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        from ditkit_geo.viz import write_task_figures

        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "splits"):
            return []
        return write_task_figures(self, dm, Path(out_dir), tag)
