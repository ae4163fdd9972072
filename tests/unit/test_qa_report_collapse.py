"""`tif report` on `tif eval qa` results shows cross-answer degeneration: the share of answers
copied from another question's answer in the table (page and terminal), the copied answers
tagged, and a warning line when a set's answers collapsed (report/qa_results.py)."""

from __future__ import annotations

import json
import re

from tif_unlearn.report.results_report import load_results, render_report, text_table

QUESTIONS = ["Where does Marisol Quennix live?", "Where does Marisol Quennix work?"]
COPY = "She was one of the sailors on the Columbus voyage."
FLUENT = {"repetition": 0.0, "non_word": 0.0, "degenerate": False}


def fluency_summary(duplicates, collapsed):
    return {"repetition": 0.0, "non_word": 0.0, "degenerate": 0.0,
            "duplicates": duplicates, "collapsed": collapsed}  # fmt: skip


def results(answers, copied, duplicates, collapsed):
    def summary(fluency):
        return {"n_items": 2, "rouge": 0.5, "answer_prob": 0.4, "uw_prob": 0.3, "gw_prob": 0.9,
                "leak": {"greedy": 0.0, "partial": {"greedy": 0.0}}, "fluency": fluency}  # fmt: skip

    items = [
        {"prompt": q, "truth": "x", "unwanted_words": [],
         "model": {"generated": a, "fluency": FLUENT | {"copied": c}},
         "reference": {"generated": "recited", "fluency": FLUENT | {"copied": False}}}
        for q, a, c in zip(QUESTIONS, answers, copied, strict=True)
    ]  # fmt: skip
    return {
        "benchmark": "qa",
        "model": "runs/x",
        "reference": "runs/finetuned",
        "options": {"leak_samples": 0, "format_shift": False},
        "forget": {
            "summary": {
                "model": summary(fluency_summary(duplicates, collapsed)),
                "reference": summary(fluency_summary(0.0, False)),
            },
            "items": items,
        },
    }


def load(tmp_path):
    docs = {
        "eval-npo": results([COPY, COPY], [True, True], 1.0, True),
        "eval-tif": results(["Dunmere.", "A bakery."], [False, False], 0.0, False),
    }
    paths = []
    for name, doc in docs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        paths.append(str(path))
    return load_results(paths)


def test_page_shows_the_duplicate_share_tags_copies_and_warns_on_collapse(tmp_path):
    page, _ = render_report(load(tmp_path))
    assert "<th>forget answers copied across questions</th>" in page
    npo_row = re.search(r"<tr><td>eval-npo</td>.*?</tr>", page).group(0)
    assert npo_row.endswith("<td>1</td></tr>")  # the last column: copied share 1, not best
    answers = re.findall(r'<p class="answer">(.*?)</p>', page)
    before, npo, tif = answers[:3]
    assert "copied" in npo and "copied" not in tif and "copied" not in before
    warnings = re.search(r'<ul class="warnings">(.*?)</ul>', page).group(1)
    assert "eval-npo: its forget answers collapsed: 1.00" in warnings
    assert "(before: 0.00)" in warnings and "eval-tif" not in warnings


def test_terminal_table_has_the_duplicate_share(tmp_path):
    table = text_table(load(tmp_path))
    line = next(row for row in table.splitlines() if row.startswith("forget answers copied"))
    assert line.split()[-3:] == ["0.000", "1.000", "0.000"]  # before, npo, tif
