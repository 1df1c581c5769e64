"""The latent model: SELFIES autoencoder (phase 1) then a property-conditioned DiT over its latent tokens (phase 2).

One ``ditkit fit`` run trains both phases so a checkpoint (and ``save_pretrained``) always holds a matching
autoencoder and DiT:

* steps ``[0, ae_steps)``: the autoencoder (reconstruction of the canonical SELFIES from noisy latents, plus an
  enumeration InfoNCE for the pooled architecture; see :mod:`ditkit_molecules.autoencoder`) with its own warm-up /
  cosine learning-rate schedule;
* at ``ae_steps``: the autoencoder is frozen and the latent / property standardisation is fitted on the training set;
* steps ``[ae_steps, max_steps)``: flow matching of the DiT on the standardised latents, conditioned on the
  standardised (QED, logP, MW / 100) through ``cond`` with condition dropout (classifier-free guidance); an optional
  user text embedding can be given as ``context`` in the batch (set ``model.context_dim``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.tokenizers import TokenBatch
from ditkit_molecules.autoencoder import LatentTokenizer
from ditkit_molecules.tokenizer import selfies_alphabet


class LatentMoleculeModule(FlowMatchingModule):
    """Autoencoder + latent DiT (see the module docstring).

    Args:
        tokenizer: the :class:`LatentTokenizer` (holds the autoencoder).
        model: DiT configuration (``in_dim`` = ``tokenizer.latent_dim``, derived when left out; ``cond_dim`` = 3 for
            property conditioning, 0 for an unconditional model).
        flow, optim, sampler, seed: as in :class:`~ditkit_core.lightning.FlowMatchingModule` (``optim.lr`` is the
            DiT learning rate; warm-up, betas and the cosine floor apply to both phases).
        ae_steps: autoencoder training steps before the DiT phase.
        ae_lr: autoencoder peak learning rate.
        eval_samples: molecules sampled for validation metrics in the DiT phase (0: none).
        decode_temperature: decoder sampling temperature at generation (0 = greedy).
    """

    LEGACY_ARGS: ClassVar[dict[str, tuple[str, str]]] = {}
    UNUSED_PARAMETERS: ClassVar[bool] = True  # the DiT takes no part in the autoencoder phase, the decoder none after
    """The latent module's own arguments never moved to a group; its earlier flat base arguments (``lr``,
    ``cond_dropout``, ``sample_steps``, ...) are migrated by the core table."""

    def __init__(
        self,
        tokenizer: LatentTokenizer,
        model: DiTConfig,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
        ae_steps: int = 1500,
        ae_lr: float = 2e-3,
        eval_samples: int = 128,
        decode_temperature: float = 0.0,
    ):
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        self.ae_steps, self.ae_lr = ae_steps, ae_lr
        self.eval_samples, self.decode_temperature = eval_samples, decode_temperature
        self.register_buffer("stats_ready", torch.zeros((), dtype=torch.bool))
        self.train_smiles: set[str] = set()
        self._zcache: list[Tensor] | None = None  # frozen-encoder latents of every training enumeration
        self._from_cache = False

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Earlier flat arguments into the groups; a tokenizer stored without ``symbols`` (earlier versions used a
        fixed vocabulary, SELFIES' robust alphabet) gets that alphabet."""
        args = super().migrate_args(args)
        tok = args.get("tokenizer")
        if isinstance(tok, dict) and isinstance(tok.get("init_args"), dict) and tok["init_args"].get("symbols") is None:
            args["tokenizer"] = {**tok, "init_args": {**tok["init_args"], "symbols": selfies_alphabet()}}
        return args

    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """``in_dim`` from the tokenizer and ``learned_pos`` = the latent tokens: the DiT must tell the latent tokens
        apart (without positions it is permutation-equivariant and can only draw exchangeable tokens)."""
        config = super().resolve_config(config)
        n = self.tokenizer.latent_tokens
        if 0 < config.learned_pos < n:
            raise ConfigError(f"DiTConfig.learned_pos={config.learned_pos}: must be >= the {n} latent tokens")
        return self.derive(config, learned_pos=n) if config.learned_pos == 0 else config

    @property
    def in_ae_phase(self) -> bool:
        return int(self.global_step) < self.ae_steps

    def setup(self, stage: str) -> None:
        """Take the training data's SELFIES symbols (the autoencoder is built for them; the checkpoint keeps them)
        and the training SMILES (novelty)."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and getattr(dm, "symbols", None) is not None:
            self.tokenizer.set_symbols(dm.symbols)
        if self.tokenizer.symbols is not None and isinstance(self.hparams.get("tokenizer"), dict):
            self.hparams["tokenizer"].setdefault("init_args", {})["symbols"] = list(self.tokenizer.symbols)
        if dm is not None and hasattr(dm, "train_smiles"):
            self.train_smiles = set(dm.train_smiles)

    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        """Standardised latents of the batch's molecules (the encoder's input: the canonical SELFIES, or a randomised
        SMILES for the pooled architecture; in the DiT phase of training looked up in the latents encoded once by the
        frozen encoder); the raw properties ride in ``meta["props"]``."""
        if self._from_cache and self._zcache is not None and "index" in batch:
            tok = self.tokenizer
            rows = zip(batch["index"].tolist(), batch["enum_index"].tolist())
            z = torch.stack([self._zcache[i][j if len(self._zcache[i]) > 1 else 0] for i, j in rows])
            x = (z.to(self.device) - tok.z_mean) / tok.z_std  # [b, L, dz]
            return TokenBatch(x=x, pos=tok.positions(x.shape[0], x.device), meta={"props": batch["props"]})
        return self.tokenizer.encode(batch)

    def condition(self, tokens: TokenBatch, drop: Tensor | None) -> TokenBatch:
        """``cond`` = the standardised (QED, logP, MW / 100) of ``meta["props"]`` (None for an unconditional model or
        without properties); the DiT swaps dropped rows for its null condition."""
        props = tokens.meta.get("props")
        if not self.config.cond_dim or props is None:
            return tokens.replace(cond=None)
        return tokens.replace(cond=self.tokenizer.normalise_props(props.float()))

    @torch.no_grad()
    def _cache_latents(self) -> list[Tensor]:
        """Latents ``[k, L, dz]`` of every enumeration of every training molecule (frozen encoder), kept on CPU; one
        per molecule (``k = 1``) for an encoder of the canonical SELFIES."""
        ds = self.trainer.datamodule.train
        self.tokenizer.eval()
        rows = [t[None] for t in ds.targets] if self.tokenizer.input_key == "target" else ds.enums
        z = self.tokenizer.latents(torch.cat(rows).to(self.device)).cpu()
        self._zcache = list(torch.split(z, [len(e) for e in rows]))
        return self._zcache

    def _fit_statistics(self) -> None:
        """Latent standardisation over every training enumeration, property standardisation over the molecules."""
        tok = self.tokenizer
        z = torch.cat(self._cache_latents()).to(self.device)
        tok.z_mean.copy_(z.mean((0, 1)))
        tok.z_std.copy_(z.std((0, 1)).clamp_min(1e-4))
        props = torch.stack(self.trainer.datamodule.train.props).to(self.device)
        tok.prop_mean.copy_(props.mean(0))
        tok.prop_std.copy_(props.std(0).clamp_min(1e-4))
        self.stats_ready.fill_(True)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.in_ae_phase:
            self.tokenizer.train()
            out = self.tokenizer.ae_loss(batch, self.rng(offset=3))
            bs = batch["target"].shape[0]
            self.log("train/ae_rec", out["rec"], prog_bar=True, batch_size=bs)
            self.log("train/ae_nce", out["nce"], batch_size=bs)
            self.log("train/ae_exact", out["exact"], batch_size=bs)
            return out["loss"]
        if not bool(self.stats_ready):
            self._fit_statistics()
        elif self._zcache is None:  # resumed in the DiT phase: the statistics come from the checkpoint
            self._cache_latents()
        self.tokenizer.eval()
        self.tokenizer.requires_grad_(False)
        self._from_cache = True
        try:
            return super().training_step(batch, batch_idx)
        finally:
            self._from_cache = False

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.in_ae_phase or not bool(self.stats_ready):
            g = torch.Generator(device=self.device).manual_seed(self.seed + batch_idx)
            out = self.tokenizer.ae_loss(batch, g)
            self.log("val/ae_rec", out["rec"], batch_size=batch["target"].shape[0])
            self.log("val/ae_exact", out["exact"], batch_size=batch["target"].shape[0])
            return out["rec"]
        return super().validation_step(batch, batch_idx)

    def configure_optimizers(self) -> dict[str, Any]:
        o = self.optim
        ae = list(self.tokenizer.parameters())
        dit = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            [
                {"params": ae, "lr": self.ae_lr, "weight_decay": 0.0},
                {"params": dit, "lr": o.lr, "weight_decay": o.weight_decay},
            ],
            betas=o.betas,
        )
        total = o.max_steps
        if total is None:
            total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 10_000
        a, warm, floor = self.ae_steps, o.warmup_steps, o.min_lr_ratio

        def cosine(step: int, start: int, end: int) -> float:
            s = step - start
            if s < warm:
                return (s + 1) / warm
            p = min(1.0, (s - warm) / max(1, end - start - warm))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))

        def ae_lambda(step: int) -> float:
            return cosine(step, 0, a) if step < a else 0.0

        def dit_lambda(step: int) -> float:
            return cosine(step, a, total) if step >= a else 0.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, [ae_lambda, dit_lambda])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def sample_smiles(
        self,
        n: int,
        *,
        props: Tensor | None = None,
        seed: int = 0,
        steps: int | None = None,
        cfg_scale: float | None = None,
        context: Tensor | None = None,
    ) -> list[str]:
        """Generate ``n`` SMILES ('' where nothing decodes).

        Args:
            n: number of molecules.
            props: target (QED, logP, MW / 100) ``[n, 3]`` or ``[3]`` in natural units (None: unconditional).
            seed: RNG seed.
            steps: solver steps (default: the module's).
            cfg_scale: guidance scale for conditional sampling (default: the module's).
            context: optional text-embedding tokens ``[n, m, context_dim]``.
        """
        was = self.training
        self.eval()
        g = torch.Generator(device=self.device).manual_seed(seed)
        x = torch.zeros(n, self.tokenizer.latent_tokens, self.tokenizer.latent_dim, device=self.device)
        meta = {}
        if props is not None and self.config.cond_dim:
            meta["props"] = torch.as_tensor(props, dtype=torch.float32, device=self.device).expand(n, 3)
        template = TokenBatch(x=x, pos=self.tokenizer.positions(n, self.device), context=context, meta=meta)
        scale = (self.sampler.cfg_scale if cfg_scale is None else cfg_scale) if meta else 1.0
        z = self.generate(template, steps=steps, cfg_scale=scale, generator=g)
        out = self.tokenizer.decode(z, self.decode_temperature, g)
        self.train(was)
        return out

    def on_validation_epoch_end(self) -> None:
        if (
            self.eval_samples <= 0
            or self._trainer is None
            or self.trainer.sanity_checking
            or self.in_ae_phase
            or not bool(self.stats_ready)
        ):
            return
        from ditkit_molecules.metrics import canonical

        smiles = self.sample_smiles(self.eval_samples, seed=123)
        valid = [c for c in (canonical(s) for s in smiles) if c]
        uniq = set(valid)
        self.log("val/validity", len(valid) / max(len(smiles), 1), prog_bar=True)
        self.log("val/uniqueness", len(uniq) / max(len(valid), 1))
        self.log("val/novelty", len(uniq - self.train_smiles) / max(len(uniq), 1))

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        if self.in_ae_phase or not bool(self.stats_ready):
            return []
        from ditkit_molecules.viz import draw_grid, write_smiles

        smiles = self.sample_smiles(16, seed=0)
        out = Path(out_dir)
        return [write_smiles(smiles, out / f"latent_{tag}.smi"), draw_grid(smiles, out / f"latent_{tag}.png")]
