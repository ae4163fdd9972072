"""The `learned` identifier's decision rule: a token is UW when its probability reaches the
threshold that cross-validation chose (0.4; ``benchmarks/results/learned_cv.json``), for a
model built by hand, a model fitted with the default configuration and the packaged model."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.identify import identify
from tif_unlearn.identify.learned import (
    LearnedConfig,
    LearnedModel,
    fit_learned,
    load_learned_model,
)

CV_RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "learned_cv.json"
RECORD = QARecord("Where was Ilse Brandt born?", "Ilse Brandt was born in Hamburg.")


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def marked_text(model: LearnedModel) -> str:
    """The answer's UW spans, joined (adjacent UW tokens form one span)."""
    (out,) = identify("learned", [RECORD], model=model, personal_data=False, progress=False).records
    return " ".join(out.answer[a:b] for a, b in out.unwanted_spans)


def test_the_default_threshold_is_the_cross_validated_one():
    chosen = json.loads(CV_RESULTS.read_text(encoding="utf-8"))["forget05-cv/learned-chosen"]
    assert chosen["threshold"] == 0.4
    config = LearnedConfig()
    assert config.threshold == chosen["threshold"]
    assert (config.lm, list(config.lm_layers), config.lm_scale, config.lm_next) == (
        chosen["lm"], chosen["lm_layers"], chosen["lm_scale"], chosen["lm_next"]
    )  # fmt: skip
    assert LearnedModel(weights={}, bias=0.0).threshold == chosen["threshold"]


@pytest.mark.parametrize(("probability", "marked"), [(0.45, True), (0.42, True), (0.38, False)])
def test_a_token_is_unwanted_from_probability_0_4(spacy_lemmas_ready, probability, marked):
    # No feature weights: every token has the bias' probability, 1 / (1 + e^-bias).
    model = LearnedModel(weights={}, bias=logit(probability))
    text = marked_text(model)
    assert ("Hamburg" in text) is marked
    assert bool(text) is marked


@pytest.fixture(scope="module")
def fitted_without_lm(spacy_lemmas_ready) -> LearnedModel:
    records = [
        QARecord("Where was Anna Novak born?", "Anna Novak was born in Prague.", ((23, 29),)),
        QARecord("Where was Omar Haddad born?", "Omar Haddad was born in Beirut.", ((24, 30),)),
    ]
    return fit_learned(records, LearnedConfig(lm=None, min_count=1))


@pytest.mark.parametrize(("probability", "marked"), [(0.45, True), (0.35, False)])
def test_a_fitted_model_decides_at_the_cross_validated_threshold(
    fitted_without_lm, probability, marked
):
    assert fitted_without_lm.threshold == 0.4
    flat = dataclasses.replace(fitted_without_lm, weights={}, bias=logit(probability))
    assert ("Hamburg" in marked_text(flat)) is marked


def test_the_packaged_model_has_the_cross_validated_threshold(spacy_lemmas_ready):
    packaged = load_learned_model()
    assert packaged.threshold == 0.4
