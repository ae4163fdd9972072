"""A self-contained HTML page showing each answer with its unwanted words highlighted.

No external resources (inline CSS, no scripts, no fonts); every piece of text is escaped.
UW are wrapped in ``<mark>``, GW are plain text. One section per identifier.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from ..data.annotations import merge_spans
from ..data.records import Record
from ..identify.base import question_of

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ccc; }
.item { margin: 0.8rem 0; padding: 0.5rem 0.8rem; background: #fafafa; border-radius: 4px; }
.q { color: #555; margin: 0 0 0.3rem; } .a { margin: 0; line-height: 1.6; }
mark { background: #ffd54f; padding: 0 1px; border-radius: 2px; }
.none { color: #b00; font-style: italic; } .stats { color: #666; font-size: 0.9rem; }
""".strip()


def highlight(text: str, spans) -> str:
    """``text`` HTML-escaped, with each span wrapped in ``<mark>``."""
    parts, pos = [], 0
    for start, end in merge_spans((max(0, a), min(len(text), b)) for a, b in spans or ()):
        if start >= end:
            continue
        parts.append(html.escape(text[pos:start]))
        parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


def _item(record: Record) -> str:
    question = question_of(record)
    head = f'<p class="q">Q: {html.escape(question)}</p>' if question else ""
    if record.unwanted_spans is None:
        note = ' <span class="none">(not annotated)</span>'
        return f'<div class="item">{head}<p class="a">{html.escape(record.target)}{note}</p></div>'
    body = highlight(record.target, record.unwanted_spans)
    return f'<div class="item">{head}<p class="a">{body}</p></div>'


def _section(name: str, records: Sequence[Record]) -> str:
    annotated = sum(r.unwanted_spans is not None for r in records)
    stats = f"{len(records)} samples, {annotated} annotated"
    items = "\n".join(_item(r) for r in records)
    return f'<section><h2>{html.escape(name)}</h2><p class="stats">{stats}</p>\n{items}\n</section>'


def render_html(sections: Mapping[str, Sequence[Record]], title: str = "Unwanted words") -> str:
    """One page with a section per identifier (``{name: records}``); UW in ``<mark>``."""
    body = "\n".join(_section(name, records) for name, records in sections.items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n"
        '<p class="stats">Highlighted: unwanted words (UW); plain: general words (GW).</p>\n'
        f"{body}\n</body></html>\n"
    )
