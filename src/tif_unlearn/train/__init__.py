"""Training: ``run_unlearn`` and ``run_finetune`` (``orchestrate``) over what they run on:
inputs, token streams and the reference cache, the step schedule, the trainer, checkpoints,
evaluation during training, the output folder and its provenance, precision, distributed runs,
LoRA and the hub.

``from tif_unlearn.train import run_unlearn`` works; the orchestrators are imported on first
use so that importing this package (as the command line does) does not load torch.
"""

from __future__ import annotations

__all__ = ["run_finetune", "run_unlearn"]


def __getattr__(name: str):
    if name in __all__:
        from . import orchestrate

        return getattr(orchestrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
