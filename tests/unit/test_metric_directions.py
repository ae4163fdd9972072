"""Each TOFU summary number declares which way it improves (tofu_metrics.METRIC_DIRECTIONS), and
--keep-best uses it. The meaning test computes every number, with the real metric code, for a
model that did what unlearning wants (forgot the forget set, kept the rest, like the retain
model) and for one that did not; the declared direction must prefer the first."""

from __future__ import annotations

import numpy as np
import pytest

from tif_unlearn.errors import TifError
from tif_unlearn.evaluate import metrics
from tif_unlearn.evaluate.tofu_logs import TofuEvalSet, eval_set_scores, tofu_summary
from tif_unlearn.evaluate.tofu_metrics import METRIC_DIRECTIONS, improves, set_metrics
from tif_unlearn.train.evaluation import KEEP_BEST_METRICS, parse_keep_best

SETS = ("forget", "retain", "real_authors", "world_facts")
N = 5  # items per set
SPREAD = np.linspace(-0.2, 0.2, N)  # item-to-item differences, so the KS test has a spread


def eval_set(gt_loss: float, paraphrased: float, perturbed: float, rouge: float) -> TofuEvalSet:
    """N items; truth ratio R = exp(paraphrased − perturbed) per item (before the spread)."""
    return TofuEvalSet(
        avg_gt_loss=np.full(N, gt_loss),
        avg_paraphrased_loss=paraphrased + SPREAD,
        average_perturb_loss=np.full((N, 2), perturbed),
        rouge_l_recall=np.full(N, rouge),
    )


# Knows the answers: gives them (low loss, full ROUGE) and prefers them to wrong ones (R << 1).
KNOWS = eval_set(gt_loss=0.1, paraphrased=0.1, perturbed=3.0, rouge=1.0)
# Does not know them: unlikely answers, no ROUGE, true and wrong answers alike (R ≈ 1), as the
# retain model (never trained on the forget set) on the forget set.
DOES_NOT_KNOW = eval_set(gt_loss=3.0, paraphrased=2.0, perturbed=2.0, rouge=0.0)
RETAIN_MODEL_FORGET = DOES_NOT_KNOW
ANSWER = [5, 6, 7, 8]
# extraction strength: the whole answer comes back (1.0) or none of it (1/n)
EXTRACTION = {"knows": metrics.extraction_strength(ANSWER, ANSWER), "does_not": 0.25}


def summary(forget: TofuEvalSet, utility: TofuEvalSet, forget_es: float, utility_es: float):
    """Every summary number of a model evaluated on all four sets, against the retain model."""
    sets = {"forget": forget} | {name: utility for name in SETS[1:]}
    numbers = dict(tofu_summary(sets, RETAIN_MODEL_FORGET))
    numbers["forget_extraction_strength"] = forget_es
    numbers |= {f"{name}_extraction_strength": utility_es for name in SETS[1:]}
    return numbers


UNLEARNED = summary(DOES_NOT_KNOW, KNOWS, EXTRACTION["does_not"], EXTRACTION["knows"])
NOT_UNLEARNED = summary(KNOWS, DOES_NOT_KNOW, EXTRACTION["knows"], EXTRACTION["does_not"])


def test_the_fixture_models_differ_as_described():
    assert EXTRACTION["does_not"] == metrics.extraction_strength([0, 0, 0, 0], ANSWER)
    assert UNLEARNED["forget_quality"] == pytest.approx(1.0)  # same truth ratios as retain
    assert NOT_UNLEARNED["forget_quality"] < 0.05


def test_every_summary_number_has_a_direction_and_nothing_else_does():
    assert set(UNLEARNED) == set(METRIC_DIRECTIONS)
    assert set(METRIC_DIRECTIONS.values()) == {"min", "max"}


@pytest.mark.parametrize("name", SETS)
def test_set_metrics_are_the_numbers_evaluate_tofu_gives_per_set(name):
    per_set = set(eval_set_scores(KNOWS, name)) | {f"{name}_extraction_strength"}
    assert set(set_metrics(name)) == per_set


@pytest.mark.parametrize("metric", METRIC_DIRECTIONS)
def test_declared_direction_prefers_the_unlearned_model(metric):
    good, bad = UNLEARNED[metric], NOT_UNLEARNED[metric]
    assert good != pytest.approx(bad), "the fixture does not separate this metric"
    assert improves(good, bad, METRIC_DIRECTIONS[metric])
    assert not improves(bad, good, METRIC_DIRECTIONS[metric])


@pytest.mark.parametrize("metric", KEEP_BEST_METRICS)
def test_keep_best_defaults_to_the_declared_direction(metric):
    assert parse_keep_best(metric) == (metric, METRIC_DIRECTIONS[metric])


def test_keep_best_direction_can_be_overridden():
    assert parse_keep_best("forget_rouge:max") == ("forget_rouge", "max")
    assert parse_keep_best("retain_prob:min") == ("retain_prob", "min")


@pytest.mark.parametrize("spec", ["forget_qualty", "model_utility", "step", "privleak:min"])
def test_keep_best_unknown_metric_lists_the_known_ones(spec):
    with pytest.raises(TifError, match="unknown metric") as err:
        parse_keep_best(spec)
    assert all(name in str(err.value) for name in KEEP_BEST_METRICS)


def test_keep_best_bad_direction_is_refused():
    with pytest.raises(TifError, match="direction must be min or max"):
        parse_keep_best("forget_rouge:lowest")


def test_improves_is_strict():
    assert improves(2.0, 1.0, "max") and improves(1.0, 2.0, "min")
    assert not improves(1.0, 1.0, "max") and not improves(1.0, 1.0, "min")
