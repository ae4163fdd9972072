"""`tif eval qa`'s utility outside the retain set (evaluate/qa_utility.py): the shipped held-out
questions, the warning when --retain is the training retain set, and the summary and table of
evaluate/qa_report.py (accuracy, fluency, strict/partial leak columns, no best-of-0)."""

from __future__ import annotations

import json

import pytest

from conftest import write_jsonl
from tif_unlearn.data.records import QARecord
from tif_unlearn.demo import demo_data
from tif_unlearn.evaluate import leak, qa_report, qa_utility

RETAIN = [
    {"question": "Who is Tomas?", "answer": "Tomas is a violinist."},
    {"question": "Where does Ines live?", "answer": "Ines lives in Porto."},
]


def test_builtin_set_is_held_out_general_knowledge_with_a_key_per_answer():
    records = qa_utility.builtin_records()
    assert 20 <= len(records) <= 40
    for record in records:
        ((start, end),) = record.unwanted_spans
        key = record.answer[start:end]
        assert key and leak.mentions(record.answer, key)
        assert not leak.mentions(record.question, key), record.question  # asking is no hint
    demo = demo_data()
    trained = {r["question"] for p in demo["people"] for r in p["qa"]}
    trained |= {r["question"] for r in demo["general"]}
    assert not trained & {r.question for r in records}  # the demo never trains on them


def test_mark_correct_turns_the_key_verdict_into_correct():
    rows = [{"leak": {"greedy": True}}, {"leak": {"greedy": False}}, {"leak": None}]
    assert [r["correct"] for r in qa_utility.mark_correct(rows)] == [True, False, None]
    assert all("leak" not in r for r in rows)


def model_folder(tmp_path, retain_path):
    folder = tmp_path / "unlearned"
    folder.mkdir()
    data = {"forget": {"source": "f.jsonl", "sha256": "0"}}
    if retain_path is not None:
        digest = qa_utility._sha256(str(retain_path))
        data["retain"] = {"source": str(retain_path), "sha256": digest}
    (folder / "tif_run.json").write_text(json.dumps({"command": "unlearn", "data": data}))
    return str(folder)


def records(rows):
    return [QARecord(r["question"], r["answer"]) for r in rows]


def test_warns_when_retain_is_the_training_retain_file(tmp_path):
    retain = write_jsonl(tmp_path / "retain.jsonl", RETAIN)
    model = model_folder(tmp_path, retain)
    warning = qa_utility.retain_warning(model, str(retain), records(RETAIN))
    assert "2 of 2 records are the model's training retain set" in warning
    assert "\n" not in warning


def test_warns_when_another_file_holds_trained_records(tmp_path):
    trained = write_jsonl(tmp_path / "trained.jsonl", RETAIN)
    model = model_folder(tmp_path, trained)
    evaluated = [*RETAIN[:1], {"question": "New?", "answer": "Yes."}]
    again = write_jsonl(tmp_path / "again.json", evaluated)  # other bytes, one shared record
    warning = qa_utility.retain_warning(model, str(again), records(evaluated))
    assert "1 of 2 records" in warning


def test_no_warning_for_new_records_or_a_model_without_run_record(tmp_path):
    trained = write_jsonl(tmp_path / "trained.jsonl", RETAIN)
    fresh = [{"question": "New?", "answer": "Yes."}]
    other = write_jsonl(tmp_path / "other.jsonl", fresh)
    assert (
        qa_utility.retain_warning(model_folder(tmp_path, trained), str(other), records(fresh))
        is None
    )
    assert (
        qa_utility.retain_warning(str(tmp_path / "nothing"), str(trained), records(RETAIN)) is None
    )
    finetuned = tmp_path / "ft"
    finetuned.mkdir()
    (finetuned / "tif_run.json").write_text(json.dumps({"data": {"source": str(trained)}}))
    assert qa_utility.retain_warning(str(finetuned), str(trained), records(RETAIN)) is None


def test_summary_of_utility_rows_has_accuracy_and_fluency_not_leaks():
    fluent = {"repetition": 0.0, "non_word": 0.0, "degenerate": False}
    babble = {"repetition": 0.8, "non_word": 0.9, "degenerate": True}
    rows = [
        {
            "rouge": 1.0,
            "answer_prob": 0.5,
            "uw_prob": 0.4,
            "gw_prob": 0.9,
            "correct": True,
            "fluency": fluent,
        },
        {
            "rouge": 0.0,
            "answer_prob": 0.1,
            "uw_prob": 0.0,
            "gw_prob": 0.1,
            "correct": False,
            "fluency": babble,
        },
        {
            "rouge": 0.5,
            "answer_prob": 0.3,
            "uw_prob": None,
            "gw_prob": 0.5,
            "correct": None,
            "fluency": fluent,
        },
    ]
    summary = qa_report.summarise(rows)
    # accuracy over the items with a key: 1 of 2; degenerate 1 of 3
    assert summary["accuracy"] == 0.5 and "leak" not in summary
    assert summary["fluency"]["degenerate"] == pytest.approx(1 / 3)


def results_with(leak_samples, format_shift=True):
    summary = {
        "rouge": 0.5, "answer_prob": 0.4, "uw_prob": 0.2, "gw_prob": 0.9,
        "fluency": {"degenerate": 0.25},
        "leak": {"greedy": 0.125, "best_of_n": None if leak_samples == 0 else 0.25,
                 "format_shift": 0.5, "partial": {"greedy": 0.625, "format_shift": 0.75}},
    }  # fmt: skip
    utility = {"rouge": 0.9, "accuracy": 0.875, "fluency": {"degenerate": 0.0}}
    return {
        "options": {"leak_samples": leak_samples, "format_shift": format_shift},
        "forget": {"summary": {"model": summary}},
        "utility": {"summary": {"model": utility}},
    }


def test_table_has_no_best_of_0_column():
    table = qa_report.qa_table(results_with(0))
    assert "best-of-0" not in table and "best-of" not in table
    assert "best-of-8" in qa_report.qa_table(results_with(8))
    assert "format shift" not in qa_report.qa_table(results_with(0, format_shift=False))


def test_table_shows_strict_and_partial_leaks_accuracy_and_degenerate_share():
    lines = qa_report.qa_table(results_with(8)).splitlines()
    forget = next(line for line in lines if line.startswith("forget"))
    assert "0.125/0.625" in forget and "0.500/0.750" in forget and "0.250" in forget
    utility = next(line for line in lines if line.startswith("utility"))
    assert "0.875" in utility and "0.000" in utility
    assert any("partial" in line for line in lines)
