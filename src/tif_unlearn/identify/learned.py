"""The ``learned`` identifier: a word classifier fitted to annotated answers (e.g. GPT-4o's).

Each non-space token of an answer is described by feature strings
(:mod:`~tif_unlearn.identify.features`: spaCy grammar and entities, shape, rarity, the question,
the ``phrases``/``ner`` verdicts, the neighbours' grammar) and scored by an L2-regularised
logistic regression; a token is UW when its probability reaches ``threshold``. Structured
personal data (e-mail addresses, URLs, numbers) and job titles are UW whatever the classifier
says (:mod:`~tif_unlearn.identify.personal`): answers used to fit a model seldom hold any, so
no classifier could learn them.

With a language model (default SmolLM2-135M-Instruct, :mod:`~tif_unlearn.identify.lm_features`)
its hidden states at a middle layer, pooled per token, are features too (a linear probe over
hidden states, as in arXiv 2606.06320, sharing the regression with the sparse features).

A fitted model is a small JSON file (weights by feature name, weights on the LM's hidden
states; :mod:`~tif_unlearn.identify.learned_model`; fitting: :mod:`~tif_unlearn.identify.learned_fit`). The package ships one fitted
on all 200 answers of TOFU forget05 with the TIF paper's GPT-4o spans
(``resources/learned_forget05.json``; its honest score is the leave-one-author-out
nested cross-validation of ``benchmarks/identifiers.py``). Fitting is deterministic: L-BFGS
from zero weights on a fixed feature order, no randomness.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.records import Record, Span
from .base import IdentifyResult, SampleResult, question_words, run_batched, words
from .features import answer_tokens
from .learned_fit import Answer, featurize, fit_learned
from .learned_focus import answered_phrase_spans
from .learned_model import LearnedConfig, LearnedModel, load_learned_model
from .lm_features import load_feature_lm
from .ner import _given_by_question, load_spacy, quoted_title_spans
from .personal import personal_data_spans
from .phrases import phrase_content_spans
from .roles import job_title_spans


def _glued(doc, token) -> bool:
    """Punctuation with no space on either side ("-" in "Al-Kuwaiti")."""
    return (
        token.is_punct
        and token.i > 0
        and not doc[token.i - 1].whitespace_
        and not token.whitespace_
    )


def token_groups(doc, tokens) -> list[list[int]]:
    """Indices (into ``tokens``) of the tokens of each multi-token word ("multi-author") and
    each quoted title: units that are UW or GW as a whole."""
    starts = [t.idx for t in tokens]
    groups = []
    for start, end in [*words(doc.text), *quoted_title_spans(doc.text)]:
        k, inside = bisect.bisect_left(starts, start), []
        while k < len(tokens) and tokens[k].idx + len(tokens[k]) <= end:
            inside.append(k)
            k += 1
        if len(inside) > 1:
            groups.append(inside)
    return groups


def token_probabilities(answer: Answer, model: LearnedModel) -> tuple[list, np.ndarray]:
    """The answer's tokens and the model's UW probability of each."""
    tokens = answer_tokens(answer.doc)
    probs = model.probabilities(answer.features, answer.dense) if tokens else np.zeros(0)
    return tokens, probs


def predicted_spans(answer: Answer, model: LearnedModel) -> list[Span]:
    """Spans of the tokens the model marks UW. A unit of several tokens (:func:`token_groups`)
    is marked as a whole when its tokens' mean probability reaches the threshold; glued
    punctuation between two UW tokens joins them ("Al" "-" "Kuwaiti" -> "Al-Kuwaiti")."""
    doc = answer.doc
    tokens, probs = token_probabilities(answer, model)
    marked = list(probs >= model.threshold)
    for group in token_groups(doc, tokens):
        whole = bool(probs[group].mean() >= model.threshold)
        for k in group:
            marked[k] = whole
    for k in range(1, len(tokens) - 1):
        if _glued(doc, tokens[k]) and marked[k - 1] and marked[k + 1]:
            marked[k] = True
    return [(t.idx, t.idx + len(t)) for t, on in zip(tokens, marked, strict=True) if on]


def whole_phrase_spans(record: Record, doc, spans: list[Span]) -> list[Span]:
    """The content words (:mod:`.phrases`) of every noun phrase that ``spans`` touch, less the
    question's words: the rest of a fact marked in part ("[insulin] glargine", "[type] 1
    diabetes", "[chronic] kidney disease"); half a fact still gives it away."""
    asked = question_words(record)
    whole = []
    for group in phrase_content_spans(doc, asked):
        if any(a < end and start < b for a, b in group for start, end in spans):
            whole += group
    return whole


def completed_spans(record: Record, answer: Answer, model: LearnedModel, spans) -> list[Span]:
    """:func:`whole_phrase_spans` whose token has at least half the threshold's probability: a
    word beside a marked one needs half the evidence ("insulin" 0.35 beside "glargine"), but
    a word the classifier is sure of is left GW (TOFU's "profound prose": 0.02)."""
    tokens, probs = token_probabilities(answer, model)
    probability = {t.idx: p for t, p in zip(tokens, probs, strict=True)}
    candidates = whole_phrase_spans(record, answer.doc, spans)
    return [(a, b) for a, b in candidates if probability.get(a, 0.0) >= model.threshold / 2]


