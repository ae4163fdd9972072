"""Caching the reference values under bf16 autocast without autocast's weight cache: under
no_grad it would keep a bf16 copy of every weight until the batch ends (+50 % of the fp32
weights at the caching peak, 15 GiB on an 8B model). The values are the same."""

from __future__ import annotations

import torch

from conftest import QA_PAIRS
from tif_unlearn.data.batches import pad_stream
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.methods.base import TOKEN_LOGITS, reference_values
from tif_unlearn.train import streams


def examples(tokenizer) -> list[dict]:
    return [
        encode_record(tokenizer, QARecord(p["question"], p["answer"])).as_dict() for p in QA_PAIRS
    ]


def test_the_cache_is_computed_without_autocast_weight_copies(tiny_model, tokenizer, monkeypatch):
    seen = []

    def spy(model, stream, kind):
        seen.append((torch.is_autocast_enabled("cpu"), torch.is_autocast_cache_enabled()))
        return reference_values(model, stream, kind)

    monkeypatch.setattr(streams, "reference_values", spy)
    pad = tokenizer.pad_token_id
    streams.cache_reference(
        tiny_model, examples(tokenizer), TOKEN_LOGITS, pad_token_id=pad, bf16=True
    )
    assert seen and all(autocast and not cached for autocast, cached in seen)


def test_without_the_weight_cache_the_values_are_the_same(tiny_model, tokenizer):
    pad = tokenizer.pad_token_id
    encoded = examples(tokenizer)
    cached = streams.cache_reference(
        tiny_model, encoded, TOKEN_LOGITS, pad_token_id=pad, batch_size=8, bf16=True
    )
    stream = pad_stream(encoded, pad)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the trainer's autocast
        expected = reference_values(tiny_model, stream, TOKEN_LOGITS)["ref_token_values"]
    got = pad_stream(cached, pad)["ref_token_values"]
    assert torch.equal(got, expected.float())
