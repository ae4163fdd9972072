"""How the identifiers that run a model (``contrast``, the local ``llm``) load it: on
``--device`` (auto: a GPU when visible), in ``--dtype`` (auto here: bfloat16 on a bf16 GPU, else
float32; the command line resolves auto itself, bfloat16 on a CPU with fast bf16 too)."""

from __future__ import annotations


def auto_dtype(device: str) -> str:
    import torch

    on_bf16_gpu = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return "bfloat16" if on_bf16_gpu else "float32"


def load_on_device(spec: str, *, device: str = "auto", dtype: str = "auto") -> tuple:
    """``(model, tokenizer)`` of a model spec, loaded in ``dtype`` and moved to ``device``."""
    from ..devices import on_device, pick_device
    from ..models import load_model

    where = pick_device(device)
    chosen = auto_dtype(where) if dtype == "auto" else dtype
    return on_device(load_model(spec, dtype=chosen), where)
