"""The 3D model: flow matching on atom sets (coordinates + element one-hot + charge) with a core DiT.

Networks (``network``), each one core :class:`~ditkit_core.nn.DiT` built once in :meth:`build_network`:

* ``"distance"`` (:class:`~ditkit_molecules.pairnet.DistanceBiasDiT`, the default): radial basis functions of the
  current interatomic distances are the DiT's pair features (a per-head attention bias in every block), the input
  projection is composed with :class:`~ditkit_molecules.pairnet.GeometricEmbed`, and an EGNN-style head on the DiT's
  hidden states corrects the coordinate output along interatomic directions;
* ``"dit"``: the plain DiT with the :class:`~ditkit_molecules.pairnet.GeometricEmbed` input embedding;
* ``"equivariant"``: the exactly E(3)-equivariant :class:`~ditkit_molecules.pairnet.EquivariantPairDiT`.

Symmetry handling (``dit`` / ``distance``: augmentation, not an equivariant network):

* translation: data coordinates are centred (zero centre of mass over real atoms, unit masses) and the noise's
  coordinate channels are projected to zero mean too, so every ``x_t`` on the path has zero centre; samples are
  centred again at the end;
* rotation: each training molecule is rotated by a uniformly random rotation (random unit quaternion), so the DiT
  learns an approximately rotation-invariant density;
* permutation: atoms are tokens without positions, so the DiT is permutation equivariant.

Loss: the module keeps its own :meth:`Molecule3DModule.flow_loss` (the core's ``flow.prediction`` picks the target):
the coordinate channels weigh ``coord_weight`` in a sum normalised by the token width, element channels may be
scored by cross-entropy on clean-data logits (``type_loss="ce"``), and an optional distance-geometry term compares the
interatomic distances of the implied clean atoms with the data's (``distance_weight``). Neither fits the core's
per-channel MSE weights (``flow.channel_weights`` normalises by the weight sum and knows no cross-entropy).

The number of atoms of a sample is drawn from the training histogram (stored in the checkpoint).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ditkit_core.flow import masked_mse
from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig
from ditkit_core.nn import ConfigError, DiT, DiTConfig
from ditkit_core.sampling import find_dits
from ditkit_core.tokenizers import TokenBatch
from ditkit_molecules.geometry import Conformer
from ditkit_molecules.pairnet import (
    DistanceBiasDiT,
    EquivariantPairDiT,
    GeometricEmbed,
    migrate_network_state,
    pair_mask_of,
    pairwise,
)
from ditkit_molecules.tokenizer import AtomTokenizer

NETWORKS = ("dit", "distance", "equivariant")
PAIR_OPTIONS = {
    "dit": set(),
    "distance": {"rbf", "rbf_max", "coord_hidden"},
    "equivariant": {"rbf", "rbf_max", "coord_hidden", "update_every_block"},
}
"""Keys of ``pair`` per network (``pair_dim`` is accepted too and moves to ``model.pair_dim``)."""
PAIR_DEFAULTS = {"distance": {"rbf": 16, "pair_dim": 16}, "equivariant": {"rbf": 32, "pair_dim": 32}}

__all__ = ["GeometricEmbed", "Molecule3DModule", "center", "random_rotations"]


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


def center(coords: Tensor, mask: Tensor) -> Tensor:
    """Subtract the mean over real atoms: ``coords [b, a, 3]``, ``mask [b, a]`` -> ``[b, a, 3]`` (padding 0)."""
    m = mask[..., None].to(coords.dtype)
    mean = (coords * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)  # [b, 1, 3]
    return (coords - mean) * m


class Molecule3DModule(FlowMatchingModule):
    """Flow-matching DiT over atom tokens (see the module docstring).

    Args:
        tokenizer: the :class:`AtomTokenizer`.
        model: DiT configuration. Derived (leave out or state the real value): ``in_dim`` (the token width; for
            ``network="equivariant"`` the type and charge channels, also ``out_dim``), ``cond_channels`` (the token
            width with ``self_condition``; the neighbourhood embedding of the equivariant network). ``pair_dim``: width
            of the distance features (default 16, equivariant 32).
        flow, optim, sampler, seed: as in :class:`~ditkit_core.lightning.FlowMatchingModule` (``flow.prediction``:
            ``velocity``, or ``data``: the network predicts the clean atoms ``x_1``; the solver gets
            ``(x_1 - x_t) / (1 - t)``).
        rotate: random-rotation augmentation during training.
        geometric_features: radial basis functions of the :class:`GeometricEmbed` input embedding (0: none;
            ``dit`` and ``distance`` networks).
        eval_samples: molecules sampled for the validation-epoch metrics (0: none).
        network: ``distance``, ``dit`` or ``equivariant`` (see the module docstring).
        pair: options of the network: ``rbf``, ``rbf_max``, ``coord_hidden`` (both pair networks),
            ``update_every_block`` (equivariant).
        type_loss: ``mse`` or ``ce``: the element channels are predicted as clean-data logits and scored by
            cross-entropy (with ``flow.prediction="velocity"`` the coordinates and charge stay velocities and the
            element velocity is ``(type_scale * softmax - x_t) / (1 - t)``).
        coord_weight: weight of the coordinate channels in the loss (1 = the plain MSE over all channels).
        self_condition: self-conditioning (``network="distance"`` only): in training, half of the batches first run
            the network without gradient and feed its clean-atom estimate ``x1_hat`` back in (condition channels and a
            pair term); in sampling every solver evaluation gets the previous evaluation's ``x1_hat``.
        distance_weight: weight of the distance-geometry loss (0: off): the mean squared error, in coordinate units,
            between the distances of the implied clean atoms and the data's, over the pairs of real atoms closer than
            ``distance_cutoff`` in the data, each molecule weighted by its time ``t``.
        distance_cutoff: Angstrom; pairs within it enter the distance-geometry loss (bonds and 1,3 neighbours).
    """

    LEGACY_ARGS: ClassVar[dict[str, tuple[str, str]]] = {"prediction": ("flow", "prediction")}
    """``prediction`` (a flat argument of earlier versions) is ``flow.prediction`` now."""

    def __init__(
        self,
        tokenizer: AtomTokenizer,
        model: DiTConfig,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
        rotate: bool = True,
        geometric_features: int = 16,
        eval_samples: int = 64,
        network: str = "dit",
        pair: dict[str, Any] | None = None,
        type_loss: str = "mse",
        coord_weight: float = 1.0,
        self_condition: bool = False,
        distance_weight: float = 0.0,
        distance_cutoff: float = 2.6,
    ):
        if network not in NETWORKS:
            raise ConfigError(f"Molecule3DModule.network={network!r}: must be one of {NETWORKS}")
        pair = dict(pair or {})
        unknown = sorted(set(pair) - PAIR_OPTIONS[network] - {"pair_dim"})
        if unknown:
            raise ConfigError(
                f"Molecule3DModule.pair: unknown option(s) {unknown} for network={network!r}; known: "
                f"{sorted(PAIR_OPTIONS[network] | {'pair_dim'})}"
            )
        if type_loss not in ("mse", "ce"):
            raise ConfigError(f"Molecule3DModule.type_loss={type_loss!r}: must be 'mse' or 'ce'")
        if self_condition and network != "distance":
            raise ConfigError("Molecule3DModule.self_condition needs network='distance'")
        if not (coord_weight > 0 and distance_weight >= 0 and distance_cutoff > 0):
            raise ConfigError(
                f"Molecule3DModule: coord_weight={coord_weight!r} must be > 0, distance_weight={distance_weight!r} "
                f">= 0 and distance_cutoff={distance_cutoff!r} > 0"
            )
        # plain values read by resolve_config / build_network
        self.network, self.self_condition, self.geometric_features = network, self_condition, geometric_features
        self.pair_dim = pair.pop("pair_dim", None)
        self.pair_options = pair
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        if self.flow.channel_weights is not None:
            raise ConfigError(
                "Molecule3DModule: flow.channel_weights is not used by the 3D loss; set coord_weight (the weight of "
                "the coordinate channels) instead"
            )
        self.rotate, self.eval_samples, self.type_loss = rotate, eval_samples, type_loss
        self.coord_weight, self.distance_weight, self.distance_cutoff = coord_weight, distance_weight, distance_cutoff
        self._sampling, self._sc_state = False, None  # sampling: the previous evaluation's clean-atom estimate
        hist = torch.zeros(self.tokenizer.max_atoms + 1)
        hist[min(9, self.tokenizer.max_atoms)] = 1.0  # placeholder until fit() copies the data's histogram
        self.register_buffer("size_hist", hist)
        self.train_smiles: set[str] = set()

    # ------------------------------------------------------------------ configuration
    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """Derived widths: ``in_dim`` (token width; equivariant: ``K + 1`` feature channels and ``out_dim``),
        ``cond_channels`` (self-conditioning: the token width; equivariant: ``rbf * (K + 1)``) and ``pair_dim``
        (the network's default unless stated)."""
        d = int(self.tokenizer.token_dim)
        if self.network != "dit":
            stated, given = config.pair_dim, self.pair_dim
            if given is not None and stated and stated != given:
                raise ConfigError(f"DiTConfig.pair_dim={stated!r} differs from pair.pair_dim={given!r}")
            width = stated or given or PAIR_DEFAULTS[self.network]["pair_dim"]
            config = dataclasses.replace(config, pair_dim=int(width))
        elif self.pair_dim is not None or config.pair_dim:
            raise ConfigError("Molecule3DModule: network='dit' takes no pair features (pair_dim)")
        if self.network == "equivariant":
            f = d - 3
            rbf = int(self.pair_options.get("rbf", PAIR_DEFAULTS["equivariant"]["rbf"]))
            return self.derive(config, in_dim=f, out_dim=f, cond_channels=rbf * f)
        return self.derive(config, in_dim=d, cond_channels=d if self.self_condition else 0)

    def build_network(self, config: DiTConfig) -> nn.Module:
        tok = self.tokenizer
        if self.network == "equivariant":
            return EquivariantPairDiT(config, tok.coord_scale, **self.pair_options)
        if self.network == "distance":
            return DistanceBiasDiT(
                config,
                tok.coord_scale,
                len(tok.elements),
                geometric_features=self.geometric_features,
                **self.pair_options,
            )
        dit = DiT(config)
        if self.geometric_features:
            dit.x_embed = GeometricEmbed(dit.x_embed, len(tok.elements), tok.coord_scale, self.geometric_features)
        return dit

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Earlier hyper-parameters: flat base arguments and ``prediction`` into the groups (``LEGACY_ARGS``),
        ``pair.pair_dim`` into ``model.pair_dim`` (the DiT's pair width), and for the equivariant network the DiT
        widths left to be derived (earlier versions stated the token width as ``in_dim``)."""
        args = dict(args)
        pair = dict(args.get("pair") or {})
        model = args.get("model")
        if "pair_dim" in pair and isinstance(model, dict):
            args["model"] = model = {**model, "pair_dim": pair.pop("pair_dim")}
            args["pair"] = pair
        if args.get("network") == "equivariant" and isinstance(model, dict) and not model.get("cond_channels"):
            args["model"] = {k: v for k, v in model.items() if k not in ("in_dim", "out_dim")}
        return super().migrate_args(args)

    def migrate_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Weights of the earlier pair networks (own forked DiT blocks) in the core DiT's layout
        (:func:`~ditkit_molecules.pairnet.migrate_network_state`), then the base adapter."""
        if self.network != "dit":
            state = migrate_network_state(state)
        return super().migrate_state_dict(state)

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
            rot = random_rotations(coords.shape[0], self.rng(offset=17), coords.device)
            coords = torch.einsum("bij,baj->bai", rot, coords)
        return self.tokenizer.encode({**batch, "coords": coords})

    def centered_noise(self, shape: torch.Size, mask: Tensor, generator: torch.Generator | None) -> Tensor:
        """Gaussian noise ``[b, a, d]`` whose coordinate channels have zero mean over real atoms."""
        x_0 = torch.randn(shape, generator=generator, device=mask.device)
        return torch.cat([center(x_0[..., :3], mask), x_0[..., 3:] * mask[..., None]], -1)

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """Noise with zero centre of mass over real atoms (training and :meth:`generate`)."""
        return self.centered_noise(x_1.shape, tokens.mask, generator).to(x_1.dtype)

    # ------------------------------------------------------------------ network outputs
    def clean_estimate(self, out: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The clean atoms ``x1_hat`` implied by a :meth:`predict` output (``x_t + (1 - t) v`` for velocities)."""
        if self.flow.prediction == "data":
            return out
        return x_t + (1 - t.reshape(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)) * out

    def predict(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, logits: bool = False) -> Tensor:
        """Network output ``[b, a, d]``: a velocity, or the clean atoms ``x_1`` with ``flow.prediction="data"`` (with
        ``type_loss="ce"`` the type channels are ``type_scale * softmax``; ``logits`` returns the raw logits).

        With ``self_condition``: in training a coin flip per batch decides whether a first gradient-free pass
        supplies ``x1_hat``; in sampling (:meth:`sample_molecules`) the previous solver evaluation supplies it."""
        kwargs = tokens.model_kwargs()
        if not self.self_condition:
            return self._head(self.model(x_t, t, **kwargs), x_t, t, logits, tokens.mask)
        if self._sampling:
            x_sc = self._sc_state
        else:  # training: half of the batches; validation loss: always (as in sampling)
            x_sc = None
            g = self.rng(offset=29)
            if not self.training or float(torch.rand((), generator=g, device=g.device)) < 0.5:
                with torch.no_grad():
                    first = self._head(self.model(x_t, t, **kwargs), x_t, t, False, tokens.mask)
                    x_sc = self.clean_estimate(first, x_t, t)
        out = self._head(self.model(x_t, t, x_cond=x_sc, **kwargs), x_t, t, logits, tokens.mask)
        if self._sampling:
            plain = self._head(out, x_t, t, False, tokens.mask) if logits else out
            self._sc_state = self.clean_estimate(plain, x_t, t).detach()
        return out

    def _head(self, out: Tensor, x_t: Tensor, t: Tensor, logits: bool, mask: Tensor | None = None) -> Tensor:
        if self.flow.prediction == "data" and self.network == "equivariant":  # coordinates: displacement from x_t
            out = torch.cat([x_t[..., :3] + out[..., :3], out[..., 3:]], -1)
        if self.type_loss == "ce" and not logits:
            k = len(self.tokenizer.elements)
            probs = out[..., 3 : 3 + k].softmax(-1) * self.tokenizer.type_scale
            if self.flow.prediction == "velocity":  # the element velocity implied by the clean-data estimate
                tt = t.reshape(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)
                probs = (probs - x_t[..., 3 : 3 + k]) / (1 - tt).clamp_min(1e-3)
            out = torch.cat([out[..., :3], probs, out[..., 3 + k :]], -1)
            if mask is not None:
                out = out * mask[..., None].to(out.dtype)
        return out

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop: Tensor | None = None) -> Tensor:
        """The solver's velocity (data predictions converted by the path)."""
        out = self.predict(tokens, x_t, t)
        if self.flow.prediction == "data":
            return self.path.x1_to_velocity(x_t, out, t)
        return out

    # ------------------------------------------------------------------ loss
    def flow_loss(self, tokens: TokenBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Velocity loss, or with ``flow.prediction="data"`` the error of the predicted clean atoms ``x_1``: MSE with
        the coordinates weighted by ``coord_weight``, types by MSE or cross-entropy (``type_loss``); plus the
        distance-geometry term (``distance_weight``) and the MoE balance loss, if any."""
        x_1, mask = tokens.x, tokens.mask
        x_0 = self.sample_noise(x_1, tokens, generator)
        t = self.time_sampler(x_1.shape[0], device=x_1.device, generator=generator)
        ps = self.path.sample(x_0, x_1, t)
        ce_types = self.type_loss == "ce"
        if self.flow.prediction == "velocity" and not ce_types:
            out, target = self.velocity(tokens, ps.x_t, t, None), ps.u_t
        else:  # raw outputs: element logits; coordinates and charge as the prediction says
            out = self.predict(tokens, ps.x_t, t, logits=True)
            target = ps.u_t if self.flow.prediction == "velocity" else x_1
        k = len(self.tokenizer.elements)
        coord = masked_mse(out[..., :3], target[..., :3], mask)
        if ce_types:
            m = mask if mask is not None else torch.ones(x_1.shape[:2], dtype=torch.bool, device=x_1.device)
            ce = F.cross_entropy(out[..., 3 : 3 + k][m].float(), x_1[..., 3 : 3 + k][m].argmax(-1))
            feats = (ce + masked_mse(out[..., 3 + k :], target[..., 3 + k :], mask)) / 2
        else:
            feats = masked_mse(out[..., 3:], target[..., 3:], mask)
        fm = (self.coord_weight * coord * 3 + feats * (x_1.shape[-1] - 3)) / x_1.shape[-1]
        aux = sum((d.aux_loss() for d in find_dits(self.model)), torch.zeros((), device=x_1.device))
        loss = fm + aux
        if self.distance_weight:
            est = out[..., :3] if self.flow.prediction == "data" else self.clean_estimate(out, ps.x_t, t)[..., :3]
            dist = self.distance_loss(est, x_1[..., :3], mask, t)
            loss = loss + self.distance_weight * dist
            if self._trainer is not None:
                self.log("train/distance" if self.training else "val/distance", dist, batch_size=x_1.shape[0])
        return {"loss": loss, "fm": fm, "aux": aux}

    def distance_loss(self, pred: Tensor, target: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        """Distance-geometry loss: ``sum_b t_b sum_(i,j near) (|r^_i - r^_j| - |r_i - r_j|)^2 / sum_b t_b n_b``.

        Args:
            pred: implied clean coordinates ``[b, a, 3]`` (coordinate units).
            target: data coordinates ``[b, a, 3]``.
            mask: ``[b, a]`` real atoms (None: all).
            t: times ``[b]``.
        """
        b, a, _ = target.shape
        if mask is None:
            mask = torch.ones(b, a, dtype=torch.bool, device=target.device)
        d_true = pairwise(target.float())[1]
        d_pred = pairwise(pred.float())[1]
        near = pair_mask_of(mask, torch.float32) * (d_true * self.tokenizer.coord_scale < self.distance_cutoff)
        w = near * t.float()[:, None, None]  # [b, a, a]
        return ((d_pred - d_true) ** 2 * w).sum() / w.sum().clamp_min(1e-6)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_molecules(
        self,
        n: int,
        *,
        seed: int = 0,
        steps: int | None = None,
        method: str | None = None,
        sizes: Tensor | None = None,
        **generate_kwargs: Any,
    ) -> list[Conformer]:
        """Generate ``n`` molecules as :class:`Conformer` s (``smiles`` is filled in by evaluation).

        Args:
            n: number of molecules.
            seed: RNG seed (sizes and noise).
            steps, method: solver settings (defaults from ``sampler``).
            sizes: atoms per molecule ``[n]`` (default: drawn from the training histogram).
            **generate_kwargs: more :meth:`~ditkit_core.lightning.FlowMatchingModule.generate` options (``schedule``,
                ``cache``, ...).
        """
        g = torch.Generator(device=self.device).manual_seed(seed)
        if sizes is None:
            sizes = torch.multinomial(
                self.size_hist.float().cpu(), n, replacement=True, generator=torch.Generator().manual_seed(seed)
            )
        sizes = sizes.to(self.device)
        a = int(sizes.max())
        mask = torch.arange(a, device=self.device)[None] < sizes[:, None]  # [n, a]
        template = TokenBatch(x=torch.zeros(n, a, self.tokenizer.token_dim, device=self.device), mask=mask)
        self._sampling, self._sc_state = True, None
        try:
            x = self.generate(template, steps=steps, method=method, generator=g, **generate_kwargs).x
        finally:
            self._sampling, self._sc_state = False, None
        x = torch.cat([center(x[..., :3], mask), x[..., 3:]], -1) * mask[..., None]
        out = self.tokenizer.decode(template.replace(x=x))
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
