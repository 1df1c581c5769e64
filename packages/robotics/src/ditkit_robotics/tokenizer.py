"""Action-chunk tokenizer: min-max normalisation of actions (and observations) to [-1, 1], one token per step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import repeat
from torch import Tensor, nn

from ditkit_core.tokenizers import TokenBatch


def action_positions(b: int, horizon: int, device: torch.device | str = "cpu") -> Tensor:
    """Step indices ``[b, horizon, 1]`` (long) of an action chunk (the DiT's learned positions)."""
    return repeat(torch.arange(horizon, device=device), "n -> b n 1", b=b)


class ActionChunkTokenizer(nn.Module):
    """Turns an action chunk ``[b, horizon, action_dim]`` into ``horizon`` tokens of width ``action_dim``.

    Actions and observations are scaled per dimension to [-1, 1] from the training data's min / max (Diffusion
    Policy's normaliser). The statistics are buffers: they travel with checkpoints and ``save_pretrained``.
    :meth:`fit` sets them (the policy module calls it from the DataModule at setup). Decoding clips actions to
    the environment bounds ``action_low`` / ``action_high``.

    Args:
        action_dim: width of an action.
        obs_dim: width of an observation vector.
        horizon: actions per chunk (tokens per sample).
        n_obs_steps: observations in the history.
        action_low: lower env bound per action dimension (default -1).
        action_high: upper env bound per action dimension (default +1).
    """

    def __init__(
        self,
        action_dim: int = 4,
        obs_dim: int = 39,
        horizon: int = 16,
        n_obs_steps: int = 2,
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
    ):
        super().__init__()
        if min(action_dim, obs_dim, horizon, n_obs_steps) < 1:
            raise ValueError(
                f"ActionChunkTokenizer: dims must be >= 1, got action_dim={action_dim}, "
                f"obs_dim={obs_dim}, horizon={horizon}, n_obs_steps={n_obs_steps}"
            )
        self.action_dim, self.obs_dim, self.horizon, self.n_obs_steps = action_dim, obs_dim, horizon, n_obs_steps
        self.action_low = list(action_low) if action_low is not None else [-1.0] * action_dim
        self.action_high = list(action_high) if action_high is not None else [1.0] * action_dim
        if len(self.action_low) != action_dim or len(self.action_high) != action_dim:
            raise ValueError(
                f"ActionChunkTokenizer: action_low / action_high need {action_dim} values, got "
                f"{len(self.action_low)} / {len(self.action_high)}"
            )
        self.token_dim = action_dim
        self.register_buffer("act_min", -torch.ones(action_dim))
        self.register_buffer("act_max", torch.ones(action_dim))
        self.register_buffer("obs_min", -torch.ones(obs_dim))
        self.register_buffer("obs_max", torch.ones(obs_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ statistics
    def fit(self, stats: dict[str, Tensor]) -> None:
        """Set normalisation ranges from ``{obs_min, obs_max, action_min, action_max}`` (each ``[dim]``)."""
        for key, buf, dim in (("obs", "obs", self.obs_dim), ("action", "act", self.action_dim)):
            lo, hi = stats[f"{key}_min"].float(), stats[f"{key}_max"].float()
            if lo.shape != (dim,) or hi.shape != (dim,):
                raise ValueError(f"ActionChunkTokenizer.fit: {key}_min/max must be [{dim}], got {tuple(lo.shape)}")
            getattr(self, f"{buf}_min").copy_(lo)
            getattr(self, f"{buf}_max").copy_(hi)
        self.fitted.fill_(True)

    @staticmethod
    def _scale(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        span = (hi - lo).clamp_min(1e-4)  # constant dimensions map to ~0
        return span / 2, (hi + lo) / 2

    def normalize_obs(self, obs: Tensor) -> Tensor:
        """``[..., obs_dim]`` -> [-1, 1] (outside values extrapolate linearly)."""
        half, mid = self._scale(self.obs_min, self.obs_max)
        return (obs - mid) / half

    def normalize_action(self, action: Tensor) -> Tensor:
        half, mid = self._scale(self.act_min, self.act_max)
        return (action - mid) / half

    def unnormalize_action(self, x: Tensor) -> Tensor:
        half, mid = self._scale(self.act_min, self.act_max)
        return x * half + mid

    def clip_action(self, action: Tensor) -> Tensor:
        """Clip ``[..., action_dim]`` to the environment bounds."""
        lo = torch.tensor(self.action_low, dtype=action.dtype, device=action.device)
        hi = torch.tensor(self.action_high, dtype=action.dtype, device=action.device)
        return torch.maximum(torch.minimum(action, hi), lo)

    # ------------------------------------------------------------------ Tokenizer protocol
    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        """``{"action": [b, horizon, action_dim], "obs"?: [b, n_obs, obs_dim], "task_id"?: [b]}`` -> tokens.

        ``x`` holds the normalised actions, ``pos [b, horizon, 1]`` (long) their step index; the normalised
        observations and task ids ride in ``meta`` for the policy's observation encoder.
        """
        if "action" not in raw:
            raise KeyError(f"ActionChunkTokenizer.encode: batch needs key 'action', got keys {sorted(raw)}")
        a = raw["action"]
        if a.dim() != 3 or a.shape[1:] != (self.horizon, self.action_dim):
            raise ValueError(
                f"ActionChunkTokenizer.encode: action must be [b, {self.horizon}, {self.action_dim}], "
                f"got {tuple(a.shape)}"
            )
        meta = {}
        if "obs" in raw:
            meta["obs"] = self.normalize_obs(raw["obs"].float())
        if "task_id" in raw:
            meta["task_id"] = raw["task_id"].long()
        return TokenBatch(
            x=self.normalize_action(a.float()), pos=action_positions(a.shape[0], self.horizon, a.device), meta=meta
        )

    def template(self, obs: Tensor, task_id: Tensor | None = None) -> TokenBatch:
        """Tokens to sample an action chunk for raw observation histories (``x`` gives the shape only).

        Args:
            obs: raw observations ``[b, n_obs_steps, obs_dim]``.
            task_id: ``[b]`` long (multi-task policies).

        Returns:
            ``x`` zeros ``[b, horizon, action_dim]``, ``pos [b, horizon, 1]``, ``meta`` with the normalised
            observations (and task ids) for the policy's observation encoder.
        """
        b = obs.shape[0]
        meta = {"obs": self.normalize_obs(obs.float())}
        if task_id is not None:
            meta["task_id"] = task_id.long()
        x = torch.zeros(b, self.horizon, self.action_dim, device=obs.device)
        return TokenBatch(x=x, pos=action_positions(b, self.horizon, obs.device), meta=meta)

    def decode(self, tokens: TokenBatch, clip: bool = False) -> dict[str, Tensor]:
        """Tokens -> ``{"action": [b, horizon, action_dim]}`` in env units (clipped to the bounds if ``clip``)."""
        a = self.unnormalize_action(tokens.x)
        return {"action": self.clip_action(a) if clip else a}
