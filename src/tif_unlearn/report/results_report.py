"""``tif report``: one self-contained HTML page (and a PNG) comparing any set of ``tif eval
tofu``, ``tif eval muse`` or ``tif eval qa`` results: a table with the best value of each column
marked, the forget-utility scatter (TOFU: Forget Quality vs Model Utility; MUSE: VerbMem vs
KnowMem retain; QA: partial leak rate vs held-out correct), and the generated answers side by
side where the results hold them (QA: ``report/qa_results.py``); the same table as text.

The page has no external resources (inline CSS, the plot as a data URI, no scripts) and every
piece of text from the results is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TifError
from ..evaluate.tofu_metrics import METRIC_DIRECTIONS, SUMMARY_ROWS
from . import qa_results
from .plots import results_scatter

MAX_ANSWERS = 20  # questions shown side by side


@dataclass(frozen=True)
class Benchmark:
    """What the report shows for one benchmark's results."""

    title: str
    columns: tuple[tuple[str, str], ...]  # (summary key, label)
    directions: dict[str, str]  # key -> "max" | "min" (a column without one is not marked)
    x: tuple[tuple[str, str, bool], ...]  # scatter x candidates: (key, label, log scale)
    y: tuple[str, str]
    answers_set: str  # the set whose generated answers are shown
    answers: Callable[[list], str] | None = None  # its own answers section


