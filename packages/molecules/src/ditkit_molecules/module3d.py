"""The 3D model: flow matching on atom sets (coordinates + element one-hot + charge) with a DiT.

Networks: ``network="dit"`` is the core DiT (with the :class:`GeometricEmbed` input embedding); ``"distance"``
(:class:`~ditkit_molecules.pairnet.DistanceBiasDiT`, the shipped default) adds a per-head attention bias from radial
basis functions of the current interatomic distances to every block and an EGNN-style pair head to the coordinate
output; ``"equivariant"`` is the exactly E(3)-equivariant :class:`~ditkit_molecules.pairnet.EquivariantPairDiT`.

Symmetry handling (``dit`` / ``distance``: augmentation, not an equivariant network):

* translation: data coordinates are centred (zero centre of mass over real atoms, unit masses) and the noise's
  coordinate channels are projected to zero mean too, so every ``x_t`` on the path has zero centre; samples are
  centred again at the end;
* rotation: each training molecule is rotated by a uniformly random rotation (random unit quaternion), so the DiT
  learns an approximately rotation-invariant density;
* permutation: atoms are tokens without positions, so the DiT is permutation equivariant.

The number of atoms of a sample is drawn from the training histogram (stored in the checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.flow import masked_mse
from ditkit_core.lightning.module import FlowMatchingModule
from ditkit_core.nn import DiTConfig
from ditkit_core.sampling import sample
from ditkit_core.tokenizers import TokenBatch
from ditkit_molecules.geometry import Conformer
from ditkit_molecules.tokenizer import AtomTokenizer


def random_rotations(b: int, generator: torch.Generator | None = None, device: Any = "cpu") -> Tensor:
    """Uniformly random rotation matrices ``[b, 3, 3]`` (normalised Gaussian quaternions)."""
    q = torch.randn(b, 4, generator=generator, device=device)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - z * w),
            2 * (x * z + y * w),
            2 * (x * y + z * w),
            1 - 2 * (x * x + z * z),
            2 * (y * z - x * w),
            2 * (x * z - y * w),
            2 * (y * z + x * w),
            1 - 2 * (x * x + y * y),
        ],
        -1,
    )
    return rot.reshape(b, 3, 3)


class GeometricEmbed(nn.Module):
    """Input embedding of the 3D DiT: ``Linear(x)`` plus an embedding of each atom's neighbourhood.

    The neighbourhood feature of atom i is ``sum_j rbf(|r_i - r_j|) (x) types_j`` (``rbf``: ``rbf`` Gaussians on
    0.5..4 Angstrom; ``types_j``: atom j's current, noisy type channels), invariant to rotations and translations.
    Padded atoms have zero type channels, so they contribute nothing. It gives a plain DiT direct access to the
    bonding environment that decides valence. Replaces ``DiT.x_embed`` (same input and output shapes).

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

    def forward(self, x: Tensor) -> Tensor:
        pos = x[..., :3].float() * self.coord_scale  # [b, n, 3] Angstrom
        types = x[..., 3 : 3 + self.n_types].float()  # [b, n, K]
        d = torch.cdist(pos, pos)  # [b, n, n]
        phi = torch.exp(-(((d[..., None] - self.centers) / self.width) ** 2))  # [b, n, n, R]
        eye = torch.eye(d.shape[1], device=x.device, dtype=phi.dtype)
        phi = phi * (1 - eye)[None, :, :, None]
        feats = torch.einsum("bijr,bjk->birk", phi, types)  # [b, n, R, K]
        return self.base(x) + self.proj(rearrange(feats, "b n r k -> b n (r k)").to(x.dtype))


def center(coords: Tensor, mask: Tensor) -> Tensor:
    """Subtract the mean over real atoms: ``coords [b, a, 3]``, ``mask [b, a]`` -> ``[b, a, 3]`` (padding 0)."""
    m = mask[..., None].to(coords.dtype)
    mean = (coords * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)  # [b, 1, 3]
    return (coords - mean) * m


class Molecule3DModule(FlowMatchingModule):
    """Flow-matching DiT over atom tokens (see the module docstring).

    Args:
        tokenizer: the :class:`AtomTokenizer`.
        model: DiT configuration (``in_dim`` = ``tokenizer.token_dim``).
        rotate: random-rotation augmentation during training.
        geometric_features: radial basis functions of the :class:`GeometricEmbed` input embedding (0: plain DiT).
        eval_samples: molecules sampled for the validation-epoch metrics (0: none).
        network: ``dit`` (the core DiT, with :class:`GeometricEmbed` when ``geometric_features``), ``distance``
            (:class:`~ditkit_molecules.pairnet.DistanceBiasDiT`: distance-biased attention, with
            :class:`GeometricEmbed` when ``geometric_features``) or ``equivariant``
            (:class:`~ditkit_molecules.pairnet.EquivariantPairDiT`; rotation augmentation is then unnecessary).
        pair: keyword options of :class:`~ditkit_molecules.pairnet.EquivariantPairDiT` /
            :class:`~ditkit_molecules.pairnet.DistanceBiasDiT`.
        prediction: ``velocity`` (the core's flow loss) or ``data``: the network predicts the clean atoms ``x_1``
            (loss on ``x_1``; the solver gets ``(x_1 - x_t) / (1 - t)``).
        type_loss: ``mse`` or ``ce`` (cross-entropy on the element channels; ``prediction="data"`` only).
        coord_weight: weight of the coordinate channels in the loss (both predictions; 1 = the plain MSE over all
            channels).
        self_condition: self-conditioning (``network="distance"`` only): in training, half of the batches first run
            the network without gradient and feed its clean-atom estimate ``x1_hat`` back in; in sampling every
            solver evaluation gets the previous evaluation's ``x1_hat``.
        **kwargs: :class:`~ditkit_core.lightning.FlowMatchingModule` options.
    """

    def __init__(
        self,
        tokenizer: AtomTokenizer,
        model: DiTConfig,
        rotate: bool = True,
        geometric_features: int = 16,
        eval_samples: int = 64,
        network: str = "dit",
        pair: dict[str, Any] | None = None,
        prediction: str = "velocity",
        type_loss: str = "mse",
        coord_weight: float = 1.0,
        self_condition: bool = False,
        **kwargs: Any,
    ):
        super().__init__(tokenizer, model, **kwargs)
        if network not in ("dit", "equivariant", "distance"):
            raise ValueError(f"Molecule3DModule.network={network!r}: must be 'dit', 'equivariant' or 'distance'")
        if prediction not in ("velocity", "data"):
            raise ValueError(f"Molecule3DModule.prediction={prediction!r}: must be 'velocity' or 'data'")
        self.rotate, self.eval_samples, self.geometric_features = rotate, eval_samples, geometric_features
        if type_loss not in ("mse", "ce") or (type_loss == "ce" and prediction != "data"):
            raise ValueError(f"Molecule3DModule.type_loss={type_loss!r}: 'mse', or 'ce' with prediction='data'")
        self.network, self.prediction, self.type_loss, self.coord_weight = network, prediction, type_loss, coord_weight
        if self_condition and network != "distance":
            raise ValueError("Molecule3DModule.self_condition needs network='distance'")
        self.self_condition = self_condition
        self._sampling, self._sc_state = False, None  # sampling: the previous evaluation's clean-atom estimate
        if network == "equivariant":
            from ditkit_molecules.pairnet import EquivariantPairDiT

            self.model = EquivariantPairDiT(self.config, tokenizer.coord_scale, **(pair or {}))
        elif network == "distance":
            from ditkit_molecules.pairnet import DistanceBiasDiT

            self.model = DistanceBiasDiT(
                self.config, tokenizer.coord_scale, self_condition=self_condition, **(pair or {})
            )
        if network != "equivariant" and geometric_features:
            self.model.x_embed = GeometricEmbed(
                self.model.x_embed, len(tokenizer.elements), tokenizer.coord_scale, geometric_features
            )
        hist = torch.zeros(tokenizer.max_atoms + 1)
        hist[min(9, tokenizer.max_atoms)] = 1.0  # placeholder until fit() copies the data's histogram
        self.register_buffer("size_hist", hist)
        self.train_smiles: set[str] = set()

    # ------------------------------------------------------------------ hooks
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and hasattr(dm, "size_hist") and stage == "fit":
            self.size_hist.copy_(dm.size_hist.to(self.size_hist)[: len(self.size_hist)])
            self.train_smiles = set(dm.train_smiles)

    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        mask = batch["numbers"] > 0
        coords = center(batch["coords"].float(), mask)
        if self.training and self.rotate:
            rot = random_rotations(coords.shape[0], self._generator(offset=17), coords.device)
            coords = torch.einsum("bij,baj->bai", rot, coords)
        return self.tokenizer.encode({**batch, "coords": coords})

    def centered_noise(self, shape: torch.Size, mask: Tensor, generator: torch.Generator | None) -> Tensor:
        """Gaussian noise ``[b, a, d]`` whose coordinate channels have zero mean over real atoms."""
        x_0 = torch.randn(shape, generator=generator, device=mask.device)
        return torch.cat([center(x_0[..., :3], mask), x_0[..., 3:] * mask[..., None]], -1)

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """Training noise with zero centre of mass over real atoms (the core's flow loss uses it)."""
        return self.centered_noise(x_1.shape, tokens.mask, generator).to(x_1.dtype)

    def clean_estimate(self, out: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The clean atoms ``x1_hat`` implied by a :meth:`predict` output (``x_t + (1 - t) v`` for velocities)."""
        if self.prediction == "data":
            return out
        return x_t + (1 - t.reshape(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)) * out

    def predict(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, logits: bool = False) -> Tensor:
        """Network output ``[b, a, d]``: a velocity, or the clean atoms ``x_1`` with ``prediction="data"`` (with
        ``type_loss="ce"`` the type channels are ``type_scale * softmax``; ``logits`` returns the raw logits).

        With ``self_condition``: in training a coin flip per batch decides whether a first gradient-free pass
        supplies ``x1_hat``; in sampling (:meth:`sample_molecules`) the previous solver evaluation supplies it."""
        kwargs = tokens.model_kwargs()  # EquivariantPairDiT / DistanceBiasDiT read the mask only
        if self.self_condition:
            if self._sampling:
                x_sc = self._sc_state
            else:  # training: half of the batches; validation loss: always (as in sampling)
                x_sc = None
                g = self._generator(offset=29)
                if not self.training or float(torch.rand((), generator=g, device=g.device)) < 0.5:
                    with torch.no_grad():
                        first = self._head(self.model(x_t, t, **kwargs), x_t, False, tokens.mask)
                        x_sc = self.clean_estimate(first, x_t, t)
            out = self._head(self.model(x_t, t, x_sc=x_sc, **kwargs), x_t, logits, tokens.mask)
            if self._sampling:
                self._sc_state = self.clean_estimate(
                    self._head(out, x_t, False, tokens.mask) if logits else out, x_t, t
                ).detach()
            return out
        return self._head(self.model(x_t, t, **kwargs), x_t, logits, tokens.mask)

    def _head(self, out: Tensor, x_t: Tensor, logits: bool, mask: Tensor | None = None) -> Tensor:
        if self.prediction == "data" and self.network == "equivariant":  # coordinates: displacement from x_t
            out = torch.cat([x_t[..., :3] + out[..., :3], out[..., 3:]], -1)
        if self.type_loss == "ce" and not logits:
            k = len(self.tokenizer.elements)
            probs = out[..., 3 : 3 + k].softmax(-1) * self.tokenizer.type_scale
            out = torch.cat([out[..., :3], probs, out[..., 3 + k :]], -1)
            if mask is not None:
                out = out * mask[..., None].to(out.dtype)
        return out

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop_cond: Tensor | None = None) -> Tensor:
        out = self.predict(tokens, x_t, t)
        if self.prediction == "velocity":
            return out
        tt = t.reshape(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)
        return (out - x_t) / (1 - tt).clamp_min(1e-3)

    def flow_loss(self, tokens: TokenBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The core's velocity loss, or with ``prediction="data"`` the error of the predicted clean atoms ``x_1``:
        MSE (coordinates weighted by ``coord_weight``), types by MSE or cross-entropy (``type_loss``)."""
        if self.prediction == "velocity" and self.coord_weight == 1.0:
            return super().flow_loss(tokens, generator)
        x_1, mask = tokens.x, tokens.mask
        x_0 = self.sample_noise(x_1, tokens, generator)
        t = self.time_sampler(x_1.shape[0], device=x_1.device, generator=generator)
        ps = self.path.sample(x_0, x_1, t)
        if self.prediction == "velocity":  # the core's loss with the coordinate channels weighted
            out, target = self.velocity(tokens, ps.x_t, t, None), ps.u_t
        else:
            out, target = self.predict(tokens, ps.x_t, t, logits=True), x_1
        k = len(self.tokenizer.elements)
        coord = masked_mse(out[..., :3], target[..., :3], mask)
        if self.type_loss == "ce":  # prediction="data" only (checked in __init__)
            m = mask if mask is not None else torch.ones(x_1.shape[:2], dtype=torch.bool, device=x_1.device)
            ce = F.cross_entropy(out[..., 3 : 3 + k][m].float(), x_1[..., 3 : 3 + k][m].argmax(-1))
            feats = (ce + masked_mse(out[..., 3 + k :], x_1[..., 3 + k :], mask)) / 2
        else:
            feats = masked_mse(out[..., 3:], target[..., 3:], mask)
        fm = (self.coord_weight * coord * 3 + feats * (x_1.shape[-1] - 3)) / x_1.shape[-1]
        aux = self.model.aux_loss()
        return {"loss": fm + aux, "fm": fm, "aux": aux}

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_molecules(
        self, n: int, *, seed: int = 0, steps: int | None = None, method: str | None = None, sizes: Tensor | None = None
    ) -> list[Conformer]:
        """Generate ``n`` molecules as :class:`Conformer` s (``smiles`` is filled in by evaluation).

        Args:
            n: number of molecules.
            seed: RNG seed (sizes and noise).
            steps, method: solver settings (defaults from the module).
            sizes: atoms per molecule ``[n]`` (default: drawn from the training histogram).
        """
        was = self.training
        self.eval()
        g = torch.Generator(device=self.device).manual_seed(seed)
        if sizes is None:
            sizes = torch.multinomial(
                self.size_hist.float().cpu(), n, replacement=True, generator=torch.Generator().manual_seed(seed)
            )
        sizes = sizes.to(self.device)
        a = int(sizes.max())
        mask = torch.arange(a, device=self.device)[None] < sizes[:, None]  # [n, a]
        template = TokenBatch(x=torch.zeros(n, a, self.tokenizer.token_dim, device=self.device), mask=mask)
        x_0 = self.centered_noise(template.x.shape, mask, g)
        self._sampling, self._sc_state = True, None
        try:
            x = sample(
                lambda x, t, cond_drop=False: self.velocity(template, x, t, None),
                x_0,
                steps=steps or self.sample_steps,
                method=method or self.sample_method,
                schedule=self.sample_schedule,
            )
        finally:
            self._sampling, self._sc_state = False, None
        x = torch.cat([center(x[..., :3], mask), x[..., 3:]], -1) * mask[..., None]
        out = self.tokenizer.decode(template.replace(x=x))
        self.train(was)
        mols = []
        for i in range(n):
            k = int(sizes[i])
            mols.append(
                Conformer(
                    "",
                    out["numbers"][i, :k].cpu().numpy(),
                    out["charges"][i, :k].cpu().numpy(),
                    out["coords"][i, :k].float().cpu().numpy(),
                )
            )
        return mols

    def on_validation_epoch_end(self) -> None:
        if self.eval_samples <= 0 or self._trainer is None or self.trainer.sanity_checking:
            return
        from ditkit_molecules.metrics import stability_metrics

        m = stability_metrics(self.sample_molecules(self.eval_samples, seed=123))
        self.log("val/atom_stability", m["atom_stability"], prog_bar=True)
        self.log("val/mol_stability", m["mol_stability"])

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        from ditkit_molecules.viz import write_3d_outputs

        mols = self.sample_molecules(16, seed=0)
        return write_3d_outputs(mols, Path(out_dir), f"molecules3d_{tag}")
