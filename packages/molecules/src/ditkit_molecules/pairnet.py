"""An E(3)-equivariant DiT for atom sets: distance-biased attention and equivariant coordinate updates.

``EquivariantPairDiT`` keeps the DiT's adaLN-Zero transformer blocks (core :class:`~ditkit_core.nn.layers.RMSNorm`,
:func:`~ditkit_core.nn.layers.modulate`, :class:`~ditkit_core.nn.layers.Mlp`, :class:`TimestepEmbedder`) but feeds
the geometry in the way molecular transformers do (Graphormer / Uni-Mol / SemlaFlow):

* tokens are *invariant* atom features only (element, charge channels and a radial neighbourhood embedding);
  coordinates never enter a token, so nothing depends on orientation or position;
* every block adds a per-head attention bias computed from radial basis functions of the current interatomic
  distances, so attention sees pairwise geometry directly;
* coordinates are updated EGNN-style (Satorras et al., 2021) after every block:
  ``r_i <- r_i + sum_j w_ij (r_i - r_j) / (|r_i - r_j| + 1)`` with ``w_ij`` an MLP of the two atoms' tokens and their
  pair features, then distances are recomputed for the next block.

The coordinate output is therefore exactly E(3)-equivariant (rotations, reflections; translations by the zero
centre of mass the module keeps) and the type / charge output exactly invariant. The forward returns, per atom,
``[r_out - r_in (3), type-and-charge output (K + 1)]``: the module reads it as a velocity or as ``x_1 - x_t`` for
the coordinates and ``x_1`` for the types (``prediction="data"``).

``DistanceBiasDiT`` (the 3D default, ``network="distance"``) is the non-equivariant middle ground: tokens keep the
absolute (centred, augmented) coordinates as in the plain DiT, and the same :class:`PairBiasBlock` s add a distance
bias to every attention; a zero-initialised EGNN-style pair head corrects the coordinate output along interatomic
directions. Optional self-conditioning feeds the model's previous clean-atom estimate back in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.nn import DiTConfig
from ditkit_core.nn.layers import Mlp, RMSNorm, TimestepEmbedder, modulate


def radial_basis(d: Tensor, centers: Tensor, width: float) -> Tensor:
    """Gaussian radial basis ``[..., R]`` of distances ``d [...]``."""
    return torch.exp(-(((d[..., None] - centers) / width) ** 2))


def adaln_zero_init(net: nn.Module, keep: list[nn.Module]) -> None:
    """DiT's adaLN-Zero initialisation of a pair network: Xavier linears (except the zero-initialised ``keep``
    layers, e.g. coordinate heads), N(0, 0.02) time MLP, zero modulation in every block and zero final layers, so a
    fresh network outputs zeros."""
    for m in net.modules():
        if isinstance(m, nn.Linear) and not any(m is k for k in keep):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.normal_(net.t_embed.mlp[0].weight, std=0.02)
    nn.init.normal_(net.t_embed.mlp[2].weight, std=0.02)
    for blk in net.blocks:
        nn.init.zeros_(blk.adaLN[-1].weight)
        nn.init.zeros_(blk.adaLN[-1].bias)
    for lin in (net.final_adaLN[-1], net.final):
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)


class PairBiasBlock(nn.Module):
    """adaLN-Zero DiT block whose self-attention adds a per-head bias ``[b, h, n, n]`` to the logits."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = RMSNorm(cfg.dim, affine=False)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.q_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = RMSNorm(cfg.dim, affine=False)
        self.mlp = Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio), dropout=cfg.dropout)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))

    def forward(self, x: Tensor, c: Tensor, bias: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(c).chunk(6, dim=-1)  # 6 x [b, d]
        q, k, v = rearrange(
            self.qkv(modulate(self.norm1(x), shift1, scale1)), "b n (three h d) -> three b h n d", three=3, h=self.heads
        )
        h = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v, attn_mask=bias)  # [b, h, n, d]
        x = torch.addcmul(x, gate1[:, None], self.proj(rearrange(h, "b h n d -> b n (h d)")))
        return torch.addcmul(x, gate2[:, None], self.mlp(modulate(self.norm2(x), shift2, scale2)))


