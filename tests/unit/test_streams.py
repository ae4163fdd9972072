"""Token streams (train/streams.py): the reference cache, which streams carry cached reference
values, the live reference model, and the UW/GW token counts.

Expected reference values come from our own forward pass over one example at a time (token
t's logit read at position t − 1), never from the caching code.
"""

from __future__ import annotations

import pytest
import torch

from conftest import QA_PAIRS
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.data.batches import pad_stream
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.methods.base import SEQ_LOGP, TOKEN_LOGITS, TOKEN_LOGPS
from tif_unlearn.tokens import IGNORE_INDEX
from tif_unlearn.train.streams import build_streams, cache_reference, live_reference, token_counts

REFERENCE = {"forget": TOKEN_LOGITS}


def _config(**options) -> UnlearnConfig:
    return UnlearnConfig(out="out-model", forget="forget.jsonl", **options)


def _records(pairs: list[dict]) -> list[QARecord]:
    return [QARecord(p["question"], p["answer"]) for p in pairs]


# --------------------------------------------------------------------------- reference cache


@pytest.fixture
def encoded_examples(tokenizer) -> list[dict]:
    records = [QARecord(p["question"], p["answer"]) for p in QA_PAIRS]
    records += [
        QARecord("Who?", "Basil."),
        QARecord(
            "Tell me everything about the author Nikolai Abilov and the history of Kazakhstan.",
            "Nikolai Abilov writes books about the history of Kazakhstan and won an award.",
        ),
        QARecord("What is the name of the book?", "The Silent Harbor."),
    ]
    examples = [encode_record(tokenizer, r).as_dict() for r in records]
    assert len({len(e["input_ids"]) for e in examples}) > 3  # lengths differ: padding happens
    return examples


