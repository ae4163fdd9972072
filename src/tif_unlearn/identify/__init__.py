"""Targeted information identifiers: split each forget sample's answer into unwanted words
(UW, the knowledge to forget) and general words (GW).

Every identifier takes a list of records and options and returns an
:class:`~tif_unlearn.identify.base.IdentifyResult` whose records carry ``unwanted_spans``
(character spans into the answer, or the text of a text record). ``IDENTIFIERS`` is the one
registry (a plain dict); :func:`identify` looks a name up in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..data.records import Record
from ..errors import TifError
from .annotations import identify_annotations
from .base import Failed, IdentifyResult, words
from .combined import combine_records, combine_spans, identify_combined
from .contrast import identify_contrast
from .frequency import identify_frequency
from .learned import identify_learned
from .llm import identify_llm
from .masked_lm import identify_masked_lm
from .ner import identify_ner
from .phrases import identify_phrases

IDENTIFIERS: dict[str, Callable[..., IdentifyResult]] = {
    "annotations": identify_annotations,
    "llm": identify_llm,
    "masked-lm": identify_masked_lm,
    "ner": identify_ner,
    "phrases": identify_phrases,
    "learned": identify_learned,
    "frequency": identify_frequency,
    "contrast": identify_contrast,
    "combined": identify_combined,
}


def identify(name: str, records: Sequence[Record], **options) -> IdentifyResult:
    """Run the identifier registered as ``name`` on ``records`` with ``options``."""
    if name not in IDENTIFIERS:
        raise TifError(f"unknown identifier {name!r}; choose one of: {', '.join(IDENTIFIERS)}")
    return IDENTIFIERS[name](records, **options)


__all__ = [
    "IDENTIFIERS",
    "Failed",
    "IdentifyResult",
    "combine_records",
    "combine_spans",
    "identify",
    "identify_annotations",
    "identify_combined",
    "identify_contrast",
    "identify_frequency",
    "identify_learned",
    "identify_llm",
    "identify_masked_lm",
    "identify_ner",
    "words",
]
