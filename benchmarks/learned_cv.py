"""Nested cross-validation of the ``learned`` identifier on TOFU forget05 (GPT-4o gold).

Outer loop: leave one author out (the 10 folds of ``crossval.py``). Inner loop, on the 9
training authors only: 3 folds of 3 authors (``INNER_FOLDS``; leave-one-author-out inside too
would cost 3 times the fits on 2 busy cores), for every candidate of ``GRID`` (with or without
the LM's hidden states, which layer, their scale, with or without the next token's states) and
every threshold of ``THRESHOLDS``; the candidate and threshold with the best pooled inner
char-F1 are fitted on the 9 authors and predict the held-out author. So no hyperparameter
ever sees the author it is scored on; the pooled outer predictions are the honest score.

The packaged model's hyperparameters come from the same selection run once over all 10 authors
(leave-one-author-out); its cross-validated score with those fixed hyperparameters is reported
too (``chosen-cv``), but it is optimistic: the choice saw every fold.

Every answer is featurized once (spaCy features, LM hidden states of every layer in the grid);
each fit reuses them.

    .venv/bin/python benchmarks/learned_cv.py [--data ../shared/data] [--out PATH] [--save FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from crossval import author_folds, cv_scores

from tif_unlearn.data.loaders import load_records
from tif_unlearn.identify.base import with_spans
from tif_unlearn.identify.learned import (
    LearnedConfig,
    featurize,
    not_in_question,
    predicted_spans,
)
from tif_unlearn.identify.learned_fit import fit_answers, token_labels
from tif_unlearn.identify.lm_features import DEFAULT_LM
from tif_unlearn.identify.ner import load_spacy
from tif_unlearn.identify.personal import personal_data_spans
from tif_unlearn.identify.roles import job_title_spans
from tif_unlearn.identify.score import score_spans

HERE = Path(__file__).resolve().parent
GRID = [LearnedConfig(lm=None)] + [
    LearnedConfig(lm=DEFAULT_LM, lm_layers=(layer,), lm_scale=scale, lm_next=following)
    for layer, following in ((12, False), (18, False), (18, True))
    for scale in (0.05, 0.1, 0.2)
]
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)
INNER_FOLDS = 3


def grouped(authors: list[list[int]], n_groups: int) -> list[list[int]]:
    """``authors`` (answer indices per author) in ``n_groups`` folds of consecutive authors."""
    size = -(-len(authors) // n_groups)
    return [[i for a in authors[k : k + size] for i in a] for k in range(0, len(authors), size)]


@dataclasses.dataclass
class Featurized:
    """forget05 featurized once: answers (dense = every grid layer), labels, personal spans."""

    gold: list
    answers: list
    labels: list
    extra: list
    layers: tuple[int, ...]

    def answers_for(self, config: LearnedConfig, indices) -> list:
        """The answers of ``indices`` with only the hidden states ``config`` uses."""
        if not config.lm:
            return [dataclasses.replace(self.answers[i], dense=None) for i in indices]
        picked = [self.layers.index(n) for n in config.lm_layers]
        out = []
        for i in indices:
            parts = np.split(self.answers[i].dense, len(self.layers), axis=1)
            dense = np.concatenate([parts[k] for k in picked], axis=1)
            out.append(dataclasses.replace(self.answers[i], dense=dense))
        return out


def featurize_gold(gold) -> Featurized:
    layers = tuple(sorted({n for c in GRID if c.lm for n in c.lm_layers}))
    answers = featurize(gold, load_spacy(lemmas=True), lm=DEFAULT_LM, lm_layers=layers)
    labels = [token_labels(a.doc, r.unwanted_spans) for a, r in zip(answers, gold, strict=True)]
    extra = [
        not_in_question(r, personal_data_spans(r.target) + job_title_spans(a.doc))
        for r, a in zip(gold, answers, strict=True)
    ]
    return Featurized(list(gold), answers, labels, extra, layers)


def fit_predict(data: Featurized, config: LearnedConfig, train, test) -> dict:
    """``{threshold: {index: predicted record}}`` for the ``test`` answers."""
    model = fit_answers(data.answers_for(config, train), [data.labels[i] for i in train], config)
    answers = data.answers_for(config, test)
    out: dict = {}
    for threshold in THRESHOLDS:
        model.threshold = threshold
        out[threshold] = {
            i: with_spans(data.gold[i], predicted_spans(a, model) + data.extra[i])
            for i, a in zip(test, answers, strict=True)
        }
    return out


def inner_choice(data: Featurized, authors: list[list[int]]):
    """``(char_f1, config, threshold)`` with the best cross-validated char-F1 over the folds
    ``authors`` (each a list of answer indices of whole authors)."""
    best = None
    for config in GRID:
        pooled: dict = {t: {} for t in THRESHOLDS}
        for held in authors:
            train = [i for other in authors if other is not held for i in other]
            for t, records in fit_predict(data, config, train, held).items():
                pooled[t].update(records)
        for t, records in pooled.items():
            idx = sorted(records)
            f1 = score_spans([data.gold[i] for i in idx], [records[i] for i in idx])["char_f1"]
            if best is None or f1 > best[0]:
                best = (f1, config, t)
    return best


def describe(config: LearnedConfig, threshold: float, f1: float) -> dict:
    chosen = {"inner_char_f1": round(f1, 4), "threshold": threshold, "lm": config.lm}
    if config.lm:
        chosen.update(
            lm_layers=list(config.lm_layers), lm_scale=config.lm_scale, lm_next=config.lm_next
        )
    return chosen


def nested_cv(data: Featurized, log=print) -> dict:
    folds = author_folds(len(data.gold))
    predicted: list = [None] * len(data.gold)
    chosen = []
    for k, held in enumerate(folds):
        inner = grouped([f for f in folds if f is not held], INNER_FOLDS)
        f1, config, threshold = inner_choice(data, inner)
        train = [i for f in folds if f is not held for i in f]
        for i, record in fit_predict(data, config, train, held)[threshold].items():
            predicted[i] = record
        chosen.append(describe(config, threshold, f1))
        log(f"outer fold {k}: {chosen[-1]}")
    return {**cv_scores(data.gold, predicted), "chosen": chosen}


def chosen_cv(data: Featurized, log=print) -> tuple[dict, LearnedConfig]:
    """The selection over all 10 authors in 5 folds of 2 (the packaged model's
    hyperparameters) and its CV score (optimistic: the selection saw every fold)."""
    folds = grouped(author_folds(len(data.gold)), 5)
    f1, config, threshold = inner_choice(data, folds)
    config = dataclasses.replace(config, threshold=threshold)
    log(f"chosen on all authors: {describe(config, threshold, f1)}")
    return {"char_f1": round(f1, 4), **describe(config, threshold, f1)}, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "learned_cv.json")
    parser.add_argument("--save", type=Path, help="also fit the chosen config on all 200, save")
    args = parser.parse_args()
    gold = load_records(args.data / "tofu-uw-annotations" / "forget05.llm.jsonl")
    started = time.perf_counter()
    data = featurize_gold(gold)
    print(f"featurized {len(gold)} answers in {time.perf_counter() - started:.1f} s", flush=True)
    nested = nested_cv(data, log=lambda m: print(m, flush=True))
    chosen, config = chosen_cv(data, log=lambda m: print(m, flush=True))
    results = {"forget05-nested-cv/learned": nested, "forget05-cv/learned-chosen": chosen}
    results["_meta"] = {
        "grid": [describe(c, 0, 0) for c in GRID],
        "thresholds": THRESHOLDS,
        "inner_folds": INNER_FOLDS,
    }
    results["_meta"]["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.save:
        model = fit_answers(data.answers_for(config, range(len(gold))), data.labels, config)
        model.save(args.save)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
