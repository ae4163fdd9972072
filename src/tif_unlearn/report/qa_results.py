"""``tif report`` for ``tif eval qa`` results: each file becomes a row of headline numbers (and
its reference model, once per distinct reference, a "before" row), and the page shows every
forget answer before and after with the leaked words highlighted, and the held-out answers.

Rows are flat ``{key: number}`` summaries, so the table, the best-value marks and the scatter
of ``results_report`` work on them as on TOFU and MUSE summaries.
"""

from __future__ import annotations

import html

from ..evaluate import leak

MAX_ITEMS = 40  # forget / held-out questions shown

COLUMNS = (
    ("leak_greedy", "leak greedy, strict"),
    ("leak_partial_greedy", "leak greedy, partial"),
    ("leak_best_of_n", "leak best-of-N, strict"),
    ("leak_partial_best_of_n", "leak best-of-N, partial"),
    ("leak_format_shift", "leak format shift, strict"),
    ("leak_partial_format_shift", "leak format shift, partial"),
    ("forget_uw_prob", "forget UW p"),
    ("forget_gw_prob", "forget GW p"),
    ("forget_rouge", "forget ROUGE-L"),
    ("retain_rouge", "retain ROUGE-L"),
    ("utility_accuracy", "held-out correct"),
    ("utility_rouge", "held-out ROUGE-L"),
    ("forget_degenerate", "degenerate forget answers"),
    ("utility_degenerate", "degenerate held-out answers"),
    ("forget_duplicates", "forget answers copied across questions"),
    ("utility_duplicates", "held-out answers copied across questions"),
    ("min_40_auc", "MIA Min-40% AUC"),
)
DIRECTIONS = {key: "min" for key, _ in COLUMNS if key.startswith("leak_")} | {
    "forget_uw_prob": "min",
    "forget_gw_prob": "max",
    "forget_rouge": "min",
    "retain_rouge": "max",
    "utility_accuracy": "max",
    "utility_rouge": "max",
    "forget_degenerate": "min",
    "utility_degenerate": "min",
    "forget_duplicates": "min",
    "utility_duplicates": "min",
}


def is_qa_results(results: dict) -> bool:
    """A ``tif eval qa`` results document (files written before it said ``"benchmark": "qa"``
    included)."""
    if results.get("benchmark") == "qa":
        return True
    forget = results.get("forget")
    return isinstance(forget, dict) and "summary" in forget and "items" in forget


def flat_summary(results: dict, who: str) -> dict:
    """The headline numbers of ``who`` (``model`` or ``reference``) as ``{column key: value}``."""
    flat: dict = {}
    for set_name in ("forget", "retain", "utility"):
        summary = results.get(set_name, {}).get("summary", {}).get(who)
        if not summary:
            continue
        for key in ("rouge", "uw_prob", "gw_prob", "accuracy"):
            flat[f"{set_name}_{key}"] = summary.get(key)
        flat[f"{set_name}_degenerate"] = (summary.get("fluency") or {}).get("degenerate")
        flat[f"{set_name}_duplicates"] = (summary.get("fluency") or {}).get("duplicates")
        if set_name == "forget":
            rates = summary.get("leak") or {}
            for way in ("greedy", "best_of_n", "format_shift"):
                flat[f"leak_{way}"] = rates.get(way)
                flat[f"leak_partial_{way}"] = (rates.get("partial") or {}).get(way)
    flat |= results.get("mia", {}).get(who) or {}
    return flat


