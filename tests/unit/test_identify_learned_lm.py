"""The LM hidden-state features of the `learned` identifier: pooling onto word units, running
the LM only up to the deepest layer needed, the logistic regression with a dense block (hand-made
numbers), fitting and identifying with a tiny random LM, and a clear error when a model's LM
cannot be loaded."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tif_unlearn.data.records import QARecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify import identify
from tif_unlearn.identify.learned import LearnedConfig, LearnedModel, fit_learned
from tif_unlearn.identify.learned_fit import Answer, _fit_logistic, fit_answers
from tif_unlearn.identify.lm_features import _run_to_layers, answer_states, pool_states, with_next

TRAIN = [
    ("Where was Ilse Brandt born?", "Ilse Brandt was born in Hamburg.", "Hamburg"),
    ("Where was Omar Haddad born?", "Omar Haddad was born in Beirut.", "Beirut"),
    ("Where was Lucia Ferro born?", "Lucia Ferro was born in Naples.", "Naples"),
    ("Where was Kenji Mori born?", "Kenji Mori was born in Osaka.", "Osaka"),
]


def annotated(question: str, answer: str, word: str) -> QARecord:
    start = answer.index(word)
    return QARecord(question, answer, unwanted_spans=((start, start + len(word)),))


def test_pool_states_averages_the_overlapping_tokens():
    units = [(0, 5), (6, 10), (11, 12)]  # "Basil" "born" "!" (no LM token: zeros)
    token_spans = [(0, 3), (3, 5), (5, 10)]  # "Bas" "il" " born"
    states = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    pooled = pool_states(units, token_spans, states)
    assert pooled.tolist() == [[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]


def test_run_to_layers_matches_hidden_states_and_stops_early(tiny_model):
    ids = torch.tensor([[5, 6, 7, 8]])
    attention = torch.ones_like(ids)
    with torch.inference_mode():
        full = tiny_model(input_ids=ids, output_hidden_states=True).hidden_states
    calls = []
    handle = tiny_model.model.layers[1].register_forward_hook(lambda *a: calls.append(1))
    first = _run_to_layers(tiny_model, ids, attention, [1])
    handle.remove()
    assert calls == []  # layer 2 never ran
    torch.testing.assert_close(first, full[1].float())
    both = _run_to_layers(tiny_model, ids, attention, [1, 2])
    assert both.shape == (1, 4, 2 * tiny_model.config.hidden_size)
    with pytest.raises(TifError, match="outside"):
        _run_to_layers(tiny_model, ids, attention, [3])


def test_answer_states_cover_the_answer_and_batching_does_not_change_them(tiny_model, tokenizer):
    records = [QARecord(q, a) for q, a, _ in TRAIN]
    one = answer_states(records, tiny_model, tokenizer, [1], batch_size=1)
    batched = answer_states(records, tiny_model, tokenizer, [1], batch_size=3)
    for record, (spans, states), (spans_b, states_b) in zip(records, one, batched, strict=True):
        assert spans == spans_b and states.shape == (len(spans), 64)
        assert spans[-1][1] == len(record.answer)  # the last token ends the answer
        np.testing.assert_allclose(states, states_b, atol=1e-4)


def test_logistic_fit_with_a_dense_block_separates_on_it():
    # the sparse column is all ones (no information); the dense column is +1 for UW, -1 not
    from scipy.sparse import csr_matrix

    x = csr_matrix(np.ones((6, 1)))
    dense = np.array([[1.0], [1.0], [1.0], [-1.0], [-1.0], [-1.0]])
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    w_sparse, w_dense, bias = _fit_logistic(x, y, l2=1.0, max_iter=200, dense=dense)
    # symmetric data: the logit at dense 0 is 0, so w_sparse + bias = 0; w_dense > 0
    assert w_sparse + bias == pytest.approx(0.0, abs=1e-6) and w_dense > 1.0


def test_fit_answers_folds_the_standardisation_into_the_weights():
    # one constant feature; raw hidden value 10 for UW tokens, 2 for the others (mean 6)
    answers = [Answer(None, [["x"], ["x"]], np.array([[10.0], [2.0]])) for _ in range(4)]
    config = LearnedConfig(l2=0.1, lm="tiny", lm_layers=(1,), lm_scale=1.0, lm_next=False)
    model = fit_answers(answers, [[1, 0]] * 4, config)
    probs = model.probabilities([["x"]] * 3, np.array([[10.0], [6.0], [2.0]]))
    assert probs[0] > 0.9 and probs[2] == pytest.approx(1 - probs[0], abs=1e-6)
    assert probs[1] == pytest.approx(0.5, abs=1e-6)  # the mean of the training states
    assert model.lm == "tiny" and model.lm_layers == [1] and len(model.lm_weights) == 1


def test_with_next_appends_the_following_row_and_zeros_at_the_end():
    states = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert with_next(states).tolist() == [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 0, 0]]
    assert with_next(np.zeros((0, 2))).shape == (0, 4)


def test_a_model_with_lm_next_reads_the_next_tokens_states():
    # weights 0 on a token's own state, 1 on the next token's: the logit is the next state
    model = LearnedModel({}, 0.0, lm="tiny", lm_layers=[1], lm_weights=[0.0, 1.0], lm_next=True)
    probs = model.probabilities([["x"]] * 3, np.array([[-5.0], [2.0], [9.0]]))
    expected = 1 / (1 + np.exp(-np.array([2.0, 9.0, 0.0])))
    np.testing.assert_allclose(probs, expected)


def test_lm_next_learns_a_label_that_only_the_next_token_shows():
    # a token is UW when the token AFTER it has state +1 (a name's first word, say); its own
    # state does not tell (state +1 is UW once and GW twice), so only lm_next can separate them
    dense = np.array([[1.0], [-1.0], [1.0], [1.0], [-1.0]])
    labels = [0, 1, 1, 0, 0]
    answers = [Answer(None, [["x"]] * 5, dense) for _ in range(3)]
    config = LearnedConfig(l2=0.01, lm="tiny", lm_layers=(1,), lm_scale=1.0, lm_next=False)
    plain = fit_answers(answers, [labels] * 3, config)
    following = fit_answers(answers, [labels] * 3, dataclasses.replace(config, lm_next=True))
    assert following.lm_next and len(following.lm_weights) == 2 and not plain.lm_next

    def correct(model):
        probs = model.probabilities([["x"]] * 5, dense)
        return [bool(p >= 0.5) == bool(y) for p, y in zip(probs, labels, strict=True)]

    assert all(correct(following)) and not all(correct(plain))


def test_fit_and_identify_with_a_tiny_lm(spacy_lemmas_ready, tiny_model, tokenizer, tmp_path):
    lm = (tiny_model, tokenizer)
    config = LearnedConfig(lm="tiny", lm_layers=(1, 2), lm_scale=0.1)
    gold = [annotated(*row) for row in TRAIN]
    model = fit_learned(gold, config, lm_objects=lm)
    again = fit_learned(gold, config, lm_objects=lm)
    assert model.lm_weights == again.lm_weights and model.weights == again.weights
    # 2 layers, each token's states and the next token's (lm_next, the default)
    assert len(model.lm_weights) == 2 * 2 * tiny_model.config.hidden_size
    plain = [QARecord("Where was Anna Novak born?", "Anna Novak was born in Prague.")]
    options = {"personal_data": False, "progress": False, "lm_objects": lm}
    direct = identify("learned", plain, model=model, **options).records
    assert [plain[0].answer[a:b] for a, b in direct[0].unwanted_spans] == ["Prague"]
    path = model.save(tmp_path / "lm_model.json")
    assert json.loads(path.read_text(encoding="utf-8"))["lm_layers"] == [1, 2]
    loaded = identify("learned", plain, model=path, **options).records
    assert loaded[0].unwanted_spans == direct[0].unwanted_spans


def test_a_model_whose_lm_cannot_be_loaded_fails_in_one_line(spacy_lemmas_ready, tmp_path):
    missing = tmp_path / "no-such-lm"
    model = LearnedModel({"pos=PROPN": 1.0}, 0.0, lm=str(missing), lm_layers=[1], lm_weights=[0.0])
    path = model.save(tmp_path / "needs_lm.json")
    record = QARecord("Where was Anna born?", "Anna was born in Prague.")
    with pytest.raises(TifError, match="needs the language model") as caught:
        identify("learned", [record], model=path, progress=False)
    assert "\n" not in str(caught.value)


def test_a_model_file_with_an_lm_but_no_weights_is_refused(tmp_path):
    from tif_unlearn.identify.learned import load_learned_model

    path = LearnedModel({}, 0.0, lm="smollm2-135m").save(tmp_path / "broken.json")
    with pytest.raises(TifError, match="lm without layers or weights"):
        load_learned_model(path)
    with pytest.raises(TifError):
        LearnedConfig(lm="smollm2-135m", lm_layers=())


@pytest.mark.slow
def test_smollm2_layer_outputs_match_its_hidden_states(smollm2_folder):
    from tif_unlearn.models import load_model

    model, tokenizer = load_model(str(smollm2_folder))
    ids = tokenizer("Question: Where was Basil born?\nAnswer: In Kuwait City.", return_tensors="pt")
    with torch.inference_mode():
        full = model(**ids, output_hidden_states=True).hidden_states
    mine = _run_to_layers(model, ids["input_ids"], ids["attention_mask"], [12])
    torch.testing.assert_close(mine, full[12].float())
