"""Is an answer still language? A cheap degeneration check of generated text, so that a model
that "forgets" by babbling (``Dr. . . . . .``, ``VVVVVVVV``, ``of the of the of the``) is seen.

Two rates per answer, over its whitespace-separated pieces (case folded):

- repetition: share of the pieces after the first that repeat the piece just before them or
  close a pair of pieces already seen ("takes insulin insulin every evening": 1 of 4 = 0.25);
- non-word: share of pieces with no letter or digit, or with one letter four or more times in
  a row ("Dr. . . . . .": 5 of 6; "VVVVVVVV": 1 of 1).

An answer is degenerate when it is empty or either rate reaches :data:`DEGENERATE_AT`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DEGENERATE_AT = 0.4
_WORDLIKE = re.compile(r"[^\W_]")
_RUN_OF_LETTERS = re.compile(r"([^\W\d_])\1{3,}")


@dataclass(frozen=True)
class Fluency:
    repetition: float
    non_word: float
    degenerate: bool


def repetition_rate(pieces: Sequence[str]) -> float:
    """Share of ``pieces[1:]`` that equal the piece before or close an already seen pair."""
    if len(pieces) < 2:
        return 0.0
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for before, piece in zip(pieces[:-1], pieces[1:], strict=True):
        pair = (before, piece)
        repeats += piece == before or pair in seen
        seen.add(pair)
    return repeats / (len(pieces) - 1)


def is_non_word(piece: str) -> bool:
    """No letter or digit at all, or a letter four or more times in a row ("VVVV")."""
    return not _WORDLIKE.search(piece) or bool(_RUN_OF_LETTERS.search(piece))


def fluency(text: str) -> Fluency:
    """The two rates of ``text`` and its verdict (an empty answer: non-word 1.0, degenerate)."""
    pieces = text.casefold().split()
    if not pieces:
        return Fluency(repetition=0.0, non_word=1.0, degenerate=True)
    repetition = repetition_rate(pieces)
    non_word = sum(map(is_non_word, pieces)) / len(pieces)
    degenerate = max(repetition, non_word) >= DEGENERATE_AT
    return Fluency(repetition=repetition, non_word=non_word, degenerate=degenerate)


def fluency_summary(verdicts: Sequence[dict | None]) -> dict:
    """Means of the rates and the share of degenerate answers (``None`` entries left out)."""
    present = [v for v in verdicts if v is not None]
    if not present:
        return {"repetition": None, "non_word": None, "degenerate": None}
    n = len(present)
    return {
        "repetition": sum(v["repetition"] for v in present) / n,
        "non_word": sum(v["non_word"] for v in present) / n,
        "degenerate": sum(bool(v["degenerate"]) for v in present) / n,
    }
