"""What every identifier shares: the result type, the per-sample runner, word spans.

An identifier is a function ``identify_xxx(records, **options) -> IdentifyResult``. It returns
one record per input record, in order: a copy with ``unwanted_spans`` set (character spans of
the unwanted words, UW, into the record's ``target``: the answer of a QA record, the text of a
text record), or, for a sample it could not handle, the input record unchanged with its index
and the reason in ``failures``. A failing sample never stops the run; a
:class:`~tif_unlearn.errors.TifError` (bad configuration, a model that cannot be loaded) does.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ..data.annotations import WORD_PATTERN, merge_spans
from ..data.records import QARecord, Record, Span
from ..errors import TifError

__all__ = [
    "SampleResult",
    "BatchFn",
    "Failed",
    "IdentifyResult",
    "finalize_spans",
    "normalized_words",
    "question_of",
    "question_words",
    "run_batched",
    "with_spans",
    "words",
]


@dataclass
class IdentifyResult:
    """Annotated records (input order), per-sample failures ``(index, reason)``, wall time."""

    records: list[Record]
    failures: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_ok(self) -> int:
        return len(self.records) - len(self.failures)

    def annotated(self) -> list[Record]:
        """The records the identifier succeeded on (failed samples left out), in input order."""
        failed = {index for index, _ in self.failures}
        return [r for i, r in enumerate(self.records) if i not in failed]


@dataclass(frozen=True)
class Failed:
    """Returned by a batch function in place of spans for a sample it could not handle."""

    reason: str


SampleResult = Sequence[Span] | Failed
BatchFn = Callable[[list[Record]], list[SampleResult]]


def words(text: str) -> list[Span]:
    """Character spans of the words of ``text`` (matches of ``WORD_PATTERN``; no punctuation)."""
    return [m.span() for m in WORD_PATTERN.finditer(text)]


def question_of(record: Record) -> str:
    """The question of a QA record, ``""`` for a text record."""
    return record.question if isinstance(record, QARecord) else ""


_POSSESSIVE = re.compile(r"['’]s$")


def normalized_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without a possessive ending ("Al-Kuwaiti's" ->
    "al-kuwaiti"), for comparing the words of an answer with those of its question."""
    return [_POSSESSIVE.sub("", text[a:b].lower()) for a, b in words(text)]


def question_words(record: Record) -> set[str]:
    """Normalized words of the record's question (empty for a text record)."""
    return set(normalized_words(question_of(record)))


def finalize_spans(text: str, spans: Iterable[Span]) -> tuple[Span, ...]:
    """Clip spans to ``text``, drop empty ones, merge overlapping ones and join spans that are
    separated only by whitespace (so "Kuwait" + "City" become one span "Kuwait City")."""
    clipped = [(max(0, a), min(len(text), b)) for a, b in spans]
    joined: list[list[int]] = []
    for start, end in merge_spans(s for s in clipped if s[0] < s[1]):
        if joined and not text[joined[-1][1] : start].strip():
            joined[-1][1] = end
        else:
            joined.append([start, end])
    return tuple((a, b) for a, b in joined)


def with_spans(record: Record, spans: Iterable[Span]) -> Record:
    """A copy of ``record`` whose ``unwanted_spans`` are ``spans``, finalized."""
    return dataclasses.replace(record, unwanted_spans=finalize_spans(record.target, spans))


def _describe(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message[:300]}" if message else type(exc).__name__


def _call_batch(batch_fn: BatchFn, batch: list[Record]) -> list[SampleResult]:
    """Run ``batch_fn``; if the whole batch raises, retry sample by sample so that only the
    samples that really fail are lost. TifError is not caught: it stops the run."""
    try:
        results = batch_fn(batch)
        if len(results) != len(batch):
            raise RuntimeError(f"identifier returned {len(results)} results for {len(batch)}")
        return results
    except TifError:
        raise
    except Exception as exc:
        if len(batch) == 1:
            return [Failed(_describe(exc))]
    return [_call_batch(batch_fn, [record])[0] for record in batch]


def _length(record: Record) -> int:
    return len(question_of(record)) + len(record.target)


def run_batched(
    records: Sequence[Record],
    batch_fn: BatchFn,
    *,
    batch_size: int = 32,
    desc: str = "identify",
    progress: bool = True,
    started: float | None = None,
    by_length: bool = False,
) -> IdentifyResult:
    """Apply ``batch_fn`` to batches of ``records`` with a progress bar.

    ``by_length`` batches records of similar length together (less padding for identifiers
    that run a model); results keep the input order either way. ``started`` (a
    ``time.perf_counter()`` value) lets the caller include model loading in the reported
    seconds.
    """
    if batch_size < 1:
        raise TifError(f"batch_size must be >= 1, got {batch_size}")
    start = time.perf_counter() if started is None else started
    records = list(records)
    order = list(range(len(records)))
    if by_length:
        order.sort(key=lambda i: _length(records[i]))
    out: list[Record] = list(records)
    failures: list[tuple[int, str]] = []
    with tqdm(total=len(records), desc=desc, unit="sample", disable=not progress) as bar:
        for offset in range(0, len(order), batch_size):
            indices = order[offset : offset + batch_size]
            batch = [records[i] for i in indices]
            for i, result in zip(indices, _call_batch(batch_fn, batch), strict=True):
                if isinstance(result, Failed):
                    failures.append((i, result.reason))
                else:
                    out[i] = with_spans(records[i], result)
            bar.update(len(batch))
    return IdentifyResult(out, sorted(failures), time.perf_counter() - start)
