"""identify/learned*.py by hand-made models on short answers whose spaCy tokens are listed in the
comments: groups of tokens marked as a whole, glued punctuation, completing a fact marked in part,
the options' defaults, fitting and the model file (issue 35, mutation testing).

A model's probabilities are made exact: bias -10 and a lemma weight of 10 give the logit 0,
probability 0.5 exactly; a weight of 20 gives 1 - 4.5e-5; no weight 4.5e-5."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify.features import answer_tokens
from tif_unlearn.identify.learned import (
    _glued,
    answer_spans,
    completed_spans,
    identify_learned,
    predicted_spans,
    token_groups,
    whole_phrase_spans,
)
from tif_unlearn.identify.learned_fit import (
    Answer,
    _design_matrix,
    _feature_index,
    _fit_logistic,
    _standardised,
    featurize,
    fit_answers,
    fit_learned,
    token_labels,
)
from tif_unlearn.identify.learned_focus import answered_phrase_spans, asked_verbs
from tif_unlearn.identify.learned_model import LearnedConfig, LearnedModel, load_learned_model
from tif_unlearn.identify.ner import load_spacy

SURE, HALF = 20.0, 10.0  # lemma weights: probability ~1, exactly 0.5 (with bias -10)


@pytest.fixture(scope="module")
def nlp(spacy_lemmas_ready):
    return load_spacy(lemmas=True)


def model(threshold=0.5, **lemmas: float) -> LearnedModel:
    weights = {f"lemma={lemma}": w for lemma, w in lemmas.items()}
    return LearnedModel(weights=weights, bias=-10.0, threshold=threshold)


def answer_of(nlp, text: str, question: str = "What?") -> tuple[QARecord, Answer]:
    record = QARecord(question, text)
    return record, featurize([record], nlp)[0]


def texts(record, spans) -> list[str]:
    return [record.answer[a:b] for a, b in sorted(set(spans))]


# --- learned_fit.py -----------------------------------------------------------------------


def test_feature_index_keeps_features_seen_min_count_times():
    features = [["a", "b", "a"], ["b", "c"], ["c"]]  # a in 1 token, b in 2, c in 2
    assert _feature_index(features, 2) == {"b": 0, "c": 1}
    assert _feature_index(features, 1) == {"a": 0, "b": 1, "c": 2}


def test_design_matrix_has_a_one_per_known_feature():
    x = _design_matrix([["b", "z", "b"], ["a"]], {"a": 0, "b": 1})
    assert x.toarray().tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_logistic_fit_of_balanced_labels_without_features_is_zero():
    x = _design_matrix([[], [], [], []], {})
    params = _fit_logistic(x, np.array([0.0, 1.0, 0.0, 1.0]), 1.0, 100)
    assert params.tolist() == [0.0]  # bias log(2/2) = 0: already the optimum


def test_logistic_fit_minimises_the_documented_loss():
    # one feature on tokens 0 and 1 (labels 1, 1), off on tokens 2 and 3 (labels 1, 0)
    from scipy.optimize import minimize

    x = _design_matrix([["f"], ["f"], [], []], {"f": 0})
    y = np.array([1.0, 1.0, 1.0, 0.0])
    l2 = 2.0

    def loss(params):  # mean log-loss + l2/2 |w|^2 / n, written out again
        w, b = params
        z = np.array([w + b, w + b, b, b])
        return np.mean(np.log1p(np.exp(-z)) * y + np.log1p(np.exp(z)) * (1 - y)) + l2 * w**2 / 8

    expected = minimize(loss, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}).x  # fmt: skip
    got = _fit_logistic(x, y, l2, 500)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got[0] > 0 and abs(got[1]) < 1  # the feature says UW; the bias is not penalised


def test_standardised_states_have_mean_zero_and_the_scale_as_std():
    dense = np.array([[1.0, 10.0], [3.0, 10.0]])  # column 2 constant: std 0
    rows, mean, factor = _standardised(dense, 0.5)
    assert mean.tolist() == [2.0, 10.0]
    np.testing.assert_allclose(factor, [0.5 / (1.0 + 1e-6), 0.5 / 1e-6])
    np.testing.assert_allclose(rows, [[-0.5 / (1 + 1e-6), 0.0], [0.5 / (1 + 1e-6), 0.0]])


def test_fit_answers_records_what_it_was_trained_on():
    answers = [Answer(None, [["f"], []]), Answer(None, [["f"], ["g"], []])]
    fitted = fit_answers(answers, [[1, 0], [1, 0, 0]], LearnedConfig(lm=None, min_count=1))
    assert fitted.trained_on == {"answers": 2, "tokens": 5, "uw_share": 0.4}
    assert fitted.lm is None and fitted.lm_layers == [] and fitted.lm_weights == []
    assert fitted.lm_next is False
    assert fitted.weights["f"] > 0 and fitted.weights["g"] < 0  # "g" only on a GW token


def test_without_features_the_bias_is_the_logit_of_the_uw_share():
    answers = [Answer(None, [["f"], ["g"]]), Answer(None, [["h"]])]  # each feature once
    fitted = fit_answers(answers, [[1, 0], [0]], LearnedConfig(lm=None, min_count=2))
    assert fitted.weights == {} and fitted.trained_on["uw_share"] == 0.3333
    assert fitted.bias == pytest.approx(-np.log(2), abs=1e-5)  # log(1/3 / (2/3)), unpenalised


def test_a_weight_left_at_zero_is_not_kept():
    # "h" on both tokens, labels 1 and 0: its gradient at zero weights is 0, so it stays 0
    fitted = fit_answers(
        [Answer(None, [["h"], ["h"]])], [[1, 0]], LearnedConfig(lm=None, min_count=1)
    )
    assert fitted.weights == {} and fitted.bias == 0.0


def test_fit_answers_folds_the_standardisation_exactly():
    # raw states 10 (UW) and 2: mean 6, std 4; scale 0.5: the fit sees +-0.5 / (1 + 2.5e-7)
    answers = [Answer(None, [["x"], ["x"]], np.array([[10.0], [2.0]])) for _ in range(3)]
    config = LearnedConfig(l2=1.0, lm="tiny", lm_layers=(1,), lm_scale=0.5, lm_next=False)
    fitted = fit_answers(answers, [[1, 0]] * 3, config)
    standard = np.array([[0.5], [-0.5]] * 3) / (1 + 2.5e-7)
    x = _design_matrix([["x"]] * 6, {"x": 0})
    w_x, w_dense, bias = _fit_logistic(x, np.array([1.0, 0.0] * 3), 1.0, 500, standard)
    expected = 1 / (1 + np.exp(-(w_x + bias + w_dense * np.array([0.5, 0.25]) / (1 + 2.5e-7))))
    got = fitted.probabilities([["x"], ["x"]], np.array([[10.0], [8.0]]))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_fit_learned_refuses_no_records_and_unannotated_ones():
    with pytest.raises(TifError, match="no annotated records"):
        fit_learned([], LearnedConfig(lm=None))
    with pytest.raises(TifError, match="^a record: no unwanted-word annotation"):
        fit_learned([QARecord("Q?", "A.")], LearnedConfig(lm=None))


# --- learned_model.py ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"l2": -0.1}, {"threshold": 0.0}, {"threshold": 1.0}, {"min_count": 0}, {"max_iter": 0},
     {"lm": "x", "lm_layers": ()}, {"lm": "x", "lm_layers": (0,)}, {"lm": "x", "lm_scale": 0.0}],
)  # fmt: skip
def test_invalid_configs_are_refused(options):
    with pytest.raises(TifError, match="invalid LearnedConfig"):
        LearnedConfig(**options)


@pytest.mark.parametrize(
    "options",
    [{"l2": 0.0}, {"threshold": 0.01}, {"min_count": 1}, {"max_iter": 1}, {"lm": None,
     "lm_layers": ()}, {"lm": "x", "lm_layers": (1,)}, {"lm": "x", "lm_scale": 0.01}],
)  # fmt: skip
def test_configs_at_the_limits_are_accepted(options):
    LearnedConfig(**options)


def test_probabilities_add_the_weights_of_a_tokens_features():
    fitted = LearnedModel(weights={"a": 2.0, "b": -1.0}, bias=-1.0)
    got = fitted.probabilities([["a"], ["a", "b"], ["c"], []])
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.array([1.0, 0.0, -1.0, -1.0]))))


def test_probabilities_with_lm_weights_read_the_states():
    fitted = LearnedModel(weights={"a": 1.0}, bias=0.0, lm="tiny", lm_layers=[1],
                          lm_weights=[1.0, -2.0])  # fmt: skip
    dense = np.array([[1.0, 1.0], [0.0, 0.5]], dtype=np.float32)
    got = fitted.probabilities([["a"], []], dense)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.array([0.0, -1.0]))))
    with pytest.raises(TifError, match="needs tiny hidden states"):
        fitted.probabilities([["a"], []], None)
    with pytest.raises(TifError, match="needs tiny hidden states"):
        fitted.probabilities([["a"], []], dense[:, :1])
    assert fitted.probabilities([], None).tolist() == []  # no tokens: no states needed


def test_a_saved_model_reads_back_rounded(tmp_path):
    fitted = LearnedModel(weights={"b": 0.123456789, "a": -1.0}, bias=0.5, lm="tiny",
                          lm_layers=[2], lm_weights=[0.1234567891])  # fmt: skip
    path = fitted.save(tmp_path / "two" / "deep" / "model.json")
    payload = json.loads(path.read_text())
    assert list(payload["weights"]) == ["a", "b"] and payload["weights"]["b"] == 0.12346
    assert payload["lm_weights"] == [0.123457]
    again = load_learned_model(path)
    assert again.weights == {"a": -1.0, "b": 0.12346} and again.lm_layers == [2]


def test_model_files_of_another_feature_version_or_without_lm_weights_are_refused(tmp_path):
    path = LearnedModel(weights={}, bias=0.0).save(tmp_path / "m.json")
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "feature_version": payload["feature_version"] + 1}))
    with pytest.raises(TifError, match="made for feature version"):
        load_learned_model(path)
    path.write_text(json.dumps({**payload, "lm": "tiny", "lm_layers": [1]}))
    with pytest.raises(TifError, match="lm without layers or weights"):
        load_learned_model(path)
    path.write_text(json.dumps({**payload, "lm": "tiny", "lm_weights": [1.0]}))
    with pytest.raises(TifError, match="lm without layers or weights"):
        load_learned_model(path)
    missing = tmp_path / "missing.json"
    with pytest.raises(
        TifError, match=f"^could not read the learned model {re.escape(str(missing))}: "
    ):
        load_learned_model(missing)


def test_a_config_cannot_be_changed():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LearnedConfig(lm=None).l2 = 2.0


def test_a_model_with_lm_next_adds_the_next_tokens_states():
    fitted = LearnedModel(weights={}, bias=0.0, lm="tiny", lm_layers=[1], lm_weights=[1.0, 2.0],
                          lm_next=True)  # fmt: skip
    dense = np.array([[1.0], [-1.0]])  # (token, next token): (1, -1) and (-1, 0)
    got = fitted.probabilities([[], []], dense)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.array([-1.0, -1.0]))))


# --- learned.py ---------------------------------------------------------------------------

# tokens: 0 Mr, 1 Al, 2 -, 3 Kuwaiti, 4 wrote, 5 ", 6 Glass, 7 River, 8 ", 9 as, 10 a,
# 11 multi, 12 -, 13 author
TITLED = 'Mr Al-Kuwaiti wrote "Glass River" as a multi-author'


def test_glued_punctuation_has_no_space_on_either_side(nlp):
    doc = nlp(TITLED)
    assert [t.i for t in doc if _glued(doc, t)] == [2, 12]
    doc = nlp("Al-Kuwaiti wrote")  # 0 Al, 1 -, 2 Kuwaiti, 3 wrote
    assert [t.i for t in doc if _glued(doc, t)] == [1]
    doc = nlp("'Hello' she said")  # the first token has nothing before it
    assert [t.i for t in doc if _glued(doc, t)] == []


def test_token_groups_are_multi_token_words_and_quoted_titles(nlp):
    doc = nlp(TITLED)
    # words first ("Al-Kuwaiti", "multi-author" at the very end), then the quoted title
    assert token_groups(doc, answer_tokens(doc)) == [[1, 2, 3], [11, 12, 13], [6, 7]]


def test_a_token_at_the_threshold_is_marked(nlp):
    record, answer = answer_of(nlp, "Born in Hamburg today.")
    assert texts(record, predicted_spans(answer, model(hamburg=HALF))) == ["Hamburg"]


def test_a_group_is_marked_when_its_mean_reaches_the_threshold(nlp):
    record, answer = answer_of(nlp, TITLED)
    # "Glass" 0.5 and "River" 0.5: mean 0.5; "Al"-"Kuwaiti": (1 + 0 + 0) / 3 < 0.5
    marked = predicted_spans(answer, model(glass=HALF, river=HALF, al=SURE))
    assert texts(record, marked) == ["Glass", "River"]


@pytest.mark.parametrize(
    ("text", "lemmas", "expected"),
    [
        ("Hamburg/Berlin is far", ("hamburg", "berlin"), ["Hamburg", "/", "Berlin"]),
        ("in Hamburg/Berlin", ("hamburg", "berlin"), ["Hamburg", "/", "Berlin"]),
        ("Oslo/Bergen is far", ("bergen",), ["Bergen"]),
        ("Bergen/Oslo is far", ("bergen",), ["Bergen"]),
    ],
)
def test_glued_punctuation_joins_two_marked_tokens(nlp, text, lemmas, expected):
    record, answer = answer_of(nlp, text)
    assert texts(record, predicted_spans(answer, model(**dict.fromkeys(lemmas, SURE)))) == (
        expected
    )


def test_whole_phrase_spans_need_an_overlap_not_a_touch(nlp):
    record, answer = answer_of(nlp, "She takes insulin glargine every evening.")
    # "insulin" 10-17, "glargine" 18-26: a span 17-18 (the space) touches both, overlaps neither
    assert whole_phrase_spans(record, answer.doc, [(17, 18)]) == []
    assert texts(record, whole_phrase_spans(record, answer.doc, [(20, 21)])) == [
        "insulin",
        "glargine",
    ]


@pytest.mark.parametrize(
    ("weight", "kept"),
    [(HALF, True), (-10.0 + np.log(1 / 3), False)],  # probabilities 0.5 and 0.25 (< 1.0 / 3)
)
def test_a_word_beside_a_marked_one_needs_half_the_threshold(nlp, weight, kept):
    record, answer = answer_of(nlp, "She takes insulin glargine every evening.")
    fitted = model(threshold=1.0, glargine=50.0, insulin=weight)  # glargine: 1.0 exactly
    spans = predicted_spans(answer, fitted)
    assert texts(record, spans) == ["glargine"]
    completed = texts(record, completed_spans(record, answer, fitted, spans))
    assert completed == (["insulin", "glargine"] if kept else ["glargine"])


def test_a_word_at_a_third_of_the_threshold_is_not_completed(nlp):
    record, answer = answer_of(nlp, "She takes insulin glargine every evening.")
    # insulin: logit -10 + 8.6 = -1.4, probability 0.198: under 0.5 / 2, over 0.5 / 3
    fitted = model(threshold=0.5, glargine=SURE, insulin=8.6)
    spans = predicted_spans(answer, fitted)
    assert texts(record, completed_spans(record, answer, fitted, spans)) == ["glargine"]


LIVES = "Hana Novak lives in Hamburg, hana@novak.org."
# "Novak" and "Hamburg" sure; "Hana": logit -1, probability 0.27, under the threshold 0.5 but
# over half of it: completed beside "Novak" (one noun phrase) unless the question names Novak
EMAIL_MODEL = {"hamburg": SURE, "novak": SURE, "hana": 9.0}


def test_answer_spans_defaults_add_personal_data_complete_facts_keep_question_words(nlp):
    fitted = model(**EMAIL_MODEL)
    record, answer = answer_of(nlp, LIVES, "Where does she live?")
    spans = answer_spans(record, answer, fitted)
    assert texts(record, spans) == ["Hana", "Novak", "Hamburg", "hana@novak.org"]
    record, answer = answer_of(nlp, LIVES, "Where does Novak live?")
    spans = answer_spans(record, answer, fitted)
    assert texts(record, spans) == ["Novak", "Hamburg", "hana@novak.org"]


def test_answer_spans_options(nlp):
    fitted = model(**EMAIL_MODEL)
    record, answer = answer_of(nlp, LIVES, "Where does Novak live?")
    alone = answer_spans(record, answer, fitted, personal_data=False)
    assert texts(record, alone) == ["Novak", "Hamburg"]
    aware = answer_spans(record, answer, fitted, personal_data=False, question_aware=True)
    assert texts(record, aware) == ["Hamburg"]
    record, answer = answer_of(nlp, LIVES, "Where does she live?")
    no_facts = answer_spans(record, answer, fitted, whole_facts=False)
    assert texts(record, no_facts) == ["Novak", "Hamburg", "hana@novak.org"]


def test_features_that_disagree_with_the_tokens_are_refused(nlp):
    # 4 tokens (Born in Hamburg today), no group, no glued punctuation; one feature list short
    record, answer = answer_of(nlp, "Born in Hamburg today")
    short = Answer(answer.doc, answer.features[:-1])
    fitted = model(hamburg=SURE)
    with pytest.raises(ValueError):
        predicted_spans(short, fitted)
    with pytest.raises(ValueError):
        completed_spans(record, short, fitted, [(8, 15)])


def test_an_answer_without_tokens_has_no_spans(nlp):
    record, answer = answer_of(nlp, " ")
    assert answer_spans(record, answer, model(hamburg=SURE)) == []


MEDICATION = ("Which drug does Hana Novak inject?", "She injects adalimumab every 2 weeks.")


def test_identify_learned_defaults_complete_the_answered_phrase(nlp):
    record = QARecord(*MEDICATION)
    result = identify_learned([record], model=model(), progress=False)
    # nothing from the classifier; "2" is a number; "adalimumab" answers "inject"
    assert texts(record, result.records[0].unwanted_spans) == ["adalimumab", "2"]
    off = identify_learned([record], model=model(), whole_facts=False, progress=False)
    assert texts(record, off.records[0].unwanted_spans) == ["2"]


def test_identify_learned_reads_lemmas_and_keeps_question_words(nlp):
    record = QARecord("Where was Ilse born?", "Ilse was born in Hamburg.")
    result = identify_learned([record], model=model(hamburg=SURE, ilse=SURE), progress=False)
    assert texts(record, result.records[0].unwanted_spans) == ["Ilse", "Hamburg"]


def test_identify_learned_shows_its_progress_unless_asked_not_to(nlp, capsys):
    record = QARecord("Where was Ilse born?", "Ilse was born in Hamburg.")
    identify_learned([record], model=model(hamburg=SURE))
    assert "learned" in capsys.readouterr().err
    identify_learned([record], model=model(hamburg=SURE), progress=False)
    assert "learned" not in capsys.readouterr().err


def test_identify_learned_with_an_lm_uses_the_objects_given(nlp, tiny_model, tokenizer):
    # zero weights on the LM's states: the lemma weights decide; the LM named is never loaded
    fitted = dataclasses.replace(
        model(hamburg=SURE), lm="not-a-model", lm_layers=[1],
        lm_weights=[0.0] * tiny_model.config.hidden_size,
    )  # fmt: skip
    record = QARecord("Where was Ilse born?", "Ilse was born in Hamburg.")
    result = identify_learned(
        [record], model=fitted, progress=False, lm_objects=(tiny_model, tokenizer)
    )
    assert texts(record, result.records[0].unwanted_spans) == ["Hamburg"]


# --- learned_focus.py ---------------------------------------------------------------------


def test_asked_verbs_are_the_questions_verb_lemmas(nlp):
    assert asked_verbs(nlp("Which drug does Hana Novak inject?")) == {"inject"}


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        (*MEDICATION, ["adalimumab"]),
        ("What does Hana Novak take?", "She takes insulin glargine every evening.",
         ["insulin", "glargine"]),
        ("Which drug does Hana Novak inject?", "She takes insulin glargine every evening.", []),
        # "sumatriptan" taken for an adjective: in no noun phrase
        ("What does Omar take?", "He takes sumatriptan 50 times.", ["sumatriptan"]),
    ],
)  # fmt: skip
def test_the_object_of_the_asked_verb_is_the_answer(nlp, question, answer, expected):
    record = QARecord(question, answer)
    spans = answered_phrase_spans(record, nlp(answer), nlp(question))
    assert [answer[a:b] for a, b in sorted(spans)] == expected  # each once


# --- learned_fit.py: labels from spans (spaCy tokens) ---


def test_token_labels_mark_the_tokens_a_span_overlaps(nlp):
    doc = nlp("Born in Hamburg today.")  # Born 0-4, in 5-7, Hamburg 8-15, today 16-21, . 21
    assert token_labels(doc, [(8, 15)]) == [0, 0, 1, 0, 0]
    assert token_labels(doc, [(7, 8), (15, 16)]) == [0, 0, 0, 0, 0]  # touching is not overlap
    assert token_labels(doc, [(14, 17)]) == [0, 0, 1, 1, 0]


def test_fit_learned_uses_the_given_config_and_lemmas(nlp):
    records = [
        QARecord("Where was Anna born?", "Anna was born in Prague.", ((17, 23),)),
        QARecord("Where was Omar born?", "Omar was born in Prague.", ((17, 23),)),
    ]
    fitted = fit_learned(records, LearnedConfig(lm=None, min_count=1, threshold=0.3))
    assert fitted.threshold == 0.3 and fitted.lm is None
    assert fitted.weights["lemma=prague"] > 0


def test_featurize_pools_the_lm_states_onto_every_token(nlp, tiny_model, tokenizer):
    record = QARecord("Where was Ilse born?", "Ilse was born in Hamburg.")
    answer = featurize([record], nlp, lm="tiny", lm_layers=[1], lm_objects=(tiny_model, tokenizer))[
        0
    ]
    # 6 tokens (Ilse was born in Hamburg .), each overlapping LM tokens: no row left at zero
    assert answer.dense.shape == (6, tiny_model.config.hidden_size)
    assert (np.abs(answer.dense).sum(axis=1) > 0).all()
