"""Identifiers on plain-text records: spans into ``text``, paragraph chunks for the llm."""

from __future__ import annotations

import pytest

from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.identify import IdentifyResult, identify
from tif_unlearn.identify.chunks import paragraphs, text_chunks
from tif_unlearn.identify.llm import build_prompt, chunk_records, merge_chunks

NEWS = (
    "Greek Prime Minister Kyriakos Mitsotakis asked for forgiveness on Sunday.\n\n"
    "Thousands joined a demonstration in Athens, and 57 people were remembered."
)


def texts(record) -> list[str]:
    return [record.target[a:b] for a, b in record.unwanted_spans]


# --------------------------------------------------------------------------- chunks


def test_paragraphs_are_separated_by_blank_lines():
    text = "  One line.\nSame paragraph.\n\n \nTwo.\n\nThree.  \n"
    assert [text[a:b] for a, b in paragraphs(text)] == [
        "One line.\nSame paragraph.",
        "Two.",
        "Three.",
    ]


def test_text_chunks_pack_whole_paragraphs():
    text = "aaaa\n\nbbbb\n\ncccc"  # paragraphs at 0-4, 6-10, 12-16
    assert text_chunks(text, 10) == [(0, 10), (12, 16)]  # "aaaa\n\nbbbb" is 10 characters
    assert text_chunks(text, 9) == [(0, 4), (6, 10), (12, 16)]
    assert text_chunks(text, 100) == [(0, 16)]


def test_text_chunks_cut_a_long_paragraph_at_whitespace():
    text = "aaa bbb ccc dddddddddd"
    chunks = text_chunks(text, 8)
    assert [text[a:b] for a, b in chunks] == ["aaa bbb", "ccc", "dddddddd", "dd"]
    with pytest.raises(ValueError):
        text_chunks(text, 0)


def test_chunk_records_and_merge_map_spans_back_to_the_full_text():
    qa = QARecord("Where?", "In Athens.")
    records = [qa, TextRecord(NEWS), TextRecord("Short.")]
    pieces, owners = chunk_records(records, 80)
    assert pieces[0] is qa and pieces[-1] is records[2]
    assert [p.target for p in pieces[1:3]] == NEWS.split("\n\n")
    assert owners == [(0, 0), (1, 0), (1, NEWS.index("Thousands")), (2, 0)]
    # what an identifier returns for each piece, spans relative to the piece
    athens = pieces[2].target.index("Athens")
    answered = [
        QARecord("Where?", "In Athens.", ((3, 9),)),
        TextRecord(pieces[1].target, ((21, 40),)),
        TextRecord(pieces[2].target, ((athens, athens + 6),)),
        TextRecord("Short.", ()),
    ]
    merged = merge_chunks(records, owners, IdentifyResult(answered))
    assert not merged.failures
    assert texts(merged.records[1]) == ["Kyriakos Mitsotakis", "Athens"]
    assert texts(merged.records[0]) == ["Athens"] and merged.records[2].unwanted_spans == ()


def test_merge_fails_a_record_when_one_of_its_chunks_failed():
    records = [TextRecord(NEWS)]
    pieces, owners = chunk_records(records, 80)
    answered = IdentifyResult([TextRecord(p.target, ()) for p in pieces], [(1, "no list")])
    merged = merge_chunks(records, owners, answered)
    assert merged.failures == [(0, f"chunk at character {owners[1][1]}: no list")]
    assert merged.records[0] is records[0]


def test_text_prompt_asks_for_the_facts_of_the_passage():
    prompt = build_prompt(TextRecord("Mr Mitsotakis spoke."))
    assert "Passage:\nMr Mitsotakis spoke." in prompt and "Question:" not in prompt
    for asked in ("names", "numbers", "places", "events", "quotations", "JSON list"):
        assert asked in prompt


# --------------------------------------------------------------------------- local identifiers


def test_ner_on_a_text_record(spacy_ready):
    found = texts(identify("ner", [TextRecord(NEWS)], progress=False).records[0])
    assert "Kyriakos Mitsotakis" in " ".join(found) and "Athens" in found and "57" in found
    assert not any(w in ("asked", "forgiveness", "demonstration") for w in found)


def test_frequency_on_a_text_record():
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    found = texts(identify("frequency", [TextRecord(NEWS)], progress=False).records[0])
    assert "Mitsotakis" in " ".join(found) and "57" in found
    assert "the" not in found and "people" not in found


def test_combined_on_text_records_is_the_union(spacy_ready):
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    records = [TextRecord(NEWS), TextRecord("The weather was fine.")]
    ner = identify("ner", records, progress=False).records
    freq = identify("frequency", records, progress=False).records
    both = identify("combined", records, progress=False)
    assert not both.failures and both.records[1].unwanted_spans == ()
    covered = {i for a, b in both.records[0].unwanted_spans for i in range(a, b)}
    for member in (ner[0], freq[0]):
        assert {i for a, b in member.unwanted_spans for i in range(a, b)} <= covered
