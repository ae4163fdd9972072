"""Inputs nobody wrote by hand: every reader of user data, on generated inputs (hypothesis).

Each reader gives a valid result or our error (TifError, which the CLI prints as one line and
exits 2), never another exception (a traceback). Valid results are checked too: records hold
non-blank strings and spans inside their target, sorted and disjoint.

Readers: QA / text records from JSON, JSON Lines and .txt files (with field maps and the three
annotation fields), the annotation fields alone, field-map specs, YAML configs and refusal
files. Through the CLI (`tif identify`, `tif unlearn --config`): exit 0 with a complete output,
or exit 2 with one ``tif: error:`` line and no output file at all (never a partial one).
The examples are derandomized (the same inputs on every run, see conftest.py);
``TIF_HYPOTHESIS_PROFILE=explore`` draws new ones. >= 10,000 inputs in all (EXAMPLES).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tif_unlearn.cli.app import main
from tif_unlearn.config import UnlearnConfig, build_config
from tif_unlearn.config.methods import method_config
from tif_unlearn.data.annotations import spans_from_row
from tif_unlearn.data.loaders import load_records, load_refusals, parse_field_map
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.errors import TifError
from tif_unlearn.methods import METHODS

EXAMPLES = {
    "records": 2500,
    "annotations": 3000,
    "field_map": 1100,
    "field_map_and_records": 1000,
    "yaml": 1500,
    "refusals": 800,
    "cli_identify": 150,
    "cli_yaml": 60,
}

ANSWERS = [
    "Basil was born in Kuwait City.",
    "Zürich — naïve café façade.",
    "He won the Edgar Award in 1999.",
    "a",
    "",
    "   ",
]
# An explicit alphabet: hypothesis' default text strategy first maps all of Unicode through the
# UTF-8 codec (~10 s of CPU per session). These cover ASCII, JSON's specials, whitespace and
# line breaks, accents, wide and astral characters, NUL, and a lone surrogate (written with
# surrogatepass it becomes invalid UTF-8).
ALPHABET = (
    "abcxyzABQ019 _-.,:;!?'\"\\/{}[]=#@&%+*<>|~`$^()\n\r\t\x0b\x0c\x00\x7f\x85"
    "éüßñçÅ—–„“”‘’…€£¥中文한국語\u200b\u2028\u2029\ufeff\U0001f600\ud800"
)
FIELDS = ["question", "answer", "text", "unwanted_spans", "unwanted_words", "general_words"]

texts = st.sampled_from(ANSWERS) | st.text(ALPHABET, max_size=16)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 60)
    | st.sampled_from([2**64, -(2**63), 10**400 // 10**399, 1e300, -0.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
keys = st.sampled_from([*FIELDS, "word", "start", "end", "prompt", "response"]) | st.text(
    max_size=6
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=3,
)
positions = st.integers(-3, 40) | scalars
span_lists = st.lists(st.lists(positions, min_size=0, max_size=3), max_size=4) | json_values
word_items = st.fixed_dictionaries(
    {}, optional={"word": texts | json_values, "start": positions, "end": positions}
)
word_lists = st.lists(word_items | json_values, max_size=3) | json_values
rows = (
    st.fixed_dictionaries(
        {},
        optional={
            "question": texts | json_values,
            "answer": texts | json_values,
            "text": texts | json_values,
            "unwanted_spans": span_lists,
            "unwanted_words": word_lists,
            "general_words": word_lists,
            "prompt": texts,
        },
    )
    | json_values
)


@st.composite
def data_files(draw) -> tuple[str, bytes]:
    """(suffix, content): generated rows as JSON / JSON Lines, maybe cut or spliced, or noise."""
    suffix = draw(st.sampled_from([".jsonl", ".json", ".txt"]))
    form = draw(st.sampled_from(["jsonl", "array", "mixed", "text", "bytes"]))
    values = draw(st.lists(rows, max_size=3))
    if form == "jsonl":
        text = "\n".join(json.dumps(v, ensure_ascii=draw(st.booleans())) for v in values)
    elif form == "array":
        text = json.dumps(values)
    elif form == "mixed":  # arrays and values in one file, with blank lines
        text = json.dumps(values[:2]) + "\n\n" + "\n".join(json.dumps(v) for v in values[2:])
    elif form == "text":
        text = draw(st.text(ALPHABET, max_size=200))
    else:
        return suffix, draw(st.binary(max_size=200))
    if draw(st.booleans()):  # damage it: cut, or splice in a few characters
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", "]", "[", ",", '"', "\\", "\x00", "é"]))
    return suffix, text.encode("utf-8", errors="surrogatepass")


def _check_spans(spans, target: str) -> None:
    if spans is None:
        return
    assert all(type(a) is int and type(b) is int and 0 <= a < b <= len(target) for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False)), spans


def _check_records(records) -> None:
    assert records
    for record in records:
        assert isinstance(record, QARecord | TextRecord)
        target = record.answer if isinstance(record, QARecord) else record.text
        if isinstance(record, QARecord):
            assert isinstance(record.question, str) and record.question.strip()
        assert isinstance(target, str) and target.strip()
        _check_spans(record.unwanted_spans, target)


def _our_error(err: TifError) -> None:
    assert str(err).strip(), "an empty error message"


@pytest.fixture(scope="module")
def folder():
    memory = Path("/dev/shm")  # thousands of small files: in memory where there is a tmpfs
    parent = str(memory) if memory.is_dir() and os.access(memory, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="tif-properties-", dir=parent) as name:
        yield Path(name)


@settings(max_examples=EXAMPLES["records"])
@given(file=data_files(), kind=st.sampled_from(["auto", "qa", "text"]))
def test_record_files_load_or_fail_with_our_error(file, kind, folder):
    suffix, content = file
    path = folder / f"records{suffix}"
    path.write_bytes(content)
    try:
        records = load_records(path, kind=kind)
    except TifError as err:
        _our_error(err)
    else:
        _check_records(records)
        if kind != "auto":
            expected = QARecord if kind == "qa" else TextRecord
            assert all(isinstance(r, expected) for r in records)


@settings(max_examples=EXAMPLES["annotations"])
@given(row=st.dictionaries(st.sampled_from(FIELDS[3:]), span_lists | word_lists), target=texts)
def test_annotation_fields_give_spans_inside_the_target_or_our_error(row, target):
    try:
        spans, warnings = spans_from_row(row, target, where="rows.jsonl:1")
    except TifError as err:
        _our_error(err)
    else:
        _check_spans(spans, target)
        assert all(isinstance(w, str) and w for w in warnings)
        if not any(row.get(f) is not None for f in FIELDS[3:]):
            assert spans is None


field_map_specs = st.lists(
    st.tuples(keys | st.sampled_from(["", " ", "=", ","]), st.sampled_from(["=", "", "=="]), keys),
    max_size=4,
).map(lambda items: ",".join(a + sep + b for a, sep, b in items)) | st.text(ALPHABET, max_size=30)


def _parsed_field_map(spec) -> dict[str, str] | None:
    try:
        mapping = parse_field_map(spec)
    except TifError as err:
        _our_error(err)
        return None
    assert all(k and v and "," not in k + v and k == k.strip() for k, v in mapping.items())
    assert len(set(mapping.values())) == len(mapping)
    return mapping


@settings(max_examples=EXAMPLES["field_map"])
@given(spec=field_map_specs | st.none())
def test_field_maps_parse_or_fail_with_our_error(spec):
    _parsed_field_map(spec)


@settings(max_examples=EXAMPLES["field_map_and_records"])
@given(spec=field_map_specs, file=data_files())
def test_field_maps_apply_to_record_files_or_fail_with_our_error(spec, file, folder):
    mapping = _parsed_field_map(spec)
    if mapping is None:
        return
    suffix, content = file
    path = folder / f"mapped{suffix}"
    path.write_bytes(content)
    try:
        records = load_records(path, field_map=mapping)
    except TifError as err:
        _our_error(err)
    else:
        _check_records(records)


OPTION_NAMES = sorted({f.replace("_", "-") for f in UnlearnConfig.__dataclass_fields__}) + [
    "lr",
    "batch_size",
    "lernrate",
]
yaml_values = (
    scalars
    | st.sampled_from(["1e-5", "3e-1", "tif", "npo", "ga", "cosine", "true", "no", ".inf", "~"])
    | st.lists(scalars, max_size=2)
    | st.dictionaries(st.text(ALPHABET, max_size=3), scalars, max_size=2)
)


@st.composite
def yaml_documents(draw) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(ALPHABET, max_size=80))
    options = draw(st.dictionaries(st.sampled_from(OPTION_NAMES), yaml_values, max_size=5))
    if draw(st.booleans()):  # through PyYAML's writer: any value it can represent
        return yaml.safe_dump(options, allow_unicode=draw(st.booleans()))
    lines = [
        f"{k}: {v if not isinstance(v, list | dict) else json.dumps(v)}" for k, v in options.items()
    ]
    return "\n".join(lines)


@settings(max_examples=EXAMPLES["yaml"])
@given(document=yaml_documents())
@example(document="batch-size: .inf\n")  # found: int(inf) raised OverflowError (a traceback)
@example(document="epochs: null\n")  # found: None reached __post_init__ (TypeError)
def test_yaml_configs_build_or_fail_with_our_error(document, folder):
    path = folder / "run.yaml"
    path.write_text(document, encoding="utf-8", errors="surrogatepass")
    try:
        config = build_config(UnlearnConfig, str(path), {"forget": "f.jsonl", "out": "out"})
        method = METHODS.get(config.method)
        if method is not None:
            method_config(method, config)
    except TifError as err:
        _our_error(err)
    else:
        assert config.lr > 0 and math.isfinite(config.lr)
        assert config.batch_size >= 1 and config.epochs > 0


refusal_lines = (
    texts
    | json_values.map(json.dumps)
    | st.sampled_from(['{"text": ', '"quoted', "{}", '{"answer": "I don\'t know."}'])
)


@settings(max_examples=EXAMPLES["refusals"])
@given(lines=st.lists(refusal_lines, max_size=5))
def test_refusal_files_load_or_fail_with_our_error(lines, folder):
    path = folder / "idk.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        refusals = load_refusals(path)
    except TifError as err:
        _our_error(err)
    else:
        assert refusals and all(isinstance(r, str) and r.strip() == r and r for r in refusals)


# --------------------------------------------------------------------------- through the CLI


def _one_error_line(code: int, err: str) -> None:
    """Exit 2 and one ``tif: error:`` line, last; `tif identify` may log a warning line per
    record it could not annotate before it (``tif: path:line: not annotated: ...``)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines and lines[-1].startswith("tif: error: "), err
    assert all(line.startswith("tif: ") and "error" not in line[:11] for line in lines[:-1]), err


