"""ditkit-robotics: flow-matching diffusion-transformer robot policies on the ditkit core.

* :mod:`ditkit_robotics.data`: loading (ditkit zarr, LeRobot-style v2 / v3 folders), windowing, the DataModule;
  :mod:`ditkit_robotics.episodes` (validation, ``EpisodeError``), :mod:`ditkit_robotics.zarr_store`,
  :mod:`ditkit_robotics.lerobot`, :mod:`ditkit_robotics.parquet` (the formats), :mod:`ditkit_robotics.inputs`
  (inference argument checks).
* :mod:`ditkit_robotics.tokenizer`: action-chunk tokens with min-max normalisation.
* :mod:`ditkit_robotics.model`: the observation encoder.
* :mod:`ditkit_robotics.module`: :class:`PolicyModule` (Lightning); :mod:`ditkit_robotics.caching`: which core caches
  (MoDE ``ExpertCache``, ``BlockCache``) its sampling runs under.
* :mod:`ditkit_robotics.envs` / :mod:`ditkit_robotics.evaluate`: Meta-World demos and rollouts (``metaworld`` extra).
"""

from ditkit_core.sampling import ExpertCache, solver_times
from ditkit_robotics.caching import CACHES
from ditkit_robotics.data import ChunkDataset, Episode, EpisodeError, PolicyDataModule, load_episodes
from ditkit_robotics.model import ObsEncoder
from ditkit_robotics.module import PolicyModule
from ditkit_robotics.tokenizer import ActionChunkTokenizer

__all__ = [
    "CACHES",
    "ActionChunkTokenizer",
    "ChunkDataset",
    "Episode",
    "EpisodeError",
    "ExpertCache",
    "ObsEncoder",
    "PolicyDataModule",
    "PolicyModule",
    "load_episodes",
    "solver_times",
]
