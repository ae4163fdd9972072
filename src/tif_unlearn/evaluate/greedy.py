"""Greedy decoding that spends no compute on finished answers.

``model.generate`` runs a batch until its longest answer ends: an answer that stopped after 20
tokens still costs a row of every later step. Here a finished row leaves the batch (its rows of
the KV cache are dropped), and when the batch has shrunk to half, waiting prompts join it: they
are prefilled on their own and their KV cache is merged into the running one (both left-padded
to one length), so batches stay full until the queue is empty. Cache columns that every row
masks are trimmed as rows leave.

The tokens are those of greedy decoding: at every step each row takes the argmax of its next-
token logits, whatever the batch around it. Only plain greedy decoding is done here; a model
whose generation config changes the logits (repetition penalty, forced or suppressed tokens,
minimum length, ...) goes through ``model.generate`` (:func:`plain_greedy_config`). A cache
that is not made of plain dynamic layers (e.g. sliding-window attention) is not merged: the
running answers are prefilled again with the joining prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .kv_buffer import BufferedLayer, buffer_cache
from .scoring import last_logits_only, model_device, returned_cache

#: generation-config fields that change greedy decoding, with their neutral values
_LOGIT_OPTIONS = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
}


def plain_greedy_config(model) -> bool:
    """True when the model's generation config leaves greedy decoding plain (argmax)."""
    config = getattr(model, "generation_config", None)
    return all(getattr(config, key, None) in neutral for key, neutral in _LOGIT_OPTIONS.items())


@dataclass
class _Row:
    index: int  # position in the caller's list
    prompt: list[int]
    generated: list[int] = field(default_factory=list)


@dataclass
class _Batch:
    rows: list[_Row]
    cache: object
    mask: torch.Tensor  # (B, cached length): 1 where a real token is cached
    positions: torch.Tensor  # (B,) position id of each row's last token
    next_tokens: torch.Tensor  # (B,) the token each row emits now


def _prefill(model, rows: list[_Row], pad_id: int) -> _Batch:
    """One left-padded forward pass over every row's prompt and generated tokens."""
    device = model_device(model)
    sequences = [row.prompt + row.generated for row in rows]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, sequence in enumerate(sequences):
        ids[i, width - len(sequence) :] = torch.tensor(sequence)
        mask[i, width - len(sequence) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=True,
        **last_logits_only(model),
    )
    cache = returned_cache(out)
    buffer_cache(cache)
    next_tokens = _argmax(out.logits[:, -1])
    return _Batch(rows, cache, mask.to(device), positions[:, -1].to(device), next_tokens)


def _decode(model, batch: _Batch, cache_argument: str) -> None:
    """Feed each row's emitted token; the batch's next tokens become the argmax after it."""
    batch.mask = torch.cat([batch.mask, torch.ones_like(batch.mask[:, :1])], dim=1)
    batch.positions = batch.positions + 1
    out = model(
        input_ids=batch.next_tokens[:, None],
        attention_mask=batch.mask,
        position_ids=batch.positions[:, None],
        use_cache=True,
        **{cache_argument: batch.cache},
    )
    batch.next_tokens = _argmax(out.logits[:, -1])


def _argmax(logits: torch.Tensor) -> torch.Tensor:
    """Each row's argmax, the first index on ties like ``argmax``: ``max(-1).indices`` is
    about 2.5x faster than ``argmax`` over a 49k vocabulary on CPU (4.5 vs 11.8 ms for 64
    rows)."""
    return logits.max(-1).indices


def _emit(batch: _Batch, stop_ids: set[int], max_new_tokens: int) -> list[_Row]:
    """Append the emitted tokens; drop finished rows from the batch and return them."""
    keep, finished = [], []
    for i, (row, token) in enumerate(zip(batch.rows, batch.next_tokens.tolist(), strict=True)):
        row.generated.append(token)
        done = token in stop_ids or len(row.generated) >= max_new_tokens
        if done:
            finished.append(row)
        else:
            keep.append(i)
    if finished and keep:
        index = torch.tensor(keep, device=batch.mask.device)
        batch.cache.batch_select_indices(index)
        batch.rows = [batch.rows[i] for i in keep]
        batch.mask, batch.positions = batch.mask[index], batch.positions[index]
        batch.next_tokens = batch.next_tokens[index]
        _trim(batch)
    elif finished:
        batch.rows = []
    return finished


@torch.no_grad()
def greedy_token_ids(
    model,
    prompts: Sequence[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int,
    stop_ids: Sequence[int],
    pad_id: int,
    cache_argument: str,
    on_finished=None,
) -> list[list[int]]:
    """Greedy continuations (token ids, the stop token included when one ended the answer)
    of ``prompts`` (token ids), in their order. ``on_finished(n)`` is called as answers end."""
    if max_new_tokens < 1:
        return [[] for _ in prompts]
    queue = [_Row(i, list(p)) for i, p in sorted(enumerate(prompts), key=lambda x: len(x[1]))]
    results: list[list[int]] = [[] for _ in prompts]
    batch, stops = None, set(stop_ids)
    while queue or (batch and batch.rows):
        running = batch.rows if batch else []
        if queue and batch_size - len(running) >= max(1, batch_size // 8):
            joining, queue = queue[: batch_size - len(running)], queue[batch_size - len(running) :]
            batch = _join(model, batch, joining, pad_id, cache_argument)
        else:
            _decode(model, batch, cache_argument)
        finished = _emit(batch, stops, max_new_tokens)
        for row in finished:
            results[row.index] = row.generated
        if finished and on_finished:
            on_finished(len(finished))
    return results


def _join(model, batch: _Batch | None, joining: list[_Row], pad_id: int, cache_argument: str):
    """The batch with ``joining`` rows added: their prompts are prefilled alone, the running
    rows take their next step, and the two caches are merged (else all prefilled together)."""
    if batch is None or not batch.rows:
        return _prefill(model, joining, pad_id)
    new = _prefill(model, joining, pad_id)
    if not (_mergeable(batch.cache) and _mergeable(new.cache)):
        return _prefill(model, batch.rows + joining, pad_id)
    _decode(model, batch, cache_argument)
    width = max(batch.mask.shape[1], new.mask.shape[1])
    for old_layer, new_layer in zip(batch.cache.layers, new.cache.layers, strict=True):
        for name in ("keys", "values"):
            merged = [_left_pad(getattr(x, name), width, dim=2) for x in (old_layer, new_layer)]
            setattr(old_layer, name, torch.cat(merged))
    batch.mask = torch.cat([_left_pad(m, width, dim=1) for m in (batch.mask, new.mask)])
    batch.positions = torch.cat([batch.positions, new.positions])
    batch.next_tokens = torch.cat([batch.next_tokens, new.next_tokens])
    batch.rows = batch.rows + new.rows
    return batch


def _mergeable(cache) -> bool:
    """A cache whose layers are plain dynamic key/value tensors (B, heads, length, dim)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    plain = (DynamicLayer, BufferedLayer)
    return bool(layers) and all(type(layer) in plain for layer in layers)


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zeros before ``tensor``'s entries along ``dim`` (2: cache length, 1: mask) up to ``width``."""
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)


def _trim(batch: _Batch) -> None:
    """Drop the leading cache columns that every row masks (left by rows that left)."""
    if not _mergeable(batch.cache):
        return
    first = int(batch.mask.any(0).int().argmax())
    if first == 0:
        return
    for layer in batch.cache.layers:
        layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
    batch.mask = batch.mask[:, first:]
