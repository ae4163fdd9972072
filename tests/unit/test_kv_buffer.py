"""The in-place KV-cache layer (evaluate/kv_buffer.py) holds exactly what transformers'
``DynamicLayer`` holds after the same updates, row selections and trims, and appends without
copying the cache while its buffer has room."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from tif_unlearn.evaluate.kv_buffer import SPARE, BufferedLayer, buffer_cache


def states(batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, length, 3, generator=g), torch.randn(
        batch, 2, length, 3, generator=g
    )


def pair() -> tuple[DynamicLayer, BufferedLayer]:
    plain, buffered = DynamicLayer(), DynamicLayer()
    for layer in (plain, buffered):
        layer.update(*states(4, 5, seed=0))  # the prompt pass
    buffer_cache(type("Cache", (), {"layers": [buffered]})())
    assert type(buffered) is BufferedLayer
    return plain, buffered


def assert_same(plain: DynamicLayer, buffered: BufferedLayer) -> None:
    assert torch.equal(plain.keys, buffered.keys)
    assert torch.equal(plain.values, buffered.values)
    assert buffered.get_seq_length() == plain.get_seq_length()


def test_updates_return_and_keep_what_the_dynamic_layer_does():
    plain, buffered = pair()
    for step in range(1, 2 * SPARE):  # past the first buffer's room: it grows
        new = states(4, 1, seed=step)
        returned = buffered.update(*new)
        expected = plain.update(*new)
        assert torch.equal(returned[0], expected[0]) and torch.equal(returned[1], expected[1])
    assert_same(plain, buffered)


def test_appending_reuses_the_buffer_while_it_has_room():
    _, buffered = pair()
    buffered.update(*states(4, 1, seed=1))
    start = buffered.keys.data_ptr()
    for step in range(2, SPARE):
        buffered.update(*states(4, 1, seed=step))
        assert buffered.keys.data_ptr() == start  # written in place, not copied


def test_rows_selected_and_columns_trimmed_between_updates_are_kept():
    plain, buffered = pair()
    for step in (1, 2):
        plain.update(*states(4, 1, seed=step))
        buffered.update(*states(4, 1, seed=step))
    rows = torch.tensor([0, 2, 3])
    for layer in (plain, buffered):
        layer.batch_select_indices(rows)
        layer.keys, layer.values = layer.keys[:, :, 2:], layer.values[:, :, 2:]  # greedy._trim
    for step in (3, 4, 5):
        plain.update(*states(3, 1, seed=step))
        buffered.update(*states(3, 1, seed=step))
    assert_same(plain, buffered)


def test_only_plain_dynamic_layers_are_buffered():
    class Sliding(DynamicLayer):
        pass

    layers = [DynamicLayer(), Sliding()]
    buffer_cache(type("Cache", (), {"layers": layers})())
    assert [type(layer) for layer in layers] == [BufferedLayer, Sliding]