@settings(max_examples=EXAMPLES["cli_identify"], suppress_health_check=list(HealthCheck))
@given(file=data_files())
def test_identify_cli_writes_everything_or_nothing(file, folder, capsys):
    suffix, content = file
    data, out, page = folder / f"cli{suffix}", folder / "out.jsonl", folder / "page.html"
    data.write_bytes(content)
    out.unlink(missing_ok=True)
    page.unlink(missing_ok=True)
    argv = ["identify", "--identifier", "annotations", "--data", str(data), "--out", str(out)]
    code = main([*argv, "--html", str(page)])
    stdout, err = capsys.readouterr()
    if code != 0:
        _one_error_line(code, err)
        assert not out.exists() and not page.exists(), "a partial output was left"
        return
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(load_records(data)) and page.read_text(encoding="utf-8")


@settings(max_examples=EXAMPLES["cli_yaml"], suppress_health_check=list(HealthCheck))
@given(document=yaml_documents())
def test_unlearn_cli_refuses_bad_yaml_with_one_line(document, folder, capsys):
    path = folder / "cli.yaml"
    path.write_text(document, encoding="utf-8", errors="surrogatepass")
    missing = folder / "no-such-model"  # valid configs stop there, before any loading
    argv = ["unlearn", "--config", str(path), "--model", str(missing)]
    code = main([*argv, "--forget", str(folder / "f.jsonl"), "--out", str(folder / "o")])
    _one_error_line(code, capsys.readouterr().err)
    assert not (folder / "o").exists()


def test_at_least_ten_thousand_generated_inputs():
    assert sum(EXAMPLES.values()) >= 10_000
