"""Parse the list of strings a chat model returns, however imperfect its JSON.

Understood, in this order: a JSON (or Python-literal) list of strings, possibly inside a
code fence, with trailing commas, single quotes or curly quotes; a JSON object holding such a
list (``{"unwanted_words": [...]}``); a list cut off by the token limit (the complete items are
kept); and as a last resort a plain comma- or newline-separated list ("- a", "1. b") of short
items without brackets. Valid JSON that holds no list, and anything else, gives ``None``.
"""

from __future__ import annotations

import ast
import json
import re

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_COMPLETE_ITEM = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,""")
_LIST_KEYS = ("unwanted_words", "words", "phrases", "answer", "answers", "items", "spans")
MAX_FALLBACK_WORDS = 8


def _unfence(text: str) -> str:
    match = _FENCE.search(text)
    return match.group(1) if match else text


def _normalize_quotes(text: str) -> str:
    return text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")


def _literal(text: str):
    """JSON, then a Python literal, then both again without trailing commas; None if none."""
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            pass
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _bracketed(text: str) -> str | None:
    """The text from the first ``[`` or ``{`` to the last matching closer (or to the end)."""
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = text.rfind("]" if text[start] == "[" else "}")
    return text[start : end + 1] if end > start else text[start:]


def _strings(value) -> list[str] | None:
    """The strings held by a parsed value: a list, or a dict with a list value."""
    if isinstance(value, dict):
        lists = [value[k] for k in _LIST_KEYS if isinstance(value.get(k), list)]
        lists += [v for v in value.values() if isinstance(v, list)]
        return _strings(lists[0]) if lists else None
    if isinstance(value, (list, tuple)):
        items = [_item_text(v) for v in value]
        return [s for s in items if s]
    return None


def _item_text(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        for key in ("word", "text", "phrase"):
            if isinstance(value.get(key), str):
                return value[key].strip()
    return ""


def _truncated_list(text: str) -> list[str] | None:
    """The complete quoted items of a list cut off before its ``]``."""
    start = text.find("[")
    if start < 0:
        return None
    items = [m.group(1) for m in _COMPLETE_ITEM.finditer(text, start)]
    tail = _literal("[" + ", ".join(items) + "]") if items else None
    return _strings(tail) if tail is not None else None


def _plausible_item(item: str) -> bool:
    """A short, printable phrase with a letter or digit, without brackets or undecodable
    bytes (so that junk is not taken for a list)."""
    short = len(item.split()) <= MAX_FALLBACK_WORDS and len(item) <= 80
    clean = item.isprintable() and not any(c in item for c in "[]{}\ufffd")
    return short and clean and any(c.isalnum() for c in item)


def _plain_list(text: str) -> list[str] | None:
    """A comma- or newline-separated list of short items, or None."""
    lines = [line for line in text.splitlines() if line.strip()]
    parts = lines if len(lines) > 1 else text.split(",")
    items = [_BULLET.sub("", p).strip().strip("\"'`").strip().rstrip(".;") for p in parts]
    items = [i for i in items if i]
    if not items or not all(_plausible_item(i) for i in items):
        return None
    return items


def parse_string_list(text: str) -> list[str] | None:
    """The list of strings in a model's reply (see module doc), or None if there is none."""
    if not isinstance(text, str) or not text.strip():
        return None
    body = _normalize_quotes(_unfence(text)).strip()
    bracketed = _bracketed(body)
    if bracketed is not None:
        value = _literal(bracketed)
        if value is not None:  # valid JSON: a list of strings or nothing
            return _strings(value)
        truncated = _truncated_list(bracketed)
        if truncated is not None:
            return truncated
    return _plain_list(body)
