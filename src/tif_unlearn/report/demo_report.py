"""The demo's self-contained HTML report: answers before/after each method, UW highlighted,
the metric table and a forget-vs-retain plot (embedded as a base64 PNG)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .demo_text import SCORE_COLUMNS
from .plots import forget_retain_scatter
from .spans_html import highlight

CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { padding: 0.3rem 0.7rem;
border: 1px solid #ddd; text-align: right; } th:first-child, td:first-child { text-align: left; }
mark { background: #ffd54f; padding: 0 1px; border-radius: 2px; }
.qa { margin: 1rem 0; padding: 0.6rem 0.9rem; background: #fafafa; border-radius: 4px; }
.qa p { margin: 0.25rem 0; } .q { font-weight: 600; } .label { color: #666; display: inline-block;
width: 7rem; } .legend { color: #555; }
""".strip()


def metric_table(results: dict[str, dict]) -> str:
    """The score table (:data:`demo_text.SCORE_COLUMNS`; a set no model has is left out)."""
    columns = [c for c in SCORE_COLUMNS if any(c[0] in r for r in results.values())]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, _, label in columns)
    rows = []
    for name, r in results.items():
        values = [r.get(s, {}).get(k) for s, k, _ in columns]
        cells = "".join("<td>-</td>" if v is None else f"<td>{v:.3f}</td>" for v in values)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


LEAK_WAYS = (("greedy", "greedy"), ("best_of_n", "best-of-N"), ("format_shift", "format shift"))


def _pair(strict, partial) -> str:
    return " / ".join("-" if v is None else f"{v:.2f}" for v in (strict, partial))


def leak_table_html(results: dict[str, dict]) -> str:
    """Leak rates strict / partial per way of asking that ran, and the degenerate share."""
    rates = {name: r["forget"].get("leak") or {} for name, r in results.items()}
    ways = [
        (k, label) for k, label in LEAK_WAYS if any(v.get(k) is not None for v in rates.values())
    ]
    head = "".join(f"<th>{label} strict / partial</th>" for _, label in ways)
    copies = any("duplicates" in r["forget"] for r in results.values())
    rows = []
    for name, r in results.items():
        partial = rates[name].get("partial", {})
        cells = "".join(f"<td>{_pair(rates[name].get(k), partial.get(k))}</td>" for k, _ in ways)
        for key in ("degenerate", "duplicates")[: 1 + copies]:
            value = r["forget"].get(key)
            cells += "<td>-</td>" if value is None else f"<td>{value:.2f}</td>"
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    head += "<th>degenerate answers</th>"
    head += "<th>answers copied across questions</th>" if copies else ""
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def answers_section(annotated, results: dict[str, dict]) -> str:
    blocks = []
    for i, record in enumerate(annotated):
        lines = [
            f'<p class="q">Q: {html.escape(record.question)}</p>',
            f'<p><span class="label">true answer</span>'
            f"{highlight(record.answer, record.unwanted_spans)}</p>",
        ]
        for name, r in results.items():
            if name == "base":
                continue
            answer = r["forget"]["answers"][i]
            lines.append(
                f'<p><span class="label">{html.escape(name)}</span>{html.escape(answer)}</p>'
            )
        blocks.append('<div class="qa">' + "".join(lines) + "</div>")
    return "\n".join(blocks)


def write_report(out: Path, person: str, sets, annotated, results: dict[str, dict]) -> Path:
    points = {name: (r["forget"]["rouge"], r["retain"]["rouge"]) for name, r in results.items()}
    png = forget_retain_scatter(
        points,
        xlabel=f"forget ROUGE-L ({person}; lower = forgotten)",
        ylabel="retain ROUGE-L (other people; higher = kept)",
        title="Forgetting vs keeping, per model",
    )
    (out / "forget_vs_retain.png").write_bytes(png)
    image = base64.b64encode(png).decode("ascii")
    held_out = (
        "; held-out: general questions never trained on"
        if any("held_out" in r for r in results.values())
        else ""
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tif-unlearn demo: forgetting {html.escape(person)}</title><style>{CSS}</style>"
        f"</head><body><h1>tif-unlearn demo: forgetting {html.escape(person)}</h1>"
        f'<p class="legend">Forget set: {len(sets["forget"])} questions about {html.escape(person)}; '
        f"retain set: {len(sets['retain'])} questions about other fictitious people; general: "
        f"{len(sets['general'])} general-knowledge questions (trained on){held_out}. "
        "<mark>Highlighted</mark> words are the "
        "unwanted words (UW) the identifier marked; TIF unlearns only those tokens.</p>"
        f"<h2>Metrics</h2>{metric_table(results)}"
        '<h2>Leak audit of the forget questions</h2><p class="legend">Share of questions whose '
        "unwanted words come out: strict = a whole marked span, partial = any content word of "
        "one; degenerate = greedy answers that repeat themselves or are not words; copied = "
        "answers that are (near) copies of the answer to another question.</p>"
        f"{leak_table_html(results)}"
        f'<img alt="forget vs retain ROUGE-L per model" src="data:image/png;base64,{image}">'
        f"<h2>Answers to the forget questions, before and after</h2>"
        f"{answers_section(annotated, results)}</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path.resolve()
