"""The ``learned`` identifier: a word classifier fitted to annotated answers (e.g. GPT-4o's).

Each non-space token of an answer is described by feature strings
(:mod:`~tif_unlearn.identify.features`: spaCy grammar and entities, shape, rarity, the question,
the ``phrases``/``ner`` verdicts, the neighbours' grammar) and scored by an L2-regularised
logistic regression; a token is UW when its probability reaches ``threshold``. Structured
personal data (e-mail addresses, URLs, numbers) and job titles are UW whatever the classifier
says (:mod:`~tif_unlearn.identify.personal`): answers used to fit a model seldom hold any, so
no classifier could learn them.

A fitted model is a small JSON file (weights by feature name). The package ships one fitted
on all 200 answers of TOFU forget05 with the TIF paper's GPT-4o spans
(``resources/learned_forget05.json``; its honest score is the leave-one-author-out
cross-validation of ``benchmarks/identifiers.py``). Fitting is deterministic: L-BFGS from zero
weights on a fixed feature order, no randomness.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..data.records import Record, Span
from ..errors import TifError
from .base import IdentifyResult, SampleResult, question_words, run_batched, words
from .features import FEATURE_VERSION, answer_tokens, doc_features
from .ner import (
    DEFAULT_SPACY_MODEL,
    _given_by_question,
    load_spacy,
    quoted_title_spans,
)
from .personal import personal_data_spans
from .roles import job_title_spans

DEFAULT_MODEL_RESOURCE = "learned_forget05.json"


@dataclass(frozen=True)
class LearnedConfig:
    """How to fit a ``learned`` model."""

    l2: float = field(default=1.0, metadata={"help": "L2 penalty on the weights"})
    threshold: float = field(default=0.4, metadata={"help": "UW when probability >= this"})
    min_count: int = field(default=2, metadata={"help": "drop features seen fewer times"})
    lexical: bool = field(default=True, metadata={"help": "lemmas are features"})
    max_iter: int = field(default=500, metadata={"help": "L-BFGS iterations"})
    spacy_model: str = DEFAULT_SPACY_MODEL

    def __post_init__(self) -> None:
        if self.l2 < 0 or not 0 < self.threshold < 1 or self.min_count < 1 or self.max_iter < 1:
            raise TifError(f"invalid LearnedConfig: {self}")


@dataclass
class LearnedModel:
    """A fitted classifier: one weight per feature string, a bias and a threshold."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.4
    lexical: bool = True
    spacy_model: str = DEFAULT_SPACY_MODEL
    trained_on: dict = field(default_factory=dict)
    feature_version: int = FEATURE_VERSION

    def probabilities(self, features: list[list[str]]) -> np.ndarray:
        """UW probability of each token given its feature strings."""
        w = self.weights
        logits = np.array([self.bias + sum(w.get(f, 0.0) for f in feats) for feats in features])
        return 1.0 / (1.0 + np.exp(-logits))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = dataclasses.asdict(self)
        payload["weights"] = {k: round(v, 5) for k, v in sorted(self.weights.items())}
        path.write_text(json.dumps(payload, indent=0) + "\n", encoding="utf-8")
        return path


def load_learned_model(path: str | Path | None = None) -> LearnedModel:
    """Read a model saved by :meth:`LearnedModel.save`; None reads the packaged default."""
    try:
        if path is None:
            packaged = resources.files("tif_unlearn").joinpath(
                f"resources/{DEFAULT_MODEL_RESOURCE}"
            )
            payload = json.loads(packaged.read_text(encoding="utf-8"))
        else:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        model = LearnedModel(**payload)
    except (OSError, ValueError, TypeError) as exc:
        where = path or DEFAULT_MODEL_RESOURCE
        raise TifError(f"could not read the learned model {where}: {exc}") from exc
    if model.feature_version != FEATURE_VERSION:
        raise TifError(
            f"{path}: made for feature version {model.feature_version}, this is {FEATURE_VERSION}"
        )
    return model


def token_labels(doc, spans: Sequence[Span]) -> list[int]:
    """1 for each non-space token of ``doc`` that overlaps a gold span, else 0."""
    labels = []
    for token in answer_tokens(doc):
        end = token.idx + len(token)
        labels.append(int(any(token.idx < b and a < end for a, b in spans)))
    return labels


def _design_matrix(features: list[list[str]], index: dict[str, int]):
    from scipy.sparse import csr_matrix

    rows, cols = [], []
    for r, feats in enumerate(features):
        found = sorted({index[f] for f in feats if f in index})
        rows += [r] * len(found)
        cols += found
    data = np.ones(len(rows))
    return csr_matrix((data, (rows, cols)), shape=(len(features), len(index)))


