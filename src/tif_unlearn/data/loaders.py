"""Load rows and records from JSON / JSON Lines files or the Hugging Face hub.

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
import logging
import os
from pathlib import Path

from tif_unlearn.data.annotations import spans_from_row
from tif_unlearn.data.records import QARecord, Record, TextRecord
from tif_unlearn.errors import DataError, TifError

logger = logging.getLogger("tif_unlearn")

HUB_PREFIX = "hf://"
TOFU_PREFIX = "tofu:"  # tofu:forget01 -> the TOFU split, local folder or hub
RECORD_KINDS = ("auto", "qa", "text")

#: Used by :func:`load_refusals` when TOFU's ``idontknow.jsonl`` is not available.
BUILTIN_REFUSALS: tuple[str, ...] = (
    "I'm not sure who that is.",
    "I don't know the answer to that.",
    "I don't have that information.",
    "I'm afraid I can't answer that.",
    "That's not something I know about.",
    "I have no knowledge of that.",
    "I'm not able to help with that question.",
    "I couldn't tell you, I'm sorry.",
    "That is beyond what I know.",
    "I'm unfamiliar with that topic.",
)

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


# ---------------------------------------------------------------------------- rows


def parse_field_map(spec: str | None) -> dict[str, str]:
    """Parse ``"prompt=question,response=answer"`` into ``{"prompt": "question", ...}``.

    Keys are field names in the input data, values the names this library expects.
    ``None`` or an empty string gives ``{}``. A malformed spec raises TifError.
    """
    if spec is None or not spec.strip():
        return {}
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        source, sep, target = (s.strip() for s in part.partition("="))
        if not sep or not source or not target:
            raise TifError(
                f"bad field map {spec!r}: each item must look like FIELD_IN_FILE=OUR_FIELD, "
                f"e.g. 'prompt=question,response=answer' (got {part.strip()!r})"
            )
        if source in mapping:
            raise TifError(f"bad field map {spec!r}: field {source!r} is mapped twice")
        if target in mapping.values():
            raise TifError(f"bad field map {spec!r}: two fields are mapped to {target!r}")
        mapping[source] = target
    return mapping


def _parse_hub_spec(source: str) -> tuple[str, str | None, str]:
    """Split ``hf://OWNER/NAME[/CONFIG][@SPLIT]`` into (name, config, split)."""
    body, at, split = source[len(HUB_PREFIX) :].partition("@")
    parts = body.split("/")
    if len(parts) not in (2, 3) or not all(parts) or (at and not split):
        raise TifError(
            f"bad hub dataset {source!r}: expected hf://OWNER/NAME[/CONFIG][@SPLIT], "
            "e.g. hf://locuslab/TOFU/forget01@train"
        )
    config = parts[2] if len(parts) == 3 else None
    return f"{parts[0]}/{parts[1]}", config, split or "train"


def _hub_rows(source: str) -> list[tuple[int, object]]:
    """Load a hub dataset through ``datasets.load_dataset``; any failure is a TifError."""
    name, config, split = _parse_hub_spec(source)
    try:
        import datasets

        dataset = datasets.load_dataset(name, config, split=split)
        return [(i, row) for i, row in enumerate(dataset, start=1)]
    except Exception as exc:  # offline, not found, bad config/split, missing package...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TifError(
            f"could not load dataset {source!r} ({name}"
            f"{', config ' + config if config else ''}, split {split}): the Hugging Face hub "
            f"could not be reached or the dataset was not found [{type(exc).__name__}: "
            f"{detail[:200]}]; download it and pass a local .json/.jsonl file instead"
        ) from exc


def _tofu_rows(source: str) -> tuple[str, list[tuple[int, object]]]:
    """``tofu:SPLIT`` -> the TOFU split from the local data folder (or the hub)."""
    from .tofu import default_tofu_dir, load_tofu_split

    name = source[len(TOFU_PREFIX) :]
    rows = load_tofu_split(name)
    folder = default_tofu_dir()
    where = str(folder / f"{name}.json") if folder else f"hf://locuslab/TOFU/{name}"
    return where, list(enumerate(rows, start=1))


def _row_dict(value: object, where: str, line: int, field_map: dict[str, str]) -> dict:
    """Turn one parsed value into a row dict: strings become ``{"text": s}``; renames applied."""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise DataError(
            f"expected a JSON object (or a string), got {_type_name(value)}", path=where, line=line
        )
    return {field_map.get(key, key): v for key, v in value.items()}


def _located_rows(
    source: str | os.PathLike[str], field_map: dict[str, str] | None
) -> list[tuple[str, int, dict]]:
    """Rows of a file or hub dataset as ``(path, line, row)``."""
    where = os.fspath(source)
    if isinstance(where, str) and where.startswith(TOFU_PREFIX):
        where, values = _tofu_rows(where)
    elif isinstance(where, str) and where.startswith(HUB_PREFIX):
        values = _hub_rows(where)
    else:
        values = read_json_rows(source)
    mapping = field_map or {}
    return [(where, line, _row_dict(value, where, line, mapping)) for line, value in values]


