"""`tif eval qa` on the tiny model: the held-out utility set runs by default and is compared
before/after, `--utility FILE` and `--utility none`, the one-line warning when --retain is the
model's training retain set, fluency per answer, and no best-of-0 column."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil

from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.evaluate.qa_utility import builtin_records

FAST = ["--max-new-tokens", "4", "--leak-samples", "0", "--no-format-shift"]


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def forget_file(tmp_path):
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    return write_jsonl(tmp_path / "forget.jsonl", rows[:2])


def unlearned_folder(tiny_model_dir, tmp_path, retain):
    """The tiny model with the run record of an unlearning that retained ``retain``."""
    folder = tmp_path / "unlearned"
    shutil.copytree(tiny_model_dir, folder)
    digest = hashlib.sha256(retain.read_bytes()).hexdigest()
    data = {"retain": {"source": str(retain), "sha256": digest}}
    (folder / "tif_run.json").write_text(json.dumps({"command": "unlearn", "data": data}))
    return folder


def test_training_retain_set_warns_in_one_line(tiny_model_dir, tmp_path):
    retain = write_jsonl(tmp_path / "retain.jsonl", QA_PAIRS[2:])
    model = unlearned_folder(tiny_model_dir, tmp_path, retain)
    argv = ["eval", "qa", "--model", model, "--forget", forget_file(tmp_path), "--retain", retain]
    out = tmp_path / "r.json"
    code, stdout, stderr = run_cli([*argv, "--utility", "none", *FAST, "--out", out])
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if "training retain set" in line]
    assert len(warnings) == 1 and warnings[0].startswith("tif: warning: --retain")
    assert "2 of 2 records" in warnings[0]
    results = json.loads(out.read_text())
    assert results["benchmark"] == "qa" and len(results["warnings"]) == 1
    assert "utility" not in results  # --utility none
    assert "best-of" not in stdout and "format shift" not in stdout  # neither ran
    row = results["forget"]["items"][0]["model"]
    assert set(row["fluency"]) == {"repetition", "non_word", "degenerate", "copied"}
    assert "partial" in results["forget"]["summary"]["model"]["leak"]


def test_held_out_set_runs_by_default_before_and_after(tiny_model_dir, tmp_path):
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget_file(tmp_path)]
    out = tmp_path / "r.json"
    code, stdout, stderr = run_cli([*argv, "--reference", tiny_model_dir, *FAST, "--out", out])
    assert code == 0, stderr
    assert "training retain set" not in stderr
    utility = json.loads(out.read_text())["utility"]
    assert len(utility["items"]) == len(builtin_records())
    summary = utility["summary"]
    assert set(summary) == {"model", "reference", "change"}
    assert 0.0 <= summary["model"]["accuracy"] <= 1.0
    assert summary["change"]["accuracy"] == 0.0  # the same model on both sides
    assert 0.0 <= summary["model"]["fluency"]["degenerate"] <= 1.0
    assert summary["change"]["fluency"]["duplicates"] == 0.0  # the same answers on both sides
    assert summary["model"]["fluency"]["collapsed"] is not True  # not above its own reference
    assert all(isinstance(i["model"]["correct"], bool) for i in utility["items"])
    assert any(line.startswith("utility ") for line in stdout.splitlines())


def test_utility_file_replaces_the_builtin_set(tiny_model_dir, tmp_path):
    rows = [
        annotate({"question": "What is the capital of Peru?", "answer": "It is Lima."}, ["Lima"]),
        {"question": "Say hello.", "answer": "Hello."},
    ]
    mine = write_jsonl(tmp_path / "mine.jsonl", rows)
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget_file(tmp_path)]
    out = tmp_path / "r.json"
    code, _, stderr = run_cli([*argv, "--utility", mine, *FAST, "--out", out])
    assert code == 0, stderr
    items = json.loads(out.read_text())["utility"]["items"]
    assert [i["prompt"] for i in items] == [r["question"] for r in rows]
    assert items[0]["model"]["correct"] is not None and items[1]["model"]["correct"] is None