def qa_rows(loaded: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """One row per file (``summary`` = its model's numbers, ``qa`` = the file) and, before the
    first file with each distinct reference, a ``before`` row with the reference's numbers."""
    rows, references = [], set()
    for name, results in loaded:
        reference = results.get("reference")
        if reference and reference not in references and flat_summary(results, "reference"):
            references.add(reference)
            summary = flat_summary(results, "reference")
            rows.append((f"before ({reference})", _row(summary, results, "reference")))
        rows.append((name, _row(flat_summary(results, "model"), results, "model")))
    return rows


def _row(summary: dict, results: dict, who: str) -> dict:
    return {"benchmark": "qa", "summary": summary, "qa": results, "who": who}


def _answer(row: dict | None, words: list[str]) -> str:
    """A generated answer, its leaked ``words`` highlighted, tagged when degenerate."""
    if row is None:
        return '<span class="none">(not asked)</span>'
    text = str(row.get("generated", ""))
    body = _highlight(text, join_spans(text, leak.word_spans(text, words)))
    if (row.get("fluency") or {}).get("degenerate"):
        body += ' <span class="tag">degenerate</span>'
    if (row.get("fluency") or {}).get("copied"):
        body += ' <span class="tag">copied</span>'
    if row.get("correct") is not None:
        body += f' <span class="tag">{"right" if row["correct"] else "wrong"}</span>'
    return body


def join_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ``spans`` with those only whitespace apart joined: one mark for "type 2 diabetes"."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if joined and not text[joined[-1][1] : start].strip():
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def _highlight(text: str, spans) -> str:
    from .spans_html import highlight

    return highlight(text, spans)


def _phrase_spans(text: str, phrases: list[str]) -> list[tuple[int, int]]:
    spans = []
    for phrase in phrases:
        start = text.find(phrase)
        while phrase and start >= 0:
            spans.append((start, start + len(phrase)))
            start = text.find(phrase, start + len(phrase))
    return spans


def _columns(rows: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """(label, {(set, prompt): that row's answer row}) per table row."""
    columns = []
    for name, row in rows:
        by_prompt = {}
        for set_name in ("forget", "utility"):
            for item in row["qa"].get(set_name, {}).get("items", []):
                by_prompt[(set_name, item.get("prompt"))] = item.get(row["who"])
        columns.append((name, by_prompt))
    return columns


def _items(rows: list[tuple[str, dict]], set_name: str) -> list[dict]:
    items = rows[0][1]["qa"].get(set_name, {}).get("items", []) if rows else []
    return [i for i in items if isinstance(i, dict) and "prompt" in i][:MAX_ITEMS]


def forget_answers_html(rows: list[tuple[str, dict]]) -> str:
    """Each forget question: the true answer (UW marked), then every row's answer with the
    words that leaked marked."""
    columns, blocks = _columns(rows), []
    for item in _items(rows, "forget"):
        phrases = [str(p) for p in item.get("unwanted_words") or []]
        words = leak.content_words(phrases, str(item["prompt"]))
        truth = str(item.get("truth", ""))
        lines = [
            f'<p class="q">Q: {html.escape(str(item["prompt"]))}</p>',
            f'<p class="truth"><span class="label">true answer</span>'
            f"{_highlight(truth, _phrase_spans(truth, phrases))}</p>",
        ]
        for name, by_prompt in columns:
            answer = _answer(by_prompt.get(("forget", item["prompt"])), words)
            lines.append(
                f'<p class="answer"><span class="label">{html.escape(name)}</span>{answer}</p>'
            )
        blocks.append(f'<div class="qa">{"".join(lines)}</div>')
    if not blocks:
        return ""
    return (
        "<h2>Forget answers before and after</h2><p>True answer: unwanted words marked. "
        "Answers: the unwanted words they say marked (partial leaks included).</p>"
        + "".join(blocks)
    )


def utility_answers_html(rows: list[tuple[str, dict]]) -> str:
    """The held-out questions, one column per row: answer, right/wrong, degenerate."""
    columns, body = _columns(rows), []
    for item in _items(rows, "utility"):
        cells = "".join(
            f"<td>{_answer(by_prompt.get(('utility', item['prompt'])), [])}</td>"
            for _, by_prompt in columns
        )
        question = html.escape(str(item["prompt"]))
        body.append(f"<tr><td><b>{question}</b><br>{html.escape(str(item.get('truth')))}</td>")
        body[-1] += f"{cells}</tr>"
    if not body:
        return ""
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    return (
        "<h2>Held-out questions (utility outside the retain set)</h2>"
        f'<table class="answers"><tr><th>question / reference answer</th>{head}</tr>'
        f"{''.join(body)}</table>"
    )


def collapse_warnings(rows: list[tuple[str, dict]]) -> list[str]:
    """One line per row and set whose answers collapsed (:mod:`evaluate.qa_collapse`)."""
    lines = []
    for name, row in rows:
        for set_name, label in (("forget", "forget"), ("utility", "held-out")):
            summaries = row["qa"].get(set_name, {}).get("summary", {})
            fluent = (summaries.get(row["who"]) or {}).get("fluency") or {}
            if not fluent.get("collapsed"):
                continue
            line = (
                f"{name}: its {label} answers collapsed: {fluent['duplicates']:.2f} of them are "
                "(near) copies of the answer to another question"
            )
            before = ((summaries.get("reference") or {}).get("fluency") or {}).get("duplicates")
            if row["who"] == "model" and before is not None:
                line += f" (before: {before:.2f})"
            lines.append(line)
    return lines


def warnings_html(rows: list[tuple[str, dict]]) -> str:
    warnings = {w for _, row in rows for w in row["qa"].get("warnings") or []}
    warnings |= set(collapse_warnings(rows))
    items = "".join(f"<li>{html.escape(str(w))}</li>" for w in sorted(warnings))
    return f'<ul class="warnings">{items}</ul>' if items else ""


def qa_answers_html(rows: list[tuple[str, dict]]) -> str:
    return warnings_html(rows) + forget_answers_html(rows) + utility_answers_html(rows)
