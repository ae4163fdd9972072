"""The ``phrases`` identifier: the content words of the answer's noun phrases are UW.

Linguistic principle (not fitted to any data set): what a factual answer says about its subject
is carried by its noun phrases (who, what, where, which book, which genre, which quality) and,
within them, by the content words: nouns, proper nouns, adjectives and numerals. Verbs,
adverbs, pronouns, determiners and other function words frame the sentence and are general
language. Two rules of information structure (``frames=True``) keep the frame nouns out; they
have no word lists or thresholds, but were found by reading this identifier's errors on TOFU
forget01 (benchmarks/README.md):

- given information: a common noun with a definite or possessive determiner and no modifier
  ("his father", "the genre", "Basil's books") refers to something the reader already knows
  of; it is the frame the new fact attaches to, not the fact;
- relational heads: in "X of Y" the head X is a relation or a quantity ("a blend of", "the
  exploration of", "the boundaries of") and Y carries the content; X and its modifiers are GW.

Two refinements shared with the ``ner`` identifier:

- named entities, numbers and titles found by ``ner`` are added whole, so a title keeps its
  connecting words ("Promise by the Seine");
- question-aware (DESIGN.md section 1): a word the question already contains was given by the
  question (the subject's name, the asked-about relation), so it is context, not answer, and
  stays GW (``question_aware=False`` keeps it).

Uses the same spaCy pipeline as ``ner`` (loaded once per process).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..data.records import Record, Span
from .base import (
    IdentifyResult,
    SampleResult,
    normalized_words,
    question_words,
    run_batched,
    words,
)
from .ner import DEFAULT_SPACY_MODEL, _given_by_question, doc_spans, load_spacy
from .personal import personal_data_spans

CONTENT_POS = frozenset({"NOUN", "PROPN", "ADJ", "NUM"})
DEFINITE_DETERMINERS = frozenset({"the", "this", "that", "these", "those"})
MODIFIER_DEPS = frozenset({"amod", "compound", "nummod", "nmod"})


def is_given_noun(token) -> bool:
    """A common noun with a definite or possessive determiner and no modifier: "his father"."""
    if token.pos_ != "NOUN":
        return False
    children = list(token.children)
    definite = any(
        (c.dep_ == "det" and c.lower_ in DEFINITE_DETERMINERS) or c.dep_ == "poss" for c in children
    )
    return definite and not any(c.dep_ in MODIFIER_DEPS for c in children)


def is_relational_head(token) -> bool:
    """The head noun of "X of Y", or a modifier of it: "a [rich blend] of cultures"."""
    head = token.head if token.dep_ in MODIFIER_DEPS else token
    if head.pos_ != "NOUN":
        return False
    return any(c.dep_ == "prep" and c.lower_ == "of" for c in head.children)


def describes_a_name(token) -> bool:
    """An adjective modifying a proper name: "the [prestigious] CanLit Award", "the [famous]
    Harvard University". A name identifies its referent already, so the adjective only rates it."""
    return token.pos_ == "ADJ" and token.dep_ == "amod" and token.head.pos_ == "PROPN"


def is_predicated_role(token) -> bool:
    """A noun (or its modifier) that the sentence predicates of its subject: "he is [the chief
    financial officer] of ...", "works as [a maintenance engineer]". What the subject *is* is
    the fact, even with a determiner or an "of" complement."""
    head = token.head if token.dep_ in MODIFIER_DEPS else token
    if head.pos_ != "NOUN":
        return False
    return head.dep_ == "attr" or (head.dep_ == "pobj" and head.head.lower_ == "as")


def is_frame_word(token) -> bool:
    if is_predicated_role(token):
        return False
    return is_given_noun(token) or is_relational_head(token) or describes_a_name(token)


def word_at(text: str) -> dict[int, str]:
    """Character index -> the normalized word (``WORD_PATTERN``) covering it."""
    covering = {}
    for start, end in words(text):
        normalized = normalized_words(text[start:end])[0]
        covering.update(dict.fromkeys(range(start, end), normalized))
    return covering


def content_word_spans(doc, context: set[str] = frozenset(), *, frames: bool = True) -> list[Span]:
    """Spans of the content words inside the noun phrases and entities of a parsed text,
    leaving out possessive endings, frame words (``frames``: given nouns and relational heads)
    and tokens of words in ``context`` (normalized words; a token is compared as the whole
    word it is part of: "Al" in "Al-Kuwaiti's")."""
    return [span for group in phrase_content_spans(doc, context, frames=frames) for span in group]


def phrase_content_spans(
    doc, context: set[str] = frozenset(), *, frames: bool = True, phrases=None
) -> list[list[Span]]:
    """:func:`content_word_spans` grouped by noun phrase or entity: ``[[insulin, glargine],
    [evening]]`` for "takes insulin glargine every evening" (``phrases``: these spaCy spans
    instead of all noun phrases and entities)."""
    covering = word_at(doc.text)
    groups = []
    for phrase in [*doc.noun_chunks, *doc.ents] if phrases is None else phrases:
        spans = []
        for token in phrase:
            if token.pos_ not in CONTENT_POS or token.tag_ == "POS":
                continue
            if covering.get(token.idx) in context or (frames and is_frame_word(token)):
                continue
            spans.append((token.idx, token.idx + len(token)))
        groups.append(spans)
    return groups


def identify_phrases(
    records: Sequence[Record],
    *,
    spacy_model: str = DEFAULT_SPACY_MODEL,
    question_aware: bool = True,
    entities: bool = True,
    frames: bool = True,
    personal_data: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> IdentifyResult:
    """Mark the content words of each target's noun phrases (plus ``ner``'s entities, numbers
    and titles when ``entities``, e-mail addresses, URLs and numbers when ``personal_data``) as
    UW; words given by the question and, with ``frames``, frame words (module doc) stay GW."""
    started = time.perf_counter()
    nlp = load_spacy(spacy_model)

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        results: list[SampleResult] = []
        for record, doc in zip(batch, nlp.pipe(r.target for r in batch), strict=True):
            asked = question_words(record) if question_aware else set()
            spans = content_word_spans(doc, asked, frames=frames)
            rule_spans = doc_spans(doc) if entities else []
            rule_spans += personal_data_spans(record.target) if personal_data else []
            spans += [s for s in rule_spans if not _given_by_question(record.target, s, asked)]
            results.append(spans)
        return results

    return run_batched(
        records, batch_fn, batch_size=batch_size, desc="phrases", progress=progress, started=started
    )