BENCHMARKS = {
    "tofu": Benchmark(
        title="TOFU",
        columns=SUMMARY_ROWS,
        directions=METRIC_DIRECTIONS,
        x=(
            ("forget_quality", "Forget Quality (KS p-value, log)", True),
            ("forget_rouge", "forget ROUGE-L recall", False),
        ),
        y=("model_utility", "Model Utility"),
        answers_set="forget",
    ),
    "muse": Benchmark(
        title="MUSE",
        columns=(
            ("verbmem_f1", "VerbMem (ROUGE-L F1)"),
            ("knowmem_forget_f1", "KnowMem forget"),
            ("knowmem_retain_f1", "KnowMem retain (utility)"),
            ("min_k_auc", "Min-40% AUC"),
            ("privleak", "PrivLeak (%)"),
        ),
        directions={"verbmem_f1": "min", "knowmem_forget_f1": "min", "knowmem_retain_f1": "max"},
        x=(("verbmem_f1", "VerbMem (ROUGE-L F1)", False),),
        y=("knowmem_retain_f1", "KnowMem retain (ROUGE-L F1)"),
        answers_set="knowmem_forget",
    ),
    "qa": Benchmark(
        title="your data (tif eval qa)",
        columns=qa_results.COLUMNS,
        directions=qa_results.DIRECTIONS,
        x=(
            ("leak_partial_greedy", "partial leak rate, greedy answers", False),
            ("leak_greedy", "strict leak rate, greedy answers", False),
        ),
        y=("utility_accuracy", "held-out questions answered right"),
        answers_set="forget",
        answers=qa_results.qa_answers_html,
    ),
}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
td.best { background: #c8f0c8; font-weight: bold; }
table.answers td { text-align: left; max-width: 28em; }
img { max-width: 100%; }
mark { background: #ffd54f; padding: 0 1px; }
.answer mark { background: #ff8a80; }
.qa { margin: 0.8em 0; padding: 0.4em 0.8em; background: #fafafa; }
.qa p { margin: 0.2em 0; } .q { font-weight: 600; }
.label { color: #666; display: inline-block; min-width: 12em; margin-right: 0.5em; }
.tag { color: #b00; font-size: 0.85em; } .warnings { color: #b00; }
"""


def load_results(paths: list[str]) -> list[tuple[str, dict]]:
    """``(name, results)`` per file, all of one benchmark; a name is the file's stem."""
    if not paths:
        raise TifError("give at least one results .json file")
    loaded = []
    for path in paths:
        try:
            results = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TifError(f"cannot read results file {path}: {err}") from err
        if isinstance(results, dict) and qa_results.is_qa_results(results):
            results = {**results, "benchmark": "qa"}
        if not isinstance(results, dict) or results.get("benchmark") not in BENCHMARKS:
            raise TifError(f"{path} is not a `tif eval tofu`, `muse` or `qa` results file")
        loaded.append((Path(path).stem, results))
    kinds = {results["benchmark"] for _, results in loaded}
    if len(kinds) > 1:
        raise TifError(f"results of different benchmarks ({', '.join(sorted(kinds))}): compare one")
    loaded = _unique_names(loaded)
    return qa_results.qa_rows(loaded) if kinds == {"qa"} else loaded


def _unique_names(loaded: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    seen: dict[str, int] = {}
    named = []
    for name, results in loaded:
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name} ({seen[name]})", results))
    return named


def summary_value(results: dict, key: str) -> float | None:
    value = results.get("summary", {}).get(key, results.get("mia", {}).get(key))
    return float(value) if isinstance(value, int | float) else None


def best_values(loaded: list[tuple[str, dict]], benchmark: Benchmark) -> dict[str, float]:
    """The best value of each column that has a direction and at least one value."""
    best = {}
    for key, _ in benchmark.columns:
        values = [v for _, r in loaded if (v := summary_value(r, key)) is not None]
        if values and key in benchmark.directions:
            best[key] = max(values) if benchmark.directions[key] == "max" else min(values)
    return best


def _cell(value: float | None, is_best: bool) -> str:
    if value is None:
        return "<td>–</td>"
    return f'<td class="best">{value:.4g}</td>' if is_best else f"<td>{value:.4g}</td>"


def table_html(loaded: list[tuple[str, dict]], benchmark: Benchmark) -> str:
    columns = [(k, label) for k, label in benchmark.columns if _any_value(loaded, k)]
    best = best_values(loaded, benchmark)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    rows = []
    for name, results in loaded:
        cells = "".join(
            _cell(v := summary_value(results, key), v is not None and v == best.get(key))
            for key, _ in columns
        )
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>results</th>{head}</tr>{''.join(rows)}</table>"


def _any_value(loaded: list[tuple[str, dict]], key: str) -> bool:
    return any(summary_value(results, key) is not None for _, results in loaded)


def scatter_axes(loaded: list[tuple[str, dict]], benchmark: Benchmark):
    """The first x candidate every result has (TOFU: Forget Quality needs a retain model)."""
    for key, label, log in benchmark.x:
        if all(summary_value(r, key) is not None for _, r in loaded):
            return (key, label, log), benchmark.y
    return None, benchmark.y


def scatter_png(loaded: list[tuple[str, dict]], benchmark: Benchmark) -> bytes | None:
    (x, y) = scatter_axes(loaded, benchmark)
    if x is None or not all(summary_value(r, y[0]) is not None for _, r in loaded):
        return None
    points = {name: (summary_value(r, x[0]), summary_value(r, y[0])) for name, r in loaded}
    title = f"{benchmark.title}: forgetting vs utility"
    return results_scatter(points, xlabel=x[1], ylabel=y[1], title=title, log_x=x[2])


def answers_html(loaded: list[tuple[str, dict]], benchmark: Benchmark) -> str:
    """The generated answers to the first questions, one column per results file."""
    answers = [_answers_by_question(r, benchmark.answers_set) for _, r in loaded]
    questions = [q for q in answers[0] if all(q in a for a in answers)][:MAX_ANSWERS]
    if not questions:
        return ""
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in loaded)
    rows = []
    for question in questions:
        truth = answers[0][question][0]
        cells = "".join(f"<td>{html.escape(a[question][1])}</td>" for a in answers)
        rows.append(
            f"<tr><td><b>{html.escape(question)}</b><br>{html.escape(truth)}</td>{cells}</tr>"
        )
    return (
        f"<h2>Answers on the {html.escape(benchmark.answers_set)} set</h2>"
        f'<table class="answers"><tr><th>question / reference answer</th>{head}</tr>'
        f"{''.join(rows)}</table>"
    )


def _answers_by_question(results: dict, set_name: str) -> dict[str, tuple[str, str]]:
    items = results.get("sets", {}).get(set_name, {})
    items = items.get("items", []) if isinstance(items, dict) else items
    return {
        str(item["question"]): (str(item.get("answer", "")), str(item["generated"]))
        for item in items
        if isinstance(item, dict) and "question" in item and "generated" in item
    }


def render_report(loaded: list[tuple[str, dict]]) -> tuple[str, bytes | None]:
    """The HTML page and the scatter PNG (None when the results lack its two numbers)."""
    benchmark = BENCHMARKS[loaded[0][1]["benchmark"]]
    png = scatter_png(loaded, benchmark)
    image = ""
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        image = f'<img alt="forgetting vs utility" src="data:image/png;base64,{data}">'
    answers = benchmark.answers(loaded) if benchmark.answers else answers_html(loaded, benchmark)
    body = table_html(loaded, benchmark) + image + answers
    title = f"tif report: {benchmark.title}, {len(loaded)} results"
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Best value of each column in green.</p>{body}</body></html>",
        png,
    )


def text_table(loaded: list[tuple[str, dict]]) -> str:
    """The page's table as text, turned: one line per number, one column per results row."""
    benchmark = BENCHMARKS[loaded[0][1]["benchmark"]]
    columns = [(k, label) for k, label in benchmark.columns if _any_value(loaded, k)]
    label_width = max([len("results"), *(len(label) for _, label in columns)])
    widths = [max(8, len(name)) for name, _ in loaded]
    header = f"{'results':<{label_width}}" + "".join(
        f"  {name:>{w}}" for (name, _), w in zip(loaded, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    for key, label in columns:
        values = [summary_value(results, key) for _, results in loaded]
        cells = "".join(
            f"  {'-' if v is None else f'{v:.3f}':>{w}}"
            for v, w in zip(values, widths, strict=True)
        )
        lines.append(f"{label:<{label_width}}{cells}")
    return "\n".join(lines)


def write_report(paths: list[str], out: str) -> list[Path]:
    """Write ``out`` (.html) and, when there is a scatter, the PNG beside it; return both."""
    return write_loaded(load_results(paths), out)


def write_loaded(loaded: list[tuple[str, dict]], out: str) -> list[Path]:
    """:func:`write_report` of results already loaded."""
    page, png = render_report(loaded)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    written = [target]
    if png is not None:
        written.append(target.with_suffix(".png"))
        written[-1].write_bytes(png)
    return written
