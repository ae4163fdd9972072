"""TOFU-mini's walk (benchmarks/tofu_eval.py) tests the utility floor on the utility sets alone: the Model Utility it
reads from them must be the full evaluation's (tiny model, synthetic TOFU folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tofu_eval = pytest.importorskip("tofu_eval")

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
    full = evaluate(tiny_model, tokenizer, tofu_dir, ("forget", *tofu_eval.UTILITY_SETS))
    utility_only = evaluate(tiny_model, tokenizer, tofu_dir, tofu_eval.UTILITY_SETS)

    assert "forget" not in utility_only["sets"] and "mia" not in utility_only
    # the nine numbers Model Utility is made of (the random model's ROUGE is 0, so MU is too)
    aggregates = {}
    for name in tofu_eval.UTILITY_SETS:
        aggregates.update(utility_only["sets"][name]["aggregate"])
    for key in UTILITY_KEYS:
        assert aggregates[key] == full["summary"][key], key
    assert full["summary"]["retain_prob"] > 0
    assert tofu_eval.model_utility(utility_only) == full["summary"]["model_utility"]
    assert tofu_eval.model_utility(full) == full["summary"]["model_utility"]


def test_model_utility_is_the_harmonic_mean_of_the_nine_aggregates():
    sets = {
        name: {
            "aggregate": {f"{name}_prob": 0.5, f"{name}_rouge": 0.25, f"{name}_truth_ratio": 1.0}
        }
        for name in tofu_eval.UTILITY_SETS
    }
    # 9 / (3 × (1/0.5 + 1/0.25 + 1/1)) = 9 / 21
    assert tofu_eval.model_utility({"sets": sets}) == pytest.approx(9 / 21)


def utility_results(mu: float) -> dict:
    """Evaluation results whose nine utility aggregates all equal ``mu`` (so MU = ``mu``)."""
    parts = ("prob", "rouge", "truth_ratio")
    return {
        "sets": {
            name: {"aggregate": {f"{name}_{part}": mu for part in parts}}
            for name in tofu_eval.UTILITY_SETS
        }
    }


def test_walk_evaluates_only_the_utility_sets_until_an_epoch_keeps_the_floor(tmp_path, monkeypatch):
    # epochs by probe FQ: 3 (MU 0.30), 2 (MU 0.34, a full evaluation cached), 1 (MU 0.36);
    # floor 0.95 × 0.36 = 0.342: epoch 3 fails on its utility sets, epoch 2 on its cached full
    # evaluation, epoch 1 keeps the floor and alone gets a new full evaluation.
    mu = {1: 0.36, 2: 0.34, 3: 0.30}
    calls = []

    def fake_full_eval(p, files, model, cache, sets=None):
        calls.append((cache.name, sets))
        return utility_results(mu[int(model.name.removeprefix("epoch"))])

    monkeypatch.setattr(tofu_eval, "full_eval", fake_full_eval)
    monkeypatch.setattr(
        tofu_eval, "headline", lambda results, reference: {"model_utility": 0.0, "seen": True}
    )
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "run.epoch2.json").write_text("{}")
    trajectory = [
        {"epoch": 1, "fq": 0.01, "mu_proxy": 0.4},
        {"epoch": 2, "fq": 0.05, "mu_proxy": 0.4},
        {"epoch": 3, "fq": 0.20, "mu_proxy": 0.4},
    ]
    point = tofu_eval.choose_point(
        None, {}, "run", trajectory, 0.95 * 0.36, tmp_path, tmp_path, None
    )

    assert point == {"epoch": 1, "model_utility": 0.0, "seen": True}
    utility_sets = tofu_eval.UTILITY_SETS
    assert calls == [
        ("run.epoch3.utility.json", utility_sets),
        ("run.epoch2.json", None),
        ("run.epoch1.utility.json", utility_sets),
        ("run.epoch1.json", None),
    ]


def test_walk_returns_none_when_no_epoch_keeps_the_floor(tmp_path, monkeypatch):
    monkeypatch.setattr(tofu_eval, "full_eval", lambda *a, **k: utility_results(0.1))
    (tmp_path / "eval").mkdir()
    trajectory = [{"epoch": e, "fq": 0.1 * e, "mu_proxy": 0.4} for e in (1, 2)]
    point = tofu_eval.choose_point(
        None, {}, "run", trajectory, 0.95 * 0.36, tmp_path, tmp_path, None
    )
    assert point is None


def test_a_cached_full_evaluation_that_keeps_the_floor_is_read_once(tmp_path, monkeypatch):
    calls = []

    def fake_full_eval(p, files, model, cache, sets=None):
        calls.append((cache.name, sets))
        return utility_results(0.36)

    monkeypatch.setattr(tofu_eval, "full_eval", fake_full_eval)
    monkeypatch.setattr(tofu_eval, "headline", lambda results, reference: {"model_utility": 0.36})
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "run.epoch1.json").write_text("{}")
    point = tofu_eval.choose_point(
        None, {}, "run", [{"epoch": 1, "fq": 0.1, "mu_proxy": 0.4}], 0.95 * 0.36,
        tmp_path, tmp_path, None,
    )  # fmt: skip
    assert point == {"epoch": 1, "model_utility": 0.36}
    assert calls == [("run.epoch1.json", None)]
