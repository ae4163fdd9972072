"""The ``annotations`` identifier: use the spans the user supplied with the records.

Records that already carry ``unwanted_spans`` (from ``unwanted_spans``, ``unwanted_words`` or
``general_words`` fields, see :mod:`tif_unlearn.data.annotations`) pass through; an empty list
of spans is a valid annotation (no unwanted word). Records without any annotation are failures.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.records import Record
from .base import Failed, IdentifyResult, SampleResult, run_batched


def _passthrough(batch: list[Record]) -> list[SampleResult]:
    return [
        Failed("no unwanted-word annotation in the input")
        if record.unwanted_spans is None
        else record.unwanted_spans
        for record in batch
    ]


def identify_annotations(
    records: Sequence[Record], *, progress: bool = False, batch_size: int = 1024
) -> IdentifyResult:
    """Keep the records' own spans; a record without spans is reported as a failure."""
    return run_batched(
        records, _passthrough, batch_size=batch_size, desc="annotations", progress=progress
    )
