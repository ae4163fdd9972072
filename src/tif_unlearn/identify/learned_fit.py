"""Fitting the ``learned`` identifier: features of each answer, labels from gold spans, and an
L2-regularised logistic regression fitted by L-BFGS (numpy/scipy only, from zero weights on a
fixed feature order: deterministic).

:func:`featurize` describes every non-space token of each answer once (spaCy doc, sparse
feature strings, pooled LM hidden states); :func:`fit_answers` fits a model to featurized
answers, so that cross-validation featurizes each answer once and fits many times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.records import Record, Span
from ..errors import TifError
from .features import answer_tokens, doc_features, question_contexts
from .learned_model import LearnedConfig, LearnedModel
from .lm_features import answer_states, load_feature_lm, pool_states, with_next
from .ner import load_spacy


@dataclass
class Answer:
    """One featurized answer: its spaCy doc, the feature strings and the pooled LM hidden
    states (n_tokens, D) of its non-space tokens (``dense`` None without an LM)."""

    doc: object
    features: list[list[str]]
    dense: np.ndarray | None = None


def featurize(
    records: Sequence[Record],
    nlp,
    *,
    lexical: bool = True,
    lm: str | None = None,
    lm_layers: Sequence[int] = (),
    lm_objects: tuple | None = None,
) -> list[Answer]:
    """Describe each answer's tokens; ``lm`` (a spec for ``load_model``, or the
    ``(model, tokenizer)`` given as ``lm_objects``) adds its hidden states at ``lm_layers``."""
    docs = list(nlp.pipe(r.target for r in records))
    questions = question_contexts(records, nlp)
    answers = [
        Answer(doc, doc_features(doc, question, lexical=lexical))
        for doc, question in zip(docs, questions, strict=True)
    ]
    if lm or lm_objects:
        model, tokenizer = lm_objects or load_feature_lm(lm)
        states = answer_states(records, model, tokenizer, lm_layers)
        for answer, (token_spans, hidden) in zip(answers, states, strict=True):
            units = [(t.idx, t.idx + len(t)) for t in answer_tokens(answer.doc)]
            answer.dense = pool_states(units, token_spans, hidden)
    return answers


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


def _fit_logistic(x, y: np.ndarray, l2: float, max_iter: int, dense=None) -> np.ndarray:
    """Weights (sparse ``x``'s, then ``dense``'s, bias last) minimising mean log-loss
    + l2/2 * |w|^2 / n (bias not penalised)."""
    from scipy.optimize import minimize

    n, k = x.shape
    dense = np.zeros((n, 0)) if dense is None else dense

    def loss_and_grad(params: np.ndarray):
        w, b = params[:-1], params[-1]
        z = x @ w[:k] + dense @ w[k:] + b
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.logaddexp(0, z) - y * z
        residual = (p - y) / n
        grad = np.concatenate([x.T @ residual, dense.T @ residual]) + l2 * w / n
        return loss.mean() + 0.5 * l2 * (w @ w) / n, np.append(grad, residual.sum())

    start = np.zeros(k + dense.shape[1] + 1)
    result = minimize(
        loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    return result.x


def _feature_index(features: list[list[str]], min_count: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feats in features:
        for f in set(feats):
            counts[f] = counts.get(f, 0) + 1
    return {f: i for i, f in enumerate(sorted(f for f, c in counts.items() if c >= min_count))}


def _standardised(dense: np.ndarray, scale: float):
    """``(scaled standardised rows, mean, scale / std)`` of the hidden states."""
    dense = dense.astype(np.float64)
    mean, factor = dense.mean(axis=0), scale / (dense.std(axis=0) + 1e-6)
    return (dense - mean) * factor, mean, factor


def fit_answers(
    answers: Sequence[Answer], labels: Sequence[Sequence[int]], config: LearnedConfig
) -> LearnedModel:
    """Fit a model to featurized answers and their token labels (0/1 per token)."""
    features = [f for a in answers for f in a.features]
    y = np.array([v for answer_labels in labels for v in answer_labels], dtype=float)
    index = _feature_index(features, config.min_count)
    dense = mean = factor = None
    if config.lm:
        states = [with_next(a.dense) if config.lm_next else a.dense for a in answers]
        dense, mean, factor = _standardised(np.concatenate(states), config.lm_scale)
    params = _fit_logistic(_design_matrix(features, index), y, config.l2, config.max_iter, dense)
    lm_weights, bias = params[len(index) : -1], float(params[-1])
    if config.lm:
        lm_weights = lm_weights * factor  # on raw states: w * scale / std
        bias -= float(lm_weights @ mean)
    return LearnedModel(
        weights={f: float(params[i]) for f, i in index.items() if params[i] != 0.0},
        bias=bias,
        threshold=config.threshold,
        lexical=config.lexical,
        spacy_model=config.spacy_model,
        trained_on={
            "answers": len(answers),
            "tokens": len(y),
            "uw_share": round(float(y.mean()), 4),
        },
        lm=config.lm,
        lm_layers=list(config.lm_layers) if config.lm else [],
        lm_weights=[float(v) for v in lm_weights] if config.lm else [],
        lm_next=bool(config.lm and config.lm_next),
    )


def fit_learned(
    records: Sequence[Record], config: LearnedConfig | None = None, *, lm_objects=None
) -> LearnedModel:
    """Fit a ``learned`` model to annotated records (their ``unwanted_spans`` are the labels);
    ``lm_objects`` (model, tokenizer) stands in for loading ``config.lm``."""
    config = config or LearnedConfig()
    if not records:
        raise TifError("no annotated records to fit the learned identifier on")
    for record in records:
        if record.unwanted_spans is None:
            raise TifError(f"{record.source or 'a record'}: no unwanted-word annotation to learn")
    nlp = load_spacy(config.spacy_model, lemmas=True)
    answers = featurize(
        records,
        nlp,
        lexical=config.lexical,
        lm=config.lm,
        lm_layers=config.lm_layers,
        lm_objects=lm_objects if config.lm else None,
    )
    labels = [token_labels(a.doc, r.unwanted_spans) for a, r in zip(answers, records, strict=True)]
    return fit_answers(answers, labels, config)
