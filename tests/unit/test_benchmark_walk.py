"""TOFU-mini's walk tests the utility floor on the utility sets alone: the Model Utility it
reads from them must be the full evaluation's (tiny model, synthetic TOFU folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tofu_tasks = pytest.importorskip("tofu_tasks")

from eval_data import write_tofu_folder  # noqa: E402
from tif_unlearn.evaluate.options import TofuEvalOptions  # noqa: E402
from tif_unlearn.evaluate.tofu import evaluate_tofu  # noqa: E402
from tif_unlearn.evaluate.tofu_logs import UTILITY_KEYS  # noqa: E402


@pytest.fixture(scope="module")
def tofu_dir(tmp_path_factory) -> Path:
    return write_tofu_folder(tmp_path_factory.mktemp("tofu") / "tofu")


def evaluate(model, tokenizer, tofu_dir, sets):
    options = TofuEvalOptions(data_dir=str(tofu_dir), max_new_tokens=8, sets=sets)
    return evaluate_tofu(model, tokenizer, options)


def test_utility_sets_alone_give_the_full_model_utility(tiny_model, tokenizer, tofu_dir):
    full = evaluate(tiny_model, tokenizer, tofu_dir, ("forget", *tofu_tasks.UTILITY_SETS))
    utility_only = evaluate(tiny_model, tokenizer, tofu_dir, tofu_tasks.UTILITY_SETS)

    assert "forget" not in utility_only["sets"] and "mia" not in utility_only
    # the nine numbers Model Utility is made of (the random model's ROUGE is 0, so MU is too)
    aggregates = {}
    for name in tofu_tasks.UTILITY_SETS:
        aggregates.update(utility_only["sets"][name]["aggregate"])
    for key in UTILITY_KEYS:
        assert aggregates[key] == full["summary"][key], key
    assert full["summary"]["retain_prob"] > 0
    assert tofu_tasks.model_utility(utility_only) == full["summary"]["model_utility"]
    assert tofu_tasks.model_utility(full) == full["summary"]["model_utility"]


def test_model_utility_is_the_harmonic_mean_of_the_nine_aggregates():
    sets = {
        name: {
            "aggregate": {f"{name}_prob": 0.5, f"{name}_rouge": 0.25, f"{name}_truth_ratio": 1.0}
        }
        for name in tofu_tasks.UTILITY_SETS
    }
    # 9 / (3 × (1/0.5 + 1/0.25 + 1/1)) = 9 / 21
    assert tofu_tasks.model_utility({"sets": sets}) == pytest.approx(9 / 21)
