"""`tif report` warns, in one line, when the results it compares were made at different
precisions (greedy answers, so ROUGE-based numbers, change with the weights dtype)."""

from __future__ import annotations

import json

from tif_unlearn.cli import main
from tif_unlearn.report.precision import mixed_precision_warning, result_precision


def results_file(tmp_path, name, dtype, **extra):
    path = tmp_path / f"{name}.json"
    results = {"benchmark": "tofu", "summary": {"model_utility": 0.4}, **extra}
    if dtype:
        results["dtype"] = dtype
    path.write_text(json.dumps(results), encoding="utf-8")
    return str(path)


def test_report_warns_in_one_line_on_mixed_precisions(tmp_path, capsys):
    a = results_file(tmp_path, "amx", "bfloat16")
    b = results_file(tmp_path, "avx2", "float32")
    out = tmp_path / "report.html"
    assert main(["report", a, b, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "different precisions" in line]
    assert len(warning) == 1
    assert "bfloat16: amx" in warning[0] and "float32: avx2" in warning[0]
    assert "--dtype float32" in warning[0]
    assert out.is_file()  # a warning, not a refusal


def test_report_is_silent_on_one_precision(tmp_path, capsys):
    a = results_file(tmp_path, "a", "float32")
    b = results_file(tmp_path, "b", "float32")
    assert main(["report", a, b, "--out", str(tmp_path / "r.html")]) == 0
    assert "precision" not in capsys.readouterr().err


def test_an_unrecorded_precision_is_flagged_next_to_a_recorded_one():
    loaded = [("old", {"benchmark": "tofu"}), ("new", {"benchmark": "tofu", "dtype": "bfloat16"})]
    assert "unrecorded: old" in mixed_precision_warning(loaded)
    assert mixed_precision_warning([("a", {}), ("b", {})]) is None


def test_qa_results_record_their_precision_in_their_options():
    qa_file = {"options": {"dtype": "bfloat16"}, "forget": {"summary": {}, "items": []}}
    assert result_precision(qa_file) == "bfloat16"
    assert result_precision({"benchmark": "qa", "qa": qa_file}) == "bfloat16"  # a report row
