"""Unlearning metrics as pure functions over arrays (no model calls inside).

Scoring and generation (``scoring``, ``generation``) compute per-item statistics (mean
answer-token NLL, token log-probabilities, greedy generations, teacher-forced argmax ids); the
functions here turn them into the numbers the public benchmarks report. N = number of items,
J = perturbed answers per item.

Sources (definitions matched, cited again on each function):
- TOFU, Maini et al. 2024 (arXiv 2401.06121), code ``locuslab/tofu``:
  ``aggregate_eval_stat.py`` (get_model_utility, get_forget_quality) and
  ``evaluate_util.py`` (eval_rouge_recall, eval_perturbation_ratio).
- open-unlearning (``locuslab/open-unlearning``): ``src/evals/metrics/memorization.py``
  (probability_w_options, truth_ratio, extraction_strength), ``metrics/utils.py``
  (get_forget_quality), ``metrics/mia/`` (loss, min_k, zlib, ``mia_auc``),
  ``metrics/privacy.py`` (privleak).
- MUSE, Shi et al. 2024 (arXiv 2407.06460), code ``swj0419/muse_bench`` /
  ``jaechan-repo/muse_bench``: ``eval.py`` (PrivLeak), ``privleak/get_ppl_utils.py``
  (Min-k%, zlib), ``knowmem/get_rouge_qa.py`` (answer cut, ROUGE).

Membership-inference sign convention (open-unlearning's, also MUSE's per-item scores):
every MIA score is NLL-like, *higher = less likely a member* (loss, −mean of the lowest
log-probs, loss / zlib length). :func:`mia_auc` turns them into an AUC that is ≈ 1 when the
forget items look like members and ≈ 0.5 when forget and holdout are indistinguishable.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "KSResult",
    "extraction_strength",
    "forget_quality",
    "forget_truth_ratio_score",
    "knowmem_cut",
    "loss_score",
    "mia_auc",
    "min_k_score",
    "model_utility",
    "normalized_probability",
    "privleak",
    "probability",
    "retain_truth_ratio_score",
    "rouge_l_f1",
    "rouge_l_recall",
    "truth_ratio",
    "zlib_score",
]

MUSE_KNOWMEM_STOPS: tuple[str, ...] = ("\n\n", "\nQuestion", "Question:")


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov test: ``pvalue`` is TOFU's Forget Quality."""

    pvalue: float
    statistic: float


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


# --------------------------------------------------------------------------- TOFU


def probability(avg_nll: ArrayLike) -> np.ndarray:
    """exp(−mean answer-token NLL) per item: (N,) -> (N,).

    TOFU ``get_model_utility`` ("Prob." on the retain and forget sets) and open-unlearning
    ``evaluate_probability`` (``exp(-avg_loss)``).
    """
    return np.exp(-_as_float_array(avg_nll, "avg_nll"))


def normalized_probability(avg_nll_true: ArrayLike, avg_nll_perturbed: ArrayLike) -> np.ndarray:
    """p_true / (p_true + Σ_j p_perturbed_j) per item: (N,), (N, J) -> (N,).

    TOFU ``get_model_utility`` for real authors / world facts (no epsilon; open-unlearning's
    ``probability_w_options`` adds 1e-10 to the denominator). p = exp(−mean token NLL).
    """
    p_true = probability(avg_nll_true)  # (N,)
    p_perturbed = probability(avg_nll_perturbed)  # (N, J)
    if p_perturbed.ndim != 2 or p_perturbed.shape[0] != p_true.shape[0]:
        raise ValueError(f"avg_nll_perturbed must be (N, J) with N={p_true.shape[0]}")
    return p_true / (p_true + p_perturbed.sum(axis=-1))


def truth_ratio(avg_nll_paraphrased: ArrayLike, avg_nll_perturbed: ArrayLike) -> np.ndarray:
    """R = exp(−mean_j L̄(perturbed_j)) / exp(−L̄(paraphrased)) per item: (N,), (N, J) -> (N,).

    L̄ is the length-normalised NLL, so R = exp(L̄(para) − mean_j L̄(pert_j)) (the perturbed
    probabilities enter as a geometric mean). TOFU's ``aggregate_eval_stat.py`` computes
    ``curr_stat_1 = exp(mean_perturbed − paraphrased) = 1/R``; the per-item ``truth_ratio``
    stored in TOFU's eval logs (``eval_perturbation_ratio``) and open-unlearning's
    ``truth_ratio`` (``wrong_prob / correct_prob``) are R itself. R < 1: the model prefers the
    true (paraphrased) answer.
    """
    paraphrased = _as_float_array(avg_nll_paraphrased, "avg_nll_paraphrased")  # (N,)
    perturbed = _as_float_array(avg_nll_perturbed, "avg_nll_perturbed")  # (N, J)
    if perturbed.ndim != 2 or perturbed.shape[0] != paraphrased.shape[0]:
        raise ValueError(f"avg_nll_perturbed must be (N, J) with N={paraphrased.shape[0]}")
    return np.exp(paraphrased - perturbed.mean(axis=-1))


