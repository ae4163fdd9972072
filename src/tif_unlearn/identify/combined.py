"""The ``combined`` identifier: union, intersection or majority vote of several identifiers.

Spans are combined per character of the target: a character is UW under ``union`` when any
member marks it, under ``intersection`` when every member does, under ``vote`` when more than
half of the members do. The UW characters are then turned back into spans (and merged).

A sample is combined over the members that succeeded on it; it fails only when every member
failed (the reasons are joined).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

from ..data.records import Record, Span
from ..errors import TifError
from .base import IdentifyResult, finalize_spans

MODES = ("union", "intersection", "vote")


def _coverage(length: int, spans: Sequence[Span]) -> list[bool]:
    covered = [False] * length
    for start, end in spans:
        for i in range(max(0, start), min(length, end)):
            covered[i] = True
    return covered


def _runs(flags: Sequence[bool]) -> list[Span]:
    """Maximal runs of True as half-open spans."""
    spans, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((start, i))
            start = None
    return spans


def combine_spans(text: str, span_sets: Sequence[Sequence[Span]], mode: str = "union"):
    """Combine several span sets over one ``text`` at character level (see module doc)."""
    if mode not in MODES:
        raise TifError(f"unknown combination mode {mode!r}; expected one of {', '.join(MODES)}")
    if not span_sets:
        return ()
    counts = [0] * len(text)
    for spans in span_sets:
        for i, covered in enumerate(_coverage(len(text), spans)):
            counts[i] += covered
    need = {"union": 1, "intersection": len(span_sets), "vote": len(span_sets) // 2 + 1}[mode]
    return finalize_spans(text, _runs([c >= need for c in counts]))


def combine_records(record_sets: Sequence[Sequence[Record]], mode: str = "union") -> list[Record]:
    """Combine the spans of aligned record lists (same targets, same order). Records whose
    ``unwanted_spans`` is None (not annotated) are left out of their sample's combination."""
    if len({len(s) for s in record_sets}) > 1:
        raise TifError("cannot combine record lists of different lengths")
    out = []
    for group in zip(*record_sets, strict=True):
        if len({r.target for r in group}) > 1:
            raise TifError("cannot combine records with different target texts")
        annotated = [r.unwanted_spans for r in group if r.unwanted_spans is not None]
        spans = combine_spans(group[0].target, annotated, mode) if annotated else None
        out.append(dataclasses.replace(group[0], unwanted_spans=spans))
    return out


def _member_specs(members) -> list[tuple[str, dict]]:
    if isinstance(members, Mapping):
        return [(name, dict(opts or {})) for name, opts in members.items()]
    return [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in members]


def _without_failures(result: IdentifyResult) -> list[Record]:
    """The result's records, failed samples marked as not annotated (``unwanted_spans=None``)."""
    failed = {i for i, _ in result.failures}
    return [
        dataclasses.replace(r, unwanted_spans=None) if i in failed else r
        for i, r in enumerate(result.records)
    ]


def _joint_failures(names: Sequence[str], results: Sequence[IdentifyResult], n: int):
    """``(index, reasons)`` of the samples on which every member failed."""
    reasons = [dict(r.failures) for r in results]
    return [
        (i, "; ".join(f"{name}: {why[i]}" for name, why in zip(names, reasons, strict=True)))
        for i in range(n)
        if all(i in why for why in reasons)
    ]


def identify_combined(
    records: Sequence[Record],
    *,
    members: Sequence[str | tuple[str, dict]] | Mapping[str, dict] = ("ner", "frequency"),
    mode: str = "union",
    progress: bool = True,
) -> IdentifyResult:
    """Run each member identifier (a name, or ``(name, options)``, or ``{name: options}``)
    and combine their spans per sample with ``mode`` (union / intersection / vote)."""
    from . import IDENTIFIERS, identify  # the registry imports this module

    if mode not in MODES:
        raise TifError(f"unknown combination mode {mode!r}; expected one of {', '.join(MODES)}")
    started = time.perf_counter()
    specs = _member_specs(members)
    if not specs or any(name == "combined" for name, _ in specs):
        raise TifError("combined needs one or more member identifiers (other than 'combined')")
    unknown = [name for name, _ in specs if name not in IDENTIFIERS]
    if unknown:  # before any member runs (and loads its model)
        raise TifError(
            f"unknown member identifier(s) {', '.join(map(repr, unknown))}; "
            f"choose from: {', '.join(n for n in IDENTIFIERS if n != 'combined')}"
        )
    results = [identify(name, records, **{"progress": progress, **opts}) for name, opts in specs]
    combined = combine_records([_without_failures(r) for r in results], mode)
    failures = _joint_failures([name for name, _ in specs], results, len(records))
    for i, _ in failures:
        combined[i] = records[i]
    return IdentifyResult(combined, failures, time.perf_counter() - started)