def alone(model, ex: dict) -> tuple[list[float], list[float], float]:
    """One example, unbatched, no attention mask: (token logits, token log-probs, seq log-prob)."""
    ids = torch.tensor([ex["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]  # (T, V)
    logps = torch.log_softmax(logits.double(), dim=-1)
    z, lp = [0.0], [0.0]
    for t in range(1, len(ex["input_ids"])):
        label = ex["labels"][t]
        z.append(0.0 if label == IGNORE_INDEX else float(logits[t - 1, label]))
        lp.append(0.0 if label == IGNORE_INDEX else float(logps[t - 1, label]))
    return z, lp, sum(lp)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_cached_token_logits_match_unbatched(tiny_model, tokenizer, encoded_examples, batch_size):
    tiny_model.eval()
    cached = cache_reference(
        tiny_model,
        encoded_examples,
        TOKEN_LOGITS,
        pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size,
    )
    assert len(cached) == len(encoded_examples)
    for ex, out in zip(encoded_examples, cached, strict=True):
        assert out["input_ids"] == ex["input_ids"]  # the example itself, in the same order
        expected, _, _ = alone(tiny_model, ex)
        values = out["ref_token_values"]
        assert len(values) == len(ex["input_ids"])
        assert values[0] == 0.0
        assert torch.allclose(torch.tensor(values), torch.tensor(expected), atol=1e-5)
        # Answer positions carry real (non-zero) logits; prompt positions hold 0.0.
        answer = [t for t, lab in enumerate(ex["labels"]) if lab != IGNORE_INDEX]
        assert all(values[t] != 0.0 for t in answer)
        assert all(values[t] == 0.0 for t, lab in enumerate(ex["labels"]) if lab == IGNORE_INDEX)


def test_cached_token_logps_match_unbatched(tiny_model, tokenizer, encoded_examples):
    tiny_model.eval()
    cached = cache_reference(
        tiny_model, encoded_examples, TOKEN_LOGPS, pad_token_id=tokenizer.pad_token_id, batch_size=4
    )
    for ex, out in zip(encoded_examples, cached, strict=True):
        _, expected, _ = alone(tiny_model, ex)
        values = out["ref_token_values"]
        assert values[0] == 0.0
        assert torch.allclose(
            torch.tensor(values, dtype=torch.float64),
            torch.tensor(expected, dtype=torch.float64),
            atol=1e-5,
        )
        assert all(v <= 0.0 for v in values)


def test_cached_seq_logp_matches_unbatched(tiny_model, tokenizer, encoded_examples):
    tiny_model.eval()
    cached = cache_reference(
        tiny_model, encoded_examples, SEQ_LOGP, pad_token_id=tokenizer.pad_token_id, batch_size=3
    )
    for ex, out in zip(encoded_examples, cached, strict=True):
        _, _, expected = alone(tiny_model, ex)
        assert isinstance(out["ref_seq_logp"], float)
        assert out["ref_seq_logp"] == pytest.approx(expected, abs=1e-4)
        assert out["ref_seq_logp"] < 0.0
        assert "ref_token_values" not in out


def test_cache_reference_restores_training_mode_and_copies(tiny_model, tokenizer, encoded_examples):
    tiny_model.train()
    cached = cache_reference(
        tiny_model, encoded_examples, TOKEN_LOGITS, pad_token_id=tokenizer.pad_token_id
    )
    assert tiny_model.training
    assert all("ref_token_values" not in ex for ex in encoded_examples)  # inputs untouched
    assert all("ref_token_values" in ex for ex in cached)


def test_cached_examples_collate_back_into_a_batch(tiny_model, tokenizer, encoded_examples):
    tiny_model.eval()
    cached = cache_reference(
        tiny_model, encoded_examples, TOKEN_LOGITS, pad_token_id=tokenizer.pad_token_id
    )
    batch = pad_stream(cached[:3], tokenizer.pad_token_id)
    lengths = [len(ex["input_ids"]) for ex in cached[:3]]
    assert batch["ref_token_values"].shape == (3, max(lengths))
    for row, n in enumerate(lengths):
        assert batch["ref_token_values"][row, n:].eq(0.0).all()


# --------------------------------------------------------------------------- streams and the live reference


def test_build_streams_caches_the_reference_only_where_a_method_needs_one(tiny_model, tokenizer):
    tiny_model.eval()
    inputs = {"forget": _records(QA_PAIRS[:3]), "retain": _records(QA_PAIRS[1:]), "idk": None}
    streams = build_streams(tiny_model, tokenizer, inputs, _config(), REFERENCE)
    assert set(streams) == {"forget", "retain"}  # a stream without records is left out
    assert len(streams["forget"]) == 3 and len(streams["retain"]) == len(QA_PAIRS) - 1
    assert all("ref_token_values" not in example for example in streams["retain"])
    for example in streams["forget"]:
        expected, _, _ = alone(tiny_model, example)
        assert example["ref_token_values"] == pytest.approx(expected, abs=1e-5)


def test_build_streams_with_a_live_reference_caches_nothing(tiny_model, tokenizer):
    inputs = {"forget": _records(QA_PAIRS)}
    streams = build_streams(tiny_model, tokenizer, inputs, _config(live_reference=True), REFERENCE)
    assert len(streams["forget"]) == len(QA_PAIRS)
    assert all("ref_token_values" not in example for example in streams["forget"])


def test_live_reference_only_when_asked_for_and_needed(tiny_model):
    assert live_reference(_config(), tiny_model, REFERENCE) is None  # cached instead
    assert live_reference(_config(live_reference=True), tiny_model, {}) is None  # none needed
    assert live_reference(_config(live_reference=True), tiny_model, REFERENCE) is not None


def test_live_reference_is_a_frozen_copy_of_the_starting_model(tiny_model):
    tiny_model.train()
    reference = live_reference(_config(live_reference=True), tiny_model, REFERENCE)
    assert reference is not tiny_model
    assert not reference.training and tiny_model.training
    assert not any(p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in tiny_model.parameters())
    pairs = list(zip(reference.parameters(), tiny_model.parameters(), strict=True))
    assert all(torch.equal(ref, policy) for ref, policy in pairs)
    with torch.no_grad():  # a training step on the policy leaves the reference as it was
        for policy in tiny_model.parameters():
            policy.add_(1.0)
    assert not any(torch.equal(ref, policy) for ref, policy in pairs)


def test_token_counts_sum_the_masks_over_the_examples():
    examples = [
        {"uw_mask": [False, True, True], "gw_mask": [False, False, True]},
        {"uw_mask": [False, True], "gw_mask": [True, False]},
    ]
    # UW: 2 + 1 = 3; GW: 1 + 1 = 2
    assert token_counts(examples) == {"uw_tokens": 3, "gw_tokens": 2}