class CoordUpdate(nn.Module):
    """EGNN coordinate update ``dr_i = sum_j w_ij (r_i - r_j) / (d_ij + 1)``, ``w_ij = MLP(h_i, h_j, e_ij)``."""

    def __init__(self, dim: int, pair_dim: int, hidden: int):
        super().__init__()
        self.src = nn.Linear(dim, hidden)
        self.dst = nn.Linear(dim, hidden, bias=False)
        self.pair = nn.Linear(pair_dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: Tensor, e: Tensor, rel: Tensor, d: Tensor, pair_mask: Tensor) -> Tensor:
        m = F.silu(self.src(h)[:, :, None] + self.dst(h)[:, None] + self.pair(e))  # [b, n, n, H]
        w = self.out(m)[..., 0] * pair_mask  # [b, n, n]
        return torch.einsum("bij,bijc->bic", w / (d + 1.0), rel)  # [b, n, 3]


class EquivariantPairDiT(nn.Module):
    """DiT over atoms with distance-biased attention and EGNN coordinate updates (see the module docstring).

    Args:
        config: ``in_dim`` = ``3 + K + 1`` (coordinates, K type channels, charge), ``dim`` / ``depth`` / ``heads`` /
            ``mlp_ratio`` / ``qk_norm`` / ``time_scale`` as for the DiT; other fields are ignored.
        coord_scale: Angstrom per coordinate unit (distances are featurised in Angstrom).
        rbf: radial basis functions of the pair features.
        rbf_max: largest basis centre (Angstrom); centres are spread evenly on ``[0, rbf_max]``.
        pair_dim: width of the pair features.
        coord_hidden: hidden width of the coordinate-update MLP.
        update_every_block: update coordinates (and distances) after every block; False = once at the end.
    """

    def __init__(
        self,
        config: DiTConfig,
        coord_scale: float = 1.6,
        rbf: int = 32,
        rbf_max: float = 8.0,
        pair_dim: int = 32,
        coord_hidden: int = 64,
        update_every_block: bool = True,
    ):
        super().__init__()
        self.config = cfg = config
        self.coord_scale, self.update_every_block = float(coord_scale), update_every_block
        n_feat = cfg.in_dim - 3
        self.register_buffer("centers", torch.linspace(0.0, rbf_max, rbf), persistent=False)
        self.width = float(rbf_max / (rbf - 1))
        self.pair_embed = nn.Sequential(nn.Linear(rbf, pair_dim), nn.SiLU(), nn.Linear(pair_dim, pair_dim))
        self.x_embed = nn.Linear(n_feat, cfg.dim)
        self.neigh_embed = nn.Linear(rbf * n_feat, cfg.dim)
        self.t_embed = TimestepEmbedder(cfg.dim, time_scale=cfg.time_scale)
        self.blocks = nn.ModuleList(PairBiasBlock(cfg) for _ in range(cfg.depth))
        self.bias = nn.ModuleList(nn.Linear(pair_dim, cfg.heads) for _ in range(cfg.depth))
        n_updates = cfg.depth if update_every_block else 1
        self.coord = nn.ModuleList(CoordUpdate(cfg.dim, pair_dim, coord_hidden) for _ in range(n_updates))
        self.final_norm = RMSNorm(cfg.dim, affine=False)
        self.final_adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 2 * cfg.dim))
        self.final = nn.Linear(cfg.dim, n_feat)
        self._init()

    def _init(self) -> None:
        adaln_zero_init(self, keep=[c.out for c in self.coord])

    def aux_loss(self) -> Tensor:
        return torch.zeros((), device=self.final.weight.device)

    def _geometry(self, r: Tensor, pair_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        rel = r[:, :, None] - r[:, None]  # [b, n, n, 3]
        d = (rel.pow(2).sum(-1) + 1e-8).sqrt()  # [b, n, n], coordinate units
        phi = radial_basis(d * self.coord_scale, self.centers, self.width) * pair_mask[..., None]  # [b, n, n, R]
        return rel, d, phi, self.pair_embed(phi)

    def forward(self, x: Tensor, t: Tensor | float, *, mask: Tensor | None = None, **_: object) -> Tensor:
        """``x [b, n, 3 + K + 1]``, ``t [b]`` -> ``[b, n, 3 + K + 1]`` (coordinate displacement, feature output)."""
        b, n, _ = x.shape
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        t = t.expand(b) if t.dim() == 0 else t.reshape(-1)
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
        r0, feats = x[..., :3], x[..., 3:]
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        pair_mask = (mask[:, :, None] & mask[:, None] & ~eye).to(x.dtype)  # [b, n, n]
        key_bias = torch.zeros(b, 1, 1, n, dtype=x.dtype, device=x.device).masked_fill(
            ~mask[:, None, None, :], float("-inf")
        )
        rel, d, phi, e = self._geometry(r0, pair_mask)
        neigh = torch.einsum("bijr,bjk->birk", phi, feats)  # [b, n, R, K + 1]
        h = self.x_embed(feats) + self.neigh_embed(rearrange(neigh, "b n r k -> b n (r k)"))
        c = self.t_embed(t)
        r = r0
        for i, blk in enumerate(self.blocks):
            bias = rearrange(self.bias[i](e), "b q k h -> b h q k") + key_bias
            h = blk(h, c, bias)
            if self.update_every_block or i == len(self.blocks) - 1:
                upd = self.coord[i if self.update_every_block else 0]
                r = r + upd(h, e, rel, d, pair_mask)
                if i < len(self.blocks) - 1:
                    rel, d, phi, e = self._geometry(r, pair_mask)
        shift, scale = self.final_adaLN(c).chunk(2, dim=-1)
        out_feats = self.final(modulate(self.final_norm(h), shift, scale))
        m = mask[..., None].to(x.dtype)
        dr = (r - r0) * m
        dr = (dr - dr.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)) * m  # zero mean over atoms
        return torch.cat([dr, out_feats * m], -1)