def forget_truth_ratio_score(ratios: ArrayLike) -> float:
    """Forget-set Truth Ratio: mean(min(R, 1/R)) (1 = true and false answers equally likely).

    TOFU ``np.mean(np.minimum(curr_stat_1, 1/curr_stat_1))`` with curr_stat_1 = 1/R: the same
    number. open-unlearning ``closer_to_1_better`` (adds 1e-10 to the denominator).
    """
    r = _as_float_array(ratios, "ratios")
    return float(np.mean(np.minimum(r, 1.0 / r)))


def retain_truth_ratio_score(ratios: ArrayLike) -> float:
    """Retain / real-authors / world-facts Truth Ratio: mean(max(0, 1 − R)).

    TOFU ``np.mean(np.maximum(0, 1 - 1/curr_stat_1))`` with curr_stat_1 = 1/R is exactly
    max(0, 1 − R); open-unlearning ``true_better``.
    """
    r = _as_float_array(ratios, "ratios")
    return float(np.mean(np.maximum(0.0, 1.0 - r)))


def forget_quality(truth_ratios: ArrayLike, retain_truth_ratios: ArrayLike) -> KSResult:
    """Forget Quality: two-sample KS test between the model's and a retain model's forget-set R.

    ``scipy.stats.ks_2samp`` (default method) on 1/R, exactly as TOFU ``get_forget_quality``
    (on ``exp(perturbed − paraphrased)``) and open-unlearning (``1 / (tr + 1e-10)``). KS is
    invariant under the decreasing map R -> 1/R, so the numbers equal the test on R.
    """
    ours = _as_float_array(truth_ratios, "truth_ratios")
    reference = _as_float_array(retain_truth_ratios, "retain_truth_ratios")
    result = stats.ks_2samp(1.0 / ours, 1.0 / reference)
    return KSResult(pvalue=float(result.pvalue), statistic=float(result.statistic))


def model_utility(components: Mapping[str, float]) -> float:
    """Model Utility: harmonic mean of the components (TOFU: the 9 numbers Prob./ROUGE/Truth
    Ratio × retain, real authors, world facts), ``scipy.stats.hmean`` as in TOFU.

    A component equal to 0 makes the harmonic mean 0 (returned directly, without scipy's
    divide-by-zero path); negative or non-finite components are rejected.
    """
    values = _as_float_array(list(components.values()), "components")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"model utility components must be finite and >= 0: {dict(components)}")
    if np.any(values == 0):
        return 0.0
    return float(stats.hmean(values))


@functools.lru_cache(maxsize=2)
def _rouge_l_scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l_recall(prediction: str, reference: str, *, use_stemmer: bool = True) -> float:
    """ROUGE-L recall of a generation against the reference answer (TOFU ``eval_rouge_recall``:
    ``RougeScorer(['rouge1', 'rougeL'], use_stemmer=True).score(gt, gen)['rougeL'].recall``).
    """
    return _rouge_l_scorer(use_stemmer).score(reference, prediction)["rougeL"].recall


def rouge_l_f1(prediction: str, reference: str, *, use_stemmer: bool = True) -> float:
    """ROUGE-L F1 (MUSE VerbMem / KnowMem ``mean_rougeL``: ``score(gt, output)['rougeL'].fmeasure``).

    open-unlearning scores MUSE with ``use_stemmer=True`` (the default here); MUSE's own code
    (``EvalLogger`` in muse_bench) uses ``use_stemmer=False``: pass it to reproduce MUSE's
    published numbers exactly.
    """
    return _rouge_l_scorer(use_stemmer).score(reference, prediction)["rougeL"].fmeasure


def extraction_strength(pred_ids: ArrayLike, label_ids: ArrayLike) -> float:
    """Extraction Strength of one item: 1 − k/n for the smallest k such that the teacher-forced
    argmax predictions equal the labels on the whole suffix [k:], n = answer length.

    open-unlearning ``extraction_strength`` (memorization.py), including its corner cases:
    an empty answer scores 0, and when even the last token is wrong the loop ends at
    k = n − 1, so the score is 1/n (not 0). A teacher-forced suffix match is the same as the
    greedy continuation of the prefix [:k] reproducing the suffix. ``pred_ids``/``label_ids``:
    (n,) aligned answer positions (open-unlearning drops the final EOS position).
    """
    preds, labels = np.asarray(pred_ids).ravel(), np.asarray(label_ids).ravel()
    if preds.shape != labels.shape:
        raise ValueError(f"pred_ids {preds.shape} and label_ids {labels.shape} differ in length")
    n = labels.size
    if n == 0:
        return 0.0
    mismatches = np.flatnonzero(preds != labels)
    k = 0 if mismatches.size == 0 else min(int(mismatches[-1]) + 1, n - 1)
    return 1.0 - k / n


