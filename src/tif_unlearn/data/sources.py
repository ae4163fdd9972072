"""Rows from a JSON / JSON Lines / text file or a Hugging Face hub dataset (no TOFU or MUSE
knowledge here: ``loaders`` resolves ``tofu:`` sources, ``tofu`` reads its splits through this).

Every problem with the input becomes a :class:`~tif_unlearn.errors.DataError` (located by file,
line and field) or a :class:`~tif_unlearn.errors.TifError`; no input makes these functions fail
with a traceback.

Accepted file layouts (decided by content, not by the file's extension):

- one JSON array (over any number of lines): each element's line is the line where it starts;
- JSON Lines: one JSON value per line, blank lines skipped;
- several JSON arrays, one per line: flattened, each element keeps its own line.

More generally the file is read as a sequence of JSON values separated by whitespace; a value
that is an array contributes its elements, any other value contributes itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tif_unlearn.errors import DataError, TifError

HUB_PREFIX = "hf://"
_WHITESPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


# ---------------------------------------------------------------------------- reading files


class _LineCounter:
    """Map character offsets of one text to 1-based line numbers (offsets must not decrease)."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def line_at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _read_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file (a leading BOM is dropped); DataError if missing or not UTF-8."""
    where = str(path)
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", path=where)
    if p.is_dir():
        raise DataError("is a directory, expected a .json or .jsonl file", path=where)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=where) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            path=where,
            line=line,
        ) from exc


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _decode_value(text: str, pos: int, where: str) -> tuple[object, int]:
    """Decode one JSON value starting at ``pos``; any failure is a DataError with its line."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        start_line = text.count("\n", 0, pos) + 1
        at = f"column {exc.colno}"
        if exc.lineno != start_line:  # report the record's line, and where decoding failed
            at = f"in the value starting here, at line {exc.lineno} column {exc.colno}"
        raise DataError(f"invalid JSON: {exc.msg} ({at})", path=where, line=start_line) from exc
    except RecursionError as exc:
        line = text.count("\n", 0, pos) + 1
        raise DataError("invalid JSON: nested too deeply", path=where, line=line) from exc
    except ValueError as exc:  # e.g. an integer with too many digits
        line = text.count("\n", 0, pos) + 1
        raise DataError(f"invalid JSON: {exc}", path=where, line=line) from exc


def _decode_array(
    text: str, pos: int, where: str, lines: _LineCounter
) -> tuple[list[tuple[int, object]], int]:
    """Decode the array starting at ``text[pos] == '['``, keeping each element's start line."""
    rows: list[tuple[int, object]] = []
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return rows, pos + 1
    while True:
        line = lines.line_at(pos)
        value, pos = _decode_value(text, pos, where)
        rows.append((line, value))
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == "]":
            return rows, pos + 1
        if pos >= len(text) or text[pos] != ",":
            found = "end of file" if pos >= len(text) else repr(text[pos])
            line = text.count("\n", 0, pos) + 1
            raise DataError(
                f"invalid JSON: expected ',' or ']', found {found}", path=where, line=line
            )
        pos = _skip_ws(text, pos + 1)


def read_json_rows(path: str | os.PathLike[str]) -> list[tuple[int, object]]:
    """Return ``(line, value)`` for every row of a JSON array / JSON Lines file (1-based lines).

    Raises DataError (with path and line) for a missing file, a directory, invalid UTF-8,
    invalid JSON and a file without any row.
    """
    where = str(path)
    text = _read_text(path)
    lines = _LineCounter(text)
    rows: list[tuple[int, object]] = []
    pos = _skip_ws(text, 0)
    while pos < len(text):
        if text[pos] == "[":
            elements, pos = _decode_array(text, pos, where, lines)
            rows.extend(elements)
        else:
            line = lines.line_at(pos)
            value, pos = _decode_value(text, pos, where)
            rows.append((line, value))
        pos = _skip_ws(text, pos)
    if not rows:
        raise DataError("no records (the file is empty or holds only empty arrays)", path=where)
    return rows


def read_text_document(path: str | os.PathLike[str]) -> list[tuple[int, object]]:
    """A ``.txt`` file is one plain-text document: ``[(1, text)]``; DataError if blank.

    Blank lines are kept as paragraph breaks of the document (they do not separate documents:
    put several documents in a JSON array of strings or JSON Lines of ``{"text": ...}``).
    """
    text = _read_text(path)
    if not text.strip():
        raise DataError("no text (the file is empty)", path=str(path))
    return [(1, text)]


# ---------------------------------------------------------------------------- hub


def _parse_hub_spec(source: str) -> tuple[str, str | None, str, str | None]:
    """Split ``hf://OWNER/NAME[/CONFIG][@SPLIT][#REVISION]`` into (name, config, split,
    revision)."""
    spec, hash_sign, revision = source[len(HUB_PREFIX) :].partition("#")
    body, at, split = spec.partition("@")
    parts = body.split("/")
    if (
        len(parts) not in (2, 3)
        or not all(parts)
        or (at and not split)
        or (hash_sign and not revision)
    ):
        raise TifError(
            f"bad hub dataset {source!r}: expected hf://OWNER/NAME[/CONFIG][@SPLIT][#REVISION], "
            "e.g. hf://locuslab/TOFU/forget01@train"
        )
    config = parts[2] if len(parts) == 3 else None
    return f"{parts[0]}/{parts[1]}", config, split or "train", revision or None


def _hub_rows(source: str, token: str | None = None) -> list[tuple[int, object]]:
    """Load a hub dataset through ``datasets.load_dataset`` (at its ``#REVISION``, with
    ``token`` for a gated or private one); any failure is a TifError (without the token)."""
    name, config, split, revision = _parse_hub_spec(source)
    try:
        import datasets

        dataset = datasets.load_dataset(name, config, split=split, revision=revision, token=token)
        return [(i, row) for i, row in enumerate(dataset, start=1)]
    except Exception as exc:  # offline, not found, bad config/split, missing package...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if token:
            detail = detail.replace(token, "***")
        raise TifError(
            f"could not load dataset {source!r} ({name}"
            f"{', config ' + config if config else ''}, split {split}): the Hugging Face hub "
            f"could not be reached or the dataset was not found [{type(exc).__name__}: "
            f"{detail[:200]}]; download it and pass a local .json/.jsonl file instead"
        ) from exc


# ---------------------------------------------------------------------------- rows


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    names |= {int: "an integer", float: "a number"}
    return names.get(type(value), "null" if value is None else f"a {type(value).__name__}")


def _row_dict(
    value: object, where: str, line: int, field_map: dict[str, str], entry: int | None = None
) -> dict:
    """Turn one parsed value into a row dict: strings become ``{"text": s}``; renames applied."""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise DataError(
            f"expected a JSON object (or a string), got {_type_name(value)}",
            path=where,
            line=line,
            entry=entry,
        )
    return {field_map.get(key, key): v for key, v in value.items()}


def file_or_hub_rows(
    source: str | os.PathLike[str],
    field_map: dict[str, str] | None = None,
    *,
    token: str | None = None,
) -> list[tuple[str, int, dict]]:
    """Rows of a local file (``.txt``: one document) or ``hf://`` dataset (read with ``token``)
    as ``(path, line, row)``."""
    where = os.fspath(source)
    if isinstance(where, str) and where.startswith(HUB_PREFIX):
        values = _hub_rows(where, token)
    elif where.lower().endswith(".txt"):
        values = read_text_document(source)
    else:
        values = read_json_rows(source)
    mapping = field_map or {}
    return [
        (where, line, _row_dict(value, where, line, mapping, entry))
        for entry, (line, value) in enumerate(values)
    ]
