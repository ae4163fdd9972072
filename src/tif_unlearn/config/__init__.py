"""Run configuration: each method's hyperparameters (``methods``), the option schema derived
from them (``schema``), the paper's presets and the builder that merges built-in defaults <
preset < YAML < command line. Nothing here imports torch."""

from .builder import build_config
from .schema import FinetuneConfig, TrainConfig, UnlearnConfig

__all__ = ["FinetuneConfig", "TrainConfig", "UnlearnConfig", "build_config"]
