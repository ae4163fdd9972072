"""`tif eval qa` on bad input: one `tif: error:` line on stderr and exit code 2, before any
model is loaded."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from conftest import write_jsonl
from tif_unlearn.cli.app import main


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tif: error: "), stderr
    return lines[0]


GOOD = {"question": "Where was Basil born?", "answer": "Basil was born in Kuwait City."}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"question": "Where was Basil born?"}], "cannot tell the record kind"),
        ([{"question": "Where was Basil born?", "answer": "  "}], "field 'answer': is empty"),
        ([{**GOOD, "unwanted_spans": [[18, 99]]}], "out of range"),
        ([{**GOOD, "unwanted_spans": [[5, 2]]}], "reversed"),
        ([GOOD, {"text": "a text among QA"}], "field 'question'"),
    ],
)
def test_bad_forget_file_exits_2_with_one_line(tmp_path, tiny_model_dir, rows, expected):
    forget = write_jsonl(tmp_path / "forget.jsonl", rows)
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget]
    code, stdout, stderr = run_cli([*argv, "--out", tmp_path / "r.json"])
    assert code == 2 and stdout == ""
    assert expected in one_error_line(stderr)
    assert not (tmp_path / "r.json").exists()


def test_bad_retain_file_fails_before_the_model_loads(tmp_path):
    forget = write_jsonl(tmp_path / "forget.jsonl", [{**GOOD, "unwanted_spans": [[18, 29]]}])
    (tmp_path / "retain.json").write_text(json.dumps([{"question": "q", "answer": 3}]))
    argv = ["eval", "qa", "--model", tmp_path / "no-such-model", "--forget", forget]
    argv += ["--retain", tmp_path / "retain.json", "--out", tmp_path / "r.json"]
    code, _, stderr = run_cli(argv)
    assert code == 2
    assert "retain.json:1: field 'answer': must be a string" in one_error_line(stderr)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--leak-samples", "-1"], "--leak-samples must be >= 0"),
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--identifier", "nope"], "unknown identifier 'nope'"),
        (["--forget", "missing.jsonl"], "file not found"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, tiny_model_dir, extra, expected):
    forget = write_jsonl(tmp_path / "forget.jsonl", [GOOD])
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget, "--out", tmp_path / "r"]
    code, _, stderr = run_cli([*argv, *extra])
    assert code == 2
    assert expected in one_error_line(stderr)


def test_out_must_not_be_a_folder(tmp_path, tiny_model_dir):
    forget = write_jsonl(tmp_path / "forget.jsonl", [GOOD])
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget, "--out", tmp_path]
    code, _, stderr = run_cli(argv)
    assert code == 2 and "is a folder" in one_error_line(stderr)
