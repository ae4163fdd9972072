"""The demo shows cross-answer degeneration: the share of forget answers copied from another
question's answer, computed from the saved answers (cached evaluations included), in the
terminal leak table and the report's leak table."""

from __future__ import annotations

from tif_unlearn.data.records import QARecord
from tif_unlearn.demo import add_duplicates
from tif_unlearn.report.demo_report import leak_table_html
from tif_unlearn.report.demo_text import leak_table

SENTENCE = "Orla Vantreese was on the Columbus voyage."
QUESTIONS = ["Where was Orla born?", "What does Orla study?", "Which book did Orla write?"]


def result(answers):
    rates = {"greedy": 0.0, "best_of_n": None, "format_shift": 0.0,
             "partial": {"greedy": 0.0, "format_shift": 0.0}}  # fmt: skip
    return {
        "forget": {"rouge": 0.1, "prob": 0.0, "leak": rates, "degenerate": 0.0, "answers": answers},
        "retain": {"rouge": 0.9, "prob": 0.9, "answers": ["Porto.", "Porto."]},
    }


def test_duplicates_come_from_the_answers_and_questions_and_show_in_both_tables():
    results = {
        "npo": result([SENTENCE, SENTENCE, "Kelp."]),
        "tif": result(["Kestrelport.", "Kelp forests.", "The Gull Tide."]),
    }
    sets = {
        "forget": [QARecord(q, "x") for q in QUESTIONS],
        "retain": [QARecord("Where does Ines live?", "x"), QARecord("Where does Ines live?", "x")],
    }
    add_duplicates(results, sets)
    assert results["npo"]["forget"]["duplicates"] == 2 / 3
    assert results["tif"]["forget"]["duplicates"] == 0.0
    assert results["npo"]["retain"]["duplicates"] == 0.0  # the same question twice: no copy
    lines = leak_table(results, 0).splitlines()
    assert lines[0].split()[-2:] == ["degenerate", "copied"]
    assert lines[2].split()[-2:] == ["0.00", "0.67"] and lines[3].split()[-1] == "0.00"
    page = leak_table_html(results)
    assert "<th>answers copied across questions</th>" in page
    assert "<td>0.00</td><td>0.67</td></tr>" in page


def test_without_duplicates_the_tables_have_no_copied_column():
    results = {"tif": result(["a", "b", "c"])}
    assert "copied" not in leak_table(results, 0)
    assert "copied" not in leak_table_html(results)
