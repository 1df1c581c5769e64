"""Networks of the 3D model that compose one core :class:`~ditkit_core.nn.DiT` with interatomic geometry.

Both networks feed the geometry in the way molecular transformers do (Graphormer / Uni-Mol / SemlaFlow): radial basis
functions of the current interatomic distances become pair features ``[b, n, n, pair_dim]``, which the DiT turns into
a per-head additive attention bias in every block (``DiT.forward(..., pair=...)``, ``DiTConfig.pair_dim``). The pair
features depend on the noisy coordinates ``x_t``, so the networks compute them in their own ``forward``.

``DistanceBiasDiT`` (the 3D default, ``network="distance"``): tokens are the full atom vectors ``[coords, types,
charge]`` (centred, rotation-augmented), the DiT's input projection is composed with :class:`GeometricEmbed` (a radial
neighbourhood embedding), and a zero-initialised EGNN-style head reads the DiT's last hidden states
(``return_hidden=True``) and adds ``sum_j w_ij (r_i - r_j) / (d_ij + 1)`` to the coordinate output, a correction along
interatomic directions that can set bond lengths directly. Optional self-conditioning enters as condition channels
(``x_cond``, ``DiTConfig.cond_channels``) and as a second pair term from the distances of the estimate.

``EquivariantPairDiT`` (``network="equivariant"``): tokens are *invariant* atom features only (element, charge, and a
radial neighbourhood embedding as condition channels), and coordinates are updated EGNN-style (Satorras et al., 2021)
after every block, ``r_i <- r_i + sum_j w_ij (r_i - r_j) / (|r_i - r_j| + 1)``, with the pair features recomputed for
the next block; the blocks run one by one through :meth:`DiT.block` on the inputs :meth:`DiT.embed` prepares, and
:meth:`DiT.head` is the output layer. The coordinate output is exactly E(3)-equivariant (rotations, reflections;
translations by the zero centre of mass the module keeps) and the type / charge output exactly invariant. The forward
returns, per atom, ``[r_out - r_in (3), type-and-charge output (K + 1)]``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.nn import ConfigError, DiT, DiTConfig


def radial_basis(d: Tensor, centers: Tensor, width: float) -> Tensor:
    """Gaussian radial basis ``[..., R]`` of distances ``d [...]``."""
    return torch.exp(-(((d[..., None] - centers) / width) ** 2))


def pairwise(r: Tensor) -> tuple[Tensor, Tensor]:
    """Relative vectors ``r_i - r_j [b, n, n, 3]`` and distances ``[b, n, n]`` (smoothed at 0) of ``r [b, n, 3]``."""
    rel = r[:, :, None] - r[:, None]
    return rel, (rel.pow(2).sum(-1) + 1e-8).sqrt()


def pair_mask_of(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[b, n, n]``: 1 for pairs of two different real atoms, else 0."""
    eye = torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
    return (mask[:, :, None] & mask[:, None] & ~eye).to(dtype)


def _xavier(*mods: nn.Module) -> None:
    for mod in mods:
        for m in mod.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


class GeometricEmbed(nn.Module):
    """Input embedding: ``Linear(x)`` plus an embedding of each atom's neighbourhood.

    The neighbourhood feature of atom i is ``sum_j rbf(|r_i - r_j|) (x) types_j`` (``rbf``: ``rbf`` Gaussians on
    0.5..4 Angstrom; ``types_j``: atom j's current, noisy type channels), invariant to rotations and translations.
    Padded atoms have zero type channels, so they contribute nothing. It gives the DiT direct access to the bonding
    environment that decides valence. Composed onto ``DiT.x_embed`` (same input and output shapes).

    Args:
        base: the DiT's own input projection ``Linear(in_dim, dim)``.
        n_types: number of type channels (after the 3 coordinate channels).
        coord_scale: Angstrom per coordinate unit (the tokenizer's ``coord_scale``).
        rbf: number of radial basis functions.
    """

    def __init__(self, base: nn.Linear, n_types: int, coord_scale: float, rbf: int = 16):
        super().__init__()
        self.base, self.n_types, self.coord_scale = base, n_types, coord_scale
        self.register_buffer("centers", torch.linspace(0.5, 4.0, rbf), persistent=False)
        self.width = float(3.5 / (rbf - 1))
        self.proj = nn.Linear(rbf * n_types, base.out_features)
        _xavier(self.proj)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    def forward(self, x: Tensor) -> Tensor:
        """``x [b, n, 3 + K + ...]`` -> ``[b, n, dim]``."""
        pos = x[..., :3].float() * self.coord_scale  # [b, n, 3] Angstrom
        types = x[..., 3 : 3 + self.n_types].float()  # [b, n, K]
        d = torch.cdist(pos, pos)  # [b, n, n]
        phi = torch.exp(-(((d[..., None] - self.centers) / self.width) ** 2))  # [b, n, n, R]
        eye = torch.eye(d.shape[1], device=x.device, dtype=phi.dtype)
        phi = phi * (1 - eye)[None, :, :, None]
        feats = torch.einsum("bijr,bjk->birk", phi, types)  # [b, n, R, K]
        return self.base(x) + self.proj(rearrange(feats, "b n r k -> b n (r k)").to(x.dtype))


