"""Aggregation of the original TOFU evaluation logs of Llama-2-7B-chat (../shared/data/tofu/
eval-logs-llama2-7b): Forget Quality, Model Utility, and cross-checks against the per-item
statistics TOFU itself stored in the logs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tif_unlearn.data.tofu import default_tofu_dir
from tif_unlearn.errors import DataError, TifError
from tif_unlearn.evaluate import metrics
from tif_unlearn.evaluate.tofu_logs import (
    TOFU_LOG_FILES,
    UTILITY_KEYS,
    aggregate_command,
    aggregate_tofu_logs,
    model_utility_of,
    parse_eval_set,
    read_tofu_logs,
)

_TOFU_DIR = default_tofu_dir()
LOGS = _TOFU_DIR / "eval-logs-llama2-7b" if _TOFU_DIR is not None else None
needs_logs = pytest.mark.skipif(
    LOGS is None or not LOGS.is_dir(),
    reason="TOFU Llama-2 evaluation logs not found (../shared/data/tofu/eval-logs-llama2-7b)",
)


def _sorted_values(log: dict, key: str) -> np.ndarray:
    return np.asarray([log[key][i] for i in sorted(log[key], key=int)], dtype=np.float64)


@pytest.fixture(scope="module")
def full_summary():
    return aggregate_tofu_logs(LOGS / "full", LOGS / "retain90")


@needs_logs
def test_forget_quality_of_full_model_is_tiny(full_summary):
    # forget10 (first 300 items): the model trained on it vs the model never trained on it
    assert full_summary["forget_quality"] < 1e-5
    assert full_summary["forget_quality"] == pytest.approx(1.834e-21, rel=1e-3)
    assert full_summary["ks_statistic"] == pytest.approx(119 / 300)  # 0.39667


@needs_logs
def test_forget_quality_of_retain_model_against_itself_is_one():
    summary = aggregate_tofu_logs(LOGS / "retain90", LOGS / "retain90")
    assert summary["forget_quality"] == 1.0
    assert summary["ks_statistic"] == 0.0


@needs_logs
def test_model_utility_is_plausible(full_summary):
    retain = aggregate_tofu_logs(LOGS / "retain90", LOGS / "retain90")
    # open-unlearning docs/results.md (recomputed on 400 items): finetuned 0.63, retain90 0.61
    assert full_summary["model_utility"] == pytest.approx(0.6227, abs=1e-4)
    assert retain["model_utility"] == pytest.approx(0.6137, abs=1e-4)
    # forget truth ratio: published 0.52 (finetuned) and 0.68 (retain)
    assert full_summary["forget_truth_ratio"] == pytest.approx(0.516, abs=1e-3)
    assert retain["forget_truth_ratio"] == pytest.approx(0.674, abs=1e-3)
    # the full model knows the forget set; the retain model does not
    assert full_summary["forget_prob"] > 0.95 > 0.2 > retain["forget_prob"]


@needs_logs
def test_summary_keys_and_utility_is_hmean_of_components(full_summary):
    assert len(UTILITY_KEYS) == 9
    expected = {"forget_quality", "ks_statistic", "model_utility", "forget_prob", "forget_rouge"}
    assert expected | {"forget_truth_ratio", *UTILITY_KEYS} == set(full_summary)
    nine = [full_summary[key] for key in UTILITY_KEYS]
    assert full_summary["model_utility"] == pytest.approx(len(nine) / sum(1 / v for v in nine))
    assert aggregate_command(LOGS / "full", LOGS / "retain90") == full_summary
    json.dumps(full_summary)  # plain floats


@needs_logs
def test_aggregated_file_gives_the_same_numbers(full_summary):
    summary = aggregate_tofu_logs(
        LOGS / "full" / "eval_log_aggregated.json", LOGS / "retain90" / "eval_log_aggregated.json"
    )
    assert summary == full_summary


@needs_logs
@pytest.mark.parametrize("file_name", list(TOFU_LOG_FILES.values()))
def test_truth_ratio_matches_the_per_item_values_tofu_stored(file_name):
    log = json.loads((LOGS / "full" / file_name).read_text())
    ours = parse_eval_set(log).truth_ratios()
    stored = _sorted_values(log, "truth_ratio")  # TOFU eval_perturbation_ratio, float32
    np.testing.assert_allclose(ours, stored, rtol=1e-5)


@needs_logs
@pytest.mark.parametrize(
    "file_name", ["eval_real_author_wo_options.json", "eval_real_world_wo_options.json"]
)
def test_normalized_probability_matches_tofu_normalized_gt_loss(file_name):
    log = json.loads((LOGS / "full" / file_name).read_text())
    eval_set = parse_eval_set(log)
    ours = metrics.normalized_probability(eval_set.avg_gt_loss, eval_set.average_perturb_loss)
    np.testing.assert_allclose(ours, np.exp(-_sorted_values(log, "normalized_gt_loss")), rtol=1e-9)


@needs_logs
def test_rouge_recall_recomputed_from_generations_matches_the_log():
    log = json.loads((LOGS / "full" / "eval_log_forget.json").read_text())
    for index in sorted(log["generated_text"], key=int)[:100]:
        _prompt, generation, answer = log["generated_text"][index]
        expected = log["rougeL_recall"][index]
        assert metrics.rouge_l_recall(generation, answer) == pytest.approx(expected, abs=1e-12)


@needs_logs
def test_different_forget_splits_are_refused():
    # retain95's forget log is forget05 (200 items), full's is forget10 (300 items)
    with pytest.raises(TifError, match="same forget split"):
        aggregate_tofu_logs(LOGS / "full", LOGS / "retain95")


def test_missing_folder_and_files_are_clear_errors(tmp_path):
    with pytest.raises(TifError, match="not found"):
        read_tofu_logs(tmp_path / "nowhere")
    with pytest.raises(TifError, match="eval_log_forget.json"):
        read_tofu_logs(tmp_path)


def test_missing_key_is_a_data_error(tmp_path):
    log = {
        "avg_gt_loss": {"0": 0.1},
        "avg_paraphrased_loss": {"0": 0.2},
        "rougeL_recall": {"0": 1.0},
    }
    (tmp_path / "eval_log_forget.json").write_text(json.dumps(log))
    with pytest.raises(DataError, match="average_perturb_loss"):
        read_tofu_logs(tmp_path, sets=("forget",))


def test_misaligned_indices_and_bad_json_are_data_errors(tmp_path):
    log = {
        "avg_gt_loss": {"0": 0.1, "1": 0.2},
        "avg_paraphrased_loss": {"0": 0.2, "2": 0.3},
        "average_perturb_loss": {"0": [1.0, 2.0], "1": [1.0, 2.0]},
        "rougeL_recall": {"0": 1.0, "1": 0.5},
    }
    with pytest.raises(DataError, match="avg_paraphrased_loss"):
        parse_eval_set(log, "x.json")
    (tmp_path / "eval_log_forget.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_tofu_logs(tmp_path, sets=("forget",))


def test_small_synthetic_logs_aggregate_by_hand(tmp_path):
    def write(
        name: str, gt: list[float], para: list[float], pert: list[list[float]], rouge: list[float]
    ):
        as_dict = lambda values: {str(i): v for i, v in enumerate(values)}  # noqa: E731
        log = {
            "avg_gt_loss": as_dict(gt),
            "avg_paraphrased_loss": as_dict(para),
            "average_perturb_loss": as_dict(pert),
            "rougeL_recall": as_dict(rouge),
        }
        (tmp_path / name).write_text(json.dumps(log))

    ln2, ln4 = np.log(2), np.log(4)
    # forget/retain: Prob = exp(−avg_gt_loss) -> 1 and 1/2, mean 0.75
    # truth ratio R = exp(para − mean(pert)): item 0 exp(0 − ln2) = 1/2, item 1 exp(ln4 − ln2) = 2
    for name in ("eval_log_forget.json", "eval_log.json"):
        write(name, [0.0, ln2], [0.0, ln4], [[ln2, ln2], [ln2, ln2]], [1.0, 0.5])
    # real/world: normalized Prob = 1/2 / (1/2 + 1/4 + 1/4) = 1/2; R = exp(ln2 − ln4) = 1/2
    for name in ("eval_real_author_wo_options.json", "eval_real_world_wo_options.json"):
        write(name, [ln2], [ln2], [[ln4, ln4]], [0.5])
    summary = aggregate_tofu_logs(tmp_path, None)
    assert summary["forget_quality"] is None and summary["ks_statistic"] is None
    # forget TR = mean(min(R, 1/R)) = mean(1/2, 1/2) = 1/2; retain TR = mean(max(0, 1−R)) = (1/2 + 0)/2
    assert summary["forget_truth_ratio"] == pytest.approx(0.5)
    assert summary["retain_truth_ratio"] == pytest.approx(0.25)
    assert summary["retain_prob"] == pytest.approx(0.75)
    assert summary["retain_rouge"] == pytest.approx(0.75)
    assert summary["real_authors_prob"] == pytest.approx(0.5)
    assert summary["world_facts_truth_ratio"] == pytest.approx(0.5)
    # utility: hmean(0.75, 0.75, 0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
    # = 9 / (4/3 + 4/3 + 4 + 6·2) = 9 / (56/3) = 27/56
    assert summary["model_utility"] == pytest.approx(27 / 56)


def test_model_utility_of_is_the_harmonic_mean_of_the_nine_keys_only():
    # eight components at 0.5 and one at 0.25: 9 / (8 * 2 + 4) = 0.45; the forget set's
    # numbers do not count, however low.
    scores = {key: 0.5 for key in UTILITY_KEYS} | {UTILITY_KEYS[0]: 0.25, "forget_rouge": 0.01}
    assert model_utility_of(scores) == pytest.approx(0.45)


def test_model_utility_of_names_a_missing_component():
    scores = {key: 0.5 for key in UTILITY_KEYS[1:]}
    with pytest.raises(TifError, match=UTILITY_KEYS[0]):
        model_utility_of(scores)