def not_in_question(record: Record, spans: list[Span]) -> list[Span]:
    """The spans whose words are not all words of the record's question."""
    asked = question_words(record)
    return [s for s in spans if not _given_by_question(record.target, s, asked)]


def not_asked_attribute_words(record: Record, spans: list[Span], doc) -> list[Span]:
    """The spans less the lowercase words of the question that name the attribute a copular
    answer gives: "Her phone [number] is 0181 555 0447" for "What is X's phone number?" (the
    subject of "is", given by the question). Elsewhere a question's word can be the fact
    ("He has Crohn's [disease]", "takes levetiracetam for her [epilepsy]") and stays marked,
    as do names the question gives (capitalised)."""
    text, asked = record.target, question_words(record)
    subjects = copula_subjects(doc)

    def attribute_word(span: Span) -> bool:
        inside = any(a <= span[0] and span[1] <= b for a, b in subjects)
        return (
            inside and text[span[0] : span[1]].islower() and _given_by_question(text, span, asked)
        )

    return [s for s in spans if not attribute_word(s)]


def copula_subjects(doc) -> list[Span]:
    """Character ranges of the subjects of the answer's copular main verbs ("Her phone number"
    in "Her phone number is 0181 555 0447")."""
    ranges = []
    for token in doc:
        if token.lemma_ == "be" and token.dep_ == "ROOT":
            for child in token.children:
                if child.dep_ in ("nsubj", "nsubjpass"):
                    words = list(child.subtree)
                    ranges.append((words[0].idx, words[-1].idx + len(words[-1])))
    return ranges


def answer_spans(
    record: Record,
    answer: Answer,
    model: LearnedModel,
    *,
    personal_data: bool = True,
    question_aware: bool = False,
    whole_facts: bool = True,
    question_doc=None,
) -> list[Span]:
    """The UW spans of one featurized answer (options: see :func:`identify_learned`;
    ``question_doc``: the parsed question, for :func:`.learned_focus.answered_phrase_spans`)."""
    spans = predicted_spans(answer, model)
    if question_aware:
        spans = not_in_question(record, spans)
    if not personal_data:
        return spans  # the classifier alone
    spans = not_asked_attribute_words(record, spans, answer.doc)
    found = personal_data_spans(record.target) + job_title_spans(answer.doc)
    spans += not_in_question(record, found)
    if whole_facts:
        if question_doc is not None:
            spans += answered_phrase_spans(record, answer.doc, question_doc)
        spans += completed_spans(record, answer, model, spans)
    return spans


def identify_learned(
    records: Sequence[Record],
    *,
    model: str | Path | LearnedModel | None = None,
    personal_data: bool = True,
    question_aware: bool = False,
    whole_facts: bool = True,
    batch_size: int = 64,
    progress: bool = True,
    lm_objects: tuple | None = None,
) -> IdentifyResult:
    """Mark the tokens a fitted classifier scores as UW (``model``: a :class:`LearnedModel`, a
    saved JSON file, or None for the packaged default fitted on TOFU forget05); with
    ``personal_data`` also e-mail addresses, URLs, numbers and job titles (unless the question
    gives them); ``question_aware`` also drops what the classifier marks when the question
    gives it (off: the classifier sees whether the question holds a word and learns from the
    annotations how much that matters). ``whole_facts`` (issue 34; with ``personal_data``,
    which off leaves the classifier alone) marks facts whole: the
    phrase that answers the question ("Which drug does X inject?" -> "X injects
    [adalimumab]", :mod:`.learned_focus`) and the rest of a noun phrase the classifier marked
    in part (:func:`completed_spans`). A model fitted with an LM loads it (or uses
    ``lm_objects``, a ``(model, tokenizer)`` pair standing in for it)."""
    started = time.perf_counter()
    fitted = model if isinstance(model, LearnedModel) else load_learned_model(model)
    nlp = load_spacy(fitted.spacy_model, lemmas=True)
    if fitted.lm and lm_objects is None:
        lm_objects = load_feature_lm(fitted.lm)
    options = {
        "personal_data": personal_data,
        "question_aware": question_aware,
        "whole_facts": whole_facts,
    }

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        answers = featurize(
            batch, nlp, lexical=fitted.lexical, lm_layers=fitted.lm_layers, lm_objects=lm_objects
        )
        questions = nlp.pipe(getattr(record, "question", "") for record in batch)
        return [
            answer_spans(record, answer, fitted, question_doc=question, **options)
            for record, answer, question in zip(batch, answers, questions, strict=True)
        ]

    return run_batched(
        records,
        batch_fn,
        batch_size=batch_size,
        desc="learned",
        progress=progress,
        started=started,
        by_length=fitted.lm is not None,
    )


__all__ = [
    "Answer",
    "LearnedConfig",
    "LearnedModel",
    "answer_spans",
    "featurize",
    "fit_learned",
    "identify_learned",
    "load_learned_model",
]