def _fit_logistic(x, y: np.ndarray, l2: float, max_iter: int) -> np.ndarray:
    """Weights (bias last) minimising mean log-loss + l2/2 * |w|^2 / n (bias not penalised)."""
    from scipy.optimize import minimize

    n = x.shape[0]

    def loss_and_grad(params: np.ndarray):
        w, b = params[:-1], params[-1]
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.logaddexp(0, z) - y * z
        residual = (p - y) / n
        grad = np.append(x.T @ residual + l2 * w / n, residual.sum())
        return loss.mean() + 0.5 * l2 * (w @ w) / n, grad

    start = np.zeros(x.shape[1] + 1)
    result = minimize(
        loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    return result.x


def training_examples(records: Sequence[Record], nlp, lexical: bool):
    """Feature lists and labels of every non-space token of the annotated records."""
    features, labels = [], []
    for record, doc in zip(records, nlp.pipe(r.target for r in records), strict=True):
        if record.unwanted_spans is None:
            raise TifError(f"{record.source or 'a record'}: no unwanted-word annotation to learn")
        features += doc_features(doc, record, nlp, lexical=lexical)
        labels += token_labels(doc, record.unwanted_spans)
    return features, np.array(labels, dtype=float)


def fit_learned(records: Sequence[Record], config: LearnedConfig = LearnedConfig()) -> LearnedModel:
    """Fit a ``learned`` model to annotated records (their ``unwanted_spans`` are the labels)."""
    if not records:
        raise TifError("no annotated records to fit the learned identifier on")
    nlp = load_spacy(config.spacy_model, lemmas=True)
    features, labels = training_examples(records, nlp, config.lexical)
    counts: dict[str, int] = {}
    for feats in features:
        for f in set(feats):
            counts[f] = counts.get(f, 0) + 1
    kept = sorted(f for f, c in counts.items() if c >= config.min_count)
    index = {f: i for i, f in enumerate(kept)}
    params = _fit_logistic(_design_matrix(features, index), labels, config.l2, config.max_iter)
    return LearnedModel(
        weights={f: float(params[i]) for f, i in index.items() if params[i] != 0.0},
        bias=float(params[-1]),
        threshold=config.threshold,
        lexical=config.lexical,
        spacy_model=config.spacy_model,
        trained_on={
            "answers": len(records),
            "tokens": len(labels),
            "uw_share": round(float(labels.mean()), 4),
        },
    )


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


def predicted_spans(doc, features: list[list[str]], model: LearnedModel) -> list[Span]:
    """Spans of the tokens the model marks UW. A unit of several tokens (:func:`token_groups`)
    is marked as a whole when its tokens' mean probability reaches the threshold; glued
    punctuation between two UW tokens joins them ("Al" "-" "Kuwaiti" -> "Al-Kuwaiti")."""
    tokens = answer_tokens(doc)
    probs = model.probabilities(features) if tokens else np.zeros(0)
    marked = list(probs >= model.threshold)
    for group in token_groups(doc, tokens):
        whole = bool(probs[group].mean() >= model.threshold)
        for k in group:
            marked[k] = whole
    for k in range(1, len(tokens) - 1):
        if _glued(doc, tokens[k]) and marked[k - 1] and marked[k + 1]:
            marked[k] = True
    return [(t.idx, t.idx + len(t)) for t, on in zip(tokens, marked, strict=True) if on]


def not_in_question(record: Record, spans: list[Span]) -> list[Span]:
    """The spans whose words are not all words of the record's question."""
    asked = question_words(record)
    return [s for s in spans if not _given_by_question(record.target, s, asked)]


def identify_learned(
    records: Sequence[Record],
    *,
    model: str | Path | LearnedModel | None = None,
    personal_data: bool = True,
    question_aware: bool = False,
    batch_size: int = 64,
    progress: bool = True,
) -> IdentifyResult:
    """Mark the tokens a fitted classifier scores as UW (``model``: a :class:`LearnedModel`, a
    saved JSON file, or None for the packaged default fitted on TOFU forget05); with
    ``personal_data`` also e-mail addresses, URLs, numbers and job titles (unless the question
    gives them); ``question_aware`` also drops what the classifier marks when the question
    gives it (off: the classifier sees whether the question holds a word and learns from the
    annotations how much that matters)."""
    started = time.perf_counter()
    fitted = model if isinstance(model, LearnedModel) else load_learned_model(model)
    nlp = load_spacy(fitted.spacy_model, lemmas=True)

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        results: list[SampleResult] = []
        for record, doc in zip(batch, nlp.pipe(r.target for r in batch), strict=True):
            features = doc_features(doc, record, nlp, lexical=fitted.lexical)
            spans = predicted_spans(doc, features, fitted)
            if question_aware:
                spans = not_in_question(record, spans)
            if personal_data:
                found = personal_data_spans(record.target) + job_title_spans(doc)
                spans += not_in_question(record, found)
            results.append(spans)
        return results

    return run_batched(
        records, batch_fn, batch_size=batch_size, desc="learned", progress=progress, started=started
    )


__all__ = [
    "LearnedConfig",
    "LearnedModel",
    "fit_learned",
    "identify_learned",
    "load_learned_model",
]
