"""The learned identifier's question features: the questions are parsed in one batch without
the entity recognizer, and must give what the full pipeline gives one question at a time."""

from __future__ import annotations

from tif_unlearn.data.records import QARecord
from tif_unlearn.identify.features import _question_context, question_contexts
from tif_unlearn.identify.ner import load_spacy

QUESTIONS = [
    "Which awards has Jad Ambrose Al-Shamary been bestowed with for his writing?",
    "How has the author Kalkidan Abera been received in her home country, Ethiopia?",
    "Where was she born, and what were her parents' jobs?",
    "",
    "Who wrote 'The Lighthouse Keepers' in 1998?",
]


def _records(questions):
    return [QARecord(question=q, answer="She was born in Paris.") for q in questions]


def test_batched_questions_match_the_full_pipeline_one_at_a_time(spacy_lemmas_ready):
    nlp = load_spacy(lemmas=True)
    expected = [_question_context(q, nlp(q) if q else None) for q in QUESTIONS]
    assert question_contexts(_records(QUESTIONS), nlp) == expected


def test_question_context_words_lemmas_and_wh_word(spacy_lemmas_ready):
    nlp = load_spacy(lemmas=True)
    (words, lemmas, wh), empty = question_contexts(_records([QUESTIONS[2], ""]), nlp)
    assert wh == "where"
    assert {"born", "parents"} <= words
    assert {"be", "bear", "parent", "job"} <= lemmas
    assert empty == (set(), set(), "none")
