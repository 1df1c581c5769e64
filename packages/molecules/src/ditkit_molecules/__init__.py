"""ditkit-molecules: molecule generation on the ditkit flow-matching DiT.

Two model families behind the core protocol:

* 3D (:mod:`ditkit_molecules.module3d`): atoms (hydrogens explicit) as a masked set of tokens
  (coordinates + element one-hot + formal charge), zero-centre-of-mass noise, random-rotation augmentation,
  rotation-invariant radial neighbourhood features in the input embedding (optionally the E(3)-equivariant
  :class:`~ditkit_molecules.pairnet.EquivariantPairDiT`); bonds inferred with RDKit for evaluation.
* latent (:mod:`ditkit_molecules.module_latent`): a SELFIES autoencoder whose latent is trained to be invariant to
  SMILES enumeration (InfoNCE), a DiT over its latent tokens conditioned on (QED, logP, MW), an autoregressive
  GRU decoder.

Loaders (:mod:`ditkit_molecules.io`, :mod:`ditkit_molecules.xyz`) read ``.smi``, ``.csv``, ``.sdf`` and QM9
``.xyz`` (files, folders, tar archives) and report every bad record by file, line and record number; the embedded
default data is RDKit's own ``Data/NCI/first_5K.smi``. Metrics live in :mod:`ditkit_molecules.metrics`.
RDKit is imported lazily inside functions.
"""

__version__ = "0.1.0"
