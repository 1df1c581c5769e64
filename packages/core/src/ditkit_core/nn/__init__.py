"""Neural-network building blocks: the DiT backbone, its config, attention dispatch and public layers.

Domains import only the names listed in ``__all__`` (checked by ``tests/test_layering.py``).
"""

from ditkit_core.nn.attention import BackendUnavailableError, attention
from ditkit_core.nn.config import ConfigError, DiTConfig
from ditkit_core.nn.dit import BlockInputs, DiT, DiTBlock
from ditkit_core.nn.joint import JointDiT
from ditkit_core.nn.layers import FusedExperts, Mlp, MoEMlp, RMSNorm, TimestepEmbedder, modulate, timestep_embedding
from ditkit_core.nn.partition import TokenPartition
from ditkit_core.nn.rope import RotaryEmbedding

__all__ = [
    "BackendUnavailableError",
    "BlockInputs",
    "ConfigError",
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "FusedExperts",
    "JointDiT",
    "Mlp",
    "MoEMlp",
    "RMSNorm",
    "RotaryEmbedding",
    "TimestepEmbedder",
    "TokenPartition",
    "attention",
    "modulate",
    "timestep_embedding",
]
