"""Lightning integration: the generic module and its option groups, the CLI, callbacks, EMA and run loading."""

from ditkit_core.lightning.callbacks import (
    AtomicCheckpointIO,
    CheckpointBlocks,
    CompileBlocks,
    RunGuard,
    SampleWriter,
    StepProgressBar,
    TokenThroughput,
    compile_blocks,
)
from ditkit_core.lightning.cli import FlowCLI
from ditkit_core.lightning.config import CacheConfig, FlowConfig, OptimConfig, SamplerConfig
from ditkit_core.lightning.data import EpochShuffleSampler, resume_data_order, seeded_loader
from ditkit_core.lightning.distill import FewStepDistillation, build_student
from ditkit_core.lightning.ema import EMA
from ditkit_core.lightning.load import default_checkpoint, load_run, read_config, run_dir
from ditkit_core.lightning.module import FlowMatchingModule, allow_in_checkpoints, warmup_cosine
from ditkit_core.lightning.pretrained import (
    UntrustedClassError,
    export_run,
    from_config,
    from_pretrained,
    save_pretrained,
    to_config,
    trust_classes,
)
from ditkit_core.lightning.strategies import DiTDDPStrategy, DiTFSDPStrategy

__all__ = [
    "EMA",
    "AtomicCheckpointIO",
    "CacheConfig",
    "CheckpointBlocks",
    "CompileBlocks",
    "DiTDDPStrategy",
    "DiTFSDPStrategy",
    "EpochShuffleSampler",
    "FewStepDistillation",
    "FlowCLI",
    "FlowConfig",
    "FlowMatchingModule",
    "OptimConfig",
    "RunGuard",
    "SampleWriter",
    "SamplerConfig",
    "StepProgressBar",
    "TokenThroughput",
    "UntrustedClassError",
    "allow_in_checkpoints",
    "build_student",
    "compile_blocks",
    "default_checkpoint",
    "export_run",
    "from_config",
    "from_pretrained",
    "load_run",
    "read_config",
    "resume_data_order",
    "run_dir",
    "save_pretrained",
    "seeded_loader",
    "to_config",
    "trust_classes",
    "warmup_cosine",
]
