"""Text windows: token ranges, character offsets, span clipping (hand-made offsets)."""

from __future__ import annotations

import pytest

from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.data.windows import (
    Window,
    clip_spans,
    text_windows,
    token_ranges,
    window_records,
)
from tif_unlearn.errors import DataError, TifError

# "aa bb cc dd ee": five words of 2 letters; token k covers characters [3k, 3k + 2).
TEXT = "aa bb cc dd ee"
OFFSETS = [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]


class WordTokenizer:
    """A fast-tokenizer stand-in: one token per space-separated word, with exact offsets."""

    is_fast = True

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        offsets, start = [], 0
        for word in text.split(" "):
            if word:
                offsets.append((start, start + len(word)))
            start += len(word) + 1
        return {"input_ids": list(range(len(offsets))), "offset_mapping": offsets}


def test_token_ranges_side_by_side_keep_the_last_short_window():
    assert token_ranges(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]
    assert token_ranges(8, 4, 4) == [(0, 4), (4, 8)]  # no empty window at the end


def test_token_ranges_with_overlap():
    # stride 2 of length 4: starts 0, 2, 4; the window at 4 reaches the end (7), so it is last
    assert token_ranges(7, 4, 2) == [(0, 4), (2, 6), (4, 7)]
    assert token_ranges(3, 4, 2) == [(0, 3)]
    assert token_ranges(0, 4, 4) == []


def test_token_ranges_rejects_bad_sizes():
    with pytest.raises(ValueError):
        token_ranges(5, 0, 1)


def test_text_windows_keep_exact_character_offsets():
    windows = text_windows(OFFSETS, 2, 2)
    assert windows == [Window(0, 2, 0, 5), Window(2, 4, 6, 11), Window(4, 5, 12, 14)]
    assert [TEXT[w.start : w.end] for w in windows] == ["aa bb", "cc dd", "ee"]


def test_text_windows_overlap():
    windows = text_windows(OFFSETS, 3, 1)
    assert [TEXT[w.start : w.end] for w in windows] == ["aa bb cc", "bb cc dd", "cc dd ee"]


def test_clip_spans_inside_crossing_and_outside():
    # window [5, 13): (2, 8) -> (5, 8) -> relative (0, 3); (12, 15) -> (12, 13) -> (7, 8)
    assert clip_spans([(2, 8), (12, 15)], 5, 13) == ((0, 3), (7, 8))
    assert clip_spans([(0, 5), (13, 20)], 5, 13) == ()  # touching the edges only
    assert clip_spans([(6, 9)], 5, 13) == ((1, 4),)


def test_window_records_clip_a_crossing_span_into_both_windows():
    # the span "bb cc" (3, 8) crosses the boundary between "aa bb" and "cc dd"
    record = TextRecord(TEXT, unwanted_spans=((3, 8), (12, 14)), source="f.json:1", index=4)
    out = window_records([record], WordTokenizer(), length=2)
    assert [r.text for r in out] == ["aa bb", "cc dd", "ee"]
    assert [r.unwanted_spans for r in out] == [((3, 5),), ((0, 2),), ((0, 2),)]
    assert [r.text[a:b] for r in out for a, b in r.unwanted_spans] == ["bb", "cc", "ee"]
    assert out[1].source == "f.json:1 window 2" and out[1].index == 4


def test_window_records_keep_unannotated_texts_unannotated_and_qa_untouched():
    qa = QARecord("Q?", "A.")
    out = window_records([qa, TextRecord(TEXT)], WordTokenizer(), length=3, stride=2)
    assert out[0] is qa
    assert [r.text for r in out[1:]] == ["aa bb cc", "cc dd ee"]
    assert all(r.unwanted_spans is None for r in out[1:])


def test_short_text_is_an_error_naming_file_and_entry():
    records = [TextRecord(TEXT, source="c.json:1", index=0), TextRecord("aa", source="c.json:1")]
    with pytest.raises(DataError) as exc:
        window_records(records, WordTokenizer(), length=3)
    message = str(exc.value)
    assert message.startswith("c.json: entry 1:") and "--window-length" in message
    assert "1 tokens, shorter than one window of 3" in message


def test_short_text_kept_as_one_window_on_request():
    out = window_records(
        [TextRecord("aa bb", ((3, 5),))], WordTokenizer(), length=3, short_texts="keep"
    )
    assert [(r.text, r.unwanted_spans) for r in out] == [("aa bb", ((3, 5),))]
    with pytest.raises(TifError, match="short_texts"):
        window_records([], WordTokenizer(), short_texts="drop")


def test_windows_with_a_real_tokenizer_match_the_text(tokenizer):
    text = "Basil was born in Kuwait City. " * 6
    city = text.index("Kuwait City")
    record = TextRecord(text, unwanted_spans=((city, city + len("Kuwait City")),))
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    out = window_records([record], tokenizer, length=8, stride=5)
    assert len(out) == len(token_ranges(n_tokens, 8, 5))
    for window in out:  # every window is a substring of the text, its spans are "Kuwait City"
        assert window.text in text
        assert all(window.text[a:b] in "Kuwait City" for a, b in window.unwanted_spans)
    assert any(
        window.text[a:b] == "Kuwait City" for window in out for a, b in window.unwanted_spans
    )
