"""ditkit-shapes: DiT-3D-style flow matching on point clouds.

* :mod:`ditkit_shapes.procedural`: the embedded procedural dataset (chairs, tables, lamps, mugs, airplanes, ...).
* :mod:`ditkit_shapes.data`: loaders for ShapeNet-style folders (``.ply/.obj/.off/.npy``), validation, normalisation.
* :mod:`ditkit_shapes.readers` / :mod:`ditkit_shapes.ply`: the checked file readers (hostile input gives named errors).
* :mod:`ditkit_shapes.validation`: checks of inference and configuration arguments.
* :mod:`ditkit_shapes.metrics`: CPU-exact Chamfer / EMD and the PointFlow protocol (MMD, COV, 1-NNA).
* :mod:`ditkit_shapes.tokenizer`: point-set tokenizer and voxel-patch tokenizer (voxelise / devoxelise).
* :mod:`ditkit_shapes.model`: the voxel DiT backbone with 3D RoPE and 3D window attention.
* :mod:`ditkit_shapes.module`: the class-conditional flow-matching LightningModule (CFG, completion).
"""

__version__ = "0.1.0"
