"""Score predicted unwanted-word spans against gold spans.

- Character level: precision / recall / F1 of UW over the non-space characters of the
  answers, micro-averaged (counts summed over all answers, then the ratios).
- Token level: the same over tokens; a token is UW when it overlaps any span. Tokens are the
  tokenizer's (``tokenizer`` given, offsets of the answer alone) or else the words of
  ``WORD_PATTERN``.

A ratio with a zero denominator is 0.0. Records are matched by index; a prediction whose
``unwanted_spans`` is None (the identifier failed on it) counts as "no UW predicted".
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.records import Record, Span
from ..errors import TifError
from .base import words


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _covered(n: int, spans: Sequence[Span]) -> list[bool]:
    flags = [False] * n
    for start, end in spans:
        for i in range(max(0, start), min(n, end)):
            flags[i] = True
    return flags


def _units(text: str, tokenizer) -> list[Span]:
    if tokenizer is None:
        return words(text)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [tuple(o) for o in enc["offset_mapping"] if o[1] > o[0]]


def _overlaps(unit: Span, spans: Sequence[Span]) -> bool:
    return any(unit[0] < b and a < unit[1] for a, b in spans)


def _counts(flags_gold: Sequence[bool], flags_pred: Sequence[bool]) -> tuple[int, int, int]:
    pairs = list(zip(flags_gold, flags_pred, strict=True))
    tp = sum(g and p for g, p in pairs)
    return tp, sum(p and not g for g, p in pairs), sum(g and not p for g, p in pairs)


def _check_pair(i: int, gold: Record, pred: Record) -> None:
    if gold.target != pred.target:
        raise TifError(f"record {i}: the predicted record's answer differs from the gold one")
    if gold.unwanted_spans is None:
        raise TifError(f"record {i}: the gold record has no unwanted-word annotation")


def _sample_counts(gold: Record, pred: Record, tokenizer):
    """(tp, fp, fn) over non-space characters and over tokens for one answer."""
    text, gold_spans, pred_spans = gold.target, gold.unwanted_spans or (), pred.unwanted_spans or ()
    keep = [k for k, c in enumerate(text) if not c.isspace()]
    g, p = _covered(len(text), gold_spans), _covered(len(text), pred_spans)
    char = _counts([g[k] for k in keep], [p[k] for k in keep])
    units = _units(text, tokenizer)
    unit = _counts(
        [_overlaps(u, gold_spans) for u in units], [_overlaps(u, pred_spans) for u in units]
    )
    return char, unit


def score_spans(
    gold_records: Sequence[Record], pred_records: Sequence[Record], *, tokenizer=None
) -> dict[str, float | int]:
    """Char-level and token-level precision/recall/F1 of predicted UW (see module doc).

    Returns ``char_p, char_r, char_f1, token_p, token_r, token_f1, n``.
    """
    if len(gold_records) != len(pred_records):
        raise TifError(f"{len(gold_records)} gold records but {len(pred_records)} predictions")
    char, unit = [0, 0, 0], [0, 0, 0]
    for i, (gold, pred) in enumerate(zip(gold_records, pred_records, strict=True)):
        _check_pair(i, gold, pred)
        char_counts, unit_counts = _sample_counts(gold, pred, tokenizer)
        char = [a + b for a, b in zip(char, char_counts, strict=True)]
        unit = [a + b for a, b in zip(unit, unit_counts, strict=True)]
    char_p, char_r, char_f1 = _prf(*char)
    token_p, token_r, token_f1 = _prf(*unit)
    return {
        "char_p": char_p,
        "char_r": char_r,
        "char_f1": char_f1,
        "token_p": token_p,
        "token_r": token_r,
        "token_f1": token_f1,
        "n": len(gold_records),
    }
