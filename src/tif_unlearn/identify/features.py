"""Word features for the ``learned`` identifier: what spaCy and the rule identifiers say about
each token of an answer, as short strings ("pos=PROPN", "in_question", "prev_dep=prep").

One list of feature strings per non-space token of the parsed answer. The features describe
grammar, entities, word shape, rarity, position, the question (its wh-word; whether the token's
word or lemma occurs in it) and the verdicts of the ``phrases`` and ``ner`` rules. With
``lexical=True`` the lower-cased lemma is a feature too (a learned word list: it can fit the
training authors' vocabulary, which is what cross-validation by author measures).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..data.records import Record, Span
from .base import normalized_words, question_of
from .frequency import zipf
from .ner import _given_by_question, doc_spans, quoted_title_spans
from .phrases import (
    content_word_spans,
    describes_a_name,
    is_given_noun,
    is_predicated_role,
    is_relational_head,
    word_at,
)

WH_WORDS = ("what", "who", "whom", "whose", "where", "when", "which", "why", "how")
FEATURE_VERSION = 1


QuestionContext = tuple[set[str], set[str], str]
LEMMA_ONLY = ("ner",)  # not needed for lemmas (the parser is: without it 3 of 1,400 differ)


def question_contexts(records: Sequence[Record], nlp) -> list[QuestionContext]:
    """(normalized words, lower-cased lemmas, wh-word or "none") of each record's question;
    the questions are parsed in one batch, without the entity recognizer."""
    questions = [question_of(r) for r in records]
    skip = [name for name in LEMMA_ONLY if name in nlp.pipe_names]
    docs = iter(nlp.pipe([q for q in questions if q], disable=skip))
    return [_question_context(q, next(docs) if q else None) for q in questions]


def _question_context(question: str, doc) -> QuestionContext:
    lemmas = {t.lemma_.lower() for t in doc} if doc is not None else set()
    wh = next((w for w in normalized_words(question) if w in WH_WORDS), "none")
    return set(normalized_words(question)), lemmas, wh


def answer_tokens(doc) -> list:
    """The tokens of a parsed answer that are not whitespace."""
    return [t for t in doc if not t.is_space]


def _covered(token, spans: Sequence[Span]) -> bool:
    end = token.idx + len(token)
    return any(token.idx < b and a < end for a, b in spans)


def _shape(token) -> str:
    """spaCy's word shape, runs of a character class cut to 2 ("Xxxxx" -> "Xx", "dddd" -> "dd")."""
    return re.sub(r"(.)\1+", r"\1\1", token.shape_)[:6]


def _rarity(token) -> str:
    if not token.is_alpha:
        return "rarity=none"
    return f"rarity={min(7, int(zipf(token.lower_)))}"


def token_own_features(token, lexical: bool) -> list[str]:
    """Features of the token alone: grammar, entity, shape, rarity, flags."""
    feats = [
        f"pos={token.pos_}",
        f"tag={token.tag_}",
        f"dep={token.dep_}",
        f"ent={token.ent_type_ or 'O'}",
        f"iob={token.ent_iob_ or 'O'}",
        f"shape={_shape(token)}",
        _rarity(token),
        f"head_pos={token.head.pos_}",
        f"dep_head={token.dep_}>{token.head.pos_}",
        f"pos_dep={token.pos_}_{token.dep_}",
    ]
    flags = {
        "stop": token.is_stop,
        "punct": token.is_punct,
        "like_num": token.like_num,
        "digit": any(c.isdigit() for c in token.text),
        "like_email": token.like_email,
        "like_url": token.like_url,
        "title": token.is_title,
        "sent_start": bool(token.is_sent_start),
        "given_noun": is_given_noun(token),
        "relational_head": is_relational_head(token),
        "predicated_role": is_predicated_role(token),
        "describes_a_name": describes_a_name(token),
    }
    feats += [name for name, on in flags.items() if on]
    if lexical or token.is_stop:
        feats.append(f"lemma={token.lemma_.lower()}")
    return feats


def _context_flags(token, context: dict) -> list[str]:
    """Features from the question and the rule identifiers' spans."""
    words, lemmas, wh = context["question"]
    in_question = context["word_at"].get(token.idx, token.lower_) in words
    flags = {
        "in_question": in_question,
        "lemma_in_question": token.lemma_.lower() in lemmas,
        "in_noun_chunk": token.i in context["chunk_tokens"],
        "in_phrases": _covered(token, context["phrases"]),
        "in_ner": _covered(token, context["ner"]),
    }
    feats = [name for name, on in flags.items() if on]
    feats += [f"wh={wh}", f"wh_pos={wh}_{token.pos_}", f"wh_in_question={wh}_{in_question}"]
    feats += [
        f"pos_phrases_question={token.pos_}_{flags['in_phrases']}_{in_question}",
        f"ent_question={token.ent_type_ or 'O'}_{in_question}",
        f"quoted={_covered(token, context['quoted'])}_{in_question}",
    ]
    return feats


def _position(token, n_tokens: int) -> str:
    return f"position={min(4, 5 * token.i // max(1, n_tokens))}"


def doc_context(doc, question: QuestionContext) -> dict:
    """What the features of every token of ``doc`` need: question, noun chunks, the spans of
    the ``phrases`` and ``ner`` rules (without the words the question gives)."""
    asked = question[0]
    return {
        "question": question,
        "chunk_tokens": {t.i for chunk in doc.noun_chunks for t in chunk},
        "phrases": content_word_spans(doc, asked),
        "ner": [s for s in doc_spans(doc) if not _given_by_question(doc.text, s, asked)],
        "quoted": quoted_title_spans(doc.text),
        "word_at": word_at(doc.text),
    }


def doc_features(doc, question: QuestionContext, *, lexical: bool = True) -> list[list[str]]:
    """Feature strings of each non-space token of ``doc`` (a parsed answer; ``question``: its
    question's :func:`question_contexts` entry), with the own and context features of its
    neighbours (prefixed ``prev_``/``next_``)."""
    context = doc_context(doc, question)
    tokens = answer_tokens(doc)
    own = [
        token_own_features(t, lexical) + _context_flags(t, context) + [_position(t, len(doc))]
        for t in tokens
    ]
    window = [neighbour_features(f) for f in own]
    out = []
    for k, feats in enumerate(own):
        extra = [f"prev_{f}" for f in window[k - 1]] if k > 0 else ["prev=START"]
        extra += [f"next_{f}" for f in window[k + 1]] if k + 1 < len(own) else ["next=END"]
        out.append(feats + extra)
    return out


NEIGHBOUR_PREFIXES = ("pos=", "dep=", "ent=", "in_phrases", "in_question", "punct", "quoted")


def _stop_lemma(feats: list[str]) -> list[str]:
    return [f for f in feats if f.startswith("lemma=")] if "stop" in feats else []


def neighbour_features(feats: list[str]) -> list[str]:
    """The features of a token that its neighbours see."""
    return [f for f in feats if f.startswith(NEIGHBOUR_PREFIXES)] + _stop_lemma(feats)
