"""`tif eval qa`'s utility outside the retain set: a held-out general-knowledge QA set (shipped
in ``resources/general_knowledge.json``, or ``--utility FILE``), and a warning when ``--retain``
holds the records the model was trained to retain (its scores then cannot show damage elsewhere).

A utility item's key words are its UW spans (the shipped set: each item's ``key``); an answer
is correct when it says one of them whole (:func:`leak.mentions`), so accuracy is the strict
greedy "leak" rate of the key words. Items without spans have no correctness verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ..data.records import QARecord, Record, TextRecord

BUILTIN = "builtin"
NONE = "none"
RUN_FILE = "tif_run.json"  # the run record an unlearned model folder holds (train/output.py)


def builtin_records() -> list[QARecord]:
    """The shipped general-knowledge questions, each answer's ``key`` as its one UW span."""
    path = resources.files("tif_unlearn").joinpath("resources/general_knowledge.json")
    rows = json.loads(path.read_text("utf-8"))["items"]
    records = []
    for row in rows:
        start = row["answer"].index(row["key"])
        span = ((start, start + len(row["key"])),)
        records.append(QARecord(row["question"], row["answer"], span, source="general knowledge"))
    return records


def mark_correct(rows: list[dict]) -> list[dict]:
    """Utility rows: the strict greedy verdict of the key words becomes ``correct`` (None
    without key words) in place of the leak verdict."""
    for row in rows:
        verdict = row.pop("leak", None)
        row["correct"] = None if verdict is None else verdict["greedy"]
    return rows


def record_key(record: Record) -> tuple[str, ...]:
    """What makes two records the same: the text, or the question and answer, stripped."""
    if isinstance(record, TextRecord):
        return (record.text.strip(),)
    return (record.question.strip(), record.answer.strip())


def shared_records(evaluated: Sequence[Record], trained: Sequence[Record]) -> int:
    """How many of the ``evaluated`` records are among the ``trained`` ones."""
    known = {record_key(r) for r in trained}
    return sum(record_key(r) in known for r in evaluated)


def training_retain(model: str) -> dict | None:
    """``{"source", "sha256"}`` of the retain file the model at ``model`` (a local folder with
    a run record) was unlearned with; None when unknown."""
    run_file = Path(model) / RUN_FILE
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    retain = run.get("data", {}).get("retain") if isinstance(run, dict) else None
    return retain if isinstance(retain, dict) and retain.get("source") else None


def _sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def retain_warning(model: str, retain: str, records: Sequence[Record]) -> str | None:
    """One line when the ``--retain`` ``records`` (file ``retain``) are records the model was
    trained to retain: the same file content, or records found in the recorded file."""
    trained = training_retain(model)
    if trained is None:
        return None
    source = trained["source"]
    shared = 0
    if trained.get("sha256") and trained["sha256"] == _sha256(retain):
        shared = len(records)
    elif Path(source).is_file():
        from ..data.loaders import load_records

        try:
            shared = shared_records(records, load_records(source))
        except Exception:  # noqa: BLE001 - an unreadable recorded file only loses the warning
            return None
    if not shared:
        return None
    return (
        f"--retain {retain}: {shared} of {len(records)} records are the model's training retain "
        f"set ({source}), so the retain scores cannot show damage outside it; read the "
        "held-out utility set"
    )
