"""Unwanted-word annotations: from a row's fields to validated character spans, and back to disk.

Two input formats are understood (both give half-open character spans into the *target*: the
answer of a QA row, the text of a text row):

- ours: ``"unwanted_spans": [[start, end], ...]``; validated strictly
  (``0 <= start < end <= len(target)``), then sorted and merged.
- the TIF paper's released format: ``"unwanted_words"`` and/or ``"general_words"``, lists of
  ``{"word": str, "start": int, "end": int}``. With ``unwanted_words`` those are the spans.
  With only ``general_words`` every other *word* of the target is unwanted, words being the
  matches of :data:`WORD_PATTERN` (punctuation is never a word, so never unwanted).
  A span whose text is not ``word`` is repaired to the occurrence of ``word`` nearest to its
  start, with a warning; if ``word`` does not occur in the target it is a DataError.

Precedence when several fields are present: ``unwanted_spans``, then ``unwanted_words``, then
``general_words``. A field whose value is ``null`` counts as absent.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from tif_unlearn.data.records import QARecord, Record, Span
from tif_unlearn.errors import DataError

#: What counts as a word when only general words are given (hyphenated names are one word).
WORD_PATTERN = re.compile(r"\w+(?:[-'’.]\w+)*")

ANNOTATION_FIELDS = ("unwanted_spans", "unwanted_words", "general_words")


def _split_where(where: str) -> tuple[str, int | None]:
    """``"data.jsonl:12"`` -> ``("data.jsonl", 12)``; no line number -> ``(where, None)``."""
    path, sep, line = where.rpartition(":")
    if sep and line.isdigit():
        return path, int(line)
    return where, None


def _error(message: str, where: str, field: str) -> DataError:
    path, line = _split_where(where)
    return DataError(message, path=path, line=line, field=field)


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sort spans and merge those that overlap or touch: ``[(5, 9), (0, 3), (2, 4)]`` ->
    ``((0, 4), (5, 9))``."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)


def _check_span(item: object, target: str, target_field: str) -> str | None:
    """What is wrong with one ``[start, end]`` item, or None if it is valid."""
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        return f"each span must be a [start, end] pair of integers, got {json.dumps(item)}"
    start, end = item
    if not (_is_int(start) and _is_int(end)):
        return f"span {json.dumps(item)} must hold two integers"
    if start > end:
        return f"span [{start}, {end}] is reversed"
    if start == end:
        return f"span [{start}, {end}] is empty"
    if start < 0 or end > len(target):
        return (
            f"span [{start}, {end}] is out of range for {_article(target_field)} {target_field} "
            f"of {len(target)} characters"
        )
    return None


def parse_unwanted_spans(
    value: object, target: str, *, where: str, target_field: str = "answer"
) -> tuple[Span, ...]:
    """Validate our ``unwanted_spans`` field and return the sorted, merged spans."""
    if not isinstance(value, list):
        raise _error(
            f"must be a list of [start, end] pairs, got {type(value).__name__}",
            where,
            "unwanted_spans",
        )
    for item in value:
        problem = _check_span(item, target, target_field)
        if problem:
            raise _error(problem, where, "unwanted_spans")
    return merge_spans((start, end) for start, end in value)


def _nearest_occurrence(target: str, word: str, start: int) -> int | None:
    """Start of the occurrence of ``word`` in ``target`` nearest to ``start`` (None if absent)."""
    found, pos = [], target.find(word)
    while pos >= 0:  # str.find, not a regex: compiling a 10 MB escaped word takes a minute
        found.append(pos)
        pos = target.find(word, pos + 1)
    if not found:
        return None
    return min(found, key=lambda pos: (abs(pos - start), pos))


def _word_span(item: object, target: str, where: str, field: str, warnings: list[str]) -> Span:
    """One ``{"word", "start", "end"}`` item as a span; a mismatch is repaired with a warning."""
    if not isinstance(item, dict):
        raise _error(
            f"each item must be an object {{word, start, end}}, got {json.dumps(item)}",
            where,
            field,
        )
    word, start, end = item.get("word"), item.get("start"), item.get("end")
    if not isinstance(word, str) or not word or not (_is_int(start) and _is_int(end)):
        raise _error(
            f"item {json.dumps(item, ensure_ascii=False)} needs a non-empty string 'word' and "
            "integer 'start' and 'end'",
            where,
            field,
        )
    in_range = 0 <= start <= end <= len(target)
    found = target[start:end] if in_range else ""
    if in_range and found == word:
        return (start, end)
    fixed = _nearest_occurrence(target, word, start)
    if fixed is None:
        raise _error(
            f"span [{start},{end}] does not match {word!r} (found {found!r}), and "
            f"{word!r} does not occur in the text",
            where,
            field,
        )
    new = (fixed, fixed + len(word))
    warnings.append(
        f"{where}: field '{field}': span [{start},{end}] does not match '{word}' "
        f"(found '{found}'); using [{new[0]},{new[1]}]"
    )
    return new


def _word_spans(
    value: object, target: str, where: str, field: str, warnings: list[str]
) -> list[Span]:
    if not isinstance(value, list):
        raise _error(
            f"must be a list of {{word, start, end}} objects, got {type(value).__name__}",
            where,
            field,
        )
    return [_word_span(item, target, where, field, warnings) for item in value]


def unwanted_from_general(target: str, general: Iterable[Span]) -> tuple[Span, ...]:
    """Spans of the words of ``target`` that overlap no general-word span."""
    general = list(general)
    return tuple(
        m.span()
        for m in WORD_PATTERN.finditer(target)
        if not any(gs < m.end() and m.start() < ge for gs, ge in general)
    )


def spans_from_row(
    row: dict, target: str, *, where: str, target_field: str = "answer"
) -> tuple[tuple[Span, ...] | None, list[str]]:
    """Unwanted spans of a row's target, and warnings about repaired spans.

    Returns ``(None, [])`` when the row has no annotation field. ``where`` is ``"path:line"``,
    used in errors and warnings; ``target_field`` names the target ("answer" or "text").
    """
    warnings: list[str] = []
    if row.get("unwanted_spans") is not None:
        spans = parse_unwanted_spans(
            row["unwanted_spans"], target, where=where, target_field=target_field
        )
    elif row.get("unwanted_words") is not None:
        spans = merge_spans(
            _word_spans(row["unwanted_words"], target, where, "unwanted_words", warnings)
        )
    elif row.get("general_words") is not None:
        general = _word_spans(row["general_words"], target, where, "general_words", warnings)
        spans = unwanted_from_general(target, general)
    else:
        return None, []
    return spans, warnings


def _record_row(record: Record) -> dict:
    if isinstance(record, QARecord):
        row: dict = {"question": record.question, "answer": record.answer}
    else:
        row = {"text": record.text}
    if record.unwanted_spans is not None:
        row["unwanted_spans"] = [[start, end] for start, end in record.unwanted_spans]
    return row


def write_annotated(records: Iterable[Record], path: str | os.PathLike[str]) -> None:
    """Write records as JSON Lines: question+answer (or text) and ``unwanted_spans``.

    Records without annotation (``unwanted_spans is None``) are written without that field.
    Parent folders are created.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(_record_row(record), ensure_ascii=False) + "\n")
