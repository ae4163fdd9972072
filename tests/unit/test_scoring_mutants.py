"""Evaluation scoring helpers (evaluate/scoring.py) checked against hand-computed values: the
mutation run found them reached only through end-to-end equalities that batching choices do
not change (which logits are kept, how examples are grouped and packed)."""

from __future__ import annotations

import pytest
import torch

from conftest import build_model
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.evaluate import scoring

IGNORE = -100


class KeepsLogits:
    """A model type whose forward takes ``logits_to_keep`` (only its signature is read)."""

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0): ...


class KeepsAll:
    def forward(self, input_ids, attention_mask=None): ...


def test_scored_answer_totals_and_means():
    two = scoring.ScoredAnswer([-1.0, -3.0], [7, 8], [7, 9])
    assert (two.n_tokens, two.total_nll, two.avg_nll) == (2, 4.0, 2.0)
    one = scoring.ScoredAnswer([-0.5], [1], [1])
    assert (one.n_tokens, one.total_nll, one.avg_nll) == (1, 0.5, 0.5)
    assert scoring.ScoredAnswer([], [], []).avg_nll == 0.0  # no token: no division by zero


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([IGNORE, IGNORE, 5, 6], 2),  # prompt, then answer to the end
        ([IGNORE, 5], 1),
        ([5, 6, 7], None),  # no prompt
        ([IGNORE, 5, IGNORE, 6], None),  # an ignored token inside the answer
        ([IGNORE, 5, IGNORE], None),  # padding after the answer
        ([IGNORE, IGNORE], None),  # nothing scored
    ],
)
def test_answer_start(labels, expected):
    assert scoring.answer_start({"labels": labels}) == expected


def example(prompt: list[int], answer: list[int]) -> dict:
    return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}


def test_shared_prompt_groups_holds_two_or_more_answers_to_one_whole_prompt():
    examples = [
        example([1, 2], [3, 4]),
        example([1, 2], [5]),
        example([1, 9], [3]),  # another prompt, alone
        {"input_ids": [1, 2, 3], "labels": [1, 2, 3]},  # no prompt: never shared
        {"input_ids": [1, 2, 7, 8], "labels": [IGNORE, IGNORE, 7, IGNORE]},
        example([1, 2], [6, 6, 6]),
    ]
    assert scoring.shared_prompt_groups(examples) == [[0, 1, 5]]


def test_forward_takes_and_the_argument_names():
    assert scoring.forward_takes(KeepsLogits(), "logits_to_keep")
    assert not scoring.forward_takes(KeepsAll(), "logits_to_keep")
    assert scoring.last_logits_only(KeepsLogits()) == {"logits_to_keep": 1}
    assert scoring.last_logits_only(KeepsAll()) == {}


@pytest.mark.parametrize(
    ("labels", "keep"),
    [
        # first scored column 2 (of 5): keep from column 1, whose logits predict column 2
        ([[IGNORE, IGNORE, IGNORE, 5, 6], [IGNORE, IGNORE, 7, 8, IGNORE]], 4),
        ([[5, 6, 7]], 3),  # column 0 scored: every position kept
        ([[IGNORE] * 5], 2),  # nothing scored: the last column's predecessor on
    ],
)
def test_answer_logits_only_keeps_from_the_position_before_the_first_scored_token(labels, keep):
    labels = torch.tensor(labels)
    assert scoring._answer_logits_only(KeepsLogits(), labels) == {"logits_to_keep": keep}
    assert scoring._answer_logits_only(KeepsAll(), labels) == {}


