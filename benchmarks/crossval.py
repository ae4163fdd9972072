"""Leave-authors-out cross-validation of the identifiers on TOFU forget05 (GPT-4o gold).

forget05 holds 10 authors, 20 consecutive answers each. Fold k holds out author k: an
identifier that learns is fitted on the other 9 authors and scored on author k; a rule-based
identifier is simply run on author k. The predictions of the 10 folds are pooled and scored once
(micro-averaged over all 200 answers, like every other score here); per-fold F1 and three author
subsets are reported too:

- ``dev``: authors 1-5, whose errors were read while building identifiers v2 (features, the
  ``learned`` defaults l2 1.0 / threshold 0.4, the new ``phrases`` rules);
- ``unread``: authors 6-8, never looked at while building anything;
- ``forget01``: authors 9-10 = TOFU forget01, whose errors the v1 ``phrases`` frame rules came
  from (another GPT-4o run of them).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from tif_unlearn.data.records import Record
from tif_unlearn.identify.score import score_spans

AUTHOR_ANSWERS = 20
SUBSETS = {"dev_authors_1_5": range(0, 5), "unread_authors_6_8": range(5, 8)}
SUBSETS["forget01_authors_9_10"] = range(8, 10)

#: ``predict(train_gold, test_plain) -> predicted records`` for one fold.
FoldPredictor = Callable[[list[Record], list[Record]], list[Record]]


def author_folds(n_records: int, size: int = AUTHOR_ANSWERS) -> list[list[int]]:
    """Indices of each author's answers: ``[[0..19], [20..39], ...]``."""
    return [list(range(start, min(start + size, n_records))) for start in range(0, n_records, size)]


def unannotated(records: Sequence[Record]) -> list[Record]:
    return [dataclasses.replace(r, unwanted_spans=None) for r in records]


def held_out_predictions(gold: Sequence[Record], predict: FoldPredictor):
    """Predictions for every answer, each made without its author's gold; and the seconds."""
    folds = author_folds(len(gold))
    predicted: list[Record | None] = [None] * len(gold)
    started = time.perf_counter()
    for fold in folds:
        train = [gold[i] for other in folds if other is not fold for i in other]
        for i, record in zip(
            fold, predict(train, unannotated([gold[i] for i in fold])), strict=True
        ):
            predicted[i] = record
    return predicted, time.perf_counter() - started


def _f1(gold, predicted, indices) -> float:
    return round(
        score_spans([gold[i] for i in indices], [predicted[i] for i in indices])["char_f1"], 4
    )


def cv_scores(gold: Sequence[Record], predicted: Sequence[Record]) -> dict:
    """Pooled char/word scores, char-F1 of each fold and of the author subsets."""
    scores = score_spans(gold, predicted)
    keep = ("char_p", "char_r", "char_f1", "token_p", "token_r", "token_f1", "n")
    row = {key: round(scores[key], 4) for key in keep}
    folds = author_folds(len(gold))
    row["fold_char_f1"] = [_f1(gold, predicted, fold) for fold in folds]
    for name, authors in SUBSETS.items():
        row[f"char_f1_{name}"] = _f1(gold, predicted, [i for a in authors for i in folds[a]])
    return row
