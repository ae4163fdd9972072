"""The phrase that answers the question, for the ``learned`` identifier's whole-fact rules.

When the answer repeats the question's verb, the object or complement of that verb is what
the question asked for: "Which drug does Hana Novak inject?" -> "She injects [adalimumab]
every two weeks"; "What medication does Elin Marsh take?" -> "She takes [insulin glargine]
every evening". Its content words (:mod:`.phrases`: nouns, proper nouns, adjectives and
numerals, less frame words and the question's words) are UW. A classifier fitted on TOFU's
answers, where the facts are mostly names, misses such lowercase facts (a medication, a
diagnosis) unless they are marked by rule; no word lists, no thresholds.
"""

from __future__ import annotations

from ..data.records import Record, Span
from .base import question_words
from .phrases import phrase_content_spans

OBJECT_DEPS = frozenset({"dobj", "attr", "oprd"})


def asked_verbs(question_doc) -> set[str]:
    """Lemmas of the question's main verbs ("inject" in "Which drug does X inject?")."""
    return {t.lemma_.lower() for t in question_doc if t.pos_ == "VERB"}


def answered_phrase_spans(record: Record, doc, question_doc) -> list[Span]:
    """Content words of the noun phrases that are the object or complement of an answer verb
    the question asks with (module doc)."""
    verbs = asked_verbs(question_doc)
    objects = {
        child.i
        for token in doc
        if token.pos_ == "VERB" and token.lemma_.lower() in verbs
        for child in token.children
        if child.dep_ in OBJECT_DEPS
    }
    chunks = [chunk for chunk in doc.noun_chunks if chunk.root.i in objects]
    in_chunks = {chunk.root.i for chunk in chunks}
    # an object the tagger took for an adjective is in no noun phrase: "takes [sumatriptan]"
    alone = [doc[i : i + 1] for i in sorted(objects - in_chunks)]
    groups = phrase_content_spans(doc, question_words(record), phrases=chunks + alone)
    return [span for group in groups for span in group]