class CoordUpdate(nn.Module):
    """EGNN coordinate update ``dr_i = sum_j w_ij (r_i - r_j) / (d_ij + 1)``, ``w_ij = MLP(h_i, h_j, e_ij)``.

    The output layer is zero-initialised (no update at the start).
    """

    def __init__(self, dim: int, pair_dim: int, hidden: int):
        super().__init__()
        self.src = nn.Linear(dim, hidden)
        self.dst = nn.Linear(dim, hidden, bias=False)
        self.pair = nn.Linear(pair_dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)
        _xavier(self.src, self.dst, self.pair)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: Tensor, e: Tensor, rel: Tensor, d: Tensor, pair_mask: Tensor) -> Tensor:
        """``h [b, n, dim]``, ``e [b, n, n, P]``, ``rel [b, n, n, 3]``, ``d`` / ``pair_mask [b, n, n]`` ->
        ``[b, n, 3]``."""
        m = F.silu(self.src(h)[:, :, None] + self.dst(h)[:, None] + self.pair(e))  # [b, n, n, H]
        w = self.out(m)[..., 0] * pair_mask  # [b, n, n]
        return torch.einsum("bij,bijc->bic", w / (d + 1.0), rel)  # [b, n, 3]


class PairFeatures(nn.Module):
    """Pair features ``[b, n, n, pair_dim]`` = ``MLP(rbf(d_ij))``; ``rbf`` Gaussians evenly on ``[0, rbf_max]`` Å.

    Args:
        rbf: number of radial basis functions.
        rbf_max: largest centre (Angstrom).
        pair_dim: output width.
        coord_scale: Angstrom per coordinate unit.
    """

    def __init__(self, rbf: int, rbf_max: float, pair_dim: int, coord_scale: float):
        super().__init__()
        self.coord_scale = float(coord_scale)
        self.register_buffer("centers", torch.linspace(0.0, rbf_max, rbf), persistent=False)
        self.width = float(rbf_max / (rbf - 1))
        self.net = nn.Sequential(nn.Linear(rbf, pair_dim), nn.SiLU(), nn.Linear(pair_dim, pair_dim))
        _xavier(self.net)

    def basis(self, d: Tensor) -> Tensor:
        """Radial basis ``[..., R]`` of distances ``d`` in coordinate units."""
        return radial_basis(d * self.coord_scale, self.centers, self.width)

    def forward(self, d: Tensor) -> Tensor:
        return self.net(self.basis(d))


def _check_pair(config: DiTConfig, name: str) -> None:
    if not config.pair_dim:
        raise ConfigError(f"{name}: DiTConfig.pair_dim must be > 0 (the width of the distance features)")


