"""Where a model runs: ``--device auto`` is the first CUDA GPU when one is visible, else the
CPU. Evaluation and the identifiers that run a model (``contrast``, the local ``llm``) use it;
those identifiers load their models in bfloat16 where it is fast (``--dtype auto``)."""

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


def one_gpu_notice(visible_gpus: int, processes: int) -> str | None:
    """Several GPUs visible to one process: it runs on the first (``cuda:0``); the one-line
    notice names the launchers that use all of them. None when there is nothing to say."""
    if visible_gpus < 2 or processes > 1:
        return None
    return (
        f"{visible_gpus} GPUs are visible to this one process: it runs on cuda:0 only; to use "
        f"all of them, run one process per GPU: torchrun --nproc-per-node {visible_gpus} -m "
        "tif_unlearn.cli ... (or accelerate launch --num-processes "
        f"{visible_gpus} -m tif_unlearn.cli ...)"
    )


def on_device(loaded: tuple, device: str) -> tuple:
    """``(model, tokenizer)`` with the model moved to ``device`` (a no-op on the CPU)."""
    model, tokenizer = loaded
    if device != "cpu":
        model = model.to(device)
    return model, tokenizer
