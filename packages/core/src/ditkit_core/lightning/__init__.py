"""Lightning integration: the generic module, the CLI, callbacks and pretrained I/O."""

from ditkit_core.lightning.callbacks import CompileBlocks, SampleWriter, TokenThroughput
from ditkit_core.lightning.cli import FlowCLI
from ditkit_core.lightning.data import EpochShuffleSampler, seeded_loader
from ditkit_core.lightning.module import FlowMatchingModule, allow_in_checkpoints
from ditkit_core.lightning.pretrained import from_pretrained, save_pretrained

__all__ = [
    "CompileBlocks",
    "EpochShuffleSampler",
    "FlowCLI",
    "FlowMatchingModule",
    "SampleWriter",
    "TokenThroughput",
    "allow_in_checkpoints",
    "from_pretrained",
    "save_pretrained",
    "seeded_loader",
]
