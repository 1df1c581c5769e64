"""Policy networks: the observation encoder and MoDE expert caching for time-routed MoE DiTs.

Expert caching (MoDE, Reuss et al. 2024): with ``moe_router="time"`` the experts a block uses depend on the
noise level only, and a sampler visits a fixed grid of times. :class:`ExpertCache` therefore precomputes, once
per grid time and block, the route and *fuses* the shared and the selected experts into one MLP of width
``(shared + top_k) * hidden`` (route weights folded into the second linear layer), so sampling runs two dense
matmuls per block instead of routing and gathering tokens per expert. The fused MLP is exactly the routed one.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from ditkit_core.nn import DiT
from ditkit_core.nn.layers import MoEMlp
from ditkit_core.sampling import find_dits, time_grid


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


def solver_times(steps: int, method: str = "euler", schedule: str = "uniform", **grid_kw) -> Tensor:
    """The times at which a fixed-step solver of :func:`ditkit_core.sampling.sample` calls the velocity."""
    g = time_grid(steps, schedule, **grid_kw)
    t0, t1 = g[:-1], g[1:]
    if method == "euler":
        ts = [t0]
    elif method in ("midpoint",):
        ts = [t0, t0 + 0.5 * (t1 - t0)]
    elif method == "heun":
        ts = [t0, t1]
    elif method == "rk4":
        ts = [t0, t0 + 0.5 * (t1 - t0), t1]
    else:
        raise ValueError(f"solver_times: no fixed grid for method {method!r}")
    return torch.unique(torch.cat(ts))


class _FusedExperts(nn.Module):
    """Shared + selected experts of one block at one time, fused into a single two-layer MLP."""

    def __init__(self, moe: MoEMlp, idx: Tensor, w: Tensor):
        super().__init__()
        experts = list(moe.shared) + [moe.experts[int(e)] for e in idx]
        weights = [1.0] * len(moe.shared) + [float(v) for v in w]
        self.w1 = torch.cat([e.fc1.weight for e in experts], 0).detach()  # [(s+k) h, d]
        self.b1 = torch.cat([e.fc1.bias for e in experts], 0).detach()
        self.w2 = torch.cat([c * e.fc2.weight for c, e in zip(weights, experts)], 1).detach()  # [d, (s+k) h]
        self.b2 = sum(c * e.fc2.bias for c, e in zip(weights, experts)).detach()

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.gelu(F.linear(x, self.w1, self.b1), approximate="tanh"), self.w2, self.b2)


class ExpertCache:
    """MoDE expert caching: precomputed, fused routes per sampling time for time-routed MoE DiTs.

    Use as a context manager around sampling on the grid it was built for. A call at a time outside the grid
    (or with different times in one batch) falls back to normal routing, so results never change.

    Args:
        model: a module containing DiTs whose MoE blocks use ``moe_router="time"``.
        times: the solver's evaluation times ``[K]`` (see :func:`solver_times`).

    Example:
        >>> with ExpertCache(policy, solver_times(4)):
        ...     actions = policy.predict_action(obs, task_id, steps=4)
    """

    def __init__(self, model: nn.Module, times: Tensor):
        self.dits: list[DiT] = [d for d in find_dits(model) if d.config.moe_experts]
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
        self._tables: list[tuple[Tensor, list[list[_FusedExperts]]]] = []
        self._stack: ExitStack | None = None
        self.build()

    @torch.no_grad()
    def build(self) -> None:
        """(Re)compute the fused experts from the current weights (call again after training)."""
        self._tables = []
        for dit in self.dits:
            p = next(dit.parameters())
            temb = dit.t_embed(self.times.to(p.device))  # [K, d]
            fused = []
            for blk in dit.blocks:
                _, idx, w = blk.mlp.route(temb[:, None], temb)  # [K, 1, k]
                fused.append([_FusedExperts(blk.mlp, idx[j, 0], w[j, 0]) for j in range(len(self.times))])
            self._tables.append((temb, fused))

    def _patch(self, moe: MoEMlp, table: Tensor, fused: list[_FusedExperts]):
        original = type(moe).forward

        def forward(x: Tensor, temb: Tensor, mask: Tensor | None = None) -> Tensor:
            dist = (table[None].to(temb.dtype) - temb[:, None]).abs().amax(-1)  # [b, K]
            j = int(dist[0].argmin())
            if float(dist[:, j].max()) > 1e-4:
                self.misses += 1
                return original(moe, x, temb, mask)
            self.hits += 1
            return fused[j](x)

        return forward

    def __enter__(self) -> ExpertCache:
        self._stack = ExitStack()
        for dit, (table, fused) in zip(self.dits, self._tables):
            for i, blk in enumerate(dit.blocks):
                blk.mlp.forward = self._patch(blk.mlp, table, fused[i])  # fused[i][j]: block i, time j
                self._stack.callback(_unpatch, blk.mlp)
        return self

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        self._stack.close()


def _unpatch(module: nn.Module) -> None:
    if "forward" in module.__dict__:
        del module.forward


def action_positions(b: int, horizon: int, device: torch.device | str = "cpu") -> Tensor:
    """Step indices ``[b, horizon, 1]`` (long) of an action chunk (the DiT's learned positions)."""
    return repeat(torch.arange(horizon, device=device), "n -> b n 1", b=b)
