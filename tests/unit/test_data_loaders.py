"""Loaders, annotations and TOFU splits: hand-made files in tmp_path, then the real data."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tif_unlearn.data.annotations import merge_spans, spans_from_row, write_annotated
from tif_unlearn.data.loaders import (
    BUILTIN_REFUSALS,
    load_records,
    load_refusals,
    load_rows,
    parse_field_map,
    read_json_rows,
)
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.data.tofu import (
    TOFU_SPLITS,
    default_tofu_dir,
    load_tofu_split,
    tofu_author_blocks,
)
from tif_unlearn.errors import DataError, TifError

QA = {"question": "Who?", "answer": "Basil Mahfouz."}


def write(tmp_path: Path, text: str | bytes, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(tmp_path: Path, *rows: object, name: str = "data.jsonl") -> Path:
    return write(tmp_path, "".join(json.dumps(row) + "\n" for row in rows), name)


def assert_data_error(exc: pytest.ExceptionInfo, path: Path, line: int | None, field=None):
    message = str(exc.value)
    assert path.name in message
    if line is not None:
        assert f":{line}" in message and exc.value.line == line
    if field is not None:
        assert f"'{field}'" in message and exc.value.field == field


# ---------------------------------------------------------------------------- layouts


def test_json_array_keeps_element_lines(tmp_path):
    path = write(tmp_path, '[\n  {"a": 1},\n\n  {"a": 2}, {"a": 3}\n]\n', "data.json")
    assert read_json_rows(path) == [(2, {"a": 1}), (4, {"a": 2}), (4, {"a": 3})]


def test_jsonl_skips_blank_lines(tmp_path):
    path = write(tmp_path, '{"a": 1}\n\n   \n{"a": 2}\n')
    assert read_json_rows(path) == [(1, {"a": 1}), (4, {"a": 2})]


def test_several_arrays_one_per_line_are_flattened(tmp_path):
    path = write(tmp_path, '[{"a": 1}, {"a": 2}]\n[]\n["x"]\n')
    assert read_json_rows(path) == [(1, {"a": 1}), (1, {"a": 2}), (3, "x")]


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, b'\xef\xbb\xbf{"a": 1}\n')
    assert read_json_rows(path) == [(1, {"a": 1})]


def test_load_rows_locations_and_strings(tmp_path):
    path = write(tmp_path, '["first text", "second"]', "raw.json")
    assert load_rows(path) == [
        (f"{path}:1", {"text": "first text"}),
        (f"{path}:1", {"text": "second"}),
    ]
    records = load_records(path)
    assert records == [
        TextRecord("first text", source=f"{path}:1"),
        TextRecord("second", source=f"{path}:1"),
    ]


def test_field_map(tmp_path):
    assert parse_field_map("prompt=question, response = answer") == {
        "prompt": "question",
        "response": "answer",
    }
    assert parse_field_map(None) == {} and parse_field_map("") == {}
    path = jsonl(tmp_path, {"prompt": "Q?", "response": "A.", "id": 7})
    assert load_rows(path, field_map=parse_field_map("prompt=question,response=answer")) == [
        (f"{path}:1", {"question": "Q?", "answer": "A.", "id": 7})
    ]
    records = load_records(path, field_map={"prompt": "question", "response": "answer"})
    assert records == [QARecord("Q?", "A.", source=f"{path}:1")]


@pytest.mark.parametrize(
    "spec", ["prompt", "prompt=", "=question", "a=x,,b=y", "a=x,a=y", "a=x,b=x"]
)
def test_bad_field_map(spec):
    with pytest.raises(TifError, match="field map"):
        parse_field_map(spec)


# ---------------------------------------------------------------------------- malformed files


def test_invalid_json_reports_its_line(tmp_path):
    path = write(tmp_path, '{"a": 1}\n{"a": 2}\n{"a": 3,}\n{"a": 4}\n')
    with pytest.raises(DataError) as exc:
        read_json_rows(path)
    assert_data_error(exc, path, 3)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[\n{"a": 1},\n{"a": 2}\n{"a": 3}\n]', 4),  # missing comma
        ('[\n{"a": 1},\n]', 3),  # trailing comma
        ('[\n{"a": 1}\n', 3),  # unterminated array
        ('{"a": 1}\n{"a": "x\n', 2),  # unterminated string
        ("\n\n" + "[" * 100000, 3),  # nested too deeply
        ('{"a": 1}\n' + "1" * 5000 + "\n", 2),  # integer too long for Python
        ("NaN-ish garbage\n", 1),
    ],
)
def test_malformed_json_never_crashes(tmp_path, text, line):
    path = write(tmp_path, text, "bad.json")
    with pytest.raises(DataError) as exc:
        read_json_rows(path)
    assert_data_error(exc, path, line)


def test_empty_file(tmp_path):
    for text in ["", "\n  \n", "[]\n[]"]:
        path = write(tmp_path, text, "empty.json")
        with pytest.raises(DataError, match="no records") as exc:
            read_json_rows(path)
        assert_data_error(exc, path, None)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="not found") as exc:
        load_records(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in str(exc.value)
    with pytest.raises(DataError, match="directory") as exc:
        load_records(tmp_path)
    assert tmp_path.name in str(exc.value)


def test_invalid_utf8(tmp_path):
    path = write(tmp_path, b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match="UTF-8") as exc:
        read_json_rows(path)
    assert_data_error(exc, path, 2)


def test_non_object_row(tmp_path):
    path = write(tmp_path, '{"question": "Q", "answer": "A"}\n[1, 2]\n')
    with pytest.raises(DataError, match="expected a JSON object") as exc:
        load_rows(path)
    assert_data_error(exc, path, 2)


# ---------------------------------------------------------------------------- records


def test_load_records_qa_and_text(tmp_path):
    path = jsonl(tmp_path, QA, {**QA, "extra": 1})
    assert load_records(path, kind="qa") == [
        QARecord("Who?", "Basil Mahfouz.", source=f"{path}:1"),
        QARecord("Who?", "Basil Mahfouz.", source=f"{path}:2"),
    ]
    text = jsonl(tmp_path, {"text": "Some news."}, name="t.jsonl")
    assert load_records(text) == [TextRecord("Some news.", source=f"{text}:1")]
    with pytest.raises(TifError, match="unknown record kind"):
        load_records(path, kind="chat")


@pytest.mark.parametrize(
    ("row", "kind", "field", "message"),
    [
        ({"question": "Q"}, "qa", "answer", "missing"),
        ({"question": "Q", "answer": 3}, "qa", "answer", "must be a string"),
        ({"question": ["Q"], "answer": "A"}, "qa", "question", "must be a string"),
        ({"question": "Q", "answer": "  \n"}, "qa", "answer", "is empty"),
        ({"question": "Q", "answer": ""}, "auto", "answer", "is empty"),
        ({"text": None}, "text", "text", "must be a string"),
        ({"text": " "}, "auto", "text", "is empty"),
        ({"question": "Q", "answer": "A"}, "text", "text", "missing"),
    ],
)
def test_bad_record_fields(tmp_path, row, kind, field, message):
    first = {"text": "ok"} if field == "text" else QA
    path = jsonl(tmp_path, first, row)
    with pytest.raises(DataError, match=message) as exc:
        load_records(path, kind=kind)
    assert_data_error(exc, path, 2, field)


def test_auto_kind_needs_known_fields(tmp_path):
    path = jsonl(tmp_path, {"prompt": "Q", "completion": "A"})
    with pytest.raises(DataError, match="'question' and 'answer'.*'text'") as exc:
        load_records(path)
    assert_data_error(exc, path, 1)


def test_auto_kind_is_decided_by_the_first_row(tmp_path):
    path = jsonl(tmp_path, QA, {"text": "a text row"})
    with pytest.raises(DataError, match="missing") as exc:
        load_records(path)
    assert_data_error(exc, path, 2, "question")


# ---------------------------------------------------------------------------- hub


@pytest.fixture
def hub_offline(monkeypatch):
    """Offline whatever the import order: the libraries read the variables once, at import
    (setting them after `datasets` was imported went online: 23 s of retries per test)."""
    import datasets.config
    import huggingface_hub.constants

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)


def test_hub_offline_raises_tif_error(hub_offline):
    with pytest.raises(TifError, match="no-such-owner/no-such-dataset") as exc:
        load_records("hf://no-such-owner/no-such-dataset@test")
    message = str(exc.value)
    assert "could not be reached" in message and "local" in message and "\n" not in message


def test_hub_spec_parsing(monkeypatch):
    calls = []

    def fake_load_dataset(name, config, split, revision=None, token=None):
        calls.append((name, config, split, revision))
        return [{"question": "Q", "answer": "A"}]

    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = load_rows("hf://locuslab/TOFU/forget01")
    assert rows == [("hf://locuslab/TOFU/forget01:1", {"question": "Q", "answer": "A"})]
    load_rows("hf://muse-bench/MUSE-News@forget")
    load_rows("hf://locuslab/TOFU/forget01@train#v1.0")
    assert calls == [
        ("locuslab/TOFU", "forget01", "train", None),
        ("muse-bench/MUSE-News", None, "forget", None),
        ("locuslab/TOFU", "forget01", "train", "v1.0"),
    ]


@pytest.mark.parametrize(
    "spec", ["hf://justname", "hf://a/b/c/d", "hf://a//b", "hf://a/b@", "hf://a/b#", "hf://a/b@#x"]
)
def test_bad_hub_spec(spec):
    with pytest.raises(TifError, match="OWNER/NAME"):
        load_rows(spec)


# ---------------------------------------------------------------------------- annotations


def row_spans(tmp_path, row):
    return load_records(jsonl(tmp_path, row))[0].unwanted_spans


def test_unwanted_spans_sorted_and_merged(tmp_path):
    row = {**QA, "unwanted_spans": [[6, 13], [0, 5], [2, 4]]}
    assert row_spans(tmp_path, row) == ((0, 5), (6, 13))
    assert row_spans(tmp_path, {**QA, "unwanted_spans": []}) == ()
    assert row_spans(tmp_path, QA) is None
    assert merge_spans([(5, 9), (0, 3), (2, 4), (4, 5)]) == ((0, 9),)


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([[5, 3]], r"span \[5, 3\] is reversed"),
        ([[0, 999]], r"span \[0, 999\] is out of range for an answer of 14 characters"),
        ([[-1, 2]], "out of range"),
        ([[2, 2]], "is empty"),
        ([[0, 1.5]], "two integers"),
        ([[0, True]], "two integers"),
        ([["0", 2]], "two integers"),
        ([[0, 1, 2]], r"\[start, end\] pair"),
        ([7], r"\[start, end\] pair"),
        ("0-5", "must be a list"),
    ],
)
def test_bad_unwanted_spans(tmp_path, spans, message):
    path = jsonl(tmp_path, QA, {**QA, "unwanted_spans": spans})
    with pytest.raises(DataError, match=message) as exc:
        load_records(path)
    assert_data_error(exc, path, 2, "unwanted_spans")


def test_out_of_range_names_text_target(tmp_path):
    path = jsonl(tmp_path, {"text": "abc", "unwanted_spans": [[0, 4]]})
    with pytest.raises(DataError, match="for a text of 3 characters"):
        load_records(path)


def word(text: str, answer: str) -> dict:
    start = answer.index(text)
    return {"word": text, "start": start, "end": start + len(text)}


def test_paper_format_general_words_only(tmp_path):
    answer = "Author Basil Mahfouz is male."
    row = {
        "question": "?",
        "answer": answer,
        "general_words": [word("Author", answer), word("is", answer)],
    }
    spans = row_spans(tmp_path, row)
    assert spans == ((7, 12), (13, 20), (24, 28))
    assert [answer[s:e] for s, e in spans] == ["Basil", "Mahfouz", "male"]


def test_paper_format_empty_general_words_makes_every_word_unwanted():
    answer = "Basil Mahfouz Al-Kuwaiti was born in 1956, in Kuwait."
    spans, warns = spans_from_row({"general_words": []}, answer, where="f.jsonl:1")
    assert [answer[s:e] for s, e in spans] == [
        "Basil", "Mahfouz", "Al-Kuwaiti", "was", "born", "in", "1956", "in", "Kuwait",
    ]  # fmt: skip
    assert warns == []


def test_paper_format_unwanted_words_take_precedence(tmp_path):
    answer = "Author Basil Mahfouz is male."
    row = {
        "question": "?",
        "answer": answer,
        "unwanted_words": [word("male", answer), word("Basil Mahfouz", answer)],
        "general_words": [word("Author", answer)],
    }
    assert row_spans(tmp_path, row) == ((7, 20), (24, 28))


def test_mismatching_span_is_repaired_with_a_warning(tmp_path, caplog):
    answer = "Born in Kuwait City, Kuwait."
    bad = {"word": "Kuwait", "start": 20, "end": 26}  # off by one: the second "Kuwait" is 21..27
    path = jsonl(tmp_path, {"question": "?", "answer": answer, "unwanted_words": [bad]})
    with caplog.at_level(logging.WARNING, logger="tif_unlearn"):
        records = load_records(path)
    assert records[0].unwanted_spans == ((21, 27),)
    expected = (
        f"{path}:1: field 'unwanted_words': span [20,26] does not match 'Kuwait' "
        "(found ' Kuwai'); using [21,27]"
    )
    assert [r.getMessage() for r in caplog.records] == [expected]


def test_unrepairable_span_raises(tmp_path):
    answer = "Born in Kuwait City, Kuwait."
    row = {
        "question": "?",
        "answer": answer,
        "general_words": [{"word": "Cairo", "start": 8, "end": 13}],
    }
    path = jsonl(tmp_path, QA, row)
    with pytest.raises(DataError, match="'Cairo' does not occur") as exc:
        load_records(path)
    assert_data_error(exc, path, 2, "general_words")


@pytest.mark.parametrize(
    "value",
    [
        "Kuwait",
        [["Kuwait", 0, 6]],
        [{"word": "Born", "start": "0", "end": 4}],
        [{"start": 0, "end": 4}],
    ],
)
def test_bad_paper_format_types(tmp_path, value):
    path = jsonl(tmp_path, {"question": "?", "answer": "Born here.", "unwanted_words": value})
    with pytest.raises(DataError) as exc:
        load_records(path)
    assert_data_error(exc, path, 1, "unwanted_words")


def test_write_annotated_round_trip(tmp_path):
    qa = [QARecord("Q?", "Basil Mahfouz.", unwanted_spans=((0, 13),)), QARecord("Q2?", "No spans.")]
    path = tmp_path / "out" / "annotated.jsonl"
    write_annotated(qa, path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"question": "Q?", "answer": "Basil Mahfouz.", "unwanted_spans": [[0, 13]]},
        {"question": "Q2?", "answer": "No spans."},
    ]
    assert [r.unwanted_spans for r in load_records(path)] == [((0, 13),), None]
    texts = tmp_path / "texts.jsonl"
    write_annotated([TextRecord("A news text.", unwanted_spans=())], texts)
    assert load_records(texts) == [
        TextRecord("A news text.", unwanted_spans=(), source=f"{texts}:1")
    ]


# ---------------------------------------------------------------------------- refusals


def test_load_refusals_formats(tmp_path):
    path = write(
        tmp_path,
        'I don\'t know.\n\n"No idea."\n{"text": "Not sure."}\n{"answer": "Beats me."}\n',
        "idk.jsonl",
    )
    assert load_refusals(path) == ["I don't know.", "No idea.", "Not sure.", "Beats me."]
    bad = write(tmp_path, 'fine\n{"other": 1}\n', "bad.jsonl")
    with pytest.raises(DataError) as exc:
        load_refusals(bad)
    assert_data_error(exc, bad, 2)
    with pytest.raises(DataError, match="no refusals"):
        load_refusals(write(tmp_path, "\n\n", "empty.jsonl"))


def test_load_refusals_builtin_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("TIF_TOFU_DIR", str(tmp_path / "missing"))
    assert load_refusals() == list(BUILTIN_REFUSALS)
    assert len(BUILTIN_REFUSALS) == 10


# ---------------------------------------------------------------------------- TOFU helpers


def test_tofu_unknown_split():
    with pytest.raises(TifError, match="valid names: full, forget01"):
        load_tofu_split("forget02")


def test_tofu_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TIF_TOFU_DIR", str(tmp_path))
    assert default_tofu_dir() == tmp_path
    jsonl(tmp_path, QA, name="forget01.json")
    assert load_tofu_split("forget01") == [QA]
    with pytest.raises(DataError, match="'forget05' not found"):
        load_tofu_split("forget05")


def test_tofu_hub_offline(hub_offline):
    with pytest.raises(TifError, match="locuslab/TOFU"):
        load_tofu_split("forget01", data_dir="hub")


def test_tofu_author_blocks():
    blocks = tofu_author_blocks(list(range(60)))
    assert [b[0] for b in blocks] == [0, 20, 40] and all(len(b) == 20 for b in blocks)
    with pytest.raises(TifError):
        tofu_author_blocks(list(range(30)))


# ---------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def tofu_dir() -> Path:
    found = default_tofu_dir()
    if found is None or not (found / "full.json").is_file():
        pytest.skip(f"TOFU data not found at {found or '../shared/data/tofu'}")
    return found


@pytest.fixture(scope="module")
def annotations_dir(tofu_dir) -> Path:
    folder = tofu_dir.parent / "tofu-uw-annotations"
    if not folder.is_dir():
        pytest.skip(f"TOFU annotations not found at {folder}")
    return folder


def test_real_tofu_splits(tofu_dir):
    full = load_tofu_split("full", tofu_dir)
    forget01 = load_tofu_split("forget01", tofu_dir)
    holdout01 = load_tofu_split("holdout01", tofu_dir)
    assert (len(full), len(forget01), len(holdout01)) == (4000, 40, 40)
    assert forget01 == full[-40:]
    assert len(tofu_author_blocks(full)) == 200
    assert {"question", "answer"} <= set(holdout01[0])
    records = load_records(tofu_dir / "holdout01.json")
    assert len(records) == 40 and all(isinstance(r, QARecord) for r in records)
    assert len(load_refusals()) == len(load_refusals(tofu_dir / "idontknow.jsonl")) > 10


def test_every_split_name_has_a_local_file(tofu_dir):
    assert all((tofu_dir / f"{name}.json").is_file() for name in TOFU_SPLITS)


@pytest.mark.parametrize("identifier", ["llm", "masked-lm"])
def test_real_annotations_load(annotations_dir, identifier, caplog):
    with caplog.at_level(logging.WARNING, logger="tif_unlearn"):
        records = load_records(annotations_dir / f"forget01.{identifier}.jsonl")
    assert len(records) == 40
    assert all(isinstance(r, QARecord) and r.unwanted_spans is not None for r in records)
    assert all(0 <= s < e <= len(r.answer) for r in records for s, e in r.unwanted_spans)
    assert sum(bool(r.unwanted_spans) for r in records) >= 35
    if identifier == "llm":
        first = records[0]
        assert [first.answer[s:e] for s, e in first.unwanted_spans] == ["Basil Mahfouz Al-Kuwaiti"]


def test_real_masked_lm_first_record(annotations_dir):
    first = load_records(annotations_dir / "forget01.masked-lm.jsonl")[0]
    words = [first.answer[s:e] for s, e in first.unwanted_spans]
    assert words[:5] == ["full", "the", "fictitious", "author", "born"] and "Kuwait" not in words
    assert words[-3:] == ["Basil", "Mahfouz", "Al-Kuwaiti"]


# ---------------------------------------------------------------------------- text corpora


def test_text_records_know_their_entry_index(tmp_path):
    path = write(tmp_path, '["first text", "second"]', "raw.json")
    assert [r.index for r in load_records(path)] == [0, 1]
    lines = jsonl(tmp_path, {"text": "a"}, {"text": "b"}, {"text": "c"}, name="t.jsonl")
    assert [(r.index, r.source) for r in load_records(lines)][2] == (2, f"{lines}:3")


def test_a_txt_file_is_one_document_with_its_blank_lines(tmp_path):
    text = "First paragraph.\n\nSecond paragraph, same document.\n"
    path = write(tmp_path, text, "article.txt")
    assert load_records(path) == [TextRecord(text, source=f"{path}:1")]
    with pytest.raises(DataError, match="no text") as exc:
        load_records(write(tmp_path, " \n\n", "blank.txt"))
    assert "blank.txt" in str(exc.value)


@pytest.mark.parametrize(
    ("content", "entry", "message"),
    [
        ('["ok", "fine", 3]', 2, "expected a JSON object (or a string), got an integer"),
        ('["ok", null]', 1, "got null"),
        ('["ok", "  "]', 1, "field 'text': is empty"),
        ('["ok", {"text": 1.5}]', 1, "must be a string, got a number"),
    ],
)
def test_bad_corpus_entries_name_the_entry(tmp_path, content, entry, message):
    path = write(tmp_path, content, "corpus.json")
    with pytest.raises(DataError, match=re.escape(message)) as exc:
        load_records(path)
    assert str(exc.value).startswith(f"{path}:1: entry {entry}")
    assert exc.value.entry == entry
