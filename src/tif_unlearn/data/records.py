"""Record types: a question/answer pair or a plain text, with optional unwanted-word spans.

Spans are half-open character ranges ``(start, end)`` into the *target* text: the answer of a
QA record or the text of a text record. ``unwanted_spans is None`` means "not annotated".
"""

from __future__ import annotations

from dataclasses import dataclass, field

Span = tuple[int, int]


@dataclass(frozen=True)
class QARecord:
    question: str
    answer: str
    unwanted_spans: tuple[Span, ...] | None = None
    source: str = ""  # "file:line" for error messages

    @property
    def target(self) -> str:
        return self.answer


@dataclass(frozen=True)
class TextRecord:
    text: str
    unwanted_spans: tuple[Span, ...] | None = None
    source: str = ""
    #: Position of the text in its file (0-based entry index), for error messages.
    index: int | None = field(default=None, compare=False)

    @property
    def target(self) -> str:
        return self.text


Record = QARecord | TextRecord