def test_answers_after_a_cached_prompt_are_right_padded_after_it():
    inputs, labels = scoring._answers_after_prompt([[1, 2, 3], [4, 5]], start=2, pad_token_id=0)
    assert inputs["input_ids"].tolist() == [[1, 2], [4, 0]]
    assert inputs["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert inputs["position_ids"].tolist() == [[2, 3], [2, 3]]
    assert labels.tolist() == [[2, 3], [5, IGNORE]]


def test_scoring_batches_shared_groups_first_then_length_sorted_packed_rest():
    examples = [
        example([1, 2], [3, 4]),  # 4 tokens
        example([1, 2], [5]),  # 3 tokens, same prompt
        {"input_ids": [1, 2, 3, 4, 5], "labels": [1, 2, 3, 4, 5]},  # 5, not shareable
        example([8], [9]),  # 2 tokens
    ]
    batches = scoring._scoring_batches
    # no budget: batch_size rows x the longest example (4 x 5 = 20 tokens)
    assert batches(examples, 4, True, None) == [("shared", [1, 0]), ("plain", [3, 2])]
    assert batches(examples, 4, False, None) == [("plain", [3, 1, 0, 2])]
    # two rows a batch: the two answers to one prompt share it
    assert batches(examples, 2, True, None) == [("shared", [1, 0]), ("plain", [3, 2])]
    # one row a batch: nothing to share
    assert batches(examples, 1, True, None) == [("plain", [i]) for i in (3, 1, 0, 2)]
    # 7 padded tokens: 2 x 3 fits, 3 x 4 and 2 x 5 do not
    assert batches(examples, 4, False, 7) == [("plain", [3, 1]), ("plain", [0]), ("plain", [2])]


def test_answers_of_one_token_to_a_shared_prompt_are_scored_like_single_pairs(tokenizer):
    model = build_model(len(tokenizer), seed=3).double()
    question = "Where was Basil born?"
    prompt = encode_record(tokenizer, QARecord(question, "x"), max_length=512)
    start = scoring.answer_start(prompt.as_dict())
    records = [QARecord(question, a) for a in ("Kuwait City.", "In Paris.", "K")]
    for max_length in (start + 1, start + 2):  # answers cut to one, then two tokens
        shared = scoring.score_records(model, tokenizer, records, max_length=max_length)
        alone = [
            scoring.score_records(model, tokenizer, [r], max_length=max_length)[0] for r in records
        ]
        for got, expected in zip(shared, alone, strict=True):
            assert got.n_tokens == expected.n_tokens == max_length - start
            assert got.label_ids == expected.label_ids and got.pred_ids == expected.pred_ids
            torch.testing.assert_close(
                torch.tensor(got.token_logps, dtype=torch.float64),
                torch.tensor(expected.token_logps, dtype=torch.float64),
                atol=1e-10,
                rtol=2.0**-22,
            )


def test_scoring_leaves_the_model_in_its_mode(tokenizer):
    model = build_model(len(tokenizer), seed=3)
    model.train()
    scoring.score_records(model, tokenizer, [QARecord("Who?", "Basil.")])
    assert model.training


def test_scored_answers_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        scoring.ScoredAnswer([-1.0], [1], [1]).token_logps = []  # type: ignore[misc]


def test_returned_cache_reads_cache_then_past_key_values():
    from types import SimpleNamespace

    # transformers >= 5.24 returns ``cache`` (here an alias of past_key_values); earlier only
    # ``past_key_values``
    assert scoring.returned_cache(SimpleNamespace(cache="new", past_key_values="old")) == "new"
    assert scoring.returned_cache(SimpleNamespace(cache=None, past_key_values="old")) == "old"
    assert scoring.returned_cache(SimpleNamespace(past_key_values="old")) == "old"


def test_score_records_defaults_16_rows_4096_padded_tokens_512_tokens(tokenizer):
    from planted import next_token_llama
    from tif_unlearn.data.records import TextRecord

    model = next_token_llama(len(tokenizer), {})  # uniform; 1024 positions
    rows: list[int] = []
    model.register_forward_pre_hook(
        lambda _m, _args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )

    def text(n_tokens: int) -> TextRecord:
        record = TextRecord("The" + " book" * (n_tokens - 1))
        assert len(encode_record(tokenizer, record, max_length=2048).input_ids) == n_tokens
        return record

    scoring.score_records(model, tokenizer, [text(10)] * 17)
    assert rows == [16, 1]
    rows.clear()
    # 17 rows x 241 tokens = 4097 padded tokens: one more than a batch holds
    scoring.score_records(model, tokenizer, [text(241)] * 17, batch_size=17)
    assert rows == [16, 1]
    (long,) = scoring.score_records(model, tokenizer, [text(600)])
    assert long.n_tokens == 511  # 512 tokens kept, the first one not predicted