class DistanceBiasDiT(nn.Module):
    """A core DiT over atom tokens whose attention sees interatomic distances (not equivariant; use augmentation).

    See the module docstring. ``forward(x, t, *, mask, x_cond)`` -> ``[b, n, out_dim]`` like the DiT (a velocity, or
    clean atoms with ``prediction="data"``); padded atoms output 0.

    Args:
        config: the DiT configuration: ``in_dim`` = token width (coordinates first), ``pair_dim`` > 0;
            ``cond_channels`` = ``in_dim`` turns on self-conditioning (``x_cond`` = the estimate of the clean atoms,
            all zeros for "no estimate").
        coord_scale: Angstrom per coordinate unit.
        n_types: element channels after the coordinates (for :class:`GeometricEmbed`).
        rbf: radial basis functions of the pair features; centres evenly on ``[0, rbf_max]`` Angstrom.
        rbf_max: largest basis centre (Angstrom).
        coord_hidden: hidden width of the equivariant coordinate head (0: none).
        geometric_features: radial basis functions of :class:`GeometricEmbed` (0: the plain input projection).
    """

    def __init__(
        self,
        config: DiTConfig,
        coord_scale: float = 1.6,
        n_types: int = 7,
        rbf: int = 16,
        rbf_max: float = 5.0,
        coord_hidden: int = 32,
        geometric_features: int = 16,
    ):
        super().__init__()
        _check_pair(config, "DistanceBiasDiT")
        if config.cond_channels not in (0, config.in_dim):
            raise ConfigError(
                f"DistanceBiasDiT: DiTConfig.cond_channels={config.cond_channels} must be 0 or in_dim={config.in_dim} "
                "(self-conditioning)"
            )
        self.dit = DiT(config)
        if geometric_features:
            self.dit.x_embed = GeometricEmbed(self.dit.x_embed, n_types, coord_scale, geometric_features)
        self.pair_embed = PairFeatures(rbf, rbf_max, config.pair_dim, coord_scale)
        self.coord = CoordUpdate(config.dim, config.pair_dim, coord_hidden) if coord_hidden else None
        self.self_condition = bool(config.cond_channels)
        self.sc_pair = nn.Linear(rbf, config.pair_dim) if self.self_condition else None
        if self.sc_pair is not None:
            _xavier(self.sc_pair)

    @property
    def config(self) -> DiTConfig:
        return self.dit.config

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        mask: Tensor | None = None,
        x_cond: Tensor | None = None,
        **kwargs: object,
    ) -> Tensor:
        """``x [b, n, in_dim]`` (coordinates first), ``t [b]`` -> ``[b, n, out_dim]``.

        ``x_cond [b, n, in_dim]``: the self-conditioning estimate of the clean atoms (``cond_channels`` only; None or
        all zeros for a sample: no estimate). Other keyword arguments go to the DiT.
        """
        b, n, _ = x.shape
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
        if x_cond is not None and not self.self_condition:
            raise ValueError("DistanceBiasDiT: x_cond given but the network has no self-conditioning channels")
        rel, d = pairwise(x[..., :3])
        e = self.pair_embed(d)  # [b, n, n, P]
        if self.self_condition:
            if x_cond is None:
                x_cond = torch.zeros_like(x)
            x_cond = x_cond.detach() * mask[..., None].to(x.dtype)
            has = x_cond.flatten(1).ne(0).any(1).to(x.dtype)[:, None, None, None]  # [b, 1, 1, 1]
            e = e + has * self.sc_pair(self.pair_embed.basis(pairwise(x_cond[..., :3])[1]))
        out, h = self.dit(x, t, mask=mask, x_cond=x_cond, pair=e, return_hidden=True, **kwargs)
        if self.coord is not None:
            dr = self.coord(h, e, rel, d, pair_mask_of(mask, x.dtype))  # [b, n, 3]
            out = torch.cat([out[..., :3] + dr, out[..., 3:]], -1)
        return out * mask[..., None].to(out.dtype)


_BLOCK_ATTN = {"qkv", "q_norm", "k_norm", "proj"}


def _legacy_key(key: str) -> str:
    """Map one key of the earlier networks (own ``PairBiasBlock`` s) onto the core DiT's layout."""
    parts = key.split(".")
    head = parts[0]
    if head in ("x_embed", "t_embed"):
        return "dit." + key
    if head == "blocks" and len(parts) > 2:
        i, sub = parts[1], parts[2]
        if sub in _BLOCK_ATTN:
            return ".".join(["dit", "blocks", i, "attn", *parts[2:]])
        return "dit." + key  # mlp, adaLN
    if head == "bias" and len(parts) > 2:
        return ".".join(["dit", "blocks", parts[1], "attn", "pair_proj", *parts[2:]])
    if head == "final_adaLN":
        return ".".join(["dit", "final", "adaLN", *parts[1:]])
    if head == "final":
        return ".".join(["dit", "final", "linear", *parts[1:]])
    if head == "pair_embed":
        return ".".join(["pair_embed", "net", *parts[1:]])
    if head in ("sc_embed", "neigh_embed"):
        return ".".join(["dit", "cond_proj", *parts[1:]])
    return key


