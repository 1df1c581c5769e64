"""Neural-network building blocks: the DiT backbone, its config and the attention dispatch."""

from ditkit_core.nn.attention import BackendUnavailableError, attention
from ditkit_core.nn.config import ConfigError, DiTConfig
from ditkit_core.nn.dit import DiT, DiTBlock
from ditkit_core.nn.layers import MoEMlp, RMSNorm
from ditkit_core.nn.rope import RotaryEmbedding

__all__ = [
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "ConfigError",
    "attention",
    "BackendUnavailableError",
    "MoEMlp",
    "RMSNorm",
    "RotaryEmbedding",
]
