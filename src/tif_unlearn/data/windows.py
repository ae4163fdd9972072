"""Cut plain texts into token windows that keep their character offsets into the text.

A long text (a news article, a book chapter) is cut into windows of ``length`` tokens, a new
window starting every ``stride`` tokens (``stride == length``: windows side by side;
``stride < length``: windows overlap by ``length - stride`` tokens). The last window may be
shorter; it is kept. Windows are counted in the tokens of the text alone (no special tokens).

Each window knows the character range ``[start, end)`` of the text it covers (from the
tokenizer's offset mapping), so the unwanted spans of the text map onto it: a span is clipped
to every window it overlaps (a span crossing a window boundary appears, cut, in both windows)
and shifted to be relative to the window's own text. QA records are never windowed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.schema import SHORT_TEXTS
from ..errors import DataError, TifError
from .records import Record, Span, TextRecord

log = logging.getLogger("tif_unlearn")


@dataclass(frozen=True)
class Window:
    """One window: tokens ``[first_token, end_token)`` and characters ``[start, end)``."""

    first_token: int
    end_token: int
    start: int
    end: int


def token_ranges(n_tokens: int, length: int, stride: int) -> list[tuple[int, int]]:
    """Token index ranges ``[a, b)`` of the windows over ``n_tokens`` tokens.

    ``token_ranges(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]`` (last short window kept);
    ``token_ranges(7, 4, 2) == [(0, 4), (2, 6), (4, 7)]`` (overlap of 2 tokens).
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        ranges.append((start, min(start + length, n_tokens)))
        if start + length >= n_tokens:
            break
        start += stride
    return ranges


def text_windows(offsets: Sequence[tuple[int, int]], length: int, stride: int) -> list[Window]:
    """Windows over a text given its tokens' character ``offsets`` (one ``(start, end)`` each)."""
    return [
        Window(a, b, offsets[a][0], offsets[b - 1][1])
        for a, b in token_ranges(len(offsets), length, stride)
    ]


def clip_spans(spans: Sequence[Span], start: int, end: int) -> tuple[Span, ...]:
    """The parts of ``spans`` inside ``[start, end)``, relative to ``start``.

    ``clip_spans([(2, 8), (12, 15)], 5, 13) == ((0, 3), (7, 8))``.
    """
    return tuple(
        (max(a, start) - start, min(b, end) - start) for a, b in spans if a < end and b > start
    )


def window_record(record: TextRecord, window: Window, number: int) -> TextRecord:
    """The window's text as a record, with the record's unwanted spans clipped onto it."""
    spans = record.unwanted_spans
    return TextRecord(
        record.text[window.start : window.end],
        unwanted_spans=None if spans is None else clip_spans(spans, window.start, window.end),
        source=f"{record.source} window {number}" if record.source else f"window {number}",
        index=record.index,
    )


def _short_text_error(record: TextRecord, position: int, n_tokens: int, length: int):
    path = record.source.rpartition(":")[0] or record.source or "<data>"
    index = record.index if record.index is not None else position
    return DataError(
        f"entry {index}: the text has {n_tokens} tokens, shorter than one window of "
        f"{length}; pass a smaller --window-length (or --short-texts keep)",
        path=path,
    )


def _text_offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    if not getattr(tokenizer, "is_fast", False):
        raise TifError("a fast tokenizer (with offset mapping) is required to cut text windows")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [tuple(o) for o in encoded["offset_mapping"]]


def window_records(
    records: Sequence[Record],
    tokenizer,
    *,
    length: int = 256,
    stride: int | None = None,
    short_texts: str = "error",
) -> list[Record]:
    """Replace every text record by its windows (QA records pass through unchanged).

    A text shorter than ``length`` tokens is a DataError naming its file and entry index, or,
    with ``short_texts="keep"``, kept whole as one short window.
    """
    if short_texts not in SHORT_TEXTS:
        raise TifError(f"short_texts must be one of {SHORT_TEXTS}, got {short_texts!r}")
    stride = length if stride is None else stride
    out: list[Record] = []
    for position, record in enumerate(records):
        if not isinstance(record, TextRecord):
            out.append(record)
            continue
        offsets = _text_offsets(tokenizer, record.text)
        if len(offsets) < length and short_texts == "error":
            raise _short_text_error(record, position, len(offsets), length)
        windows = text_windows(offsets, length, stride)
        out.extend(window_record(record, w, n) for n, w in enumerate(windows, start=1))
    if len(out) != len(records):
        log.info(
            "%d records -> %d examples after cutting texts into windows", len(records), len(out)
        )
    return out
