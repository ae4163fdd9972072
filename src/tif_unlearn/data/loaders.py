"""Load rows and records from files, the Hugging Face hub or ``tofu:SPLIT``, and refusals.

Reading files and hub datasets is :mod:`~tif_unlearn.data.sources`; here: source resolution
(``tofu:`` included), rows to records, and refusal sentences. Every problem with the input
becomes a :class:`~tif_unlearn.errors.DataError` or :class:`~tif_unlearn.errors.TifError`.
"""

from __future__ import annotations

import json
import logging
import os

from tif_unlearn.data.annotations import spans_from_row
from tif_unlearn.data.records import QARecord, Record, TextRecord
from tif_unlearn.data.sources import (
    HUB_PREFIX,
    _read_text,
    _row_dict,
    _type_name,
    file_or_hub_rows,
    read_json_rows,
    read_text_document,
)
from tif_unlearn.data.tofu import default_tofu_dir, load_tofu_split
from tif_unlearn.errors import DataError, TifError

__all__ = [
    "BUILTIN_REFUSALS",
    "HUB_PREFIX",
    "load_records",
    "load_refusals",
    "load_rows",
    "parse_field_map",
    "read_json_rows",
    "read_text_document",
]

logger = logging.getLogger("tif_unlearn")

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


def _tofu_rows(source: str) -> tuple[str, list[tuple[int, object]]]:
    """``tofu:SPLIT`` -> the TOFU split from the local data folder (or the hub)."""
    name = source[len(TOFU_PREFIX) :]
    rows = load_tofu_split(name)
    folder = default_tofu_dir()
    where = str(folder / f"{name}.json") if folder else f"hf://locuslab/TOFU/{name}"
    return where, list(enumerate(rows, start=1))


def _located_rows(
    source: str | os.PathLike[str], field_map: dict[str, str] | None, token: str | None = None
) -> list[tuple[str, int, dict]]:
    """Rows of a file, hub dataset (read with ``token``) or TOFU split as ``(path, line, row)``."""
    where = os.fspath(source)
    if not (isinstance(where, str) and where.startswith(TOFU_PREFIX)):
        return file_or_hub_rows(source, field_map, token=token)
    where, values = _tofu_rows(where)
    mapping = field_map or {}
    return [
        (where, line, _row_dict(value, where, line, mapping, entry))
        for entry, (line, value) in enumerate(values)
    ]


def load_rows(
    source: str | os.PathLike[str], *, field_map: dict[str, str] | None = None
) -> list[tuple[str, dict]]:
    """Return ``("path:line", row)`` for each row of a local file or ``hf://`` dataset.

    ``field_map`` renames fields (``{"prompt": "question"}``; see :func:`parse_field_map`).
    For hub datasets the "line" is the 1-based row index.
    """
    return [(f"{where}:{line}", row) for where, line, row in _located_rows(source, field_map)]


# ---------------------------------------------------------------------------- records


def _string_field(row: dict, field: str, where: str, line: int, entry: int | None = None) -> str:
    """Return ``row[field]``, which must be a non-blank string."""
    at = {"path": where, "line": line, "field": field, "entry": entry}
    if field not in row:
        have = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"missing (the row has: {have})", **at)
    value = row[field]
    if not isinstance(value, str):
        raise DataError(f"must be a string, got {_type_name(value)}", **at)
    if not value.strip():
        raise DataError("is empty", **at)
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


def _make_record(
    row: dict, kind: str, where: str, line: int, entry: int
) -> tuple[Record, list[str]]:
    """Build one record (with its unwanted spans, if annotated) and its annotation warnings.

    ``entry`` is the row's 0-based position in its file: text errors name it, and a text
    record keeps it as ``index`` (several texts can share a line of a JSON array)."""
    loc = f"{where}:{line}"
    if kind == "qa":
        question = _string_field(row, "question", where, line)
        answer = _string_field(row, "answer", where, line)
        spans, warns = spans_from_row(row, answer, where=loc, target_field="answer")
        return QARecord(question, answer, unwanted_spans=spans, source=loc), warns
    text = _string_field(row, "text", where, line, entry)
    spans, warns = spans_from_row(row, text, where=loc, target_field="text")
    return TextRecord(text, unwanted_spans=spans, source=loc, index=entry), warns


def load_records(
    source: str | os.PathLike[str],
    *,
    kind: str = "auto",
    field_map: dict[str, str] | None = None,
    token: str | None = None,
) -> list[QARecord | TextRecord]:
    """Load QA or text records (with unwanted spans when annotated) from a file or hub dataset
    (``hf://OWNER/NAME[/CONFIG][@SPLIT][#REVISION]``, read with ``token`` when given).

    ``kind="auto"`` decides from the first row (QA if it has question+answer, else text if it
    has text) and then requires every row to be of that kind. Annotation mismatches that
    could be repaired are logged once each as warnings on the ``tif_unlearn`` logger.
    """
    if kind not in RECORD_KINDS:
        raise TifError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    rows = _located_rows(source, field_map, token)
    if not rows:
        raise DataError("no records", path=os.fspath(source))
    if kind == "auto":
        kind = _row_kind(rows[0][2], rows[0][0], rows[0][1])
    records: list[Record] = []
    seen: set[str] = set()
    for entry, (where, line, row) in enumerate(rows):
        record, warns = _make_record(row, kind, where, line, entry)
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
