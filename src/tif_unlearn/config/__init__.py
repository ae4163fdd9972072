"""Run configuration: the option schema, the paper's presets and the builder that merges
built-in defaults < preset < YAML < command line."""

from .schema import FinetuneConfig, TrainConfig, UnlearnConfig, build_config

__all__ = ["FinetuneConfig", "TrainConfig", "UnlearnConfig", "build_config"]
