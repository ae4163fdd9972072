"""data/annotations.py by hand-checked cases: where an error points, span bounds, repairing a
span to the nearest occurrence of its word (issue 35, mutation testing)."""

from __future__ import annotations

import contextlib
import signal

import pytest

from tif_unlearn.data.annotations import (
    parse_unwanted_spans,
    spans_from_row,
    unwanted_from_general,
    write_annotated,
)
from tif_unlearn.data.records import QARecord
from tif_unlearn.errors import DataError


@pytest.mark.parametrize(
    ("where", "path", "line"),
    [("data.jsonl:12", "data.jsonl", 12), ("notes:draft", "notes:draft", None), ("x", "x", None)],
)
def test_an_error_points_at_the_file_and_only_a_numeric_line(where, path, line):
    with pytest.raises(DataError) as caught:
        parse_unwanted_spans("0-4", "Oslo", where=where)
    assert (caught.value.path, caught.value.line) == (path, line)


def test_a_span_may_end_at_the_end_of_the_answer():
    assert parse_unwanted_spans([[5, 9]], "Born Oslo", where="d:1") == ((5, 9),)
    with pytest.raises(DataError, match="out of range"):
        parse_unwanted_spans([[5, 10]], "Born Oslo", where="d:1")


def test_a_word_at_the_very_start_is_found_when_repairing():
    row = {"unwanted_words": [{"word": "Oslo", "start": 5, "end": 9}]}
    spans, warnings = spans_from_row(row, "Oslo is cold", where="d.jsonl:3")
    assert spans == ((0, 4),)
    assert warnings == [
        "d.jsonl:3: field 'unwanted_words': span [5,9] does not match 'Oslo' (found 'is c'); "
        "using [0,4]"
    ]


def test_overlapping_occurrences_are_all_candidates_when_repairing():
    # "aa" occurs at 0 and at 1 in "aaa b"; the span given starts at 1
    row = {"unwanted_words": [{"word": "aa", "start": 1, "end": 2}]}
    assert spans_from_row(row, "aaa b", where="d:1")[0] == ((1, 3),)


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (rather than hang) when the block runs longer than ``seconds``."""

    def stop(signum, frame):
        raise TimeoutError(f"took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_repairing_to_a_word_inside_the_text_ends():
    row = {"unwanted_words": [{"word": "Oslo", "start": 0, "end": 3}]}
    with deadline(5):
        spans, warnings = spans_from_row(row, "The Oslo fjord", where="d:1")
    assert spans == ((4, 8),) and len(warnings) == 1


@pytest.mark.parametrize(("start", "end"), [(0, 4), (11, 15)])  # at the start, at the end
def test_a_matching_span_at_either_end_of_the_text_needs_no_repair(start, end):
    target = "Oslo, then Oslo"
    row = {"unwanted_words": [{"word": "Oslo", "start": start, "end": end}]}
    assert spans_from_row(row, target, where="d:1") == (((start, end),), [])


def test_an_item_error_shows_the_word_as_written():
    row = {"unwanted_words": [{"word": "Zürich", "start": "0"}]}
    with pytest.raises(DataError, match='"word": "Zürich"'):
        spans_from_row(row, "Zürich", where="d:1")


def test_general_words_cover_the_words_they_overlap_not_those_they_touch():
    # "Ann" 0-3, "met" 4-7, "Bob" 8-11; a general span 0-4 ends where "met" starts,
    # 7-8 (the space) starts where "met" ends
    assert unwanted_from_general("Ann met Bob", [(0, 4)]) == ((4, 7), (8, 11))
    assert unwanted_from_general("Ann met Bob", [(7, 8)]) == ((0, 3), (4, 7), (8, 11))


def test_written_annotations_create_folders_and_keep_non_ascii_text(tmp_path):
    path = tmp_path / "a" / "b" / "out.jsonl"
    write_annotated([QARecord("Wo?", "In Zürich.", unwanted_spans=((3, 9),))], path)
    assert path.read_text(encoding="utf-8") == (
        '{"question": "Wo?", "answer": "In Zürich.", "unwanted_spans": [[3, 9]]}\n'
    )