class DistanceBiasDiT(nn.Module):
    """A DiT over atom tokens whose attention sees interatomic distances (not equivariant; use augmentation).

    Tokens are the full atom vectors ``[coords, types, charge]`` as in the plain DiT (``x_embed`` is a seam, like
    ``DiT.x_embed``: the module composes it with :class:`~ditkit_molecules.module3d.GeometricEmbed`). What it adds:

    * every adaLN-Zero block (:class:`PairBiasBlock`) adds a per-head attention bias from radial basis functions of
      the distances between the current (noisy) coordinates, so each atom can attend to its near neighbours;
    * optionally (``coord_hidden > 0``) a zero-initialised EGNN-style pair head adds
      ``sum_j w_ij (r_i - r_j) / (d_ij + 1)`` (``w_ij`` an MLP of the final tokens and pair features) to the
      coordinate output, a rotation-equivariant correction along interatomic directions that can set bond lengths
      directly.

    * optionally (``self_condition``) self-conditioning (Chen et al., 2022): ``forward(..., x_sc=x1_hat)`` takes the
      model's own previous estimate of the clean atoms; it enters the tokens through a linear embedding and the
      attention bias / coordinate head through radial basis functions of the *estimated* distances, which are much
      closer to the final geometry than the noisy ones. ``x_sc=None`` is the first pass.

    Output ``[b, n, out_dim]`` like the DiT (a velocity, or clean atoms with ``prediction="data"``).

    Args:
        config: the DiT configuration (``in_dim``, ``dim``, ``depth``, ``heads``, ``mlp_ratio``, ``qk_norm``,
            ``time_scale``; ``out_dim`` defaults to ``in_dim``).
        coord_scale: Angstrom per coordinate unit.
        rbf: radial basis functions of the pair features; centres evenly on ``[0, rbf_max]`` Angstrom.
        rbf_max: largest basis centre (Angstrom).
        pair_dim: width of the pair features.
        coord_hidden: hidden width of the equivariant coordinate head (0: none).
        self_condition: accept ``x_sc`` (see above).
    """

    def __init__(
        self,
        config: DiTConfig,
        coord_scale: float = 1.6,
        rbf: int = 16,
        rbf_max: float = 5.0,
        pair_dim: int = 16,
        coord_hidden: int = 32,
        self_condition: bool = False,
    ):
        super().__init__()
        self.config = cfg = config
        self.coord_scale = float(coord_scale)
        self.register_buffer("centers", torch.linspace(0.0, rbf_max, rbf), persistent=False)
        self.width = float(rbf_max / (rbf - 1))
        self.x_embed: nn.Module = nn.Linear(cfg.in_dim, cfg.dim)
        self.t_embed = TimestepEmbedder(cfg.dim, time_scale=cfg.time_scale)
        self.pair_embed = nn.Sequential(nn.Linear(rbf, pair_dim), nn.SiLU(), nn.Linear(pair_dim, pair_dim))
        self.blocks = nn.ModuleList(PairBiasBlock(cfg) for _ in range(cfg.depth))
        self.bias = nn.ModuleList(nn.Linear(pair_dim, cfg.heads) for _ in range(cfg.depth))
        self.coord = CoordUpdate(cfg.dim, pair_dim, coord_hidden) if coord_hidden else None
        self.self_condition = self_condition
        self.sc_embed = nn.Linear(cfg.in_dim, cfg.dim) if self_condition else None
        self.sc_pair = nn.Linear(rbf, pair_dim) if self_condition else None
        self.final_norm = RMSNorm(cfg.dim, affine=False)
        self.final_adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 2 * cfg.dim))
        self.final = nn.Linear(cfg.dim, cfg.output_dim)
        self._init()

    def _init(self) -> None:
        adaln_zero_init(self, keep=[] if self.coord is None else [self.coord.out])

    def aux_loss(self) -> Tensor:
        return torch.zeros((), device=self.final.weight.device)

    def _distances(self, r: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        rel = r[:, :, None] - r[:, None]  # [b, n, n, 3]
        d = (rel.pow(2).sum(-1) + 1e-8).sqrt()  # [b, n, n] coordinate units
        return rel, d, radial_basis(d * self.coord_scale, self.centers, self.width)

    def forward(
        self, x: Tensor, t: Tensor | float, *, mask: Tensor | None = None, x_sc: Tensor | None = None, **_: object
    ) -> Tensor:
        """``x [b, n, in_dim]`` (coordinates first), ``t [b]`` -> ``[b, n, out_dim]``; padded atoms output 0.

        ``x_sc [b, n, in_dim]``: the self-conditioning estimate of the clean atoms (``self_condition`` only)."""
        b, n, _ = x.shape
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        t = t.expand(b) if t.dim() == 0 else t.reshape(-1)
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
        if x_sc is not None and not self.self_condition:
            raise ValueError("DistanceBiasDiT: x_sc given but self_condition=False")
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        pair_mask = (mask[:, :, None] & mask[:, None] & ~eye).to(x.dtype)  # [b, n, n]
        rel, d, phi = self._distances(x[..., :3])
        e = self.pair_embed(phi)  # [b, n, n, P]
        h = self.x_embed(x)
        if x_sc is not None:
            x_sc = x_sc.detach() * mask[..., None].to(x.dtype)
            h = h + self.sc_embed(x_sc)
            e = e + self.sc_pair(self._distances(x_sc[..., :3])[2])
        key_bias = torch.zeros(b, 1, 1, n, dtype=x.dtype, device=x.device).masked_fill(
            ~mask[:, None, None, :], float("-inf")
        )
        c = self.t_embed(t)
        for blk, lin in zip(self.blocks, self.bias):
            h = blk(h, c, rearrange(lin(e), "b q k h -> b h q k") + key_bias)
        shift, scale = self.final_adaLN(c).chunk(2, dim=-1)
        out = self.final(modulate(self.final_norm(h), shift, scale))
        if self.coord is not None:
            dr = self.coord(h, e, rel, d, pair_mask)  # [b, n, 3]
            out = torch.cat([out[..., :3] + dr, out[..., 3:]], -1)
        return out * mask[..., None].to(out.dtype)
