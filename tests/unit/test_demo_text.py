"""The demo's terminal tables (report/demo_text.py): leak rates strict/partial, no best-of-0
column, the degenerate share, and the held-out columns only when a model has that set."""

from __future__ import annotations

from tif_unlearn.report.demo_text import leak_table, results_table


def demo_result(held_out: bool) -> dict:
    rates = {
        "greedy": 0.1, "best_of_n": 0.2, "format_shift": None,
        "partial": {"greedy": 0.5, "best_of_n": 0.6, "format_shift": None},
    }  # fmt: skip
    result = {
        "forget": {"rouge": 0.75, "prob": 0.3, "leak": rates, "degenerate": 0.0},
        "retain": {"rouge": 0.98, "prob": 0.97},
        "general": {"rouge": 1.0, "prob": 0.99},
    }
    if held_out:
        result["held_out"] = {"rouge": 0.8, "prob": 0.4, "accuracy": 0.9}
    return result


def test_leak_table_shows_strict_and_partial_per_way_and_the_degenerate_share():
    lines = leak_table({"tif": demo_result(True)}, 8).splitlines()
    assert lines[0].split() == ["model", "greedy", "best-of-8", "format", "shift", "degenerate"]
    assert lines[2].split() == ["tif", "0.10/0.50", "0.20/0.60", "-/-", "0.00"]


def test_leak_table_without_samples_has_no_best_of_0_column():
    table = leak_table({"tif": demo_result(True)}, 0)
    assert "best-of" not in table
    assert table.splitlines()[2].split() == ["tif", "0.10/0.50", "-/-", "0.00"]


def test_results_table_adds_held_out_columns_when_there_is_a_held_out_set():
    with_held_out = results_table({"tif": demo_result(True)}).splitlines()
    assert "held-out correct" in with_held_out[0]
    assert with_held_out[2].split()[-2:] == ["0.400", "0.900"]  # held-out prob, correct
    assert "held-out" not in results_table({"tif": demo_result(False)})
