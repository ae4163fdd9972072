"""The contrast identifier on tiny random Llamas: a target trained on an answer marks that
answer's words as UW; identical target and reference mark nothing."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import QA_PAIRS, build_model
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify import identify

SEEN = QARecord(QA_PAIRS[0]["question"], QA_PAIRS[0]["answer"])  # Basil was born in Kuwait City.
UNSEEN = QARecord(QA_PAIRS[2]["question"], QA_PAIRS[2]["answer"])


def _train_on(model, tokenizer, record, steps: int = 10):
    example = encode_record(tokenizer, record)
    input_ids = torch.tensor([example.input_ids])  # (1, T)
    labels = torch.tensor([example.labels])  # (1, T)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        model(input_ids=input_ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def models(tokenizer):
    reference = build_model(len(tokenizer), seed=0).eval()
    target = _train_on(copy.deepcopy(reference), tokenizer, SEEN)
    return target, reference


def _uw_words(record) -> list[str]:
    return [w for a, b in record.unwanted_spans for w in record.target[a:b].split()]


def test_identical_models_mark_nothing(models, tokenizer):
    _, reference = models
    result = identify(
        "contrast",
        [SEEN, UNSEEN, TextRecord("The book is called The Silent Harbor.")],
        target=reference,
        reference=reference,
        tokenizer=tokenizer,
        progress=False,
    )
    assert not result.failures
    assert all(r.unwanted_spans == () for r in result.records)


def test_trained_target_marks_the_learned_answer(models, tokenizer):
    target, reference = models
    result = identify(
        "contrast",
        [SEEN, UNSEEN],
        target=target,
        reference=reference,
        tokenizer=tokenizer,
        batch_size=2,
        progress=False,
    )
    assert not result.failures
    seen, unseen = (_uw_words(r) for r in result.records)
    assert len(seen) >= 4  # of "Basil was born in Kuwait City" (6 words)
    assert len(seen) > len(unseen)
    strict = identify(
        "contrast",
        [SEEN],
        target=target,
        reference=reference,
        tokenizer=tokenizer,
        threshold=1e6,
        progress=False,
    )
    assert strict.records[0].unwanted_spans == ()


def test_too_long_records_fail_alone(models, tokenizer):
    target, reference = models
    long = QARecord("Where?", "Kuwait City " * 100)
    result = identify(
        "contrast",
        [long, SEEN],
        target=target,
        reference=reference,
        tokenizer=tokenizer,
        max_length=64,
        progress=False,
    )
    assert [i for i, _ in result.failures] == [0] and "max_length" in result.failures[0][1]
    assert result.records[1].unwanted_spans is not None


def test_contrast_needs_both_models(tokenizer, models):
    with pytest.raises(TifError, match="reference model"):
        identify("contrast", [SEEN], target=models[0], tokenizer=tokenizer, progress=False)
    with pytest.raises(TifError, match="tokenizer"):
        identify("contrast", [SEEN], target=models[0], reference=models[1], progress=False)
