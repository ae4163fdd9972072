"""benchmarks/tofu_noise.py: the paired item bootstrap behind the TOFU-mini noise estimates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tofu_noise = pytest.importorskip("tofu_noise")

from tif_unlearn.evaluate.tofu_logs import TofuEvalSet, eval_set_scores, model_utility_of  # noqa: E402
from tif_unlearn.evaluate.tofu_reference import eval_set_from_items  # noqa: E402


def random_set(rng, n=6, perturbed=3) -> TofuEvalSet:
    return TofuEvalSet(
        avg_gt_loss=rng.uniform(0.1, 2.0, n),
        avg_paraphrased_loss=rng.uniform(0.5, 2.0, n),
        average_perturb_loss=rng.uniform(0.5, 3.0, (n, perturbed)),
        rouge_l_recall=rng.uniform(0.2, 1.0, n),
    )


def random_model(rng, forget=True) -> dict[str, TofuEvalSet]:
    names = (*tofu_noise.UTILITY_SETS, "forget") if forget else tofu_noise.UTILITY_SETS
    return {name: random_set(rng) for name in names}


def test_items_read_back_into_an_eval_set():
    items = [
        {"avg_gt_loss": 0.5, "avg_paraphrased_loss": 1.0, "average_perturb_loss": [2.0, 3.0],
         "rougeL_recall": 0.25},
        {"avg_gt_loss": 1.5, "avg_paraphrased_loss": 2.0, "average_perturb_loss": [1.0, 1.0],
         "rougeL_recall": 1.0},
    ]  # fmt: skip
    eval_set = eval_set_from_items(items)
    assert eval_set.average_perturb_loss.shape == (2, 2)
    # R = exp(L(para) - mean L(pert)): exp(1 - 2.5), exp(2 - 1)
    np.testing.assert_allclose(eval_set.truth_ratios(), np.exp([-1.5, 1.0]))
    np.testing.assert_allclose(eval_set.rouge_l_recall, [0.25, 1.0])


def test_draw_zero_is_the_evaluation_as_it_was_and_draws_are_paired():
    rng = np.random.default_rng(1)
    models = {"finetuned": random_model(rng), "run.epoch2": random_model(rng, forget=False)}
    reference = random_set(rng)
    samples = tofu_noise.bootstrap(models, reference, draws=20, seed=0)

    scores = {}
    for name in tofu_noise.UTILITY_SETS:
        scores.update(eval_set_scores(models["run.epoch2"][name], name))
    assert samples["run.epoch2"]["mu"][0] == pytest.approx(model_utility_of(scores))
    finetuned = samples["finetuned"]
    np.testing.assert_allclose(finetuned["floor"], tofu_noise.FLOOR * finetuned["mu"])
    # every model of a draw is held to that draw's floor
    np.testing.assert_array_equal(samples["run.epoch2"]["floor"], finetuned["floor"])
    assert len(set(np.round(finetuned["mu"], 9))) > 10  # the draws do resample
    assert len(finetuned["fq"]) == 21 and len(samples["run.epoch2"]["fq"]) == 0


def test_describe_reports_the_paired_margin_over_the_floor():
    samples = {
        "mu": np.array([0.35, 0.30, 0.36, 0.34, 0.40]),
        "floor": np.array([0.33, 0.32, 0.33, 0.35, 0.30]),
        "fq": np.array([]),
    }
    row = tofu_noise.describe(samples)
    assert row["margin_over_floor"] == pytest.approx(0.02)
    # draws 1-4: margins -0.02, 0.03, -0.01, 0.10: two of four keep the floor
    assert row["keeps_floor_share"] == 0.5
    assert "fq" not in row


def test_a_targeted_point_beats_the_baselines_only_where_it_keeps_the_floor():
    def point(fq, mu):
        return {"fq": np.array([0.0, *fq]), "mu": np.array([0.0, *mu]), "floor": np.full(5, 0.3)}

    samples = {
        "tif_lr1e-04.epoch3": point([0.5, 0.5, 0.5, 0.01], [0.4, 0.2, 0.4, 0.4]),
        "npo_lr1e-04.epoch2": point([0.1, 0.1, 0.9, 0.1], [0.4, 0.4, 0.2, 0.4]),
        "ga_lr1e-04.epoch2": point([0.2, 0.05, 0.6, 0.05], [0.4, 0.4, 0.4, 0.4]),
    }
    points = {name.split(".")[0]: name for name in samples}
    # draw 1: 0.5 > 0.2; draw 2: TIF misses the floor; draw 3: GA's 0.6 (NPO's 0.9 misses
    # the floor); draw 4: 0.01 < 0.1
    assert tofu_noise.beats_baselines(samples, points) == {"tif_lr1e-04": 0.25}
