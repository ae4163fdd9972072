"""Cut a long text into chunks of whole paragraphs for identifiers that read text in pieces.

Paragraphs are separated by blank lines. Consecutive paragraphs are packed into one chunk
while the chunk stays within ``max_chars`` characters; a paragraph longer than that is cut at
the last whitespace before the limit (or at the limit when there is none). Chunks are
character ranges ``(start, end)`` into the text, so spans found in a chunk map back to the
text by adding ``start``.
"""

from __future__ import annotations

import re

from ..data.records import Span

_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", re.S)


def paragraphs(text: str) -> list[Span]:
    """Character ranges of the paragraphs of ``text`` (without surrounding whitespace)."""
    return [m.span() for m in _PARAGRAPH.finditer(text)]


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Cut ``text[start:end]`` into pieces of at most ``max_chars``, at whitespace if any."""
    pieces: list[Span] = []
    while end - start > max_chars:
        space = max(
            text.rfind(" ", start + 1, start + max_chars + 1),
            text.rfind("\n", start + 1, start + max_chars + 1),
        )
        cut = space if space > start else start + max_chars
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


def text_chunks(text: str, max_chars: int) -> list[Span]:
    """Chunks of whole paragraphs of at most ``max_chars`` characters (see module doc)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    chunks: list[list[int]] = []
    for start, end in paragraphs(text):
        if chunks and end - chunks[-1][0] <= max_chars:
            chunks[-1][1] = end
        elif end - start <= max_chars:
            chunks.append([start, end])
        else:
            chunks.extend([a, b] for a, b in _cut_long(text, start, end, max_chars))
    return [(a, b) for a, b in chunks]
