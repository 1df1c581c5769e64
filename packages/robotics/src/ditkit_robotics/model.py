"""Policy network parts beside the core DiT: the observation encoder that fills its condition and context.

MoDE expert caching (fused routes per solver time for ``moe_router="time"``) is the core's
:class:`ditkit_core.sampling.ExpertCache`; :class:`~ditkit_robotics.PolicyModule` keeps one per solver grid.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn


class ObsEncoder(nn.Module):
    """State-observation encoder: the DiT's global condition and its cross-attention context.

    Each (normalised) observation of the history becomes one context token (MLP + learned step embedding); a
    task embedding adds one more token for multi-task policies. The global condition is an MLP of the whole
    flattened history plus the task embedding (FiLM-like conditioning through adaLN).

    Args:
        obs_dim: width of one observation.
        n_obs_steps: history length.
        dim: output width (``DiTConfig.cond_dim`` / ``context_dim``).
        num_tasks: number of tasks (0 or 1: no task embedding).
    """

    def __init__(self, obs_dim: int, n_obs_steps: int, dim: int, num_tasks: int = 0):
        super().__init__()
        self.n_obs_steps = n_obs_steps
        self.step = nn.Sequential(nn.Linear(obs_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.step_pos = nn.Parameter(torch.randn(n_obs_steps, dim) * 0.02)
        self.task = nn.Embedding(num_tasks, dim) if num_tasks > 1 else None
        self.glob = nn.Sequential(
            nn.Linear(n_obs_steps * obs_dim + (dim if self.task is not None else 0), dim),
            nn.SiLU(),
            nn.Linear(dim, dim),
        )

    def forward(self, obs: Tensor, task_id: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encode a history.

        Args:
            obs: normalised observations ``[b, n_obs_steps, obs_dim]``.
            task_id: ``[b]`` long (needed when the encoder has a task embedding).

        Returns:
            ``cond [b, dim]`` and ``context [b, n_obs_steps (+1), dim]``.
        """
        if obs.dim() != 3 or obs.shape[1] != self.n_obs_steps:
            raise ValueError(
                f"ObsEncoder: obs must be [b, n_obs_steps={self.n_obs_steps}, obs_dim], got {tuple(obs.shape)}"
            )
        ctx = self.step(obs) + self.step_pos  # [b, n_obs, dim]
        flat = rearrange(obs, "b s d -> b (s d)")
        if self.task is not None:
            if task_id is None:
                raise ValueError("ObsEncoder: a multi-task encoder needs task_id [b]")
            temb = self.task(task_id)  # [b, dim]
            ctx = torch.cat([ctx, temb[:, None]], dim=1)
            flat = torch.cat([flat, temb], dim=-1)
        return self.glob(flat), ctx
