"""`tif report`'s page: the best value of each column marked by its direction, the scatter
when every result has its two numbers, answers side by side, and one-line refusals."""

from __future__ import annotations

import json
import re

import pytest

from tif_unlearn.errors import TifError
from tif_unlearn.report.results_report import load_results, render_report, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tofu_results(fq, mu, rouge, answers):
    items = [
        {"question": q, "answer": f"true {i}", "generated": a}
        for i, (q, a) in enumerate(answers.items())
    ]
    return {
        "benchmark": "tofu",
        "summary": {"forget_quality": fq, "model_utility": mu, "forget_rouge": rouge},
        "sets": {"forget": {"aggregate": {}, "items": items}},
    }


def write(tmp_path, name, results):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return str(path)


@pytest.fixture
def two_runs(tmp_path):
    tif = tofu_results(0.4, 0.35, 0.30, {"Where was X born?": "In <b>Paris</b>", "Q2?": "tif 2"})
    npo = tofu_results(0.01, 0.40, 0.05, {"Where was X born?": "VVVV", "Q2?": "npo 2"})
    return [write(tmp_path, "tif", tif), write(tmp_path, "npo", npo)]


def best_cells(page: str) -> list[str]:
    return re.findall(r'<td class="best">([^<]*)</td>', page)


def test_each_column_marks_its_best_value_by_direction(two_runs):
    page, _ = render_report(load_results(two_runs))
    # FQ max -> tif 0.4; MU max -> npo 0.4; forget ROUGE min -> npo 0.05
    assert best_cells(page) == ["0.4", "0.4", "0.05"]
    rows = re.findall(r"<tr><td>(tif|npo)</td>(.*?)</tr>", page)
    tif_row, npo_row = dict(rows)["tif"], dict(rows)["npo"]
    assert tif_row.index('class="best"') < tif_row.index("0.35")  # tif's best is its FQ
    assert npo_row.count('class="best"') == 2


def test_answers_are_side_by_side_and_escaped(two_runs):
    page, _ = render_report(load_results(two_runs))
    assert "In &lt;b&gt;Paris&lt;/b&gt;" in page and "<b>Paris</b>" not in page
    row = re.search(r"Where was X born\?.*?</tr>", page).group(0)
    assert row.index("Paris") < row.index("VVVV")  # the tif column comes first


def test_the_scatter_is_a_png_in_the_page_and_beside_it(two_runs, tmp_path):
    written = write_report(two_runs, str(tmp_path / "out" / "report.html"))
    assert [p.name for p in written] == ["report.html", "report.png"]
    assert written[1].read_bytes().startswith(PNG_SIGNATURE)
    assert "data:image/png;base64," in written[0].read_text(encoding="utf-8")


def test_without_forget_quality_the_scatter_uses_forget_rouge(tmp_path):
    runs = [tofu_results(None, 0.3, 0.2, {}), tofu_results(None, 0.2, 0.1, {})]
    paths = [write(tmp_path, f"run{i}", r) for i, r in enumerate(runs)]
    page, png = render_report(load_results(paths))
    assert png.startswith(PNG_SIGNATURE)
    assert "Forget Quality" not in page  # a column without values is left out
    assert best_cells(page) == ["0.3", "0.1"]  # MU max (run0), forget ROUGE min (run1)


def test_muse_results_are_compared_on_their_own_columns(tmp_path):
    muse = {"benchmark": "muse", "summary": {"verbmem_f1": 0.2, "knowmem_retain_f1": 0.5}}
    other = {"benchmark": "muse", "summary": {"verbmem_f1": 0.1, "knowmem_retain_f1": 0.4}}
    page, png = render_report(
        load_results([write(tmp_path, "a", muse), write(tmp_path, "b", other)])
    )
    assert "VerbMem" in page and best_cells(page) == ["0.5", "0.1"]  # a: retain max; b: VerbMem min
    assert png.startswith(PNG_SIGNATURE)


def test_same_stems_get_distinct_names(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [write(tmp_path / d, "tif", tofu_results(0.1, 0.2, 0.3, {})) for d in ("a", "b")]
    assert [name for name, _ in load_results(paths)] == ["tif", "tif (2)"]


def test_refusals_are_one_line(tmp_path):
    tofu = write(tmp_path, "t", tofu_results(0.1, 0.2, 0.3, {}))
    muse = write(tmp_path, "m", {"benchmark": "muse", "summary": {}})
    with pytest.raises(TifError, match="different benchmarks"):
        load_results([tofu, muse])
    with pytest.raises(TifError, match="not a `tif eval tofu`"):
        load_results([write(tmp_path, "x", {"summary": {}})])
    with pytest.raises(TifError, match="cannot read"):
        load_results([str(tmp_path / "missing.json")])
    with pytest.raises(TifError, match="at least one"):
        load_results([])
