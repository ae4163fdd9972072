"""Whole facts of personal data (issue 34): `learned` must not lose to `phrases` on the share
of facts (medications, diagnoses, e-mail addresses, amounts, phone numbers, addresses,
employers) marked UW *whole*. The hand-written sets are those of
``benchmarks/personal_facts.py``: tests/data/personal_facts.jsonl (42 answers, read while the
rules were designed) and personal_facts_heldout.jsonl (24 answers, written after)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.identify import identify
from tif_unlearn.identify.learned import not_asked_attribute_words, whole_phrase_spans
from tif_unlearn.identify.learned_focus import answered_phrase_spans

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "personal_facts.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))
from personal_facts import fact_found, load_set, marked_part, score  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def test_the_set_is_well_formed(rows):
    assert len(rows) == 42
    kinds = {fact["kind"] for row in rows for fact in row["facts"]}
    assert {"medication", "diagnosis", "email", "amount", "phone", "address", "employer"} <= kinds
    assert all(f["text"] in row["answer"] for row in rows for f in row["facts"])


def test_a_fact_counts_only_when_marked_whole():
    answer = "She takes insulin glargine every evening."
    fact = (10, 26)  # "insulin glargine"
    assert fact_found(answer, fact, [(10, 26)])
    assert fact_found(answer, fact, [(10, 17), (18, 26)])  # the space between needs no mark
    assert not fact_found(answer, fact, [(18, 26)])  # "glargine" alone
    assert marked_part(answer, fact, [(18, 26)]) == "_______ glargine"


def test_score_on_hand_counted_numbers():
    row = {
        "answer": "He takes metoprolol and owes 12,400 euros.",
        "facts": [
            {"text": "metoprolol", "kind": "medication"},
            {"text": "12,400 euros", "kind": "amount"},
        ],
    }
    # metoprolol (9, 19) whole; of "12,400 euros" (29, 41) only "12,400": 1 of 2 facts found.
    # Frame words: He, takes, and, owes = 4; "owes" (24, 28) is marked: 3 / 4 stay GW.
    result = score([row], [[(9, 19), (24, 28), (29, 35)]])
    assert result["whole_fact_recall"] == 0.5
    assert result["by_kind"] == {"amount": "0/1", "medication": "1/1"}
    assert result["frame_gw_share"] == 0.75
    assert result["missed"] == [{"fact": "12,400 euros", "marked": "12,400 _____"}]


def test_a_fact_marked_in_part_is_completed(spacy_lemmas_ready):
    from tif_unlearn.identify.ner import load_spacy

    record = QARecord(
        "What medication does Elin Marsh take?", "She takes insulin glargine every evening."
    )
    doc = load_spacy(lemmas=True)(record.answer)
    spans = whole_phrase_spans(record, doc, [(18, 26)])  # the classifier marked "glargine"
    assert [record.answer[a:b] for a, b in spans] == ["insulin", "glargine"]
    assert whole_phrase_spans(record, doc, []) == []  # nothing marked: nothing added


def marked(record, spans) -> list[str]:
    return [record.answer[a:b] for a, b in spans]


def test_the_phrase_that_answers_the_question(spacy_lemmas_ready):
    from tif_unlearn.identify.ner import load_spacy

    nlp = load_spacy(lemmas=True)
    asked = QARecord("What does Ola Berg take at night?", "Ola Berg takes melatonin at night.")
    found = answered_phrase_spans(asked, nlp(asked.answer), nlp(asked.question))
    assert marked(asked, found) == ["melatonin"]
    other = QARecord("Which pill keeps Ola Berg calm?", "Ola Berg takes diazepam.")
    assert answered_phrase_spans(other, nlp(other.answer), nlp(other.question)) == []


@pytest.mark.parametrize("name", ["personal_facts", "personal_facts_heldout"])
def test_learned_does_not_lose_to_phrases_on_whole_facts(spacy_lemmas_ready, name):
    rows = load_set(name)
    records = [QARecord(row["question"], row["answer"]) for row in rows]
    recall = {}
    for identifier in ("phrases", "learned"):
        found = identify(identifier, records, progress=False).records
        recall[identifier] = score(rows, [r.unwanted_spans or () for r in found])
    assert recall["learned"]["whole_fact_recall"] >= recall["phrases"]["whole_fact_recall"]
    assert recall["learned"]["whole_fact_recall"] >= 0.95, recall["learned"]["missed"]


def test_only_the_attribute_a_copular_answer_names_is_dropped(spacy_lemmas_ready):
    from tif_unlearn.identify.ner import load_spacy

    nlp = load_spacy(lemmas=True)

    def kept(question: str, answer: str, words: tuple[str, ...]) -> list[str]:
        spans = [(answer.index(w), answer.index(w) + len(w)) for w in words]
        record = QARecord(question, answer)
        return [answer[a:b] for a, b in not_asked_attribute_words(record, spans, nlp(answer))]

    phone = ("What is Marisol Quennix's phone number?", "Marisol's phone number is 0181.")
    assert kept(*phone, ("Marisol", "number", "0181")) == ["Marisol", "0181"]
    disease = ("What disease does Marcus Bell have?", "He has Crohn's disease.")
    assert kept(*disease, ("Crohn's", "disease")) == ["Crohn's", "disease"]
    asked = ("What does Fatima take for her epilepsy?", "She takes levetiracetam for her epilepsy.")
    assert kept(*asked, ("levetiracetam", "epilepsy")) == ["levetiracetam", "epilepsy"]
    # the word is the whole subject (the span starts and ends where the subject does)
    bare = ("What is Marisol's phone number?", "For Marisol, number is 0181.")
    assert kept(*bare, ("number", "0181")) == ["0181"]
    # only a copula's subject names an attribute: another verb's subject keeps its facts
    other_verb = ("What helps Marisol's diabetes?", "Her diabetes responds to insulin.")
    assert kept(*other_verb, ("diabetes", "insulin")) == ["diabetes", "insulin"]


def test_learned_leaves_the_asked_word_of_a_phone_answer_gw(spacy_lemmas_ready):
    record = QARecord(
        "What is Marisol Quennix's phone number?", "Her phone number is 0181 555 0447."
    )
    found = identify("learned", [record], progress=False).records[0]
    marked = {record.answer[a:b] for a, b in found.unwanted_spans}
    assert "0181 555 0447" in marked
    assert not any("number" in m for m in marked)
