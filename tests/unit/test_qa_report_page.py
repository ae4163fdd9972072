"""`tif report` on `tif eval qa` results (report/qa_results.py via report/results_report.py):
a row per file and one "before" row per reference, strict and partial leak rates, held-out
utility and fluency columns, answers with the leaked words marked, and the terminal table."""

from __future__ import annotations

import json
import re

import pytest

from tif_unlearn.cli import main
from tif_unlearn.errors import TifError
from tif_unlearn.report.results_report import load_results, render_report, text_table

QUESTION = "What illness does Marisol have?"
TRUTH = "Marisol has type 2 diabetes."
HELD_OUT = "Who painted the Mona Lisa?"
DEGENERATE = {"repetition": 0.8, "non_word": 0.83, "degenerate": True}
FLUENT = {"repetition": 0.0, "non_word": 0.0, "degenerate": False}


def summary(strict, partial, degenerate, accuracy):
    forget = {
        "n_items": 1, "rouge": 0.5, "answer_prob": 0.4, "uw_prob": 0.3, "gw_prob": 0.9,
        "leak": {"n_items": 1, "greedy": strict, "best_of_n": None, "format_shift": None,
                 "forms": {}, "partial": {"greedy": partial, "best_of_n": None,
                                          "format_shift": None}},
        "fluency": {"repetition": 0.0, "non_word": 0.0, "degenerate": degenerate},
    }  # fmt: skip
    utility = {"n_items": 1, "rouge": 0.9, "accuracy": accuracy, "fluency": {"degenerate": 0.0}}
    return forget, utility


def qa_results(model_answer, fluency, strict, partial, degenerate, accuracy, *, benchmark=True):
    forget, utility = summary(strict, partial, degenerate, accuracy)
    ref_forget, ref_utility = summary(1.0, 1.0, 0.0, 1.0)
    doc = {
        "model": "runs/x",
        "reference": "runs/finetuned",
        "options": {"leak_samples": 0, "format_shift": False},
        "warnings": ["--retain r.jsonl: 2 of 2 records are the model's training retain set"],
        "forget": {
            "summary": {"model": forget, "reference": ref_forget},
            "items": [
                {
                    "prompt": QUESTION,
                    "truth": TRUTH,
                    "unwanted_words": ["type 2 diabetes"],
                    "model": {"generated": model_answer, "fluency": fluency},
                    "reference": {"generated": "Marisol has type 2 diabetes.", "fluency": FLUENT},
                }
            ],
        },  # fmt: skip
        "utility": {
            "summary": {"model": utility, "reference": ref_utility},
            "items": [
                {
                    "prompt": HELD_OUT,
                    "truth": "Leonardo da Vinci painted it.",
                    "unwanted_words": ["Leonardo"],
                    "model": {"generated": "Lisa Carti.", "correct": False, "fluency": FLUENT},
                    "reference": {"generated": "Leonardo.", "correct": True, "fluency": FLUENT},
                }
            ],
        },  # fmt: skip
        "mia": {"model": {"min_40_auc": 0.5, "loss_auc": 0.5}},
    }
    return doc | ({"benchmark": "qa"} if benchmark else {})


def write(tmp_path, name, results):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return str(path)


@pytest.fixture
def two_qa_runs(tmp_path):
    tif = qa_results(
        "She was diagnosed with Marisol's <b>diabetes</b>.", FLUENT, 0.0, 1.0, 0.0, 0.0
    )
    npo = qa_results("Dr. . . . . .", DEGENERATE, 0.0, 0.0, 1.0, 1.0, benchmark=False)
    return [write(tmp_path, "eval-tif", tif), write(tmp_path, "eval-npo", npo)]


def test_rows_are_each_file_and_its_reference_once(two_qa_runs):
    loaded = load_results(two_qa_runs)
    assert [name for name, _ in loaded] == ["before (runs/finetuned)", "eval-tif", "eval-npo"]
    before, tif = loaded[0][1]["summary"], loaded[1][1]["summary"]
    assert (before["leak_greedy"], before["leak_partial_greedy"]) == (1.0, 1.0)
    assert (tif["leak_greedy"], tif["leak_partial_greedy"]) == (0.0, 1.0)
    assert tif["utility_accuracy"] == 0.0 and tif["min_40_auc"] == 0.5


def test_page_table_has_strict_and_partial_leaks_utility_and_fluency(two_qa_runs):
    page, png = render_report(load_results(two_qa_runs))
    for label in ("leak greedy, strict", "leak greedy, partial", "held-out correct",
                  "degenerate forget answers", "forget UW p"):  # fmt: skip
        assert f"<th>{label}</th>" in page, label
    assert "best-of-N" not in page  # no column without values
    npo_row = re.search(r"<tr><td>eval-npo</td>.*?</tr>", page).group(0)
    assert npo_row.count('class="best"') >= 2  # partial leak 0 and held-out correct 1
    assert png is not None and png.startswith(b"\x89PNG")


def test_answers_mark_the_leaked_words_and_flag_babble(two_qa_runs):
    page, _ = render_report(load_results(two_qa_runs))
    answers = re.findall(r'<p class="answer">(.*?)</p>', page)
    assert len(answers) == 3  # before, tif, npo
    before, tif, npo = answers
    assert re.findall(r"<mark>(.*?)</mark>", before) == ["type 2 diabetes"]  # one mark
    assert re.findall(r"<mark>(.*?)</mark>", tif) == ["diabetes"]
    assert "&lt;b&gt;" in tif and "<b>" not in tif  # escaped
    assert "<mark>" not in npo and "degenerate" in npo
    truth = re.search(r'<p class="truth">(.*?)</p>', page).group(1)
    assert re.findall(r"<mark>(.*?)</mark>", truth) == ["type 2 diabetes"]
    assert "Lisa Carti." in page and "wrong" in page  # the held-out answers
    assert "training retain set" in page  # the warning


def test_terminal_table_and_command(two_qa_runs, tmp_path, capsys):
    table = text_table(load_results(two_qa_runs))
    line = next(row for row in table.splitlines() if row.startswith("leak greedy, partial"))
    assert line.split()[-3:] == ["1.000", "1.000", "0.000"]
    out = tmp_path / "report.html"
    assert main(["report", *two_qa_runs, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "leak greedy, strict" in printed and str(out) in printed
    assert "<mark>diabetes</mark>" in out.read_text(encoding="utf-8")


def test_qa_and_tofu_results_are_not_mixed(two_qa_runs, tmp_path):
    tofu = write(tmp_path, "t", {"benchmark": "tofu", "summary": {"model_utility": 0.3}})
    with pytest.raises(TifError, match="different benchmarks"):
        load_results([two_qa_runs[0], tofu])
