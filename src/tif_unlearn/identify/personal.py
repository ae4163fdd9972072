"""Structured personal data: e-mail addresses, URLs, phone numbers, dates and ID numbers.

Whatever the sentence around them, these strings identify a person or an account, so the
``phrases`` and ``learned`` identifiers always mark them UW. Found by their form alone (no
word lists): an e-mail address, a URL, a run of digits joined by separators
("+1 (555) 013-4477", "1987-04-12", "12/04/1987") and any word that contains a digit
("AB12CD", "4th"). Job titles are found by syntax instead (:mod:`.roles`).
"""

from __future__ import annotations

import re

from ..data.records import Span
from .base import words

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io)/\S*")
DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\d()./-]|\s(?=[\d(]))*\d\)?|\d")
TRAILING = ".,;:!?)]}'\""


def _stripped(text: str, start: int, end: int) -> Span:
    """``(start, end)`` without trailing punctuation (keeping a closing parenthesis that
    has its opening one inside the span)."""
    while end > start and text[end - 1] in TRAILING:
        if text[end - 1] == ")" and "(" in text[start : end - 1]:
            break
        end -= 1
    return start, end


def personal_data_spans(text: str) -> list[Span]:
    """Spans of e-mail addresses, URLs, digit runs and words containing a digit."""
    spans = [_stripped(text, *m.span()) for pattern in (EMAIL, URL) for m in pattern.finditer(text)]
    spans += [m.span() for m in DIGIT_RUN.finditer(text)]
    spans += [(a, b) for a, b in words(text) if any(c.isdigit() for c in text[a:b])]
    return [(a, b) for a, b in spans if a < b]
