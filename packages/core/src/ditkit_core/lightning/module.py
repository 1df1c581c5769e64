"""``FlowMatchingModule``: the generic Lightning training loop for a tokenizer + DiT + probability path."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from ditkit_core.flow import LinearPath, TimeSampler, drop_conditions, masked_mse, ot_pair
from ditkit_core.lightning.pretrained import from_config, to_config
from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.sampling import sample
from ditkit_core.tokenizers import TokenBatch, Tokenizer


# Checkpoints keep the module's typed hyper-parameters; allow-list these data-only classes for torch.load's
# weights_only unpickler so resuming needs no unsafe load. Domains call ``allow_in_checkpoints`` for their own.
def allow_in_checkpoints(*classes: type) -> None:
    """Allow-list data-only config classes (dataclasses) for ``torch.load(weights_only=True)``."""
    torch.serialization.add_safe_globals(list(classes))


allow_in_checkpoints(DiTConfig, TimeSampler)


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.dim() < 2 or "embed" in name or "norm" in name or "register_tokens" in name or name.endswith("gate")


class FlowMatchingModule(L.LightningModule):
    """Trains ``DiT`` to predict the velocity of the linear path on the tokens of a tokenizer.

    Noise and times are drawn from a generator seeded by ``(seed, global_step)``, so a run resumed from a
    checkpoint continues the same loss curve as an uninterrupted one.

    Args:
        tokenizer: turns a DataModule batch into a :class:`TokenBatch` (and back).
        model: the DiT configuration; ``in_dim`` / ``out_dim`` default to ``tokenizer.token_dim`` when 0.
        time_sampler: distribution of training times.
        sigma_min: noise floor of the linear path at t = 1.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to norms, biases, embeddings, gates).
        betas: AdamW betas.
        warmup_steps: linear warm-up steps.
        max_steps: cosine horizon; ``None`` uses the trainer's estimated stepping batches.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        cond_dropout: probability of dropping the condition / context per sample (CFG training).
        ot_pairing: pair noise with data by minibatch optimal transport.
        seed: seed of the noise / time generator.
        sample_steps: default solver steps for :meth:`generate`.
        sample_method: default solver.
        sample_schedule: default time grid.
        cfg_scale: default guidance scale for :meth:`generate`.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        model: DiTConfig,
        time_sampler: TimeSampler | None = None,
        sigma_min: float = 0.0,
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 100,
        max_steps: int | None = None,
        min_lr_ratio: float = 0.1,
        cond_dropout: float = 0.0,
        ot_pairing: bool = False,
        seed: int = 0,
        sample_steps: int = 32,
        sample_method: str = "euler",
        sample_schedule: str = "uniform",
        cfg_scale: float = 1.0,
    ):
        super().__init__()
        if isinstance(tokenizer, dict) and "class_path" in tokenizer:  # rebuilt from a checkpoint's hparams
            tokenizer = from_config(tokenizer)
        if isinstance(model, dict):  # from a checkpoint / config saved by LightningCLI as plain data
            model = from_config(model) if "class_path" in model else DiTConfig.from_dict(model)
        if isinstance(time_sampler, dict):
            time_sampler = from_config(time_sampler) if "class_path" in time_sampler else TimeSampler(**time_sampler)
        self.save_hyperparameters(ignore=["tokenizer"])
        try:  # keep the tokenizer as plain class_path/init_args data so checkpoints load with weights_only
            self.hparams["tokenizer"] = to_config(tokenizer, "tokenizer")
        except TypeError as e:
            warnings.warn(
                f"FlowMatchingModule: tokenizer not stored in hparams ({e}); pass it to "
                "load_from_checkpoint(tokenizer=...)",
                stacklevel=2,
            )
        self.tokenizer = tokenizer
        if model.in_dim <= 0:
            raise ValueError("FlowMatchingModule: model.in_dim must be set")
        tok_dim = getattr(tokenizer, "token_dim", model.in_dim)
        if tok_dim != model.in_dim:
            raise ValueError(f"FlowMatchingModule: tokenizer.token_dim={tok_dim} != model.in_dim={model.in_dim}")
        self.config = model
        self.model = DiT(model)
        self.time_sampler = time_sampler or TimeSampler()
        self.path = LinearPath(sigma_min)
        self.lr, self.weight_decay, self.betas = lr, weight_decay, tuple(betas)
        self.warmup_steps, self.max_steps, self.min_lr_ratio = warmup_steps, max_steps, min_lr_ratio
        self.cond_dropout, self.ot_pairing, self.seed = cond_dropout, ot_pairing, seed
        self.sample_steps, self.sample_method = sample_steps, sample_method
        self.sample_schedule, self.cfg_scale = sample_schedule, cfg_scale
        self.sigma_min = sigma_min

    # ------------------------------------------------------------------ hooks domains override
    def tokenize(self, batch: Any) -> TokenBatch:
        """DataModule batch -> tokens (domains add learned conditioning here)."""
        return self.tokenizer.encode(batch)

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop_cond: Tensor | None = None) -> Tensor:
        """Model velocity ``[b, n, d]`` at ``x_t`` for the conditioning carried by ``tokens``."""
        return self.model(x_t, t, drop_cond=drop_cond, **tokens.model_kwargs())

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """Source sample ``x_0`` shaped like ``x_1`` (standard normal; domains may centre or project it)."""
        return torch.randn(x_1.shape, generator=generator, device=x_1.device, dtype=x_1.dtype)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        """Write viewable samples (PNG, wav, ply, ...) to ``out_dir``; called by ``SampleWriter``."""
        return []

    # ------------------------------------------------------------------ training
    def _generator(self, offset: int = 0) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed * 1_000_003 + int(self.global_step) * 7919 + offset)
        return g

    def flow_loss(self, tokens: TokenBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Flow-matching loss on one token batch; returns ``loss`` (with MoE aux) and its parts."""
        x_1 = tokens.x
        b = x_1.shape[0]
        x_0 = self.sample_noise(x_1, tokens, generator)
        if self.ot_pairing:
            x_0 = ot_pair(x_0, x_1, tokens.mask)
        t = self.time_sampler(b, device=x_1.device, generator=generator)
        ps = self.path.sample(x_0, x_1, t)
        drop = drop_conditions(b, self.cond_dropout, x_1.device, generator)
        v = self.velocity(tokens, ps.x_t, t, drop)
        mask = tokens.mask
        if tokens.known_mask is not None:
            known = tokens.known_mask if tokens.known_mask.shape == x_1.shape else tokens.known_mask[..., None]
            m = torch.ones_like(x_1, dtype=torch.bool) if mask is None else mask[..., None].expand_as(x_1)
            mask = m & ~known.expand_as(x_1)
        fm = masked_mse(v, ps.u_t, mask)
        aux = self.model.aux_loss()
        return {"loss": fm + aux, "fm": fm, "aux": aux}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens = self.tokenize(batch)
        out = self.flow_loss(tokens, self._generator())
        bs = tokens.batch_size
        self.log("train/loss", out["fm"], prog_bar=True, batch_size=bs)
        if self.config.moe_experts:
            self.log("train/moe_balance", out["aux"], batch_size=bs)
        return out["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens = self.tokenize(batch)
        g = torch.Generator(device=self.device).manual_seed(self.seed + 10_007 * batch_idx)  # same noise each epoch
        out = self.flow_loss(tokens, g)
        self.log("val/loss", out["fm"], prog_bar=True, batch_size=tokens.batch_size, sync_dist=True)
        return out["fm"]

    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (no_decay if _no_decay(name, p) else decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr,
            betas=self.betas,
        )
        total = self.max_steps
        if total is None:
            total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 10_000
        warm, floor = self.warmup_steps, self.min_lr_ratio

        def lr_lambda(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ generation
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
        **solver_kwargs: Any,
    ) -> TokenBatch:
        """Sample tokens shaped like ``template.x`` under ``template``'s conditioning.

        Args:
            template: a :class:`TokenBatch` whose ``x`` gives the shape (values ignored) and whose
                mask / pos / context / cond condition the model.
            steps, method, schedule, cfg_scale: solver settings (defaults from the module).
            known, known_mask: values to keep (see :func:`ditkit_core.sampling.sample`).
            generator: RNG for the initial noise.

        Returns:
            ``template`` with ``x`` replaced by the sample (padded tokens zeroed).
        """
        was_training = self.training
        self.eval()
        x_0 = self.sample_noise(template.x, template, generator)
        scale = self.cfg_scale if cfg_scale is None else cfg_scale

        def fn(x: Tensor, t: Tensor, cond_drop: bool = False) -> Tensor:
            drop = torch.full((x.shape[0],), cond_drop, dtype=torch.bool, device=x.device) if cond_drop else None
            return self.velocity(template, x, t, drop)

        x = sample(
            fn,
            x_0,
            steps=steps or self.sample_steps,
            method=method or self.sample_method,
            schedule=schedule or self.sample_schedule,
            cfg_scale=scale,
            known=known,
            known_mask=known_mask,
            progress=progress,
            **solver_kwargs,
        )
        if template.mask is not None:
            x = x * template.mask[..., None].to(x.dtype)
        self.train(was_training)
        return template.replace(x=x)
