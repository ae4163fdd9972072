"""Token streams: records encoded into examples, and the reference values a method needs from
the frozen starting model, in one place.

Reference values are computed once by ``cache_reference`` before training and stored inside
the examples (no second model is kept), or, with ``--live-reference``, filled in every step
from a frozen copy (``live_reference``) by the trainer.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Mapping, Sequence

import torch
from tqdm.auto import tqdm

from ..config.schema import UnlearnConfig
from ..data.batches import pad_stream
from ..data.encoding import encode_record
from ..methods.base import reference_values
from .distributed import shard_and_gather, zero_stage_from_env

log = logging.getLogger("tif_unlearn")


def encode_all(tokenizer, records, max_length: int) -> list[dict]:
    return [encode_record(tokenizer, r, max_length=max_length).as_dict() for r in records]


def deepspeed_bf16(env: Mapping[str, str], bf16: bool) -> bool:
    """Whether training runs under DeepSpeed in bf16 (``accelerate launch`` with a DeepSpeed
    config, and ``--bf16``, which makes the Trainer ask for bf16 whatever accelerate's own
    ``mixed_precision``): DeepSpeed then casts the weights to bf16 and runs them without
    autocast."""
    return bf16 and zero_stage_from_env(env) > 0


def caching_autocast(device: torch.device, bf16: bool):
    """The policy's bf16 autocast (the trainer's: reference values must be computed under the
    same one, so that Δ = 0 at step 0), without autocast's cache of bf16 weight copies: under
    ``no_grad`` it would keep a bf16 copy of every weight until the batch ends (+50 % of the
    fp32 weights at the caching peak). The values are the same: each copy is the same cast."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)


def _strip_row(values: torch.Tensor, length: int) -> list[float] | float:
    return values.tolist() if values.dim() == 0 else values[:length].tolist()


@torch.no_grad()
def cache_reference(
    model,
    examples: Sequence[dict],
    kind: str,
    *,
    pad_token_id: int,
    batch_size: int = 8,
    desc: str = "reference",
    bf16: bool = False,
) -> list[dict]:
    """Return copies of ``examples`` with the reference quantity ``kind`` stored in each
    (under the policy's bf16 autocast when ``bf16``)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    cached: list[dict | None] = [None] * len(examples)
    for start in tqdm(range(0, len(order), batch_size), desc=f"caching {desc}", leave=False):
        indices = order[start : start + batch_size]
        stream = pad_stream([examples[i] for i in indices], pad_token_id)
        stream = {k: v.to(device) for k, v in stream.items()}
        with caching_autocast(device, bf16):
            values = reference_values(model, stream, kind)
        for row, index in enumerate(indices):
            length = len(examples[index]["input_ids"])
            extra = {
                key: _strip_row(tensor[row].float().cpu(), length) for key, tensor in values.items()
            }
            cached[index] = {**examples[index], **extra}
    model.train(was_training)
    return cached  # type: ignore[return-value]


def training_load_dtype(config) -> str:
    """The dtype to load the weights in: ``--dtype``, but bfloat16 under DeepSpeed bf16. The
    engine casts the weights to bf16 and makes its fp32 master copies from those, so loading
    them in bf16 loses nothing, halves the host memory of every rank and lets the reference
    cache see the weights DeepSpeed will train."""
    return "bfloat16" if deepspeed_bf16(os.environ, config.bf16) else config.dtype


def policy_precision(model, config: UnlearnConfig) -> bool:
    """Put ``model`` in the precision its training forward passes will run in (bf16 weights
    under DeepSpeed bf16, see ``training_load_dtype``); return whether the reference values
    are computed under bf16 autocast (not under DeepSpeed, which runs without autocast)."""
    if not deepspeed_bf16(os.environ, config.bf16):
        return config.bf16
    if next(model.parameters()).dtype != torch.bfloat16:
        model.to(torch.bfloat16)
    log.info("DeepSpeed bf16: reference values computed by the bf16 weights, without autocast")
    return False


def build_streams(model, tokenizer, inputs: dict, config: UnlearnConfig, reference: dict) -> dict:
    """Encode every stream and, unless the reference is live, cache its reference values."""
    streams = {}
    bf16 = policy_precision(model, config)
    for name, records in inputs.items():
        if records is None:
            continue
        examples = encode_all(tokenizer, records, config.max_length)
        if name in reference and not config.live_reference:
            examples = shard_and_gather(  # one disjoint shard per process
                examples,
                lambda shard, kind=reference[name], name=name: cache_reference(
                    model,
                    shard,
                    kind,
                    pad_token_id=tokenizer.pad_token_id,
                    batch_size=config.reference_batch_size,
                    desc=f"{name} reference",
                    bf16=bf16,
                ),
            )
        streams[name] = examples
    return streams


def frozen_copy(model):
    reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def live_reference(config: UnlearnConfig, model, reference: dict):
    """The model the trainer asks for reference values every step, or None (cached values):
    the base model under a disabled LoRA adapter, else a frozen copy of the starting model."""
    if not (config.live_reference and reference):
        return None
    from . import lora

    return lora.AdapterDisabledReference(model) if config.lora_r else frozen_copy(model)


def token_counts(examples: list[dict]) -> dict[str, int]:
    return {
        "uw_tokens": sum(sum(e["uw_mask"]) for e in examples),
        "gw_tokens": sum(sum(e["gw_mask"]) for e in examples),
    }
