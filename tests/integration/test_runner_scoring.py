"""Evaluation scoring (evaluate/scoring.py): answers sharing a prompt are scored over one
prompt pass and must give exactly what scoring each (question, answer) pair on its own gives."""

from __future__ import annotations

import pytest
import torch

from conftest import build_model
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.evaluate.scoring import _packed, score_records, shared_prompt_groups

QUESTION = "Where was Basil born?"
RECORDS = [
    QARecord(QUESTION, "Basil was born in Kuwait City."),
    QARecord("Which award did Jaime win?", "Jaime won the Edgar Award in 1999."),
    QARecord(QUESTION, "In Kuwait."),
    QARecord(QUESTION, "Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait, in 1956."),
    QARecord(QUESTION, "K"),
]


@pytest.mark.parametrize("chat", [True, False], ids=["chat-template", "plain-prompt"])
def test_shared_prompt_scoring_equals_one_pair_at_a_time(chat, tokenizer, plain_tokenizer):
    tok = tokenizer if chat else plain_tokenizer
    # float64: batched and one-at-a-time passes use other kernel shapes (and CPUs other SIMD
    # widths); their float64 logits agree to ~1e-15, and the log-probs are then computed in
    # float32 (tokens.token_logprobs): equal up to a float32 rounding, 2 ulps.
    model = build_model(len(tok), seed=3).double()
    examples = [encode_record(tok, r, max_length=128).as_dict() for r in RECORDS]
    (group,) = shared_prompt_groups(examples)  # answers to QUESTION (whose prompt tokens do
    assert set(group) >= {0, 2, 3}  # not merge with the answer's first token: "K" may)
    alone = score_records(model, tok, RECORDS, batch_size=1)
    shared = score_records(model, tok, RECORDS, batch_size=3)  # a group split over 2 batches
    unshared = score_records(model, tok, RECORDS, batch_size=3, share_prompts=False)
    one_token_budget = score_records(model, tok, RECORDS, batch_size=3, batch_tokens=1)
    for a, b, c, d in zip(alone, shared, unshared, one_token_budget, strict=True):
        assert a.label_ids == b.label_ids == c.label_ids == d.label_ids
        alone_logps = torch.tensor(a.token_logps, dtype=torch.float64)
        for other in (b, c, d):
            got = torch.tensor(other.token_logps, dtype=torch.float64)
            torch.testing.assert_close(got, alone_logps, atol=1e-10, rtol=2.0**-22)
        assert a.pred_ids == b.pred_ids == c.pred_ids == d.pred_ids


def test_shared_prompt_scoring_runs_the_prompt_once(tokenizer):
    model = build_model(len(tokenizer), seed=3)
    lengths = []
    widths = []  # logit positions of each pass

    def record(_module, _args, kwargs, out) -> None:
        lengths.append(kwargs)
        widths.append(out.logits.shape[1])

    model.register_forward_hook(record, with_kwargs=True)
    same = [QARecord(QUESTION, a) for a in ("In Kuwait.", "In Kuwait City.", "In Paris.")]
    score_records(model, tokenizer, same, batch_size=8)
    assert len(lengths) == 2  # the prompt alone, then the three answers over its cache
    assert lengths[0]["input_ids"].shape[0] == 1 and lengths[1]["input_ids"].shape[0] == 3
    assert (lengths[1].get("cache") or lengths[1].get("past_key_values")) is not None
    assert widths[0] == 1  # the prompt pass projects its last position only


def test_plain_scoring_projects_only_answer_positions_and_equals_full_logits(tokenizer):
    model = build_model(len(tokenizer), seed=3).double()
    widths = []  # (input positions, logit positions) of each scoring pass
    model.register_forward_hook(
        lambda _m, args, kwargs, out: widths.append(
            (kwargs["input_ids"].shape[1], out.logits.shape[1])
        ),
        with_kwargs=True,
    )
    scored = score_records(model, tokenizer, RECORDS, batch_size=2, share_prompts=False)
    assert len(widths) == 3 and all(logits < inputs for inputs, logits in widths)
    for record, got in zip(RECORDS, scored, strict=True):
        example = encode_record(tokenizer, record, max_length=128).as_dict()
        labels = torch.tensor(example["labels"][1:])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([example["input_ids"]])).logits[0, :-1]
        keep = (labels != -100).nonzero().squeeze(-1)
        expected = torch.log_softmax(logits, dim=-1)[keep, labels[keep]]
        assert got.label_ids == labels[keep].tolist()
        torch.testing.assert_close(torch.tensor(got.token_logps, dtype=torch.float64), expected)


def test_batches_are_packed_to_rows_and_padded_tokens():
    lengths = [10, 20, 30, 100, 5]
    by_length = [4, 0, 1, 2, 3]
    # 3 rows x 20 = 60 fits; then 4 x 30 > 60 starts [2], and 2 x 100 > 60 leaves [3] alone
    assert _packed(by_length, lengths, batch_size=3, batch_tokens=60) == [[4, 0, 1], [2], [3]]
    assert _packed(by_length, lengths, batch_size=8, batch_tokens=60) == [[4, 0, 1], [2], [3]]
    assert _packed(by_length, lengths, batch_size=8, batch_tokens=120) == [[4, 0, 1, 2], [3]]
    assert _packed(by_length, lengths, batch_size=2, batch_tokens=10**6) == [[4, 0], [1, 2], [3]]
    assert _packed(by_length, lengths, batch_size=8, batch_tokens=1) == [[i] for i in by_length]
