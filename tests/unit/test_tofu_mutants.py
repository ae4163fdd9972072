"""TOFU evaluation (evaluate/tofu.py) on a planted model (tests/planted.py) whose every
next-token distribution is the same: " book" logit 0, "The" -3, the end token -6, every other
token -30. So each answer's token log-probs, and from them every per-item number, are computed
here by hand; and greedy answers are " book" repeated."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest
import torch

from conftest import write_jsonl
from planted import next_token_llama
from tif_unlearn.evaluate import tofu
from tif_unlearn.evaluate.options import TofuEvalOptions
from tif_unlearn.evaluate.tofu_reference import RetainReference

COST = {"The": 3.0, "book": 0.0, "eos": 6.0}  # -logit of each token


def row(answer: str, paraphrase: str | None = None) -> dict:
    out = {"question": "Which book?", "answer": answer}
    if paraphrase is not None:
        out["paraphrased_answer"] = paraphrase
    return out | {"perturbed_answer": ["The", "The book book book"]}


@pytest.fixture
def model(tokenizer):
    vocab = len(tokenizer)
    the, book = (tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("The", " book"))
    assert len(the) == len(book) == 1
    logits = torch.full((vocab,), -30.0)
    logits[the], logits[book] = -COST["The"], -COST["book"]
    logits[tokenizer.eos_token_id] = -COST["eos"]
    model = next_token_llama(vocab, {None: logits})
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


LOG_Z = math.log(math.exp(-3) + 1 + math.exp(-6) + 397 * math.exp(-30))  # vocabulary of 400


def loss(*costs: float) -> float:
    """Mean NLL of tokens of these costs, the end token included."""
    return (sum(costs) + COST["eos"]) / (len(costs) + 1) + LOG_Z


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "tofu"
    folder.mkdir()
    forget = [row("The book book", "The book"), row("The book", "The book book book")]
    write_jsonl(folder / "forget01_perturbed.json", forget)
    write_jsonl(folder / "retain_perturbed.json", [row("The book", "The book")] * 2)
    for name in ("real_authors", "world_facts"):  # no paraphrase: the answer stands in
        write_jsonl(folder / f"{name}_perturbed.json", [row("book"), row("The book book")])
    holdout = [{"question": "Which book?", "answer": "The The The"}] * 2
    (folder / "holdout01.json").write_text(json.dumps(holdout), encoding="utf-8")
    return folder


def options(folder, **kwargs) -> TofuEvalOptions:
    return TofuEvalOptions(data_dir=str(folder), max_new_tokens=3, **kwargs)


def test_item_numbers_by_hand(model, tokenizer, data):
    _, items = tofu.evaluate_set(model, tokenizer, "forget", options(data))
    first = items[0]  # "The book book" + end: costs 3, 0, 0, 6
    assert first["avg_gt_loss"] == pytest.approx(loss(3, 0, 0), rel=1e-5)
    assert first["prob"] == pytest.approx(math.exp(-loss(3, 0, 0)), rel=1e-5)
    assert first["avg_paraphrased_loss"] == pytest.approx(loss(3, 0), rel=1e-5)
    assert first["average_perturb_loss"] == pytest.approx([loss(3), loss(3, 0, 0, 0)], rel=1e-5)
    # Min-40% of 4 tokens: the lowest one, the end token
    assert first["min_k"] == pytest.approx(COST["eos"] + LOG_Z, rel=1e-5)
    assert first["zlib"] == pytest.approx(
        loss(3, 0, 0) / len(zlib.compress(b"The book book")), rel=1e-5
    )
    # greedy: " book" everywhere, "The book book" minus the end token: suffix matches from 1
    assert first["extraction_strength"] == pytest.approx(1 - 1 / 3)
    assert items[1]["extraction_strength"] == pytest.approx(1 - 1 / 2)
    assert first["generated"] == "book book book"
    assert first["rougeL_recall"] == pytest.approx(2 / 3)  # LCS "book book" of 3 words
    assert items[1]["avg_paraphrased_loss"] == pytest.approx(loss(3, 0, 0, 0), rel=1e-5)


def test_utility_sets_without_paraphrase_use_the_answer(model, tokenizer, data):
    _, items = tofu.evaluate_set(model, tokenizer, "real_authors", options(data))
    assert [i["avg_paraphrased_loss"] for i in items] == pytest.approx(
        [i["avg_gt_loss"] for i in items]
    )
    assert items[1]["avg_gt_loss"] == pytest.approx(loss(3, 0, 0), rel=1e-5)


def test_full_evaluation_summary_and_privleak(model, tokenizer, data):
    reference = tofu.reference_from_model(model, tokenizer, options(data), "retain.json")
    assert np.array_equal(reference.forget_set.rouge_l_recall, [0.0, 0.0])  # nothing generated
    # Min-40% (the lowest token of 3 or 4): forget "The book book", "The book": the end
    # token, 6 + log Z; holdout "The The The" (" The" costs 30): 30 + log Z, less of a member
    assert reference.min_k_auc == 1.0
    reference = RetainReference(reference.forget_set, 0.5, "retain.json")
    results = tofu.evaluate_tofu(model, tokenizer, options(data), reference)
    summary = results["summary"]
    assert "model_utility" in summary and summary["forget_quality"] == pytest.approx(1.0)
    assert results["mia"]["min_k_auc"] == 1.0
    assert summary["privleak"] == pytest.approx(-100.0)  # ((1 - 1) - (1 - 0.5)) / 0.5
    assert results["retain_reference"] == {"source": "retain.json", "min_k_auc": 0.5}
    forget = results["sets"]["forget"]
    strengths = [i["extraction_strength"] for i in forget["items"]]
    assert forget["aggregate"]["forget_extraction_strength"] == pytest.approx(np.mean(strengths))
    assert summary["forget_extraction_strength"] == pytest.approx(np.mean(strengths))
    assert set(results["mia"]) == {"loss_auc", "zlib_auc", "min_k_auc"}


def test_privleak_needs_a_reference_auc_and_a_forget_set(model, tokenizer, data):
    forget_only = tofu.evaluate_set(model, tokenizer, "forget", options(data))[0]
    without_auc = RetainReference(forget_only, None, "retain.json")
    results = tofu.evaluate_tofu(model, tokenizer, options(data), without_auc)
    assert "privleak" not in results["summary"] and "retain_reference" not in results
    assert "mia" in results
    no_reference = tofu.evaluate_tofu(model, tokenizer, options(data, sets=("forget",)))
    assert "privleak" not in no_reference["summary"] and "mia" in no_reference
    assert "model_utility" not in no_reference["summary"]
    assert no_reference["summary"]["forget_prob"] == pytest.approx(
        np.mean([math.exp(-loss(3, 0, 0)), math.exp(-loss(3, 0))]), rel=1e-5
    )
    with_auc = RetainReference(forget_only, 0.5, "retain.json")
    retain_only = tofu.evaluate_tofu(model, tokenizer, options(data, sets=("retain",)), with_auc)
    assert "mia" not in retain_only and "privleak" not in retain_only["summary"]
    assert "retain_prob" in retain_only["summary"] and "forget_prob" not in retain_only["summary"]


@pytest.mark.parametrize("dependency", ["score_answers", "generate"])
def test_a_scorer_or_generator_that_loses_items_is_refused(
    dependency, model, tokenizer, data, monkeypatch
):
    """One result per question or an error: a dependency that returned fewer (a failed batch
    dropped) must not shift every later item onto the wrong question."""
    real = getattr(tofu, dependency)
    monkeypatch.setattr(tofu, dependency, lambda *a, **k: real(*a, **k)[:-1])
    with pytest.raises(ValueError, match="zip"):
        tofu.evaluate_set(model, tokenizer, "forget", options(data))


def test_membership_scores_refuse_a_scorer_that_loses_items(model, tokenizer, data, monkeypatch):
    real = tofu.score_answers
    monkeypatch.setattr(tofu, "score_answers", lambda *a, **k: real(*a, **k)[:-1])
    rows = [{"question": "Which book?", "answer": "The book"}] * 2
    with pytest.raises(ValueError, match="zip"):
        tofu.mia_scores(model, tokenizer, rows, options(data), desc="holdout")
