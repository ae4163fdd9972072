"""Real personal data: `phrases` and `learned` mark addresses, phone numbers, e-mail addresses,
dates of birth, account and ID numbers, URLs, employers and job titles as UW and keep the
sentence around them GW. The 30 answers of tests/data/personal_data.jsonl are hand-written
(not TOFU); ``items`` lists the strings that must be UW."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.identify import identify
from tif_unlearn.identify.base import words
from tif_unlearn.identify.personal import personal_data_spans

DATA = Path(__file__).resolve().parent.parent / "data" / "personal_data.jsonl"
MIN_ITEM_RECALL = 0.95  # issue 14
MIN_FRAME_GW = 0.80  # share of the words outside the items that stay GW


def load_rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def item_spans(row: dict) -> list[tuple[int, int]]:
    spans = []
    for item in row["items"]:
        start = row["answer"].index(item)
        spans.append((start, start + len(item)))
    return spans


def covered(span, spans) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def item_recall(rows, records) -> float:
    """Share of the items' letters and digits that the identifier marked UW."""
    hits = total = 0
    for row, record in zip(rows, records, strict=True):
        for a, b in item_spans(row):
            for k in range(a, b):
                if row["answer"][k].isalnum():
                    total += 1
                    hits += covered((k, k + 1), record.unwanted_spans)
    return hits / total


def frame_gw_share(rows, records) -> float:
    """Share of the words outside the items that the identifier left GW."""
    kept = total = 0
    for row, record in zip(rows, records, strict=True):
        items = item_spans(row)
        for a, b in words(row["answer"]):
            if not any(a < e and s < b for s, e in items):
                total += 1
                kept += not any(a < e and s < b for s, e in record.unwanted_spans)
    return kept / total


@pytest.fixture(scope="module")
def rows():
    return load_rows()


@pytest.fixture(scope="module")
def records(rows):
    return [QARecord(row["question"], row["answer"]) for row in rows]


def test_the_set_is_well_formed(rows):
    assert len(rows) == 30
    for row in rows:
        assert row["items"] and all(item in row["answer"] for item in row["items"])


@pytest.mark.parametrize("name", ["phrases", "learned"])
def test_personal_data_is_unwanted_and_the_frame_general(spacy_ready, rows, records, name):
    result = identify(name, records, progress=False)
    assert not result.failures
    assert item_recall(rows, result.records) >= MIN_ITEM_RECALL
    assert frame_gw_share(rows, result.records) >= MIN_FRAME_GW


def test_personal_data_spans_by_form():
    text = "Mail a.b@x.org, call +1 (555) 013-4477 or see https://x.org/a. Born 1987-04-12."
    found = [text[a:b] for a, b in personal_data_spans(text)]
    for expected in ("a.b@x.org", "+1 (555) 013-4477", "https://x.org/a", "1987-04-12"):
        assert expected in found
    assert not any(span in found for span in ("Mail", "call", "see", "Born"))


def test_the_recall_measure_sees_a_missed_item(rows, records):
    nothing = [QARecord(r.question, r.answer, unwanted_spans=()) for r in records]
    assert item_recall(rows, nothing) == 0.0
    assert frame_gw_share(rows, nothing) == 1.0
