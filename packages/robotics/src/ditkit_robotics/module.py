"""``PolicyModule``: a flow-matching DiT policy over action chunks (Diffusion Policy / pi0 / MoDE style).

Tokens are the normalised actions of a chunk (``horizon`` tokens of width ``action_dim``, learned positions);
the observation history (and the task) condition the DiT through adaLN (``cond``) and cross-attention
(``context``). Sampling integrates the learned velocity from noise (t = 0) to actions (t = 1) with a few solver
steps; the receding-horizon controller executes the first ``n_action_steps`` actions and re-plans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ditkit_core.flow import TimeSampler
from ditkit_core.lightning import FlowMatchingModule
from ditkit_core.nn import DiTConfig
from ditkit_core.sampling import sample
from ditkit_core.tokenizers import TokenBatch
from ditkit_robotics.inputs import check_policy_inputs
from ditkit_robotics.model import ObsEncoder, action_positions
from ditkit_robotics.tokenizer import ActionChunkTokenizer


class PolicyModule(FlowMatchingModule):
    """Flow-matching action-chunk policy.

    Args:
        tokenizer: the :class:`ActionChunkTokenizer` (horizon, dims, normalisation, env bounds).
        model: DiT config; ``in_dim`` = ``action_dim``, ``cond_dim`` = encoder width (> 0), ``context_dim`` =
            ``cond_dim`` or 0, ``learned_pos`` >= ``horizon``. Dense or MoE (``moe_router="time"`` = MoDE).
        num_tasks: tasks of a multi-task policy (task embedding; 0/1 = single task).
        n_action_steps: actions executed per chunk before re-planning.
        time_sampler, lr, weight_decay, warmup_steps, max_steps, min_lr_ratio, seed, sample_steps,
        sample_method, sample_schedule: see :class:`ditkit_core.lightning.FlowMatchingModule`.
    """

    def __init__(
        self,
        tokenizer: ActionChunkTokenizer,
        model: DiTConfig,
        num_tasks: int = 0,
        n_action_steps: int = 8,
        time_sampler: TimeSampler | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        max_steps: int | None = None,
        min_lr_ratio: float = 0.05,
        seed: int = 0,
        sample_steps: int = 10,
        sample_method: str = "euler",
        sample_schedule: str = "uniform",
    ):
        # LightningCLI stores the parsed YAML (plain dicts) as hyper-parameters, so configs written by
        # save_pretrained after a CLI run come back as dicts: accept both forms.
        if isinstance(model, dict):
            model = DiTConfig.from_dict(model)
        if isinstance(time_sampler, dict):
            time_sampler = TimeSampler(**time_sampler)
        if model.cond_dim <= 0:
            raise ValueError(f"PolicyModule: model.cond_dim={model.cond_dim} must be > 0 (observation encoder width)")
        if model.context_dim not in (0, model.cond_dim):
            raise ValueError(
                f"PolicyModule: model.context_dim={model.context_dim} must be 0 or cond_dim={model.cond_dim}"
            )
        if model.learned_pos < tokenizer.horizon:
            raise ValueError(
                f"PolicyModule: model.learned_pos={model.learned_pos} must be >= tokenizer.horizon={tokenizer.horizon}"
            )
        if not 1 <= n_action_steps <= tokenizer.horizon:
            raise ValueError(
                f"PolicyModule: n_action_steps={n_action_steps} must be in [1, horizon={tokenizer.horizon}]"
            )
        super().__init__(
            tokenizer,
            model,
            time_sampler=time_sampler,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            max_steps=max_steps,
            min_lr_ratio=min_lr_ratio,
            seed=seed,
            sample_steps=sample_steps,
            sample_method=sample_method,
            sample_schedule=sample_schedule,
        )
        self.num_tasks, self.n_action_steps = num_tasks, n_action_steps
        self.encoder = ObsEncoder(tokenizer.obs_dim, tokenizer.n_obs_steps, model.cond_dim, num_tasks)

    # ------------------------------------------------------------------ hooks
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if not bool(self.tokenizer.fitted) and dm is not None and hasattr(dm, "stats"):
            self.tokenizer.fit({k: v.to(self.device) for k, v in dm.stats().items()})

    def condition(self, obs_norm: Tensor, task_id: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Normalised history ``[b, n_obs, obs_dim]`` -> ``cond [b, c]``, ``context [b, m, c]`` (or None)."""
        cond, ctx = self.encoder(obs_norm, task_id)
        return cond, (ctx if self.config.context_dim else None)

    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        tokens = self.tokenizer.encode(batch)
        if "obs" not in tokens.meta:
            raise KeyError(f"PolicyModule.tokenize: batch needs key 'obs', got keys {sorted(batch)}")
        cond, ctx = self.condition(tokens.meta["obs"], tokens.meta.get("task_id"))
        return tokens.replace(cond=cond, context=ctx)

    # ------------------------------------------------------------------ inference
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
    ) -> Tensor:
        """Sample an action chunk for each observation history.

        Args:
            obs: raw observations ``[b, n_obs_steps, obs_dim]``.
            task_id: ``[b]`` long for multi-task policies.
            steps: solver steps (default ``sample_steps``).
            method: solver (default ``sample_method``).
            generator: RNG of the initial noise.
            clip: clip to the environment's action bounds.

        Returns:
            actions ``[b, horizon, action_dim]`` in environment units.

        Raises:
            ValueError: naming the argument: ``obs`` of the wrong shape or with NaN / inf / beyond-float32 values,
                ``task_id`` missing, non-integer or outside ``[0, num_tasks)`` (multi-task policies; single-task
                policies ignore it), ``steps`` outside ``[1, 10000]``, an unknown ``method``.
        """
        obs, task_id = check_policy_inputs(self, obs, task_id, steps, method)
        was_training = self.training
        self.eval()
        tok = self.tokenizer
        b = obs.shape[0]
        cond, ctx = self.condition(
            tok.normalize_obs(obs.to(self.device)), None if task_id is None else task_id.to(self.device)
        )
        pos = action_positions(b, tok.horizon, self.device)
        x_0 = torch.randn(b, tok.horizon, tok.action_dim, generator=generator, device=self.device)

        def fn(x: Tensor, t: Tensor) -> Tensor:
            return self.model(x, t, pos=pos, context=ctx, cond=cond)

        x = sample(
            fn,
            x_0,
            steps=self.sample_steps if steps is None else steps,
            method=method or self.sample_method,
            schedule=self.sample_schedule,
        )
        self.train(was_training)
        return tok.decode(TokenBatch(x=x), clip=clip)["action"]

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
        self.log("val/action_mse", err, prog_bar=True)

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