def migrate_network_state(state: dict[str, Tensor], prefix: str = "model.") -> dict[str, Tensor]:
    """Keys of the earlier 3D networks (forked ``PairBiasBlock`` s, ``bias.i``, ``final_*``) in today's layout.

    ``blocks.i.{qkv, q_norm, k_norm, proj}`` -> ``dit.blocks.i.attn.*``; ``blocks.i.{mlp, adaLN}`` ->
    ``dit.blocks.i.*``; ``bias.i`` -> ``dit.blocks.i.attn.pair_proj``; ``final_adaLN`` / ``final`` ->
    ``dit.final.adaLN`` / ``dit.final.linear``; ``x_embed`` / ``t_embed`` -> ``dit.*``; ``pair_embed.k`` ->
    ``pair_embed.net.k``; the equivariant network's ``neigh_embed`` -> ``dit.cond_proj`` (its bias added to the
    input projection's, exactly what the two linears summed). The self-conditioning embedding's bias (the core's
    condition projection has none) is dropped. States already in today's layout are returned unchanged.
    """
    if any(k.startswith(f"{prefix}dit.") for k in state):
        return dict(state)
    out = {}
    for k, v in state.items():
        if not k.startswith(prefix):
            out[k] = v
            continue
        out[prefix + _legacy_key(k[len(prefix) :])] = v
    extra = out.pop(f"{prefix}dit.cond_proj.bias", None)
    if extra is not None and f"{prefix}neigh_embed.bias" in state:
        out[f"{prefix}dit.x_embed.bias"] = out[f"{prefix}dit.x_embed.bias"] + extra
    return out


class EquivariantPairDiT(nn.Module):
    """E(3)-equivariant network on a core DiT: invariant tokens, distance bias, EGNN coordinate updates.

    See the module docstring.

    Args:
        config: the DiT configuration: ``in_dim`` = ``out_dim`` = ``K + 1`` (type and charge channels),
            ``cond_channels`` = ``rbf * (K + 1)`` (the neighbourhood embedding), ``pair_dim`` > 0.
        coord_scale: Angstrom per coordinate unit (distances are featurised in Angstrom).
        rbf: radial basis functions of the pair features.
        rbf_max: largest basis centre (Angstrom); centres are spread evenly on ``[0, rbf_max]``.
        coord_hidden: hidden width of the coordinate-update MLP.
        update_every_block: update coordinates (and distances) after every block; False = once at the end.
    """

    def __init__(
        self,
        config: DiTConfig,
        coord_scale: float = 1.6,
        rbf: int = 32,
        rbf_max: float = 8.0,
        coord_hidden: int = 64,
        update_every_block: bool = True,
    ):
        super().__init__()
        _check_pair(config, "EquivariantPairDiT")
        if config.cond_channels != rbf * config.in_dim:
            raise ConfigError(
                f"EquivariantPairDiT: DiTConfig.cond_channels={config.cond_channels} must be rbf x in_dim = "
                f"{rbf * config.in_dim} (the neighbourhood embedding)"
            )
        self.dit = DiT(config)
        self.update_every_block = update_every_block
        self.pair_embed = PairFeatures(rbf, rbf_max, config.pair_dim, coord_scale)
        n_updates = config.depth if update_every_block else 1
        self.coord = nn.ModuleList(CoordUpdate(config.dim, config.pair_dim, coord_hidden) for _ in range(n_updates))

    @property
    def config(self) -> DiTConfig:
        return self.dit.config

    def _pair(self, r: Tensor, pair_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        rel, d = pairwise(r)
        phi = self.pair_embed.basis(d) * pair_mask[..., None]  # [b, n, n, R]
        return rel, d, phi, self.pair_embed.net(phi)

    def forward(self, x: Tensor, t: Tensor | float, *, mask: Tensor | None = None, **kwargs: object) -> Tensor:
        """``x [b, n, 3 + K + 1]``, ``t [b]`` -> ``[b, n, 3 + K + 1]`` (coordinate displacement, feature output)."""
        b, n, _ = x.shape
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
        r0, feats = x[..., :3], x[..., 3:]
        pair_mask = pair_mask_of(mask, x.dtype)  # [b, n, n]
        rel, d, phi, e = self._pair(r0, pair_mask)
        neigh = rearrange(torch.einsum("bijr,bjk->birk", phi, feats), "b n r k -> b n (r k)")  # [b, n, R (K + 1)]
        h, inp = self.dit.embed(feats, t, mask=mask, x_cond=neigh, pair=e, **kwargs)
        reg = self.config.registers
        r = r0
        depth = len(self.dit.blocks)
        for i in range(depth):
            h = self.dit.block(i, h, inp)
            if self.update_every_block or i == depth - 1:
                upd = self.coord[i if self.update_every_block else 0]
                r = r + upd(h[:, reg:], e, rel, d, pair_mask)
                if i < depth - 1:
                    rel, d, phi, e = self._pair(r, pair_mask)
                    inp = dataclasses.replace(inp, pair=F.pad(e, (0, 0, reg, 0, reg, 0)) if reg else e)
        out, _ = self.dit.head(h, inp)
        m = mask[..., None].to(x.dtype)
        dr = (r - r0) * m
        dr = (dr - dr.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)) * m  # zero mean over atoms
        return torch.cat([dr, out * m], -1)
