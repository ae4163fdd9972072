"""`tif report` from the command line: writes the page and the PNG, refuses a mix of benchmarks
with exit 2 and one line."""

from __future__ import annotations

import json

from tif_unlearn.cli import main


def results_file(tmp_path, name, benchmark, summary):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"benchmark": benchmark, "summary": summary}), encoding="utf-8")
    return str(path)


def test_report_writes_the_page_and_the_scatter(tmp_path, capsys):
    a = results_file(tmp_path, "tif", "tofu", {"forget_quality": 0.3, "model_utility": 0.4})
    b = results_file(tmp_path, "npo", "tofu", {"forget_quality": 0.02, "model_utility": 0.5})
    out = tmp_path / "cmp" / "report.html"
    assert main(["report", a, b, "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<td>tif</td>" in page and "<td>npo</td>" in page
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert str(out) in capsys.readouterr().out


def test_report_refuses_mixed_benchmarks_in_one_line(tmp_path, capsys):
    a = results_file(tmp_path, "t", "tofu", {"model_utility": 0.4})
    b = results_file(tmp_path, "m", "muse", {"verbmem_f1": 0.2})
    assert main(["report", a, b, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different benchmarks" in err
    assert not (tmp_path / "r.html").exists()
