"""``ShapesModule``: class-conditional flow matching on point clouds (point tokens or DiT-3D voxel patches).

The flow lives on point coordinates ``[b, p, 3]`` (t = 0 noise, t = 1 data). With a :class:`PointTokenizer` the
DiT sees one token per point (``in_dim = 3``); with a :class:`VoxelPatchTokenizer` the velocity comes from the
DiT-3D network :class:`~ditkit_shapes.model.VoxelVelocity` (``in_dim = C P^3``), optionally with 3D window
attention. Labels go through the DiT's class embedding (``num_classes``) with CFG dropout; completion of partial
clouds uses known-value conditioning (:meth:`complete`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ditkit_core.flow import TimeSampler
from ditkit_core.lightning.module import FlowMatchingModule, allow_in_checkpoints
from ditkit_core.nn import DiTConfig
from ditkit_core.tokenizers import TokenBatch
from ditkit_shapes.model import FourierPointEmbed, VoxelVelocity, Window3DDiT
from ditkit_shapes.tokenizer import PointTokenizer, VoxelPatchTokenizer
from ditkit_shapes.validation import check_completion, check_labels, check_module_args, check_sampling, positive_int

allow_in_checkpoints(DiTConfig, TimeSampler)


class ShapesModule(FlowMatchingModule):
    """Flow-matching DiT for point clouds.

    Args:
        tokenizer: :class:`PointTokenizer` or :class:`VoxelPatchTokenizer`.
        model: DiT configuration (``in_dim = tokenizer.token_dim``; ``num_classes`` for class conditioning;
            ``rope_axes = 3`` with voxel patches).
        window3d: 3D window size in patches for the voxel backbone (0: global attention everywhere).
        window_every: with ``window3d``, every ``window_every``-th block stays global.
        point_hidden: width of the voxel backbone's point-wise MLPs.
        fourier_features: point tokens only: sin / cos of the coordinates at this many log-spaced frequencies
            up to ``fourier_max_freq`` (rad) added to the input embedding (:class:`FourierPointEmbed`; 0: linear).
        fourier_max_freq: highest angular frequency of the Fourier features (the lowest is 1).
        class_names: names of the labels (written next to samples).
        sample_points: points per generated cloud in :meth:`write_samples`.
        time_sampler, sigma_min, lr, weight_decay, warmup_steps, max_steps, min_lr_ratio, cond_dropout, ot_pairing,
        seed, sample_steps, sample_method, sample_schedule, cfg_scale: see :class:`FlowMatchingModule`.
    """

    def __init__(
        self,
        tokenizer: PointTokenizer | VoxelPatchTokenizer,
        model: DiTConfig,
        window3d: int = 0,
        window_every: int = 2,
        point_hidden: int = 64,
        class_names: list[str] | None = None,
        sample_points: int = 2048,
        time_sampler: TimeSampler | None = None,
        sigma_min: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        max_steps: int | None = None,
        min_lr_ratio: float = 0.1,
        cond_dropout: float = 0.1,
        ot_pairing: bool = False,
        seed: int = 0,
        sample_steps: int = 32,
        sample_method: str = "heun",
        sample_schedule: str = "uniform",
        cfg_scale: float = 1.0,
        fourier_features: int = 0,
        fourier_max_freq: float = 32.0,
    ):
        check_module_args(sample_points=sample_points, sample_steps=sample_steps, cfg_scale=cfg_scale)
        if isinstance(model, dict):
            model = DiTConfig.from_dict(model)
        if isinstance(time_sampler, dict):
            time_sampler = TimeSampler(**time_sampler)
        super().__init__(
            tokenizer,
            model,
            time_sampler=time_sampler,
            sigma_min=sigma_min,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            max_steps=max_steps,
            min_lr_ratio=min_lr_ratio,
            cond_dropout=cond_dropout,
            ot_pairing=ot_pairing,
            seed=seed,
            sample_steps=sample_steps,
            sample_method=sample_method,
            sample_schedule=sample_schedule,
            cfg_scale=cfg_scale,
        )
        self.window3d, self.window_every, self.point_hidden = window3d, window_every, point_hidden
        self.class_names, self.sample_points = class_names, sample_points
        self.voxel = isinstance(self.tokenizer, VoxelPatchTokenizer)
        if self.voxel:
            tok = self.tokenizer
            if model.output_dim != tok.token_dim:
                raise ValueError(
                    f"ShapesModule: model.out_dim={model.output_dim} must equal the voxel token width {tok.token_dim}"
                )
            dit = Window3DDiT(model, tok.grid, window3d, window_every) if window3d else self.model
            self.model = VoxelVelocity(tok, dit, point_hidden)
        elif window3d:
            raise ValueError("ShapesModule: window3d needs a VoxelPatchTokenizer (point tokens have no grid)")
        elif model.in_dim != 3:
            raise ValueError(f"ShapesModule: point tokens need model.in_dim=3, got {model.in_dim}")
        self.fourier_features, self.fourier_max_freq = fourier_features, fourier_max_freq
        if fourier_features:
            if self.voxel:
                raise ValueError("ShapesModule: fourier_features applies to point tokens, not voxel patches")
            self.model.x_embed = FourierPointEmbed(self.model.x_embed, fourier_features, 1.0, fourier_max_freq)
        self._points = PointTokenizer(getattr(self.tokenizer, "class_conditional", True) and model.num_classes > 0)

    # ------------------------------------------------------------------ hooks
    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        """``{"points": [b, p, 3], "label": [b]}`` -> point tokens (the flow state for both backbones)."""
        return self._points.encode(batch)

    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop_cond: Tensor | None = None) -> Tensor:
        return self.model(x_t, t, mask=tokens.mask, cond=tokens.cond, drop_cond=drop_cond)

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        names = getattr(dm, "class_names", None)
        if names is not None:
            if self.config.num_classes and len(names) != self.config.num_classes:
                raise ValueError(
                    f"ShapesModule: model.num_classes={self.config.num_classes} but the data has "
                    f"{len(names)} classes {names}"
                )
            self.class_names = list(names)
            self.hparams["class_names"] = list(names)  # checkpoints and save_pretrained keep the label names

    # ------------------------------------------------------------------ generation
    def sample_clouds(
        self, labels: Tensor | list[int] | None, n: int = 1, points: int | None = None, seed: int = 0, **kw: Any
    ) -> Tensor:
        """Generate clouds ``[len(labels) or n, points, 3]`` for class ``labels`` (None: unconditional).

        ``points`` / ``steps`` None take the module's defaults; 0, negative values and class ids outside
        ``[0, num_classes)`` raise ``ValueError`` naming the argument (an unconditional model uses ``labels`` only
        for their count).
        """
        points = self.sample_points if points is None else positive_int(points, "points", "sample_clouds")
        check_sampling("sample_clouds", kw)
        labels = check_labels(labels, self.config.num_classes, "sample_clouds", device=self.device)
        if labels is not None:
            n = labels.shape[0]
        positive_int(n, "n", "sample_clouds")
        g = torch.Generator(device=self.device).manual_seed(seed)
        template = TokenBatch(
            x=torch.zeros(n, points, 3, device=self.device), cond=labels if self.config.num_classes else None
        )
        return self.generate(template, generator=g, **kw).x

    def complete(
        self, partial: Tensor, known_mask: Tensor, labels: Tensor | None = None, seed: int = 0, **kw: Any
    ) -> Tensor:
        """Complete clouds ``partial [b, p, 3]`` whose points with ``known_mask [b, p]`` True are given.

        Known points follow the noise-to-data path exactly (known-value conditioning) and come out unchanged;
        the others are generated consistently with them.
        """
        check_completion(partial, known_mask, kw)
        labels = check_labels(labels, self.config.num_classes, "complete", device=partial.device)
        g = torch.Generator(device=self.device).manual_seed(seed)
        template = TokenBatch(x=torch.zeros_like(partial), cond=labels if self.config.num_classes else None)
        km = known_mask[..., None].expand_as(partial)
        return self.generate(template, known=partial, known_mask=km, generator=g, **kw).x

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        from ditkit_shapes.data import write_ply
        from ditkit_shapes.viz import render_grid

        names = self.class_names or [str(i) for i in range(max(1, self.config.num_classes))]
        k = len(names) if self.config.num_classes else 1
        labels = torch.arange(k).repeat_interleave(2) if self.config.num_classes else None
        clouds = self.sample_clouds(labels, n=2, seed=0).cpu()
        out_dir = Path(out_dir)
        paths = []
        for i, c in enumerate(clouds):
            name = names[int(labels[i])] if labels is not None else "sample"
            paths.append(write_ply(out_dir / tag / f"{name}_{i % 2}.ply", c))
        titles = [names[int(i)] for i in labels] if labels is not None else ["sample"] * len(clouds)
        png = render_grid(clouds, out_dir / f"shapes_{tag}.png", titles=titles, cols=4)
        return [png, *paths]