# --------------------------------------------------------------------------- membership inference


def loss_score(avg_nll: ArrayLike) -> np.ndarray:
    """LOSS attack score per item (Yeom et al. 2018; open-unlearning ``LOSSAttack``): the mean
    answer-token NLL itself; higher = less likely a member."""
    return _as_float_array(avg_nll, "avg_nll")


def min_k_score(token_logps: ArrayLike, k: float = 0.4) -> float:
    """Min-k% Prob score of one item (Shi et al. 2024, arXiv 2310.16789): −mean of the lowest
    ``max(1, int(n·k))`` token log-probabilities (open-unlearning ``MinKProbAttack``; MUSE uses
    ``int(n·k)`` with no floor of 1, which only differs for n·k < 1).

    ``token_logps``: (n,) log p(token | prefix) ≤ 0 of one item. The score is ≥ 0 and NLL-like:
    higher = less likely a member. MUSE's PrivLeak uses k = 0.4 ("Min-40%").
    """
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    logps = _as_float_array(token_logps, "token_logps").ravel()
    num_k = max(1, int(logps.size * k))
    return float(-np.mean(np.sort(logps)[:num_k]))


def zlib_score(avg_nll: float, text: str) -> float:
    """zlib attack score of one item (Carlini et al. 2021, "Extracting Training Data from Large
    Language Models"): log-perplexity / zlib entropy = mean token NLL divided by
    ``len(zlib.compress(text.encode("utf-8")))``, as open-unlearning ``ZLIBAttack``
    (``avg_loss / zlib_entropy``) and MUSE ``PPL/zlib``. Pass the *mean* NLL, not the total.
    Higher = less likely a member.
    """
    return float(avg_nll) / len(zlib.compress(text.encode("utf-8")))


def mia_auc(forget_scores: ArrayLike, holdout_scores: ArrayLike) -> float:
    """ROC-AUC of a membership attack = P(a forget item looks more like a member than a holdout
    item), ties counting ½. Scores are NLL-like (higher = less likely a member).

    Same number as open-unlearning ``mia_auc``: ``roc_auc_score(labels, scores)`` with label 0
    for forget and 1 for holdout ("auc is 1 when the forget data is much more likely than the
    holdout data"); ≈ 1 for a model that memorized the forget set, ≈ 0.5 for one never trained
    on it. MUSE's ``forget_holdout_Min-40%`` AUC is the complement, 1 − this value.
    Computed as the Mann-Whitney U statistic with mid-ranks.
    """
    forget = _as_float_array(forget_scores, "forget_scores").ravel()
    holdout = _as_float_array(holdout_scores, "holdout_scores").ravel()
    ranks = stats.rankdata(np.concatenate([forget, holdout]))  # average ranks for ties
    holdout_rank_sum = ranks[forget.size :].sum()
    u_holdout = holdout_rank_sum - holdout.size * (holdout.size + 1) / 2
    return float(u_holdout / (forget.size * holdout.size))


def privleak(auc: float, retain_auc: float) -> float:
    """MUSE PrivLeak in percent: (AUC − AUC_retain) / AUC_retain × 100 on MUSE's AUC scale.

    ``auc`` and ``retain_auc`` are :func:`mia_auc` values (this module's convention) of the
    evaluated model and of the retain (never trained on the forget set) model. MUSE's AUC is
    1 − those, so this returns ((1 − auc) − (1 − retain_auc)) / (1 − retain_auc) × 100,
    exactly open-unlearning ``privleak`` (which flips its AUCs the same way) and MUSE
    ``eval.py``. ≈ 0 for a model like the retain model; ≈ −100 for a model that memorized
    the forget set (MUSE-News target: −99.8); positive = over-unlearned.
    """
    muse_auc, muse_retain_auc = 1.0 - auc, 1.0 - retain_auc
    if muse_retain_auc == 0:
        raise ValueError("retain_auc must be < 1 (MUSE's retain AUC 1 − retain_auc divides)")
    return (muse_auc - muse_retain_auc) / muse_retain_auc * 100.0


# --------------------------------------------------------------------------- MUSE


def knowmem_cut(text: str) -> str:
    """Cut a generated KnowMem answer before the first blank line (``"\\n\\n"``), ``"\\nQuestion"``
    or ``"Question:"`` (MUSE ``get_prefix_before_words_occur``), then strip whitespace."""
    for stop in MUSE_KNOWMEM_STOPS:
        text = text.split(stop)[0]
    return text.strip()