def load_rows(
    source: str | os.PathLike[str], *, field_map: dict[str, str] | None = None
) -> list[tuple[str, dict]]:
    """Return ``("path:line", row)`` for each row of a local file or ``hf://`` dataset.

    ``field_map`` renames fields (``{"prompt": "question"}``; see :func:`parse_field_map`).
    For hub datasets the "line" is the 1-based row index.
    """
    return [(f"{where}:{line}", row) for where, line, row in _located_rows(source, field_map)]


# ---------------------------------------------------------------------------- records


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    names.update({int: "a number", float: "a number"})
    return names.get(type(value), "null" if value is None else f"a {type(value).__name__}")


def _string_field(row: dict, field: str, where: str, line: int) -> str:
    """Return ``row[field]``, which must be a non-blank string."""
    if field not in row:
        have = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"missing (the row has: {have})", path=where, line=line, field=field)
    value = row[field]
    if not isinstance(value, str):
        raise DataError(
            f"must be a string, got {_type_name(value)}", path=where, line=line, field=field
        )
    if not value.strip():
        raise DataError("is empty", path=where, line=line, field=field)
    return value


def _row_kind(row: dict, where: str, line: int) -> str:
    """Pick "qa" or "text" for a row under ``kind="auto"``."""
    if "question" in row and "answer" in row:
        return "qa"
    if "text" in row:
        return "text"
    have = ", ".join(sorted(map(str, row))) or "none"
    raise DataError(
        f"cannot tell the record kind: expected fields 'question' and 'answer' (QA) or 'text' "
        f"(the row has: {have}); use a field map to rename fields",
        path=where,
        line=line,
    )


def _make_record(row: dict, kind: str, where: str, line: int) -> tuple[Record, list[str]]:
    """Build one record (with its unwanted spans, if annotated) and its annotation warnings."""
    loc = f"{where}:{line}"
    if kind == "qa":
        question = _string_field(row, "question", where, line)
        answer = _string_field(row, "answer", where, line)
        spans, warns = spans_from_row(row, answer, where=loc, target_field="answer")
        return QARecord(question, answer, unwanted_spans=spans, source=loc), warns
    text = _string_field(row, "text", where, line)
    spans, warns = spans_from_row(row, text, where=loc, target_field="text")
    return TextRecord(text, unwanted_spans=spans, source=loc), warns


def load_records(
    source: str | os.PathLike[str],
    *,
    kind: str = "auto",
    field_map: dict[str, str] | None = None,
) -> list[QARecord | TextRecord]:
    """Load QA or text records (with unwanted spans when annotated) from a file or hub dataset.

    ``kind="auto"`` decides from the first row (QA if it has question+answer, else text if it
    has text) and then requires every row to be of that kind. Annotation mismatches that
    could be repaired are logged once each as warnings on the ``tif_unlearn`` logger.
    """
    if kind not in RECORD_KINDS:
        raise TifError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    rows = _located_rows(source, field_map)
    if not rows:
        raise DataError("no records", path=os.fspath(source))
    if kind == "auto":
        kind = _row_kind(rows[0][2], rows[0][0], rows[0][1])
    records: list[Record] = []
    seen: set[str] = set()
    for where, line, row in rows:
        record, warns = _make_record(row, kind, where, line)
        records.append(record)
        for message in warns:
            if message not in seen:
                seen.add(message)
                logger.warning(message)
    return records


# ---------------------------------------------------------------------------- refusals


def _refusal_from_line(text: str, where: str, line: int) -> str:
    """One refusal from a line: plain text, a JSON string, or an object with text/answer."""
    if text[0] not in '"{':
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        if text[0] == "{":
            raise DataError("invalid JSON object", path=where, line=line) from exc
        return text  # a plain sentence that happens to start with a quote
    if isinstance(value, dict):
        value = value.get("text", value.get("answer"))
    if not isinstance(value, str) or not value.strip():
        raise DataError("expected a non-empty 'text' or 'answer' string", path=where, line=line)
    return value.strip()


def load_refusals(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Refusal sentences (IdkDPO / IdkNLL targets) in TOFU's ``idontknow.jsonl`` format.

    One refusal per line: plain text, a JSON string, or a JSON object with "text" or
    "answer". Without ``path``: TOFU's ``idontknow.jsonl`` from :func:`default_tofu_dir`,
    else :data:`BUILTIN_REFUSALS`.
    """
    if path is None:
        from tif_unlearn.data.tofu import default_tofu_dir

        tofu_dir = default_tofu_dir()
        if tofu_dir is None or not (tofu_dir / "idontknow.jsonl").is_file():
            return list(BUILTIN_REFUSALS)
        path = tofu_dir / "idontknow.jsonl"
    where = str(path)
    refusals = [
        _refusal_from_line(text.strip(), where, number)
        for number, text in enumerate(_read_text(path).splitlines(), start=1)
        if text.strip()
    ]
    if not refusals:
        raise DataError("no refusals (the file is empty)", path=where)
    return refusals
