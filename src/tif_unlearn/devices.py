"""Where a model runs: ``--device auto`` is the first CUDA GPU when one is visible, else the
CPU. Evaluation and the identifiers that run a model (``contrast``, the local ``llm``) use it."""

from __future__ import annotations

import logging
import re

from .errors import TifError

log = logging.getLogger("tif_unlearn")
DEVICE_HELP = "auto (a CUDA GPU when one is visible, else cpu) | cpu | cuda | cuda:N"


def pick_device(requested: str = "auto", cuda_available: bool | None = None) -> str:
    """The device ``requested`` stands for here; a GPU that is not there fails in one line."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested != "cpu" and not re.fullmatch(r"cuda(:\d+)?", requested):
        raise TifError(f"--device must be {DEVICE_HELP}, got {requested!r}")
    if requested.startswith("cuda") and not cuda_available:
        raise TifError(f"--device {requested}: no CUDA GPU is visible (use --device cpu)")
    return requested


def on_device(loaded: tuple, device: str) -> tuple:
    """``(model, tokenizer)`` with the model moved to ``device`` (a no-op on the CPU)."""
    model, tokenizer = loaded
    if device != "cpu":
        model = model.to(device)
    return model, tokenizer
