"""``ShapesModule``: class-conditional flow matching on point clouds (point tokens or DiT-3D voxel patches).

The flow lives on point coordinates ``[b, p, 3]`` (t = 0 noise, t = 1 data). With a :class:`PointTokenizer` the
DiT sees one token per point (``in_dim = 3``); with a :class:`VoxelPatchTokenizer` the velocity comes from the
DiT-3D network :class:`~ditkit_shapes.model.VoxelVelocity` (``in_dim = C P^3``), optionally with 3D window
attention (config data: ``window_grid`` / ``window_size`` derived from the tokenizer's patch grid). Labels go through
the DiT's class embedding (``num_classes``) with CFG dropout; completion of partial clouds uses known-value
conditioning (:meth:`complete`). Sampling always goes through the core's ``generate``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig
from ditkit_core.nn import ConfigError, DiT, DiTConfig
from ditkit_core.tokenizers import TokenBatch
from ditkit_shapes.model import FourierPointEmbed, VoxelVelocity
from ditkit_shapes.tokenizer import PointTokenizer, VoxelPatchTokenizer
from ditkit_shapes.validation import check_completion, check_labels, check_module_args, check_sampling, positive_int


class ShapesModule(FlowMatchingModule):
    """Flow-matching DiT for point clouds.

    Args:
        tokenizer: :class:`PointTokenizer` or :class:`VoxelPatchTokenizer`.
        model: DiT configuration (``in_dim`` = the tokenizer's token width, derived when 0; ``num_classes`` for
            class conditioning; ``rope_axes = 3`` with voxel patches). With ``window3d`` its ``window_grid`` /
            ``window_size`` / ``window_every`` are derived (the patch grid ``[g, g, g]``, windows
            ``[window3d] * 3``).
        window3d: 3D window size in patches for the voxel backbone (0: global attention everywhere).
        window_every: with ``window3d``, every ``window_every``-th block stays global (1: every block windowed).
        point_hidden: width of the voxel backbone's point-wise MLPs.
        class_names: names of the labels (written next to samples).
        sample_points: points per generated cloud (:meth:`sample_clouds` and :meth:`write_samples` default).
        fourier_features: point tokens only: sin / cos of the coordinates at this many log-spaced frequencies
            up to ``fourier_max_freq`` (rad) added to the input embedding (:class:`FourierPointEmbed`; 0: linear).
        fourier_max_freq: highest angular frequency of the Fourier features (the lowest is 1).
        flow, optim, sampler, seed: see :class:`~ditkit_core.lightning.FlowMatchingModule` (the flat arguments of
            earlier versions, ``lr``, ``sample_steps``, ``cfg_scale``, ..., are migrated by the core).
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
        fourier_features: int = 0,
        fourier_max_freq: float = 32.0,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ):
        check_module_args(
            sample_points=sample_points,
            window3d=window3d,
            window_every=window_every,
            point_hidden=point_hidden,
            fourier_features=fourier_features,
        )
        # read by resolve_config / build_network, which the core calls inside super().__init__
        self.window3d, self.window_every, self.point_hidden = window3d, window_every, point_hidden
        self.fourier_features, self.fourier_max_freq = fourier_features, fourier_max_freq
        self.class_names, self.sample_points = class_names, sample_points
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        conditional = getattr(self.tokenizer, "class_conditional", True) and self.config.num_classes > 0
        self._points = PointTokenizer(conditional)

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Checkpoint hyper-parameters of earlier versions -> init arguments: the core's migration of the flat
        arguments (``lr``, ``sample_steps``, ...), where ``time_sampler: None`` meant the default sampler."""
        if "time_sampler" in args and args["time_sampler"] is None:
            args = {k: v for k, v in args.items() if k != "time_sampler"}
        return super().migrate_args(args)

    @property
    def voxel(self) -> bool:
        """Whether the DiT runs on voxel patches (:class:`VoxelVelocity`) rather than one token per point."""
        return isinstance(self.tokenizer, VoxelPatchTokenizer)

    # ------------------------------------------------------------------ hooks
    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """``in_dim`` from the tokenizer; with ``window3d``, the 3D windows as config data.

        The voxel backbone's windows are ``window_grid = [g, g, g]`` (the tokenizer's patch grid, tokens in raster
        order), ``window_size = [w, w, w]`` and ``window_every``; the core DiT runs its local blocks inside them.
        Stated values (a checkpoint's resolved config) must agree.

        Raises:
            ConfigError: a width or window that does not fit the tokenizer, or an option of the other backbone.
        """
        config = super().resolve_config(config)
        if not self.voxel:
            if self.window3d or config.window_grid is not None:
                raise ConfigError("ShapesModule: window3d needs a VoxelPatchTokenizer (point tokens have no grid)")
            return config
        tok = self.tokenizer
        if config.output_dim != tok.token_dim:
            raise ConfigError(
                f"ShapesModule: model.out_dim={config.output_dim} must equal the voxel token width {tok.token_dim}"
            )
        if self.fourier_features:
            raise ConfigError("ShapesModule: fourier_features applies to point tokens, not voxel patches")
        grid = [tok.grid] * 3
        if not self.window3d:
            if config.window_grid is not None and list(config.window_grid) != grid:
                raise ConfigError(f"DiTConfig.window_grid={config.window_grid}: the patch grid is {grid}")
            return config
        if tok.grid % self.window3d:
            raise ConfigError(f"ShapesModule: window3d={self.window3d} must divide the patch grid {tok.grid}")
        if config.window_grid is None:  # fresh: the module's window_every applies
            config = dataclasses.replace(config, window_every=self.window_every)
        elif config.window_every != self.window_every:
            raise ConfigError(
                f"DiTConfig.window_every={config.window_every}: ShapesModule.window_every is {self.window_every}"
            )
        return self.derive(config, window_grid=grid, window_size=[self.window3d] * 3)

    def build_network(self, config: DiTConfig) -> nn.Module:
        """One core DiT: inside :class:`VoxelVelocity` for voxel patches; with :class:`FourierPointEmbed` as its
        input embedding for point tokens with ``fourier_features``."""
        dit = DiT(config)
        if self.voxel:
            return VoxelVelocity(self.tokenizer, dit, self.point_hidden)
        if self.fourier_features:
            dit.x_embed = FourierPointEmbed(dit.x_embed, self.fourier_features, 1.0, self.fourier_max_freq)
        return dit

    def tokenize(self, batch: dict[str, Tensor]) -> TokenBatch:
        """``{"points": [b, p, 3], "label": [b]}`` -> point tokens (the flow state for both backbones)."""
        return self._points.encode(batch)

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
