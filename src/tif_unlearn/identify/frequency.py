"""The ``frequency`` identifier: rare words are UW, common words GW.

A word is UW when its Zipf frequency (``wordfreq.zipf_frequency``: log10 of occurrences per
billion words) is below ``threshold``. The default 3.5 is the boundary of the Zipf scale's
low-frequency band (1-3) and high-frequency band (4-7) of van Heuven et al. (2014,
"SUBTLEX-UK"); about 3 occurrences per million words. It is not fitted to any data set.

- Words that occur in the question are context given by the question, not answer: GW
  (``exclude_question_words=False`` scores them like any other word).
- Words containing a digit ("1956", "8th") are UW (``numbers=True``): wordfreq estimates
  numerals from digit patterns, so their frequency says nothing about how specific they are.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

from ..data.records import Record, Span
from ..errors import TifError
from .base import IdentifyResult, SampleResult, normalized_words, question_words, run_batched
from .base import words as word_spans

DEFAULT_THRESHOLD = 3.5


@functools.lru_cache(maxsize=1 << 16)
def zipf(word: str, lang: str = "en") -> float:
    """``wordfreq.zipf_frequency(word, lang)``, memoised."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, lang)


def _check_wordfreq() -> None:
    try:
        import wordfreq  # noqa: F401
    except ImportError as exc:
        raise TifError("the frequency identifier needs wordfreq: pip install wordfreq") from exc


def rare_word_spans(
    text: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    lang: str = "en",
    context: set[str] = frozenset(),
    numbers: bool = True,
) -> list[Span]:
    """Spans of the words of ``text`` that are rare (or numerals) and not in ``context``
    (a set of normalized words, see :func:`~tif_unlearn.identify.base.normalized_words`)."""
    spans = []
    for start, end in word_spans(text):
        word = text[start:end]
        if normalized_words(word)[0] in context:
            continue
        if (numbers and any(c.isdigit() for c in word)) or zipf(word, lang) < threshold:
            spans.append((start, end))
    return spans


def identify_frequency(
    records: Sequence[Record],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    lang: str = "en",
    exclude_question_words: bool = True,
    numbers: bool = True,
    batch_size: int = 256,
    progress: bool = True,
) -> IdentifyResult:
    """Mark the words of each target whose Zipf frequency is below ``threshold`` as UW."""
    started = time.perf_counter()
    _check_wordfreq()

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        return [
            rare_word_spans(
                r.target,
                threshold=threshold,
                lang=lang,
                context=question_words(r) if exclude_question_words else set(),
                numbers=numbers,
            )
            for r in batch
        ]

    return run_batched(
        records,
        batch_fn,
        batch_size=batch_size,
        desc="frequency",
        progress=progress,
        started=started,
    )
