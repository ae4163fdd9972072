"""A KV-cache layer that appends in place: decoding without copying the whole cache per token.

transformers' ``DynamicLayer`` appends each step's keys and values with ``torch.cat``, which
copies every cached position of every layer at every step: over a 200-token answer that is
quadratic in its length (15 % of a greedy decoding step's time for SmolLM2-135M in bf16 at 40
new tokens, more for longer answers). :class:`BufferedLayer` keeps the cache as a view of a
larger buffer and writes new positions into the spare room; a full buffer is copied into one
with ``SPARE`` more positions (a copy every 64 tokens instead of every token, and never more
than 64 unused positions a row: the cache of 64 answers of SmolLM2 is ~3 MB a position in fp32).

The keys and values it returns are the same numbers as ``DynamicLayer``'s (a view instead of a
fresh tensor), so greedy answers do not change. Anything that replaces ``keys`` or ``values``
from outside (selecting rows, trimming columns, merging caches) is allowed: the next update
sees that they are no longer a view of the buffer and moves them into a new one.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

SPARE = 64  # positions of room a new buffer gets beyond what it holds


class BufferedLayer(DynamicLayer):
    """``DynamicLayer`` whose ``update`` writes into a preallocated buffer."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized or self.keys.numel() == 0:
            return super().update(key_states, value_states, *args, **kwargs)
        self.keys, self._key_buffer = _append(
            self.keys, getattr(self, "_key_buffer", None), key_states
        )
        self.values, self._value_buffer = _append(
            self.values, getattr(self, "_value_buffer", None), value_states
        )
        return self.keys, self.values


def _append(cached: torch.Tensor, buffer: torch.Tensor | None, new: torch.Tensor):
    """``cached`` followed by ``new`` along the length (dim 2), as a view of a buffer with room
    to spare; ``buffer`` is reused when ``cached`` is still its leading view and it has room."""
    length, added = cached.shape[2], new.shape[2]
    if not _is_prefix_view(cached, buffer) or buffer.shape[2] < length + added:
        capacity = length + added + SPARE
        grown = cached.new_empty((*cached.shape[:2], capacity, cached.shape[3]))
        grown[:, :, :length] = cached
        buffer = grown
    buffer[:, :, length : length + added] = new
    return buffer[:, :, : length + added], buffer


def _is_prefix_view(cached: torch.Tensor, buffer: torch.Tensor | None) -> bool:
    """True when ``cached`` is ``buffer[:, :, :length]`` (same storage, start and strides)."""
    if buffer is None or cached.data_ptr() != buffer.data_ptr():
        return False
    same_rows = cached.shape[:2] == buffer.shape[:2] and cached.shape[3] == buffer.shape[3]
    return same_rows and cached.stride() == buffer.stride()


def buffer_cache(cache) -> None:
    """Make every plain dynamic layer of ``cache`` a :class:`BufferedLayer` (in place)."""
    for layer in getattr(cache, "layers", None) or []:
        if type(layer) is DynamicLayer:
            layer.__class__ = BufferedLayer
