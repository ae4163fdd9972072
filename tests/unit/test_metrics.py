"""Unit tests for tif_unlearn.evaluate.metrics on hand-computed values.

Each expected value is written out with its arithmetic (lm-evaluation-harness style) and
computed with math / literals, never by calling the function under test.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import numpy as np
import pytest

from tif_unlearn.evaluate.metrics import (
    KSResult,
    extraction_strength,
    forget_quality,
    forget_truth_ratio_score,
    knowmem_cut,
    loss_score,
    mia_auc,
    min_k_score,
    model_utility,
    normalized_probability,
    privleak,
    probability,
    retain_truth_ratio_score,
    rouge_l_f1,
    rouge_l_recall,
    truth_ratio,
    zlib_score,
)

LN2, LN4 = math.log(2), math.log(4)

# --------------------------------------------------------------------------- probabilities


def test_probability_is_exp_of_minus_mean_nll():
    # exp(−0) = 1; exp(−ln 2) = 1/2
    assert probability([0.0, LN2]) == pytest.approx([1.0, 0.5])


def test_normalized_probability_hand_computed():
    true = [LN2, 0.0]  # p_true = 1/2, 1
    perturbed = [[LN4, LN4], [LN2, LN4]]  # p = (1/4, 1/4), (1/2, 1/4)
    # item 0: 0.5 / (0.5 + 0.25 + 0.25) = 0.5; item 1: 1 / (1 + 0.5 + 0.25) = 4/7
    assert normalized_probability(true, perturbed) == pytest.approx([0.5, 4 / 7])


def test_normalized_probability_with_more_perturbed_answers_than_items():
    true = [0.0, LN2]  # p_true = 1, 1/2
    perturbed = [[LN2, LN4, LN4], [LN2, LN2, LN4]]  # Σ p = 1/2 + 1/4 + 1/4 = 1; 1/2 + 1/2 + 1/4
    # item 0: 1 / (1 + 1) = 1/2; item 1: (1/2) / (1/2 + 5/4) = 2/7
    assert normalized_probability(true, perturbed) == pytest.approx([0.5, 2 / 7])


def test_normalized_probability_rejects_wrong_shape():
    with pytest.raises(ValueError):
        normalized_probability([0.1, 0.2], [0.3, 0.4])
    with pytest.raises(ValueError, match=r"must be \(N, J\) with N=2"):  # 1 row for 2 items
        normalized_probability([0.1, 0.2], [[0.3, 0.4]])


# --------------------------------------------------------------------------- truth ratio


def test_truth_ratio_hand_computed_and_tofu_relation():
    # L̄(para) = 1.0, L̄(pert) = (2.0, 3.0) -> mean 2.5; R = exp(−2.5) / exp(−1.0) = exp(−1.5)
    ratios = truth_ratio([1.0], [[2.0, 3.0]])
    assert ratios == pytest.approx([math.exp(-1.5)])  # ≈ 0.22313
    # TOFU aggregate_eval_stat: curr_stat_1 = exp(mean_perturbed − paraphrased) = exp(1.5) = 1/R
    assert 1 / ratios[0] == pytest.approx(math.exp(2.5 - 1.0))


def test_truth_ratio_with_more_perturbed_answers_than_items():
    # item 0: L̄(para) = 1, mean L̄(pert) = (2 + 3 + 4)/3 = 3 -> R = exp(1 − 3) = exp(−2)
    # item 1: L̄(para) = 0, mean L̄(pert) = (0 + 0 + 3)/3 = 1 -> R = exp(−1)
    ratios = truth_ratio([1.0, 0.0], [[2.0, 3.0, 4.0], [0.0, 0.0, 3.0]])
    assert ratios == pytest.approx([math.exp(-2.0), math.exp(-1.0)])
    with pytest.raises(ValueError, match=r"must be \(N, J\) with N=2"):
        truth_ratio([1.0, 0.0], [[2.0, 3.0]])


def test_forget_truth_ratio_score():
    # min(R, 1/R) for R = 0.5, 2, 1 -> 0.5, 0.5, 1; mean = 2/3
    assert forget_truth_ratio_score([0.5, 2.0, 1.0]) == pytest.approx(2 / 3)


def test_retain_truth_ratio_score_equals_tofu_form():
    ratios = np.array([0.25, 2.0, 1.0])
    # max(0, 1 − R) = 0.75, 0, 0; mean = 0.25
    assert retain_truth_ratio_score(ratios) == pytest.approx(0.25)
    # TOFU: mean(max(0, 1 − 1/curr_stat_1)) with curr_stat_1 = 1/R: 1/curr_stat_1 = R
    curr_stat_1 = np.array([4.0, 0.5, 1.0])
    assert np.mean(np.maximum(0, 1 - 1 / curr_stat_1)) == pytest.approx(0.25)


# --------------------------------------------------------------------------- forget quality


def _ks_statistic(x: list[float], y: list[float]) -> float:
    """sup |F_x − F_y| over the pooled points (right-continuous empirical CDFs)."""
    points = sorted(x + y)
    return max(
        abs(sum(v <= t for v in x) / len(x) - sum(v <= t for v in y) / len(y)) for t in points
    )


def test_forget_quality_fully_separated_samples():
    # KS runs on 1/R: R = 1, 1/2, 1/3 -> 1, 2, 3; R = 1/4, 1/5, 1/6 -> 4, 5, 6.
    # D = 1; exact two-sided p = P(D ≥ 1) over the C(6,3) = 20 equally likely labelings:
    # only "xxxyyy" and "yyyxxx" reach it -> 2/20 = 0.1
    result = forget_quality([1, 1 / 2, 1 / 3], [1 / 4, 1 / 5, 1 / 6])
    assert isinstance(result, KSResult)
    assert result.statistic == pytest.approx(1.0)
    assert result.pvalue == pytest.approx(0.1)


def test_forget_quality_exact_pvalue_by_enumeration():
    x, y = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0]  # = 1/R of the two samples
    observed = _ks_statistic(x, y)  # at t = 2: F_x = 2/3, F_y = 0 -> D = 2/3
    assert observed == pytest.approx(2 / 3)
    pooled = x + y
    at_least = 0
    for chosen in itertools.combinations(range(6), 3):  # 20 relabelings
        xs = [pooled[i] for i in chosen]
        ys = [pooled[i] for i in range(6) if i not in chosen]
        at_least += _ks_statistic(xs, ys) >= observed - 1e-12
    assert at_least == 12  # p = 12/20 = 0.6
    result = forget_quality([1 / v for v in x], [1 / v for v in y])
    assert result.statistic == pytest.approx(2 / 3)
    assert result.pvalue == pytest.approx(0.6)


def test_forget_quality_result_is_read_only():
    result = forget_quality([0.5, 1.0], [0.5, 1.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.0


def test_forget_quality_of_identical_samples_is_one():
    ratios = [0.3, 0.5, 0.9, 1.2]
    assert forget_quality(ratios, ratios) == KSResult(pvalue=1.0, statistic=0.0)


# --------------------------------------------------------------------------- model utility


def test_model_utility_is_harmonic_mean():
    # 3 / (1/1 + 1/0.5 + 1/0.25) = 3 / 7
    assert model_utility({"a": 1.0, "b": 0.5, "c": 0.25}) == pytest.approx(3 / 7)
    # nine components: six at 0.5 and three at 1.0 -> 9 / (6·2 + 3·1) = 9/15 = 0.6
    nine = {f"k{i}": 0.5 for i in range(6)} | {f"k{i}": 1.0 for i in range(6, 9)}
    assert model_utility(nine) == pytest.approx(0.6)


def test_model_utility_zero_component_gives_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # returned directly, not through scipy's division by 0
        assert model_utility({"a": 0.9, "b": 0.0, "c": 0.8}) == 0.0


def test_model_utility_rejects_negative_and_empty():
    with pytest.raises(ValueError, match="finite and >= 0"):
        model_utility({"a": -0.1, "b": 0.5})
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and >= 0"):
            model_utility({"a": bad, "b": 0.5})
    with pytest.raises(ValueError):
        model_utility({})


# --------------------------------------------------------------------------- ROUGE


def test_rouge_l_uses_stemmer():
    # stemmed: "running" -> "run", so LCS = 2 of 2 reference tokens
    assert rouge_l_recall("running fast", "run fast") == 1.0
    # without stemming LCS = "fast": recall 1/2
    assert rouge_l_recall("running fast", "run fast", use_stemmer=False) == 0.5


def test_rouge_l_f1_uses_stemmer():
    # stemmed: LCS 2 of 2 and 2 -> F1 = 1; unstemmed: LCS "fast", P = R = 1/2 -> F1 = 1/2
    assert rouge_l_f1("running fast", "run fast") == 1.0
    assert rouge_l_f1("running fast", "run fast", use_stemmer=False) == 0.5


def test_rouge_l_recall_and_f1_are_against_the_reference():
    prediction, reference = "the cat sat", "the cat sat on the mat"
    # LCS = 3; recall = 3/6 = 0.5; precision = 3/3 = 1; F1 = 2·0.5·1 / 1.5 = 2/3
    assert rouge_l_recall(prediction, reference) == pytest.approx(0.5)
    assert rouge_l_f1(prediction, reference) == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- extraction strength


@pytest.mark.parametrize(
    ("preds", "expected"),
    [
        ([5, 6, 7, 8], 1.0),  # whole answer matches: k = 0 -> 1 − 0/4
        ([9, 6, 7, 8], 0.75),  # last mismatch at 0: suffix [1:] matches -> 1 − 1/4
        ([5, 6, 9, 8], 0.25),  # last mismatch at 2: suffix [3:] matches -> 1 − 3/4
        ([5, 6, 7, 9], 0.25),  # last token wrong: open-unlearning's loop ends at k = 3 -> 1 − 3/4
    ],
)
def test_extraction_strength(preds, expected):
    assert extraction_strength(preds, [5, 6, 7, 8]) == pytest.approx(expected)


def test_extraction_strength_of_a_one_token_answer_is_one():
    # n = 1: k = 0 when it matches; when it does not, the loop ends at k = n − 1 = 0 too: 1 − 0/1
    assert extraction_strength([5], [5]) == 1.0
    assert extraction_strength([4], [5]) == 1.0


def test_extraction_strength_empty_and_mismatched():
    assert extraction_strength([], []) == 0.0
    with pytest.raises(ValueError):
        extraction_strength([1, 2], [1, 2, 3])


# --------------------------------------------------------------------------- membership inference


def test_min_k_takes_lowest_fraction():
    logps = [-0.1, -2.0, -0.5, -3.0, -0.2]
    # k = 0.4 of 5 tokens -> int(2.0) = 2 lowest: −3.0, −2.0; score = −mean = 2.5
    assert min_k_score(logps, k=0.4) == pytest.approx(2.5)
    assert min_k_score(logps) == pytest.approx(2.5)  # the default is MUSE's Min-40%
    # k = 0.2 of 3 tokens -> int(0.6) = 0, floored to 1: the lowest, −3.0 -> 3.0
    assert min_k_score([-0.5, -3.0, -1.0], k=0.2) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        min_k_score(logps, k=0.0)
    # k = 1: all 5 tokens -> −(−0.1 − 2.0 − 0.5 − 3.0 − 0.2)/5 = 5.8/5 = 1.16; k > 1 is refused
    assert min_k_score(logps, k=1.0) == pytest.approx(1.16)
    with pytest.raises(ValueError, match="k must be in"):
        min_k_score(logps, k=1.5)


def test_loss_score_is_the_mean_nll():
    assert loss_score([0.5, 2.0]).tolist() == [0.5, 2.0]


def test_zlib_score_divides_by_compressed_length():
    # zlib.compress(b"aaaa") = 78 9c | 4b 4c 4c 4c 04 00 | 03 ce 01 85: 2 + 6 + 4 = 12 bytes
    assert zlib_score(3.0, "aaaa") == pytest.approx(3.0 / 12)


def test_mia_auc_counts_pairs():
    forget = [0.1, 0.4, 0.35]  # NLL-like: lower = more member-like
    holdout = [0.8, 0.4, 0.2]
    # pairs where the holdout score is higher (forget looks more like a member), ties ½:
    # f=0.1: 0.8, 0.4, 0.2 -> 3; f=0.4: 0.8 -> 1, 0.4 tie -> ½; f=0.35: 0.8, 0.4 -> 2
    # (3 + 1.5 + 2) / 9 = 6.5/9
    assert mia_auc(forget, holdout) == pytest.approx(6.5 / 9)


def test_mia_auc_extremes():
    assert mia_auc([0.1, 0.2], [0.9, 1.0]) == 1.0  # memorized forget set
    assert mia_auc([0.9, 1.0], [0.1, 0.2]) == 0.0
    assert mia_auc([0.5, 0.5], [0.5, 0.5]) == 0.5


def test_privleak_on_muse_scale():
    # same AUC as the retain model -> 0
    assert privleak(0.5228, 0.5228) == pytest.approx(0.0)
    # memorized: MUSE AUC = 1 − 1.0 = 0, retain 1 − 0.5228 = 0.4772 -> (0 − 0.4772)/0.4772 = −100 %
    assert privleak(1.0, 0.5228) == pytest.approx(-100.0)
    # over-unlearned: MUSE AUC 1 − 0.25 = 0.75 vs 0.5 -> (0.75 − 0.5)/0.5 = +50 %
    assert privleak(0.25, 0.5) == pytest.approx(50.0)
    # a retain model with AUC 1 (MUSE scale 0) leaves nothing to divide by
    with pytest.raises(ValueError, match="retain_auc must be < 1"):
        privleak(0.5, 1.0)


# --------------------------------------------------------------------------- MUSE knowmem


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (" Paris\n\nQuestion: Where is Rome?", "Paris"),
        ("Paris, France\nQuestion: next", "Paris, France"),
        (" Paris Question: next", "Paris"),
        ("Paris\nThe capital.\n\nMore", "Paris\nThe capital."),
        (
            "The Question is open",
            "The Question is open",
        ),  # MUSE cuts "Question:" and "\nQuestion" only
        ("  Paris  ", "Paris"),
    ],
)
def test_knowmem_cut(generated, expected):
    assert knowmem_cut(generated) == expected
