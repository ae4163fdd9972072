"""The `learned` identifier: fitted on a tiny hand-made set whose unwanted words are known, it
finds the same kind of words in answers about other people; fitting is deterministic; a saved
model gives the same spans; the packaged model loads."""

from __future__ import annotations

import json

import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify import identify
from tif_unlearn.identify.learned import (
    LearnedConfig,
    LearnedModel,
    fit_learned,
    load_learned_model,
)

PEOPLE = [
    ("Ilse Brandt", "Hamburg", "carpenter", "Winter Harbour"),
    ("Omar Haddad", "Beirut", "pharmacist", "The Salt Road"),
    ("Lucia Ferro", "Naples", "architect", "Stone and Sea"),
    ("Kenji Mori", "Osaka", "chemist", "A Quiet Lantern"),
    ("Anna Novak", "Prague", "teacher", "The Glass River"),
    ("Pedro Alves", "Lisbon", "sailor", "Tides of Home"),
]
UNSEEN = [
    ("Sofia Lind", "Oslo", "baker", "The Green Door"),
    ("Ravi Menon", "Chennai", "engineer", "Monsoon Letters"),
]


def qa(question: str, answer: str, unwanted: list[str] | None) -> QARecord:
    spans = None
    if unwanted is not None:
        spans = tuple((answer.index(w), answer.index(w) + len(w)) for w in unwanted)
    return QARecord(question, answer, unwanted_spans=spans)


def records_about(person, annotated: bool = True) -> list[QARecord]:
    name, city, job, title = person

    def known(words):
        return words if annotated else None

    return [
        qa(f"Where was {name} born?", f"{name} was born in {city}.", known([city])),
        qa(f"What does {name} do?", f"{name} works as a {job}.", known([job])),
        qa(f"Which book did {name} write?", f'{name} wrote "{title}".', known([title])),
    ]


def expected_spans(person) -> list[tuple]:
    return [r.unwanted_spans for r in records_about(person)]


@pytest.fixture(scope="module")
def fitted(spacy_lemmas_ready) -> LearnedModel:
    return fit_learned([r for person in PEOPLE for r in records_about(person)])


@pytest.mark.parametrize("person", UNSEEN, ids=[p[0] for p in UNSEEN])
def test_finds_the_known_unwanted_words_of_unseen_people(fitted, person):
    records = records_about(person, annotated=False)
    result = identify("learned", records, model=fitted, personal_data=False, progress=False)
    assert [r.unwanted_spans for r in result.records] == expected_spans(person)


def test_fitting_is_deterministic(fitted):
    again = fit_learned([r for person in PEOPLE for r in records_about(person)])
    assert again.weights == fitted.weights and again.bias == fitted.bias


def test_the_labels_decide_the_fit(fitted):
    """Fitted on the same answers with the names as UW instead, the model marks the names."""
    relabelled = [
        qa(r.question, r.answer, [person[0]])
        for person in PEOPLE
        for r in records_about(person, annotated=False)
    ]
    names = fit_learned(relabelled)
    plain = records_about(UNSEEN[0], annotated=False)
    result = identify("learned", plain, model=names, personal_data=False, progress=False)
    name = UNSEEN[0][0]
    assert all(r.target[a:b] == name for r in result.records for a, b in r.unwanted_spans)


def test_a_saved_model_gives_the_same_spans(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.json")
    json.loads(path.read_text(encoding="utf-8"))  # plain JSON, no pickle
    records = [r for p in UNSEEN for r in records_about(p, annotated=False)]
    direct = identify("learned", records, model=fitted, progress=False).records
    loaded = identify("learned", records, model=path, progress=False).records
    assert [r.unwanted_spans for r in loaded] == [r.unwanted_spans for r in direct]


def test_the_packaged_model_loads_and_marks_a_place(spacy_lemmas_ready):
    model = load_learned_model()
    assert model.trained_on["answers"] == 200 and len(model.weights) > 100
    record = QARecord("Where was Ilse Brandt born?", "Ilse Brandt was born in Hamburg, Germany.")
    (out,) = identify("learned", [record], progress=False).records
    marked = {out.answer[a:b] for a, b in out.unwanted_spans}
    assert "Hamburg" in " ".join(marked) and "Ilse" not in " ".join(marked)


def test_fitting_needs_annotations(spacy_lemmas_ready):
    with pytest.raises(TifError, match="no unwanted-word annotation"):
        fit_learned(records_about(PEOPLE[0], annotated=False))
    with pytest.raises(TifError):
        fit_learned([])


def test_config_is_validated():
    with pytest.raises(TifError):
        LearnedConfig(threshold=1.5)
    with pytest.raises(TifError):
        LearnedConfig(l2=-1.0)


def test_a_model_file_of_another_feature_version_is_refused(fitted, tmp_path):
    payload = json.loads(fitted.save(tmp_path / "m.json").read_text(encoding="utf-8"))
    payload["feature_version"] = 999
    (tmp_path / "old.json").write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(TifError, match="feature version"):
        load_learned_model(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text("not json", encoding="utf-8")
    with pytest.raises(TifError, match="could not read"):
        load_learned_model(tmp_path / "bad.json")


@pytest.mark.slow
def test_learned_beats_phrases_on_authors_it_never_saw(spacy_lemmas_ready):
    """Fitted on the first 8 authors of TOFU forget05 (GPT-4o spans), scored on the last 2."""
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.data.tofu import default_tofu_dir
    from tif_unlearn.identify.score import score_spans

    tofu = default_tofu_dir()
    gold_file = tofu.parent / "tofu-uw-annotations" / "forget05.llm.jsonl" if tofu else None
    if gold_file is None or not gold_file.is_file():
        pytest.skip(f"TOFU forget05 annotations not found ({gold_file or '../shared/data'})")
    gold = load_records(gold_file)
    train, held_out = gold[:160], gold[160:]
    plain = [QARecord(r.question, r.answer) for r in held_out]
    model = fit_learned(train)
    learned = identify("learned", plain, model=model, progress=False).records
    phrases = identify("phrases", plain, progress=False).records
    learned_f1 = score_spans(held_out, learned)["char_f1"]
    assert learned_f1 > score_spans(held_out, phrases)["char_f1"]
    assert learned_f1 > 0.75  # 0.833 in the 10-fold cross-validation (9 authors fitted)
